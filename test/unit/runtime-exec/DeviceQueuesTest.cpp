//===- DeviceQueuesTest.cpp - the cuda-local transport's ordering, on the CPU
//-===//
//
// The local transport with a device's queues (the cuda-local transport,
// DeviceQueues.h) against a fake device that is as lazy as the events
// allow: a transfer runs only when a compute stream waits for an event it
// records, or its stream is drained, and copies the source as it is then.
// So a wait the transport forgot (the receiver reading before the copy,
// the sender overwriting its buffer before the copy read it) changes the
// bits, and an event waited on before it was ever recorded (a no-op on a
// real device) or recorded on another device's stream is an error.
// Training through it must give the host arenas' bits, every event made
// before the first step and given back after the run.
//
//===----------------------------------------------------------------------===//

#include "SyntheticModel.h"

#include "pipert/LocalTransport.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

using namespace pipec::testing;

namespace {

/// A device whose compute is the host's (done when a kernel call returns)
/// and whose transfers wait in per-rank queues until something needs them.
class LazyDevice : public pipert::DeviceQueues {
public:
  explicit LazyDevice(int32_t ranks, int32_t devices = 1)
      : devices(devices), queues(size_t(ranks)) {}

  struct FakeEvent {
    int32_t device = 0;
    bool recorded = false; ///< ever
    bool complete = false; ///< the work of its last recording is done
    int32_t queue = -1;    ///< where its pending recording waits
    uint64_t op = 0;       ///< the transfer that records it
  };

  int32_t deviceOf(int32_t rank) const override { return rank % devices; }

  pipert::Status createEvent(int32_t device, Event &out) override {
    std::lock_guard<std::mutex> lock(mu);
    if (failCreate >= 0 && created >= failCreate)
      return pipert::Status::failure("fake device out of events");
    ++created;
    events.push_back(std::make_unique<FakeEvent>());
    events.back()->device = device;
    live.insert(events.back().get());
    out = events.back().get();
    return pipert::Status::success();
  }

  void destroyEvent(Event event) override {
    std::lock_guard<std::mutex> lock(mu);
    if (!live.erase(static_cast<FakeEvent *>(event)))
      errors.push_back("an event destroyed twice or never made");
    ++destroyed;
  }

  pipert::Status recordCompute(int32_t rank, Event event) override {
    std::lock_guard<std::mutex> lock(mu);
    FakeEvent *e = known(event);
    if (!e)
      return pipert::Status::failure("record of an unknown event");
    if (e->device != deviceOf(rank))
      return error("rank " + std::to_string(rank) +
                   "'s compute stream recorded an event of device " +
                   std::to_string(e->device));
    e->recorded = e->complete = true;
    e->queue = -1;
    return pipert::Status::success();
  }

  pipert::Status transfer(int32_t rank, const Event *after, int32_t afterCount,
                          void *dst, const void *src, int64_t bytes,
                          const Event *done, int32_t doneCount) override {
    std::lock_guard<std::mutex> lock(mu);
    if (failTransfer >= 0 && transfers >= failTransfer)
      return pipert::Status::failure("fake transfer refused");
    ++transfers;
    Op op{nextOp++, dst, src, bytes, {}};
    for (int32_t i = 0; i < afterCount; ++i) {
      FakeEvent *e = known(after[i]);
      if (!e || !e->recorded)
        return error("a transfer waits on an event never recorded");
      // Compute is done when recorded; an earlier transfer's event must
      // run first (in order, so its queue up to it).
      if (!e->complete)
        flush(e->queue, e->op);
    }
    for (int32_t i = 0; i < doneCount; ++i) {
      FakeEvent *e = known(done[i]);
      if (!e)
        return error("a transfer records an unknown event");
      if (e->device != deviceOf(rank))
        return error("rank " + std::to_string(rank) +
                     "'s transfer stream recorded an event of device " +
                     std::to_string(e->device));
      e->recorded = true;
      e->complete = false;
      e->queue = rank;
      e->op = op.id;
      op.done.push_back(e);
    }
    queues[size_t(rank)].push_back(op);
    return pipert::Status::success();
  }

  pipert::Status computeWaits(int32_t rank, Event event) override {
    std::lock_guard<std::mutex> lock(mu);
    FakeEvent *e = known(event);
    if (!e || !e->recorded)
      return error("rank " + std::to_string(rank) +
                   "'s compute stream waits on an event never recorded");
    ++computeWaitCount;
    // The latest moment: the waiter's next kernel needs the transfer now.
    if (!e->complete)
      flush(e->queue, e->op);
    return pipert::Status::success();
  }

  pipert::Status drain(int32_t rank) override {
    std::lock_guard<std::mutex> lock(mu);
    ++drains;
    flush(rank, ~uint64_t(0));
    return pipert::Status::success();
  }

  /// Transfers enqueued and not yet run.
  size_t pending() {
    std::lock_guard<std::mutex> lock(mu);
    size_t n = 0;
    for (const std::deque<Op> &q : queues)
      n += q.size();
    return n;
  }

  const int32_t devices;
  int64_t created = 0, destroyed = 0, transfers = 0, computeWaitCount = 0,
          drains = 0;
  int64_t failCreate = -1, failTransfer = -1; ///< -1: never
  std::vector<std::string> errors;
  std::set<FakeEvent *> live;

private:
  struct Op {
    uint64_t id;
    void *dst;
    const void *src;
    int64_t bytes;
    std::vector<FakeEvent *> done;
  };

  FakeEvent *known(Event event) {
    auto *e = static_cast<FakeEvent *>(event);
    return live.count(e) ? e : nullptr;
  }
  pipert::Status error(const std::string &what) {
    errors.push_back(what);
    return pipert::Status::failure(what);
  }
  /// Runs queue q's transfers in order up to and including `upTo`.
  void flush(int32_t q, uint64_t upTo) {
    std::deque<Op> &ops = queues[size_t(q)];
    while (!ops.empty() && ops.front().id <= upTo) {
      Op op = ops.front();
      ops.pop_front();
      std::memcpy(op.dst, op.src, size_t(op.bytes));
      for (FakeEvent *e : op.done)
        if (e->queue == q && e->op == op.id)
          e->complete = true;
    }
  }

  std::mutex mu;
  std::vector<std::unique_ptr<FakeEvent>> events;
  uint64_t nextOp = 1;
  std::vector<std::deque<Op>> queues;
};

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
  return n;
}

const pipert::ArenaAllocator arenas = hostBackedDeviceArenas();

struct Case {
  pipec::schedule::Kind kind;
  int32_t stages, devices;
};

} // namespace

// Every message moved by the lazy device, ordered only by the transport's
// events: the host arenas' bits for a plain, a zero-bubble and a V
// schedule, on one device and on two (rank r on device r mod 2, so each
// message crosses devices and both sides' events are the receiver's).
TEST(DeviceQueues, LazyTransfersGiveTheHostBits) {
  for (Case c : {Case{pipec::schedule::Kind::OneFOneB, 2, 1},
                 Case{pipec::schedule::Kind::ZBH1, 4, 1},
                 Case{pipec::schedule::Kind::ZBV, 2, 2},
                 Case{pipec::schedule::Kind::Interleaved, 2, 2}}) {
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
    LazyDevice device(int32_t(plan.streams.size()), c.devices);
    st = trainForBits(plan, &arenas, &device, 3, deviceMetrics, deviceParams);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_TRUE(device.errors.empty()) << device.errors.front();
    EXPECT_EQ(hostMetrics, deviceMetrics);
    EXPECT_TRUE(hostParams == deviceParams) << "parameters differ";
    // Every message went through the device; every wait on one ordered a
    // compute stream (two per message: sender and receiver); nothing is
    // left in flight; the events were made before the first step (their
    // number is fixed by the streams) and all given back.
    int64_t messages = 0;
    for (const pipert::Stream &s : plan.streams)
      for (const pipert::Instr &in : s.instrs)
        messages += in.op == pipert::Opcode::SendAct ||
                    in.op == pipert::Opcode::SendGrad;
    EXPECT_EQ(device.transfers, 3 * messages);
    EXPECT_EQ(device.computeWaitCount, 2 * device.transfers);
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
  SyntheticPlan plan;
  PlanOptions po;
  po.kind = pipec::schedule::Kind::OneFOneB;
  po.stages = 2;
  po.microbatches = 4;
  ASSERT_EQ(buildPlan(po, plan), "");
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
