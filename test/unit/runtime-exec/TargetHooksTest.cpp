//===- TargetHooksTest.cpp - a device target's hooks, on the CPU -----------===//
//
// The host side of a device target (the cuda target's plans,
// runtime/kernels/cuda/Target.cpp) as the runtime drives it, with fake
// hooks and no GPU: the executor takes every rank's arena from the
// target's allocator (aligned, zeroed, the parameters initialised there)
// and gives it back; the runner makes one target state per rank it holds,
// calls each rank's Begin with that state and arena, names the rank whose
// state cannot be made, and destroys the states. With the target's copy
// (device arenas the host must not touch), every host access of an arena
// goes through it (initialisation, metrics, sends, all-reduces,
// checkpoints) and training gives the host arenas' bits; a failing copy
// fails the run, named.
//
//===----------------------------------------------------------------------===//

#include "SyntheticModel.h"

#include "runtime/runner/PlanKernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

using namespace pipec::testing;

namespace {

/// What the fake hooks saw.
struct Seen {
  std::map<void *, int64_t> arenas; ///< live allocations and their sizes
  int released = 0;
  std::vector<int32_t> created, destroyed;
  /// createRank's workspace of each rank it made (pointer, bytes).
  std::vector<std::pair<void *, int64_t>> workspaces;
  std::vector<std::pair<int32_t, void *>> begun; ///< (rank, target state)
  std::vector<uint8_t *> begunArenas;
  int32_t failRank = -1;
} seen;

void *allocate(int32_t, int64_t bytes, char *, int64_t) {
  void *p = std::aligned_alloc(256, size_t(bytes));
  std::memset(p, 0, size_t(bytes));
  seen.arenas[p] = bytes;
  return p;
}
void release(void *p) {
  seen.arenas.erase(p);
  ++seen.released;
  std::free(p);
}
void *createRank(int32_t rank, void *workspace, int64_t workspaceBytes,
                 char *error, int64_t bytes) {
  if (rank == seen.failRank) {
    std::snprintf(error, size_t(bytes), "no device for this rank");
    return nullptr;
  }
  seen.created.push_back(rank);
  seen.workspaces.push_back({workspace, workspaceBytes});
  return new int32_t(rank);
}
void destroyRank(void *state) {
  seen.destroyed.push_back(*static_cast<int32_t *>(state));
  delete static_cast<int32_t *>(state);
}
pipert::cpu::Status begin(const pipert::KernelContext *ctx, uint8_t *A) {
  seen.begun.push_back({ctx->rank, ctx->target});
  seen.begunArenas.push_back(A);
  return pipert::cpu::Status::success();
}

} // namespace

TEST(TargetHooks, ArenasStatesAndBegin) {
  seen = Seen();
  SyntheticPlan plan;
  PlanOptions po;
  po.kind = pipec::schedule::Kind::OneFOneB;
  po.stages = 2;
  ASSERT_EQ(buildPlan(po, plan), "");
  pipert::ArenaAllocator alloc{allocate, release};
  {
    std::unique_ptr<pipert::Executor> exec;
    pipert::Status st = pipert::Executor::create(plan.manifest, plan.streams,
                                                 exec, -1, &alloc);
    ASSERT_TRUE(st.ok()) << st.message();
    // Every rank's arena from the allocator, at least the plan's bytes,
    // with the parameters initialised in it.
    ASSERT_EQ(seen.arenas.size(), 2u);
    for (int32_t r = 0; r < 2; ++r) {
      ASSERT_TRUE(seen.arenas.count(exec->arena(r)));
      EXPECT_GE(seen.arenas[exec->arena(r)],
                plan.manifest.rankInfo[size_t(r)].arenaBytes);
    }
    const pipert::ParamInfo &p = plan.manifest.params.front();
    std::vector<uint8_t> zeros(size_t(p.bytes), 0);
    EXPECT_NE(std::memcmp(exec->arena(p.rank) + p.offset, zeros.data(),
                          zeros.size()),
              0)
        << "parameter " << p.name << " was not initialised in the arena";

    pipecrun::PlanTarget target{createRank, destroyRank, allocate, release,
                                nullptr, "fake"};
    // Rank 0's plan places a workspace at the end of its arena (as the
    // cuda target's does, in its static blocks); rank 1's has none.
    const int64_t arena0 = plan.manifest.rankInfo[0].arenaBytes;
    const int64_t wsOffset = arena0 / 2 / 8 * 8;
    pipecrun::RankCode ranks[2] = {
        {nullptr, nullptr, begin, nullptr, wsOffset, arena0 - wsOffset},
        {nullptr, nullptr, begin, nullptr}};
    pipecrun::PlanCode code{};
    code.chunkCount = 0;
    code.ranks = ranks;
    code.rankCount = 2;
    code.batch = code.seq = 1;
    code.target = &target;
    pipert::Batcher batcher;
    {
      pipecrun::PlanKernels kernels(code, exec->manifest(), batcher);
      EXPECT_EQ(kernels.start(*exec), "");
      EXPECT_EQ(seen.created, (std::vector<int32_t>{0, 1}));
      // The workspace the target gets is the plan's place in the arena.
      ASSERT_EQ(seen.workspaces.size(), 2u);
      EXPECT_EQ(seen.workspaces[0].first, exec->arena(0) + wsOffset);
      EXPECT_EQ(seen.workspaces[0].second, arena0 - wsOffset);
      EXPECT_EQ(seen.workspaces[1].first, nullptr);
      EXPECT_EQ(seen.workspaces[1].second, 0);
      ASSERT_EQ(seen.begun.size(), 2u);
      for (int32_t r = 0; r < 2; ++r) {
        EXPECT_EQ(seen.begun[size_t(r)].first, r);
        ASSERT_NE(seen.begun[size_t(r)].second, nullptr);
        EXPECT_EQ(*static_cast<int32_t *>(seen.begun[size_t(r)].second), r);
        EXPECT_EQ(seen.begunArenas[size_t(r)], exec->arena(r));
      }
    }
    EXPECT_EQ(seen.destroyed, (std::vector<int32_t>{0, 1}));

    // A rank whose state cannot be made is named, with the target's words.
    seen.failRank = 1;
    seen.destroyed.clear();
    {
      pipecrun::PlanKernels kernels(code, exec->manifest(), batcher);
      EXPECT_EQ(kernels.start(*exec), "rank 1: fake: no device for this rank");
    }
    EXPECT_EQ(seen.destroyed, (std::vector<int32_t>{0}));

    // A workspace that would end past the arena is refused before the
    // target sees it (a plan for another runtime, or an edited one).
    seen.failRank = -1;
    seen.created.clear();
    ranks[0].workspaceBytes = arena0 - wsOffset + 1;
    {
      pipecrun::PlanKernels kernels(code, exec->manifest(), batcher);
      EXPECT_EQ(kernels.start(*exec),
                "rank 0: the plan's workspace (" +
                    std::to_string(arena0 - wsOffset + 1) + " bytes at " +
                    std::to_string(wsOffset) +
                    ") ends past the rank's arena of " +
                    std::to_string(arena0) + " bytes");
      EXPECT_TRUE(seen.created.empty());
    }
  }
  // The executor gave every arena back to the allocator.
  EXPECT_EQ(seen.released, 2);
  EXPECT_TRUE(seen.arenas.empty());
}

namespace {

/// A fake device: arenas the host reaches only through copy, which counts
/// what crosses and can be told to fail.
struct Crossings {
  int64_t intoArena = 0, outOfArena = 0, betweenArenas = 0;
  int64_t bytesIntoArena = 0;
  int64_t failAfter = -1; ///< fail the copy after this many (-1: never)
  int64_t calls = 0;
} crossed;

bool inArena(const void *p) {
  auto *b = static_cast<const uint8_t *>(p);
  for (const auto &[base, bytes] : seen.arenas)
    if (b >= static_cast<uint8_t *>(base) &&
        b < static_cast<uint8_t *>(base) + bytes)
      return true;
  return false;
}

bool copy(void *dst, const void *src, int64_t bytes, char *error,
          int64_t errorBytes) {
  if (crossed.failAfter >= 0 && crossed.calls >= crossed.failAfter) {
    std::snprintf(error, size_t(errorBytes), "fake device lost");
    return false;
  }
  ++crossed.calls;
  bool to = inArena(dst), from = inArena(src);
  if (to && from)
    ++crossed.betweenArenas;
  else if (to)
    ++crossed.intoArena, crossed.bytesIntoArena += bytes;
  else if (from)
    ++crossed.outOfArena;
  std::memcpy(dst, src, size_t(bytes));
  return true;
}

/// Trains the synthetic 2-stage plan 3 steps, host arenas or the fake
/// device's; the losses, norms and parameter bits.
pipert::Status train(const SyntheticPlan &plan, bool device,
                     std::vector<double> &metrics,
                     std::vector<uint8_t> &params) {
  pipert::ArenaAllocator alloc{allocate, release, copy};
  return trainForBits(plan, device ? &alloc : nullptr, nullptr, 3, metrics,
                      params);
}

} // namespace

TEST(TargetHooks, DeviceArenasAreReachedThroughCopy) {
  seen = Seen();
  crossed = Crossings();
  SyntheticPlan plan;
  PlanOptions po;
  po.kind = pipec::schedule::Kind::OneFOneB;
  po.stages = 2;
  po.microbatches = 4;
  ASSERT_EQ(buildPlan(po, plan), "");
  std::vector<double> hostMetrics, deviceMetrics;
  std::vector<uint8_t> hostParams, deviceParams;
  pipert::Status st = train(plan, false, hostMetrics, hostParams);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(crossed.intoArena + crossed.outOfArena + crossed.betweenArenas, 0);
  st = train(plan, true, deviceMetrics, deviceParams);
  ASSERT_TRUE(st.ok()) << st.message();
  // The same bits as host arenas.
  EXPECT_EQ(hostMetrics, deviceMetrics);
  EXPECT_TRUE(hostParams == deviceParams) << "parameters differ";
  // Initialisation wrote every parameter through copy; the metrics (each
  // step's 4 losses and the norm) and the final parameters came out
  // through it; the sends between the stages moved arena to arena; the
  // norm's all-reduce went out to the host staging and back in.
  int64_t paramBytes = 0;
  for (const pipert::ParamInfo &p : plan.manifest.params)
    paramBytes += p.bytes;
  EXPECT_GE(crossed.bytesIntoArena, paramBytes);
  EXPECT_GE(crossed.outOfArena,
            3 * 5 + int64_t(plan.manifest.params.size()));
  EXPECT_GT(crossed.betweenArenas, 0);
  EXPECT_TRUE(seen.arenas.empty());

  // A copy that fails fails the run, with the target's words, no hang:
  // the first (initialisation), one in the middle of training, the last
  // (reading the parameters back).
  const int64_t calls = crossed.calls;
  for (int64_t after : {int64_t(0), calls / 2, calls - 1}) {
    crossed = Crossings();
    crossed.failAfter = after;
    std::vector<double> m;
    std::vector<uint8_t> p;
    st = train(plan, true, m, p);
    EXPECT_FALSE(st.ok()) << "a copy failing after " << after << " passed";
    EXPECT_NE(st.message().find("fake device lost"), std::string::npos)
        << st.message();
  }
  EXPECT_TRUE(seen.arenas.empty());
}

namespace {
uint8_t *const *seenRegions = nullptr; ///< the regions the last F or B saw
uint8_t *lastR[pipert::kRegions];
pipert::cpu::Status fakeFwd(const pipert::KernelContext *, uint8_t *,
                            uint8_t *const *R, int32_t, const int32_t *,
                            const int32_t *, double) {
  std::copy(R, R + pipert::kRegions, lastR);
  seenRegions = lastR;
  return pipert::cpu::Status::success();
}
pipert::cpu::Status fakeBwd(const pipert::KernelContext *, uint8_t *,
                            uint8_t *const *R) {
  std::copy(R, R + pipert::kRegions, lastR);
  seenRegions = lastR;
  return pipert::cpu::Status::success();
}

/// Bytes each hand-over moves in the two-chunk plans below.
constexpr int64_t kHandOver = 96;

/// A one-rank manifest of two chunks on that rank: chunk 0's outgoing
/// activations at 0 and incoming gradient at 768, chunk 1's incoming
/// activations at 256 and outgoing gradient at 512, in a 1024-byte arena.
pipert::Manifest twoChunkManifest() {
  pipert::Manifest m;
  m.ranks = 1;
  m.microbatches = 1;
  m.rankInfo = {{"rank0.pstream", 1024, 1024}};
  auto place = [&](int chunk, int region, int64_t offset) {
    m.buffers.push_back({"c" + std::to_string(chunk) + ".mb0." +
                             pipert::regionName(region),
                         0, offset, kHandOver});
  };
  place(0, pipert::kOutAct, 0);
  place(1, pipert::kInAct, 256);
  place(1, pipert::kOutGrad, 512);
  place(0, pipert::kInGrad, 768);
  return m;
}

/// The two chunks' code: the fakes above, both on rank 0.
void twoFakeChunks(pipecrun::ChunkCode (&chunks)[2]) {
  for (pipecrun::ChunkCode &c : chunks) {
    c = pipecrun::ChunkCode{};
    c.fwd = fakeFwd;
    c.bwdB = c.bwdW = fakeBwd;
    c.rank = 0;
    c.inActBytes = c.inGradBytes = kHandOver;
  }
}
} // namespace

// Two chunks on one rank (the turn of a V schedule): F of the second reads
// the first's outgoing activations, B of the first the second's outgoing
// gradient, handed over through the target's copy, not a host memcpy.
TEST(TargetHooks, SameRankHandOverGoesThroughCopy) {
  seen = Seen();
  crossed = Crossings();
  const int64_t bytes = kHandOver;
  pipert::Manifest m = twoChunkManifest();
  auto *arena = static_cast<uint8_t *>(allocate(0, 1024, nullptr, 0));
  for (int i = 0; i < 1024; ++i)
    arena[i] = uint8_t(i * 7 + 3);
  pipecrun::ChunkCode chunks[2];
  twoFakeChunks(chunks);
  pipecrun::PlanTarget target{createRank, destroyRank, allocate, release,
                              copy, "fake"};
  pipecrun::PlanCode code{};
  code.chunks = chunks;
  code.chunkCount = 2;
  code.batch = code.seq = 1;
  code.target = &target;
  pipert::Batcher batcher;
  pipecrun::PlanKernels kernels(code, m, batcher);
  pipert::RankContext ctx{0, 0, 0, arena, 1024, &m};

  pipert::Status st = kernels.fwd(ctx, 1, 0);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(crossed.betweenArenas, 1);
  EXPECT_EQ(seenRegions[pipert::kInAct], arena + 256);
  EXPECT_EQ(std::memcmp(arena + 256, arena + 0, size_t(bytes)), 0);
  st = kernels.bwdB(ctx, 0, 0);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(crossed.betweenArenas, 2);
  EXPECT_EQ(seenRegions[pipert::kInGrad], arena + 768);
  EXPECT_EQ(std::memcmp(arena + 768, arena + 512, size_t(bytes)), 0);
  // The first chunk's F and the last chunk's B hand nothing over.
  ASSERT_TRUE(kernels.fwd(ctx, 0, 0).ok());
  ASSERT_TRUE(kernels.bwdB(ctx, 1, 0).ok());
  EXPECT_EQ(crossed.betweenArenas, 2);

  // A failing copy fails the instruction, saying what it moved.
  crossed.failAfter = crossed.calls;
  st = kernels.fwd(ctx, 1, 0);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("same-rank neighbour"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("fake device lost"), std::string::npos)
      << st.message();
  release(arena);
}

namespace {
/// What the fake stream-ordered copy and the deferral hook saw.
struct InStream {
  std::vector<void *> states; ///< the rank state of each copy
  int64_t bytes = 0;
  std::vector<int32_t> deferred; ///< ranks told to defer their syncs
} inStream;
bool copyInStream(void *state, void *dst, const void *src, int64_t bytes,
                  char *, int64_t) {
  inStream.states.push_back(state);
  inStream.bytes += bytes;
  std::memcpy(dst, src, size_t(bytes));
  return true;
}
void deferSyncs(void *state) {
  inStream.deferred.push_back(*static_cast<int32_t *>(state));
}
} // namespace

// Where the target has a stream per rank, the same-rank hand-over goes on
// it (PlanTarget::copyInStream, with the rank's state: ordered between
// the two chunks without the host waiting), never through the host-synced
// copy; deferSyncs reaches every rank the process holds.
TEST(TargetHooks, SameRankHandOverRidesTheRanksStream) {
  seen = Seen();
  crossed = Crossings();
  inStream = InStream();
  const int64_t bytes = kHandOver;
  pipert::Manifest m = twoChunkManifest();
  pipert::Stream s;
  s.rank = 0;
  s.ranks = 1;
  s.microbatches = 1;
  s.arenaBytes = 1024;
  pipert::Instr opt;
  opt.op = opt.sub = pipert::Opcode::OptStep;
  s.append(opt, {}, {});
  pipert::ArenaAllocator alloc{allocate, release, copy};
  std::unique_ptr<pipert::Executor> exec;
  pipert::Status st = pipert::Executor::create(m, {s}, exec, -1, &alloc);
  ASSERT_TRUE(st.ok()) << st.message();
  pipecrun::ChunkCode chunks[2];
  twoFakeChunks(chunks);
  pipecrun::RankCode ranks[1] = {{nullptr, nullptr, nullptr, nullptr}};
  pipecrun::PlanTarget target{createRank, destroyRank, allocate, release,
                              copy, "fake"};
  target.deferSyncs = deferSyncs;
  target.copyInStream = copyInStream;
  pipecrun::PlanCode code{};
  code.chunks = chunks;
  code.chunkCount = 2;
  code.ranks = ranks;
  code.rankCount = 1;
  code.batch = code.seq = 1;
  code.target = &target;
  pipert::Batcher batcher;
  pipecrun::PlanKernels kernels(code, m, batcher);
  ASSERT_EQ(kernels.start(*exec), "");
  kernels.deferSyncs();
  EXPECT_EQ(inStream.deferred, std::vector<int32_t>{0});
  uint8_t *arena = exec->arena(0);
  for (int i = 0; i < 1024; ++i)
    arena[i] = uint8_t(i * 5 + 1);
  const int64_t hostCopies = crossed.calls;
  pipert::RankContext ctx{0, 0, 0, arena, 1024, &m};
  ASSERT_TRUE(kernels.fwd(ctx, 1, 0).ok());
  ASSERT_TRUE(kernels.bwdB(ctx, 0, 0).ok());
  EXPECT_EQ(inStream.states.size(), 2u);
  for (void *state : inStream.states)
    EXPECT_EQ(state, kernels.targetStates()[0]);
  EXPECT_EQ(inStream.bytes, 2 * bytes);
  EXPECT_EQ(crossed.calls, hostCopies) << "the hand-over went through copy";
  EXPECT_EQ(std::memcmp(arena + 256, arena + 0, size_t(bytes)), 0);
  EXPECT_EQ(std::memcmp(arena + 768, arena + 512, size_t(bytes)), 0);
}
