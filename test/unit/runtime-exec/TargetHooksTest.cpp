//===- TargetHooksTest.cpp - a device target's hooks, on the CPU -----------===//
//
// The host side of a device target (the cuda target's plans,
// runtime/kernels/cuda/Target.cpp) as the runtime drives it, with fake
// hooks and no GPU: the executor takes every rank's arena from the
// target's allocator (aligned, zeroed, the parameters initialised there)
// and gives it back; the runner makes one target state per rank it holds,
// calls each rank's Begin with that state and arena, names the rank whose
// state cannot be made, and destroys the states.
//
//===----------------------------------------------------------------------===//

#include "SyntheticModel.h"

#include "runtime/runner/PlanKernels.h"

#include <gtest/gtest.h>

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
  std::vector<std::pair<int32_t, void *>> begun; ///< (rank, target state)
  std::vector<uint8_t *> begunArenas;
  int32_t failRank = -1;
} seen;

void *allocate(int64_t bytes, char *, int64_t) {
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
void *createRank(int32_t rank, char *error, int64_t bytes) {
  if (rank == seen.failRank) {
    std::snprintf(error, size_t(bytes), "no device for this rank");
    return nullptr;
  }
  seen.created.push_back(rank);
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
                                "fake"};
    pipecrun::RankCode ranks[2] = {{nullptr, nullptr, begin},
                                   {nullptr, nullptr, begin}};
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
  }
  // The executor gave every arena back to the allocator.
  EXPECT_EQ(seen.released, 2);
  EXPECT_TRUE(seen.arenas.empty());
}
