//===- DeviceCollectivesTest.cpp - cuda-local's collectives, race-free ----===//
//
// The local transport's collectives on a device's queues
// (pipert/DeviceCollectives.h) against RaceDevice.h, which proves every
// conflicting pair of accesses ordered by the streams and events: each
// rank's kernels write their operands before a collective and read them
// after it, round after round, so a transfer that reads an operand before
// it is final, writes one still being read, or a member that goes on
// while the device still touches its operand or staging is a race. The
// bits must be the host transport's.
//
//===----------------------------------------------------------------------===//

#include "RaceDevice.h"

#include "pipert/LocalTransport.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

using namespace pipec::testing;

namespace {

/// One collective of a round.
struct Call {
  pipert::Opcode op;
  int32_t group, bucket;
  int64_t count;
  pipert::DType dtype;
  std::vector<pipert::Part> parts;
};

/// Values of very different magnitudes: their sum depends on the order.
double valueAt(int32_t rank, int64_t i, int32_t round, size_t call) {
  uint32_t h = uint32_t(rank * 7919 + i * 104729 + round * 15485863 +
                        int64_t(call) * 32452843);
  h ^= h >> 13, h *= 0x5bd1e995u, h ^= h >> 15;
  return (double(h % 2000) / 1000.0 - 1.0) * std::pow(10.0, int(h % 13) - 6);
}

/// Runs `rounds` rounds of `calls` on every member, each member's operand
/// per call written by its kernels before and read after, on `device` (or
/// the host transport when null); every rank's operands, by call.
std::vector<std::vector<std::vector<double>>>
runRounds(int32_t ranks, const std::vector<std::vector<int32_t>> &groups,
          const std::vector<Call> &calls, int32_t rounds, RaceDevice *device,
          std::string &error) {
  std::vector<pipert::Stream> streams(static_cast<size_t>(ranks));
  auto member = [&](int32_t r, const Call &c) {
    const auto &g = groups[size_t(c.group)];
    return std::find(g.begin(), g.end(), r) != g.end();
  };
  for (int32_t r = 0; r < ranks; ++r) {
    streams[size_t(r)].rank = r;
    streams[size_t(r)].ranks = ranks;
    for (const Call &c : calls) {
      if (!member(r, c))
        continue;
      pipert::Instr in;
      in.op = in.sub = c.op;
      in.chunk = c.group;
      in.mb = c.bucket;
      in.dtype = c.dtype;
      in.bytes = c.count * pipert::dtypeBytes(c.dtype);
      streams[size_t(r)].append(in, {}, c.parts);
    }
  }
  std::vector<std::vector<std::vector<double>>> data(
      size_t(ranks), std::vector<std::vector<double>>(calls.size()));
  for (auto &rank : data)
    for (size_t k = 0; k < calls.size(); ++k)
      rank[k].assign(size_t(calls[k].count), 0.0);
  static const pipert::ArenaCopy copy = [](void *dst, const void *src,
                                           int64_t bytes, char *, int64_t) {
    std::memcpy(dst, src, size_t(bytes));
    return true;
  };
  std::unique_ptr<pipert::LocalTransport> t;
  pipert::Status st = pipert::LocalTransport::create(
      streams, groups, t, device ? copy : nullptr, device);
  if (!st.ok()) {
    error = st.message();
    return data;
  }
  std::vector<std::string> errors(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int32_t r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      for (int32_t round = 0; round < rounds; ++round)
        for (size_t k = 0; k < calls.size(); ++k) {
          const Call &c = calls[k];
          if (!member(r, c))
            continue;
          std::vector<double> &d = data[size_t(r)][k];
          const int64_t bytes = c.count * pipert::dtypeBytes(c.dtype);
          if (device)
            device->access(r, d.data(), bytes, true,
                           "the kernels writing the operand");
          for (int64_t i = 0; i < c.count; ++i) {
            double v = valueAt(r, i, round, k);
            if (c.dtype == pipert::DType::F32)
              reinterpret_cast<float *>(d.data())[i] = float(v);
            else
              d[size_t(i)] = v;
          }
          const auto deadline =
              pipert::Clock::now() + std::chrono::seconds(10);
          const int32_t n = int32_t(c.parts.size());
          pipert::Status s =
              c.op == pipert::Opcode::AllReduce
                  ? t->allReduce(r, c.group, c.bucket, d.data(), c.count,
                                 c.dtype, deadline)
              : c.op == pipert::Opcode::ReduceScatter
                  ? t->reduceScatter(r, c.group, c.bucket, d.data(), c.count,
                                     c.dtype, c.parts.data(), n, deadline)
                  : t->allGatherParts(r, c.group, c.bucket, d.data(),
                                      c.count, c.dtype, c.parts.data(), n,
                                      deadline);
          if (!s.ok()) {
            errors[size_t(r)] = s.message();
            t->abort(s.message());
            return;
          }
          if (device)
            device->access(r, d.data(), bytes, false,
                           "the kernels reading the result");
        }
    });
  for (std::thread &th : threads)
    th.join();
  for (const std::string &e : errors)
    if (!e.empty() && error.empty())
      error = e;
  return data;
}

/// Runs `calls` on the host transport and on a race-checking device with
/// ranks spread over `devices`; the same bits, no race.
void expectRaceFreeHostBits(int32_t ranks, int32_t devices,
                            const std::vector<std::vector<int32_t>> &groups,
                            const std::vector<Call> &calls) {
  std::string hostError, deviceError;
  auto host = runRounds(ranks, groups, calls, 3, nullptr, hostError);
  ASSERT_EQ(hostError, "");
  RaceDevice device(ranks, devices);
  auto dev = runRounds(ranks, groups, calls, 3, &device, deviceError);
  ASSERT_EQ(deviceError, "");
  EXPECT_TRUE(device.errors.empty()) << device.errors.front();
  EXPECT_TRUE(device.races.empty())
      << device.races.size() << " races, the first: " << device.races.front();
  // One member moves nothing: its all-reduce is its operand.
  EXPECT_EQ(device.transfers > 0, ranks > 1);
  for (int32_t r = 0; r < ranks; ++r)
    for (size_t k = 0; k < calls.size(); ++k)
      EXPECT_EQ(std::memcmp(host[size_t(r)][k].data(),
                            dev[size_t(r)][k].data(),
                            host[size_t(r)][k].size() * sizeof(double)),
                0)
          << "rank " << r << " call " << k;
}

} // namespace

// The detector itself: a copy out of rank 0's buffer, then rank 0's
// kernels overwriting it, is a race unless rank 0's compute stream first
// waits for the copy's event.
TEST(RaceDevice, AnOverwriteBeforeTheCopyIsARace) {
  for (bool waits : {false, true}) {
    RaceDevice device(2);
    std::vector<uint8_t> a(64, 1), b(64, 0);
    pipert::DeviceQueues::Event posted = nullptr, done = nullptr;
    ASSERT_TRUE(device.createEvent(0, posted).ok());
    ASSERT_TRUE(device.createEvent(0, done).ok());
    device.access(0, a.data(), 64, true, "rank 0 writing");
    ASSERT_TRUE(device.recordCompute(0, posted).ok());
    ASSERT_TRUE(
        device.transfer(1, &posted, 1, b.data(), a.data(), 64, &done, 1).ok());
    if (waits)
      ASSERT_TRUE(device.computeWaits(0, done).ok());
    device.access(0, a.data(), 64, true, "rank 0 writing again");
    EXPECT_EQ(device.races.size(), waits ? 0u : 1u);
    // Rank 1 reading what came, without waiting for the copy: a race.
    device.access(1, b.data(), 64, false, "rank 1 reading");
    EXPECT_EQ(device.races.size(), waits ? 1u : 2u);
  }
}

// All-reduces of 1 to 4 members on one device and on two, f32 and f64,
// counts that do not divide, three rounds.
TEST(DeviceCollectives, AllReduceIsRaceFreeWithTheHostBits) {
  for (int32_t members = 1; members <= 4; ++members)
    for (int32_t devices : {1, 2}) {
      std::vector<int32_t> all;
      for (int32_t r = 0; r < members; ++r)
        all.push_back(r);
      SCOPED_TRACE(std::to_string(members) + " members on " +
                   std::to_string(devices) + " devices");
      expectRaceFreeHostBits(
          members, devices, {all},
          {{pipert::Opcode::AllReduce, 0, 0, 1001, pipert::DType::F32, {}},
           {pipert::Opcode::AllReduce, 0, 1, 3, pipert::DType::F64, {}},
           {pipert::Opcode::AllReduce, 0, 2, 1, pipert::DType::F32, {}}});
    }
}

// ZeRO-1's reduce-scatter and all-gather over ragged parts, back to back.
TEST(DeviceCollectives, ReduceScatterAndAllGatherAreRaceFree) {
  const std::vector<pipert::Part> parts = {{2, 0, 400},    {0, 400, 800},
                                           {1, 1200, 400}, {0, 1600, 1200},
                                           {2, 2800, 800}, {1, 3600, 400}};
  for (int32_t devices : {1, 2, 3}) {
    SCOPED_TRACE(std::to_string(devices) + " devices");
    expectRaceFreeHostBits(
        3, devices, {{0, 1, 2}},
        {{pipert::Opcode::ReduceScatter, 0, 3, 1000, pipert::DType::F32,
          parts},
         {pipert::Opcode::AllGather, 0, 4, 1000, pipert::DType::F32, parts}});
  }
}

// Groups that share ranks, as a pipeline's are: the norm group of all
// ranks and the tied embedding's group of the first and last, their
// collectives interleaved.
TEST(DeviceCollectives, OverlappingGroupsAreRaceFree) {
  for (int32_t devices : {1, 2})
    expectRaceFreeHostBits(
        4, devices, {{0, 1, 2, 3}, {0, 3}},
        {{pipert::Opcode::AllReduce, 1, 0, 777, pipert::DType::F32, {}},
         {pipert::Opcode::AllReduce, 0, 0, 16, pipert::DType::F64, {}},
         {pipert::Opcode::AllReduce, 1, 1, 5, pipert::DType::F32, {}}});
}
