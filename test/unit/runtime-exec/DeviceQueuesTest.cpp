//===- DeviceQueuesTest.cpp - the cuda-local transport's ordering, on the CPU
//-===//
//
// The local transport with a device's queues (the cuda-local transport,
// DeviceQueues.h) against a fake device that is as lazy as the events
// allow (LazyDevice.h): a forgotten wait changes the bits. Training through
// it must give the host arenas' bits, its messages and its collectives
// (the exact collectives' moves and sums, DeviceCollectives.h) all on the
// device, every event made before the first step and given back after the
// run, and no host waiting for the device inside a step.
//
//===----------------------------------------------------------------------===//

#include "LazyDevice.h"
#include "SyntheticModel.h"

#include "pipert/LocalTransport.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

using namespace pipec::testing;

namespace {

/// The events the transport must make for `plan` on `device`: per rank,
/// one per request id it posts, and one per (request id, device of the
/// receiver) its posts move bytes to.
int64_t expectedEvents(const SyntheticPlan &plan, const LazyDevice &device) {
  int64_t n = 0;
  for (const pipert::Stream &s : plan.streams) {
    std::set<int32_t> posted;
    std::set<std::pair<int32_t, int32_t>> landed;
    for (const pipert::Instr &in : s.instrs) {
      if (!pipert::isPostOp(in.op))
        continue;
      bool send =
          in.op == pipert::Opcode::SendAct || in.op == pipert::Opcode::SendGrad;
      posted.insert(in.req);
      landed.insert({in.req, device.deviceOf(send ? in.peer : s.rank)});
    }
    n += int64_t(posted.size() + landed.size());
  }
  // The collectives': four per member of each group that has one.
  std::set<int32_t> groups;
  for (const pipert::Stream &s : plan.streams)
    for (const pipert::Instr &in : s.instrs)
      if (pipert::isCollectiveOp(in.op))
        groups.insert(in.chunk);
  for (int32_t g : groups)
    n += 4 * int64_t(plan.manifest.groups[size_t(g)].size());
  return n;
}

/// What one step's collectives make the device do: moves and sums.
struct CollectiveWork {
  int64_t moves = 0, sums = 0;
};
CollectiveWork collectiveWork(const SyntheticPlan &plan) {
  CollectiveWork w;
  std::set<std::tuple<int, int32_t, int32_t>> seen;
  for (const pipert::Stream &s : plan.streams)
    for (const pipert::Instr &in : s.instrs) {
      if (!pipert::isCollectiveOp(in.op) ||
          !seen.insert({int(in.op), in.chunk, in.mb}).second)
        continue;
      const std::vector<int32_t> &members =
          plan.manifest.groups[size_t(in.chunk)];
      std::vector<pipert::CollectivePlan> plans(members.size());
      for (size_t m = 0; m < members.size(); ++m) {
        EXPECT_TRUE(pipert::planCollective(
                        in.op, members, members[m],
                        in.bytes / pipert::dtypeBytes(in.dtype), in.dtype,
                        s.parts.data() + in.firstPart,
                        int32_t(in.partCount), plans[m])
                        .ok());
        w.sums += int64_t(plans[m].sums.size());
      }
      std::vector<pipert::Move> gather, spread;
      EXPECT_TRUE(pipert::matchPhase(plans, &pipert::CollectivePlan::gather,
                                     "gather", gather)
                      .ok());
      EXPECT_TRUE(pipert::matchPhase(plans, &pipert::CollectivePlan::spread,
                                     "spread", spread)
                      .ok());
      w.moves += int64_t(gather.size() + spread.size());
    }
  return w;
}

const pipert::ArenaAllocator arenas = hostBackedDeviceArenas();

/// The sends of one step of `plan` (a message each).
int64_t messagesOf(const SyntheticPlan &plan) {
  int64_t n = 0;
  for (const pipert::Stream &s : plan.streams)
    for (const pipert::Instr &in : s.instrs)
      n += in.op == pipert::Opcode::SendAct || in.op == pipert::Opcode::SendGrad;
  return n;
}

/// The synthetic model at S = 2, 1F1B, 4 micro-batches.
SyntheticPlan twoStagePlan() {
  SyntheticPlan plan;
  PlanOptions po;
  po.kind = pipec::schedule::Kind::OneFOneB;
  po.stages = 2;
  po.microbatches = 4;
  EXPECT_EQ(buildPlan(po, plan), "");
  return plan;
}

struct Case {
  pipec::schedule::Kind kind;
  int32_t stages, devices;
  bool lazySums;
};

} // namespace

// Every message moved by the lazy device, ordered only by the transport's
// events: the host arenas' bits for a plain, a zero-bubble and a V
// schedule, on one device and on two (rank r on device r mod 2, so each
// message crosses devices and both sides' events are the receiver's).
TEST(DeviceQueues, LazyTransfersGiveTheHostBits) {
  for (Case c : {Case{pipec::schedule::Kind::OneFOneB, 2, 1, false},
                 Case{pipec::schedule::Kind::ZBH1, 4, 1, true},
                 Case{pipec::schedule::Kind::ZBV, 2, 2, false},
                 Case{pipec::schedule::Kind::Interleaved, 2, 2, true}}) {
    SCOPED_TRACE(std::string(pipec::schedule::kindName(c.kind)) +
                 " S = " + std::to_string(c.stages) + ", devices " +
                 std::to_string(c.devices));
    SyntheticPlan plan;
    PlanOptions po;
    po.kind = c.kind;
    po.stages = c.stages;
    po.microbatches = 8;
    ASSERT_EQ(buildPlan(po, plan), "");
    std::vector<double> hostMetrics, deviceMetrics;
    std::vector<uint8_t> hostParams, deviceParams;
    pipert::Status st =
        trainForBits(plan, nullptr, nullptr, 3, hostMetrics, hostParams);
    ASSERT_TRUE(st.ok()) << st.message();
    LazyDevice device(int32_t(plan.streams.size()), c.devices, c.lazySums);
    st = trainForBits(plan, &arenas, &device, 3, deviceMetrics, deviceParams);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_TRUE(device.errors.empty()) << device.errors.front();
    EXPECT_EQ(hostMetrics, deviceMetrics);
    EXPECT_TRUE(hostParams == deviceParams) << "parameters differ";
    // Every message and every collective's move went through the device,
    // and every sum; a message's two waits ordered compute streams; the
    // host drained each rank once a step (before reading its metrics) and
    // at the end, never inside a step; nothing is left in flight; the
    // events were made before the first step (their number is fixed by
    // the streams) and all given back.
    const int64_t messages = messagesOf(plan);
    const CollectiveWork work = collectiveWork(plan);
    EXPECT_GT(work.moves, 0);
    EXPECT_EQ(device.transfers, 3 * (messages + work.moves));
    EXPECT_EQ(device.sums, 3 * work.sums);
    EXPECT_GE(device.computeWaitCount, 2 * 3 * messages);
    EXPECT_EQ(device.drains, 4 * int64_t(plan.streams.size()));
    EXPECT_EQ(device.pending(), 0u);
    EXPECT_EQ(device.created, expectedEvents(plan, device));
    EXPECT_EQ(device.destroyed, device.created);
    EXPECT_TRUE(device.live.empty());
  }
}

// One message by hand: nothing moves at the posts; the receiver's wait
// makes its compute stream wait, which brings the bytes; the sender's wait
// orders its own stream after the same copy, so what it writes next into
// its buffer is not what the receiver got.
TEST(DeviceQueues, TheWaitsOrderBothSides) {
  std::vector<pipert::Stream> streams(2);
  for (int32_t r = 0; r < 2; ++r) {
    streams[size_t(r)].rank = r;
    streams[size_t(r)].ranks = 2;
    pipert::Instr post;
    post.op = r == 0 ? pipert::Opcode::SendAct : pipert::Opcode::RecvAct;
    post.peer = 1 - r;
    post.req = 0;
    post.bytes = 64;
    streams[size_t(r)].instrs.push_back(post);
  }
  LazyDevice device(2);
  std::unique_ptr<pipert::LocalTransport> t;
  pipert::Status st = pipert::LocalTransport::create(streams, {{0, 1}}, t,
                                                     arenas.copy, &device);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(device.created, 4); // posted and landed, per side
  std::vector<uint8_t> src(64), dst(64, 0);
  for (size_t i = 0; i < src.size(); ++i)
    src[i] = uint8_t(i * 13 + 1);
  const std::vector<uint8_t> sent = src;
  auto deadline = pipert::Clock::now() + std::chrono::seconds(5);
  ASSERT_TRUE(t->postSend(0, 1, pipert::Channel::Activation, 0,
                          {0, 0, src.data(), 64, 0})
                  .ok());
  ASSERT_TRUE(t->postRecv(1, 0, pipert::Channel::Activation, 0,
                          {0, 0, dst.data(), 64, 0})
                  .ok());
  EXPECT_EQ(device.pending(), 1u);
  EXPECT_EQ(dst, std::vector<uint8_t>(64, 0)) << "moved before a wait";
  ASSERT_TRUE(t->wait(0, 0, deadline).ok());
  // The sender's stream is ordered after the copy: it ran, from the bytes
  // the sender posted, and the sender may now reuse its buffer.
  EXPECT_EQ(device.pending(), 0u);
  std::fill(src.begin(), src.end(), uint8_t(0xee));
  ASSERT_TRUE(t->wait(1, 0, deadline).ok());
  EXPECT_EQ(dst, sent);
  EXPECT_EQ(device.computeWaitCount, 2);
  EXPECT_TRUE(device.errors.empty()) << device.errors.front();
  ASSERT_TRUE(t->drain(0).ok());
  ASSERT_TRUE(t->drain(1).ok());
  t.reset();
  EXPECT_EQ(device.destroyed, 4);
}

// A device that refuses: events at the start, or a transfer in the
// middle of training, fail the run with the device's words, no hang.
TEST(DeviceQueues, RefusalsFailTheRun) {
  const SyntheticPlan plan = twoStagePlan();
  for (bool atStart : {true, false}) {
    LazyDevice device(2);
    (atStart ? device.failCreate : device.failTransfer) = atStart ? 3 : 5;
    std::vector<double> m;
    std::vector<uint8_t> p;
    pipert::Status st = trainForBits(plan, &arenas, &device, 3, m, p);
    EXPECT_FALSE(st.ok());
    const char *words =
        atStart ? "fake device out of events" : "fake transfer refused";
    EXPECT_NE(st.message().find(words), std::string::npos) << st.message();
    // A failure in the middle abandons the device: a host thread that
    // waits for it gives up (a faulted GPU's event may never complete).
    EXPECT_EQ(device.abandons > 0, !atStart);
    // The events made before the refusal are given back.
    EXPECT_EQ(device.destroyed, device.created);
  }
  // Queues without the target's copy (the all-reduce could not reach the
  // arenas) are refused when the transport is made.
  LazyDevice device(2);
  std::unique_ptr<pipert::LocalTransport> t;
  pipert::Status st = pipert::LocalTransport::create(
      plan.streams, plan.manifest.groups, t, nullptr, &device);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("without the target's copy"), std::string::npos)
      << st.message();
}

namespace {

/// Values of very different magnitudes: their sum depends on the order.
double mixed(int32_t rank, int64_t i, int32_t round) {
  uint32_t h = uint32_t(rank * 7919 + i * 104729 + round * 15485863);
  h ^= h >> 13, h *= 0x5bd1e995u, h ^= h >> 15;
  return (double(h % 2000) / 1000.0 - 1.0) * std::pow(10.0, int(h % 13) - 6);
}

/// `members` ranks in group 0 of one all-reduce of `count` elements of
/// `dtype` (bucket 7), on `devices` lazy devices.
struct AllReduceFixture {
  std::vector<pipert::Stream> streams;
  LazyDevice device;
  std::unique_ptr<pipert::LocalTransport> transport;
  std::vector<std::vector<double>> data; ///< f64 storage, f32 packed in it

  AllReduceFixture(int32_t members, int32_t devices, int64_t count,
                   pipert::DType dtype, bool onDevice, bool lazySums = false)
      : streams(size_t(members)), device(members, devices, lazySums) {
    std::vector<int32_t> all;
    for (int32_t r = 0; r < members; ++r) {
      streams[size_t(r)].rank = r;
      streams[size_t(r)].ranks = members;
      pipert::Instr in;
      in.op = in.sub = pipert::Opcode::AllReduce;
      in.chunk = 0;
      in.mb = 7;
      in.dtype = dtype;
      in.bytes = count * pipert::dtypeBytes(dtype);
      streams[size_t(r)].append(in, {});
      all.push_back(r);
      data.emplace_back(size_t(count));
    }
    pipert::Status st = pipert::LocalTransport::create(
        streams, {all}, transport, onDevice ? arenas.copy : nullptr,
        onDevice ? &device : nullptr);
    EXPECT_TRUE(st.ok()) << st.message();
  }
  void fill(int32_t round, pipert::DType dtype) {
    for (size_t r = 0; r < data.size(); ++r)
      for (size_t i = 0; i < data[r].size(); ++i) {
        double v = mixed(int32_t(r), int64_t(i), round);
        if (dtype == pipert::DType::F32)
          reinterpret_cast<float *>(data[r].data())[i] = float(v);
        else
          data[r][i] = v;
      }
  }
  std::vector<pipert::Status> run(int64_t count, pipert::DType dtype,
                                  int32_t bucket = 7) {
    std::vector<pipert::Status> out(data.size(), pipert::Status::success());
    std::vector<std::thread> threads;
    for (size_t r = 0; r < data.size(); ++r)
      threads.emplace_back([&, r] {
        out[r] = transport->allReduce(
            int32_t(r), 0, bucket, data[r].data(), count, dtype,
            pipert::Clock::now() + std::chrono::seconds(10));
      });
    for (std::thread &t : threads)
      t.join();
    return out;
  }
};

} // namespace

// The all-reduce on the device: the host's bits (member order, element by
// element) for 2 and 3 members on one and two devices, f32 and f64, counts
// that do not divide among the members, twice in a row with new operands
// (the events and staging reused), with the sums run at once and as late
// as the events allow, and no host waiting for the device.
TEST(DeviceQueues, AllReduceOnTheDeviceGivesTheHostBits) {
  for (bool lazy : {false, true})
  for (pipert::DType dtype : {pipert::DType::F32, pipert::DType::F64})
    for (int32_t members : {2, 3})
      for (int32_t devices : {1, 2})
        for (int64_t count : {int64_t(1), int64_t(2), int64_t(1001)}) {
          SCOPED_TRACE(std::to_string(members) + " members on " +
                       std::to_string(devices) + " devices, " +
                       std::to_string(count) + " elements of " +
                       (dtype == pipert::DType::F32 ? "f32" : "f64") +
                       (lazy ? ", lazy sums" : ""));
          AllReduceFixture host(members, devices, count, dtype, false);
          AllReduceFixture dev(members, devices, count, dtype, true, lazy);
          for (int32_t round = 0; round < 2; ++round) {
            host.fill(round, dtype);
            dev.fill(round, dtype);
            for (const pipert::Status &s : host.run(count, dtype))
              ASSERT_TRUE(s.ok()) << s.message();
            for (const pipert::Status &s : dev.run(count, dtype))
              ASSERT_TRUE(s.ok()) << s.message();
            // Each member's compute stream is ordered after everything:
            // nothing the data depends on is still queued.
            EXPECT_EQ(dev.device.pending(), 0u);
            const size_t bytes = size_t(count * pipert::dtypeBytes(dtype));
            for (int32_t r = 0; r < members; ++r)
              EXPECT_EQ(std::memcmp(host.data[size_t(r)].data(),
                                    dev.data[size_t(r)].data(), bytes),
                        0)
                  << "rank " << r << " round " << round;
          }
          EXPECT_EQ(dev.device.drains, 0);
          EXPECT_GT(dev.device.transfers, 0);
          EXPECT_TRUE(dev.device.errors.empty()) << dev.device.errors.front();
          // The staging: a shard per member slot on each member's device.
          EXPECT_GT(dev.device.allocated, 0);
        }
}

// A collective the streams do not hold is refused on the device, naming
// it; the members' staging and events are given back with the transport.
TEST(DeviceQueues, AnUnplannedCollectiveIsRefused) {
  AllReduceFixture dev(2, 1, 64, pipert::DType::F32, true);
  dev.fill(0, pipert::DType::F32);
  for (const pipert::Status &s : dev.run(64, pipert::DType::F32, 8)) {
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("allreduce of group 0 bucket 8 is in no "
                               "stream of this process"),
              std::string::npos)
        << s.message();
  }
  dev.transport.reset();
  EXPECT_TRUE(dev.device.owner.empty());
  EXPECT_EQ(dev.device.destroyed, dev.device.created);
}

namespace {

/// The synthetic model's kernels, each step from `from` on declared
/// replayed (as the cuda target's whole-step graph declares them); counts
/// the step hooks per rank (each rank's thread writes its own entry).
class ReplayingKernels : public SyntheticKernels {
public:
  ReplayingKernels(const SyntheticPlan &plan, int64_t from, int64_t failAt)
      : SyntheticKernels(plan), from(from), failAt(failAt),
        begins(plan.streams.size(), 0), ends(plan.streams.size(), 0) {}
  pipert::Status beginStep(const pipert::RankContext &ctx,
                           bool &replayed) override {
    ++begins[size_t(ctx.rank)];
    replayed = ctx.step >= from;
    if (ctx.step == failAt && ctx.rank == 1)
      return pipert::Status::failure("the graph refused");
    return pipert::Status::success();
  }
  pipert::Status endStep(const pipert::RankContext &ctx) override {
    ++ends[size_t(ctx.rank)];
    return pipert::Status::success();
  }
  const int64_t from, failAt;
  std::vector<int64_t> begins, ends;
};

} // namespace

// The executor's side of a whole-step graph: every rank's step opens with
// beginStep and closes with endStep, and a replayed step leaves the
// transport out (its messages and collectives are the graph's): only step
// 0's reach the device. A refusal ends the run naming the rank and step.
TEST(DeviceQueues, AReplayedStepLeavesTheTransportOut) {
  const SyntheticPlan plan = twoStagePlan();
  const int64_t messages = messagesOf(plan);
  const CollectiveWork work = collectiveWork(plan);
  for (int64_t failAt : {int64_t(-1), int64_t(2)}) {
    LazyDevice device(2);
    std::unique_ptr<pipert::Executor> exec;
    ASSERT_TRUE(pipert::Executor::create(plan.manifest, plan.streams, exec, -1,
                                         &arenas)
                    .ok());
    ReplayingKernels kernels(plan, 1, failAt);
    pipert::RunOptions o;
    o.steps = 3;
    o.timeout = std::chrono::milliseconds(5000);
    o.cores = 2;
    o.queues = &device;
    pipert::RunResult result;
    pipert::Status st = exec->run(kernels, o, result);
    if (failAt >= 0) {
      ASSERT_FALSE(st.ok());
      EXPECT_NE(st.message().find("rank 1 step 2: the graph refused"),
                std::string::npos)
          << st.message();
      continue;
    }
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(device.transfers, messages + work.moves);
    EXPECT_EQ(device.sums, work.sums);
    for (size_t r = 0; r < 2; ++r) {
      EXPECT_EQ(kernels.begins[r], 3);
      EXPECT_EQ(kernels.ends[r], 3);
    }
  }
}

// The shadow mode on a device's arenas (a cuda plan under --transport
// local): every snapshot and comparison reads the arena through the
// target's copy; a clean run passes and a kernel's stray write is named
// as it is on host arenas.
TEST(DeviceQueues, TheShadowModeReadsADevicesArenasThroughTheCopy) {
  const SyntheticPlan plan = twoStagePlan();
  for (bool stray : {false, true}) {
    std::unique_ptr<pipert::Executor> exec;
    ASSERT_TRUE(pipert::Executor::create(plan.manifest, plan.streams, exec, -1,
                                         &arenas)
                    .ok());
    SyntheticKernels kernels(plan);
    kernels.strayWrite = stray;
    pipert::RunOptions o;
    o.steps = 2;
    o.timeout = std::chrono::milliseconds(5000);
    o.cores = 2;
    o.shadow = true;
    pipert::RunResult result;
    pipert::Status st = exec->run(kernels, o, result);
    if (!stray) {
      EXPECT_TRUE(st.ok()) << st.message();
      continue;
    }
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find(strayWriteReport(plan)), std::string::npos)
        << st.message();
  }
}
