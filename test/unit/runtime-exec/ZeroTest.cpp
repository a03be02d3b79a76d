//===- ZeroTest.cpp - ZeRO-1's split rule, collectives and stream parts ---===//
//
// pipert/ZeroShard.h splits every parameter into whole norm chunks that
// cover it once; the local transport's reduce-scatter gives each member the
// all-reduce's bits on its own parts and leaves the rest alone, and its
// all-gather copies each member's parts to the others, on host arenas, on
// arenas it reaches through a copy (`--transport local` of a cuda plan)
// and on a lazy device's queues (cuda-local); the stream format carries
// the parts and refuses overlapping ones.
//
//===----------------------------------------------------------------------===//

#include "LazyDevice.h"

#include "pipert/Executor.h"
#include "pipert/LocalTransport.h"
#include "pipert/Stream.h"
#include "pipert/ZeroShard.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>

namespace {

TEST(ZeroShard, PartsCoverEveryParameterOnceOnChunkBoundaries) {
  const int64_t C = pipert::kNormChunk;
  for (int64_t n : {int64_t(1), int64_t(64), C - 1, C, C + 1, 3 * C + 17,
                    7 * C, 11 * C + 5})
    for (int32_t D = 1; D <= 5; ++D)
      for (int32_t key = 0; key < D + 2; ++key) {
        std::vector<int> owners(size_t(n), 0);
        int64_t most = 0;
        for (int32_t r = 0; r < D; ++r) {
          pipert::ShardRange s = pipert::zeroShard(n, key, r, D);
          ASSERT_GE(s.count, 0);
          if (s.count == 0)
            continue;
          EXPECT_EQ(s.first % C, 0) << n << " " << D << " " << key;
          EXPECT_TRUE((s.first + s.count) % C == 0 || s.first + s.count == n);
          for (int64_t i = s.first; i < s.first + s.count; ++i)
            owners[size_t(i)]++;
          most = std::max(most, s.count);
        }
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(owners[size_t(i)], 1) << "element " << i << " of " << n;
        EXPECT_EQ(pipert::zeroShardCapacity(n, key, D), most);
        // Runs differ by at most one chunk.
        const int64_t chunks = pipert::normChunks(n);
        EXPECT_LE(most, (chunks + D - 1) / D * C);
      }
}

TEST(ZeroShard, TheKeyRotatesTheOwner) {
  // A one-chunk parameter goes whole to replica (D - 1 + key) mod D.
  for (int32_t key = 0; key < 4; ++key)
    EXPECT_EQ(pipert::zeroShard(100, key, (3 + key) % 4, 4).count, 100);
}

/// Values of very different magnitudes: their sum depends on the order.
float valueOf(int32_t rank, int64_t i) {
  std::mt19937 rng(uint32_t(rank * 7919 + i));
  std::uniform_real_distribution<float> u(-1, 1);
  return u(rng) * std::pow(10.0f, float(int(rng() % 13) - 6));
}

/// The cuda-local transport's way into device arenas, on the host: a copy
/// that counts its calls, so a test sees the collective went through the
/// staging buffers.
std::atomic<int64_t> stagedCopies{0};
bool countedCopy(void *dst, const void *src, int64_t bytes, char *,
                 int64_t) {
  ++stagedCopies;
  std::memcpy(dst, src, size_t(bytes));
  return true;
}

/// Where the fixture's operands live.
enum class Arenas {
  Host,   ///< host memory, memcpy
  Staged, ///< reached through a copy function: summed in host staging
  Device, ///< a lazy device's queues carry the collectives out
  DeviceLazySums, ///< the same, its sums run as late as the events allow
};

/// Three ranks in one group, an operand of 1000 floats with parts of each,
/// on ranks 0 and 2 of device 0 and rank 1 of device 1.
struct Fixture {
  static constexpr int32_t kRanks = 3;
  static constexpr int64_t kCount = 1000;
  std::vector<pipert::Part> parts = {{2, 0, 400},    {0, 400, 800},
                                     {1, 1200, 400}, {0, 1600, 1200},
                                     {2, 2800, 800}, {1, 3600, 400}};
  std::vector<std::vector<float>> data;
  pipec::testing::LazyDevice device;
  std::unique_ptr<pipert::LocalTransport> transport;

  explicit Fixture(Arenas arenas = Arenas::Host)
      : device(kRanks, 2, arenas == Arenas::DeviceLazySums) {
    const bool onDevice =
        arenas == Arenas::Device || arenas == Arenas::DeviceLazySums;
    std::vector<pipert::Stream> streams(kRanks);
    for (int32_t r = 0; r < kRanks; ++r) {
      streams[size_t(r)].rank = r;
      streams[size_t(r)].ranks = kRanks;
      // The staging is sized (and, on the device, each collective
      // planned) by the collectives the streams hold.
      pipert::Instr in;
      in.op = in.sub = pipert::Opcode::ReduceScatter;
      in.chunk = 0; // group 0
      in.mb = 3;    // bucket
      in.dtype = pipert::DType::F32;
      in.bytes = kCount * 4;
      streams[size_t(r)].append(in, {}, parts);
      in.op = in.sub = pipert::Opcode::AllGather;
      in.mb = 4;
      streams[size_t(r)].append(in, {}, parts);
    }
    pipert::Status st = pipert::LocalTransport::create(
        streams, {{0, 1, 2}}, transport,
        arenas == Arenas::Host ? nullptr : countedCopy,
        onDevice ? &device : nullptr);
    EXPECT_TRUE(st.ok()) << st.message();
    for (int32_t r = 0; r < kRanks; ++r) {
      data.emplace_back(size_t(kCount));
      for (int64_t i = 0; i < kCount; ++i)
        data.back()[size_t(i)] = valueOf(r, i);
    }
  }
  /// Runs `op` on every rank at once; the statuses.
  std::vector<pipert::Status> run(pipert::Opcode op,
                                  const std::vector<pipert::Part> &mine) {
    std::vector<pipert::Status> out(kRanks, pipert::Status::success());
    std::vector<std::thread> threads;
    for (int32_t r = 0; r < kRanks; ++r)
      threads.emplace_back([&, r] {
        const auto deadline =
            pipert::Clock::now() + std::chrono::seconds(10);
        const std::vector<pipert::Part> &p = r == 1 ? mine : parts;
        out[size_t(r)] =
            op == pipert::Opcode::ReduceScatter
                ? transport->reduceScatter(r, 0, 3, data[size_t(r)].data(),
                                           kCount, pipert::DType::F32,
                                           p.data(), int32_t(p.size()),
                                           deadline)
                : transport->allGatherParts(r, 0, 4, data[size_t(r)].data(),
                                            kCount, pipert::DType::F32,
                                            p.data(), int32_t(p.size()),
                                            deadline);
      });
    for (std::thread &t : threads)
      t.join();
    // What the device still holds lands before the test reads the bytes.
    for (int32_t r = 0; r < kRanks; ++r)
      EXPECT_TRUE(transport->drain(r).ok());
    return out;
  }
  int32_t ownerOf(int64_t i) const {
    for (const pipert::Part &p : parts)
      if (i * 4 >= p.offset && i * 4 < p.offset + p.bytes)
        return p.rank;
    return -1;
  }
};

/// Host arenas, arenas reached through a copy and a device's queues (ZeRO-1
/// on the cuda target).
class LocalTransportZero : public ::testing::TestWithParam<Arenas> {
protected:
  bool onDevice() const {
    return GetParam() == Arenas::Device || GetParam() == Arenas::DeviceLazySums;
  }
  /// Staged: each member's operand to the host and back; on the device
  /// none, and the device moved and summed.
  void expectRoute(const Fixture &f, int64_t copies) {
    EXPECT_EQ(copies, GetParam() == Arenas::Staged ? 2 * Fixture::kRanks : 0);
    EXPECT_EQ(f.device.transfers > 0, onDevice());
    EXPECT_TRUE(f.device.errors.empty()) << f.device.errors.front();
  }
};

TEST_P(LocalTransportZero, ReduceScatterGivesEachOwnerTheAllReduceBits) {
  Fixture f(GetParam());
  const int64_t copiesBefore = stagedCopies;
  for (const pipert::Status &s : f.run(pipert::Opcode::ReduceScatter, f.parts))
    ASSERT_TRUE(s.ok()) << s.message();
  expectRoute(f, stagedCopies - copiesBefore);
  EXPECT_EQ(f.device.sums > 0, onDevice());
  int64_t orderMatters = 0;
  for (int64_t i = 0; i < Fixture::kCount; ++i) {
    float inOrder = valueOf(0, i), reversed = valueOf(2, i);
    for (int32_t r = 1; r < Fixture::kRanks; ++r) {
      inOrder += valueOf(r, i);
      reversed += valueOf(2 - r, i);
    }
    orderMatters += std::memcmp(&inOrder, &reversed, 4) != 0;
    const int32_t owner = f.ownerOf(i);
    for (int32_t r = 0; r < Fixture::kRanks; ++r) {
      const float want = r == owner ? inOrder : valueOf(r, i);
      ASSERT_EQ(std::memcmp(&f.data[size_t(r)][size_t(i)], &want, 4), 0)
          << "rank " << r << " element " << i << " (owner " << owner << ")";
    }
  }
  EXPECT_GT(orderMatters, 0) << "no element whose sum depends on the order";
}

TEST_P(LocalTransportZero, AllGatherCopiesEachMembersParts) {
  Fixture f(GetParam());
  const int64_t copiesBefore = stagedCopies;
  for (const pipert::Status &s : f.run(pipert::Opcode::AllGather, f.parts))
    ASSERT_TRUE(s.ok()) << s.message();
  expectRoute(f, stagedCopies - copiesBefore);
  for (int64_t i = 0; i < Fixture::kCount; ++i) {
    const float want = valueOf(f.ownerOf(i), i);
    for (int32_t r = 0; r < Fixture::kRanks; ++r)
      ASSERT_EQ(std::memcmp(&f.data[size_t(r)][size_t(i)], &want, 4), 0)
          << "rank " << r << " element " << i;
  }
}

TEST_P(LocalTransportZero, MembersWithOtherPartsAreRefused) {
  Fixture f(GetParam());
  std::vector<pipert::Part> other = f.parts;
  other[1].bytes -= 4;
  bool named = false;
  for (const pipert::Status &s : f.run(pipert::Opcode::ReduceScatter, other)) {
    ASSERT_FALSE(s.ok());
    named = named ||
            s.message().find("with other parts than the others") !=
                std::string::npos;
  }
  EXPECT_TRUE(named);
}

INSTANTIATE_TEST_SUITE_P(Arenas, LocalTransportZero,
                         ::testing::Values(Arenas::Host, Arenas::Staged,
                                           Arenas::Device,
                                           Arenas::DeviceLazySums),
                         [](const ::testing::TestParamInfo<Arenas> &i) {
                           return i.param == Arenas::Host     ? "Host"
                                  : i.param == Arenas::Staged ? "Staged"
                                  : i.param == Arenas::Device ? "Device"
                                                              : "DeviceLazySums";
                         });

TEST(StreamFormat, PartsRoundTripAndOverlapsAreRefused) {
  pipert::Stream s;
  s.rank = 1;
  s.ranks = 4;
  s.arenaBytes = 4096;
  pipert::Instr rs;
  rs.op = rs.sub = pipert::Opcode::ReduceScatter;
  rs.dtype = pipert::DType::F32;
  rs.chunk = 2;
  rs.mb = 0;
  rs.offset = 1024;
  rs.bytes = 512;
  s.append(rs, {}, {{1, 0, 256}, {3, 256, 256}});
  pipert::Instr ag = rs;
  ag.op = ag.sub = pipert::Opcode::AllGather;
  ag.mb = 1;
  s.append(ag, {}, {{3, 0, 128}, {1, 128, 384}});
  std::vector<uint8_t> bytes = pipert::encodeStream(s);
  pipert::Stream back;
  pipert::Status st = pipert::decodeStream(bytes.data(), bytes.size(), "s", back);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(back.parts.size(), 4u);
  EXPECT_EQ(back.instrs[1].firstPart, 2u);
  EXPECT_EQ(back.instrs[1].partCount, 2u);
  EXPECT_EQ(back.parts[3].rank, 1);
  EXPECT_EQ(back.parts[3].offset, 128);
  EXPECT_EQ(back.parts[3].bytes, 384);
  s.parts[1].offset = 128; // overlaps part 0
  st = pipert::validateStream(s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("part 1"), std::string::npos) << st.message();
}

/// Each rank writes its part of a 64-byte operand in its optimizer step;
/// the hook after the all-gather sees the whole operand gathered.
class GatherKernels : public pipert::ChunkKernels {
public:
  pipert::Status fwd(const pipert::RankContext &, int32_t, int32_t) override {
    return pipert::Status::success();
  }
  pipert::Status bwdB(const pipert::RankContext &, int32_t, int32_t) override {
    return pipert::Status::success();
  }
  pipert::Status bwdW(const pipert::RankContext &, int32_t, int32_t) override {
    return pipert::Status::success();
  }
  pipert::Status prepareAllReduce(const pipert::RankContext &, int32_t,
                                  int32_t, uint8_t *, int64_t) override {
    return pipert::Status::success();
  }
  pipert::Status optStep(const pipert::RankContext &ctx) override {
    auto *f = reinterpret_cast<float *>(ctx.arena);
    for (int i = 0; i < 8; ++i)
      f[ctx.rank * 8 + i] = value(ctx.rank, ctx.step, i);
    return pipert::Status::success();
  }
  pipert::Status afterAllGather(const pipert::RankContext &ctx, int32_t group,
                                int32_t bucket) override {
    const auto *f = reinterpret_cast<const float *>(ctx.arena);
    bool whole = group == 0 && bucket == 5;
    for (int q = 0; q < 2; ++q)
      for (int i = 0; i < 8; ++i)
        whole = whole && f[q * 8 + i] == value(q, ctx.step, i);
    calls[size_t(ctx.rank)].push_back(whole ? ctx.step : -1);
    return pipert::Status::success();
  }
  static float value(int32_t rank, int64_t step, int i) {
    return float(rank * 100 + step * 10 + i) + 0.5f;
  }
  /// Per rank, the step of each call (-1: the operand was not gathered).
  std::vector<int64_t> calls[2];
};

// The executor calls ChunkKernels::afterAllGather once per all-gather, after
// the transport has brought every member's parts (the cuda target's
// working copies follow the gathered masters there), and for no other
// instruction.
TEST(Executor, AfterAllGatherFollowsEachGatherOnce) {
  pipert::Manifest m;
  m.ranks = 2;
  m.microbatches = 1;
  m.groups = {{0, 1}};
  m.rankInfo.resize(2);
  std::vector<pipert::Stream> streams(2);
  for (int32_t r = 0; r < 2; ++r) {
    m.rankInfo[size_t(r)] = {"rank" + std::to_string(r) + ".pstream", 256, 256};
    pipert::Stream &s = streams[size_t(r)];
    s.rank = r;
    s.ranks = 2;
    s.microbatches = 1;
    s.arenaBytes = 256;
    pipert::Instr opt;
    opt.op = opt.sub = pipert::Opcode::OptStep;
    s.append(opt, {}, {});
    pipert::Instr ag;
    ag.op = ag.sub = pipert::Opcode::AllGather;
    ag.dtype = pipert::DType::F32;
    ag.chunk = 0;
    ag.mb = 5;
    ag.offset = 0;
    ag.bytes = 64;
    s.append(ag, {}, {{0, 0, 32}, {1, 32, 32}});
    pipert::Instr ar = ag; // an all-reduce calls no hook
    ar.op = ar.sub = pipert::Opcode::AllReduce;
    ar.mb = 6;
    ar.offset = 128;
    s.append(ar, {}, {});
  }
  std::unique_ptr<pipert::Executor> exec;
  pipert::Status st = pipert::Executor::create(m, streams, exec);
  ASSERT_TRUE(st.ok()) << st.message();
  GatherKernels kernels;
  pipert::RunOptions o;
  o.steps = 3;
  o.timeout = std::chrono::milliseconds(5000);
  pipert::RunResult result;
  st = exec->run(kernels, o, result);
  ASSERT_TRUE(st.ok()) << st.message();
  for (int r = 0; r < 2; ++r)
    EXPECT_EQ(kernels.calls[r], (std::vector<int64_t>{0, 1, 2})) << "rank " << r;
}

} // namespace
