//===- MemoryPlanTest.cpp - arenas against hand-computed peaks ------------===//

#include "compiler/plan/MemoryPlan.h"
#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"

#include <gtest/gtest.h>

using namespace pipec::plan;
using namespace pipec::schedule;

namespace {

Schedule make(Kind kind, int32_t s, int32_t m) {
  ComputePlan cp;
  EXPECT_EQ(generatePlan({kind, s, m, 0, 0}, cp), "");
  return lowerPlan(cp);
}

std::vector<ChunkMemory> twoChunks() {
  ChunkMemory c0, c1;
  c0.savedBytes = 100, c0.wGradBytes = 10, c0.deferredW = true;
  c0.inBytes = 0, c0.outBytes = 7, c0.workspaceBytes = 3;
  c1.savedBytes = 200, c1.wGradBytes = 20, c1.deferredW = true;
  c1.inBytes = 7, c1.outBytes = 0, c1.workspaceBytes = 5;
  return {c0, c1};
}

} // namespace

// 1F1B, 2 ranks, 2 micro-batches. Rank 0's stream (positions 0..15):
//   F0.0 >A1:0.0 <G1:1.0 F0.1 >A1:0.1 ~>A1:0.0 ~>A1:0.1 ~<G1:1.0 B0.0
//   <G1:1.1 W0.0 ~<G1:1.1 B0.1 W0.1 AR0.0 OPT
// Live: kept activations [0,10] and [3,13] (100 each, until W), outputs
// until their send waits [0,5] and [3,6] (7 each), received gradients
// [2,8] and [9,12] (7), output gradients for W [8,10] and [12,13] (10).
// At position 3: 200 + 7 + 7 + 7 = 221, the peak; plus the static 4003.
TEST(MemoryPlan, OneFOneBByHand) {
  Schedule s = make(Kind::OneFOneB, 2, 2);
  std::vector<StaticMemory> statics = {{1000, 1000, 2000}, {500, 500, 1000}};
  std::vector<RankMemory> mem = planMemory(s, twoChunks(), statics);
  ASSERT_EQ(mem.size(), 2u);
  const RankMemory &r0 = mem[0];
  EXPECT_EQ(r0.peakLiveBytes, 4003 + 221);
  EXPECT_EQ(r0.peakPosition, 3);
  EXPECT_EQ(r0.atPeak[int(BufferKind::Activations)], 200);
  EXPECT_EQ(r0.atPeak[int(BufferKind::Send)], 14);
  EXPECT_EQ(r0.atPeak[int(BufferKind::Receive)], 7);
  EXPECT_EQ(r0.atPeak[int(BufferKind::Workspace)], 3);
  // Slots: two for the kept activations, one for the received gradients
  // (their lifetimes do not overlap), one for the output gradients.
  EXPECT_EQ(r0.slotOf[RoleSaved * 2 + 0], (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(r0.slotOf[RoleInGrad * 2 + 0], (std::vector<int32_t>{0, 0}));
  EXPECT_EQ(r0.slotOf[RoleOutGrad * 2 + 0], (std::vector<int32_t>{0, 0}));
  // Packing largest first: 100 @4003, 100 @4103, 10 @4203, then the 7-byte
  // slots: out_act [0,5] @4203, in_grad [2,12] @4213, out_act [3,6] @4220.
  EXPECT_EQ(r0.arenaBytes, 4227);

  // Rank 1: <A0:0.0 ~<A0:0.0 F1.0 B1.0 <A0:0.1 W1.0 >G0:1.0 ~>G0:1.0
  //   ~<A0:0.1 F1.1 B1.1 W1.1 >G0:1.1 ~>G0:1.1 AR0.0 OPT
  // At position 4: kept 200 [2,5], output gradient 20 [3,5], the gradient
  // being sent 7 [3,7], the next input 7 [4,9]: 234.
  const RankMemory &r1 = mem[1];
  EXPECT_EQ(r1.peakLiveBytes, 2005 + 234);
  EXPECT_EQ(r1.peakPosition, 4);
}

// Blocks never overlap in both time and space, and every block fits.
TEST(MemoryPlan, BlocksAreDisjoint) {
  for (Kind kind : {Kind::GPipe, Kind::OneFOneB, Kind::ZBH1, Kind::ZBV,
                    Kind::DualPipeV, Kind::Interleaved}) {
    Schedule s = make(kind, 4, 8);
    int32_t chunks = s.placement.chunks;
    std::vector<ChunkMemory> cm(chunks);
    for (int32_t c = 0; c < chunks; ++c) {
      cm[c].savedBytes = 1000 + 37 * c;
      cm[c].wGradBytes = 100 + c;
      cm[c].deferredW = c % 3 != 0;
      cm[c].inBytes = c == 0 ? 0 : 64 + c;
      cm[c].outBytes = c + 1 == chunks ? 0 : 65 + c;
      cm[c].workspaceBytes = 11 * c;
      if (c % 2 == 1) { // recompute: keep the input, rebuild 500 in B
        cm[c].recomputeInBytes = cm[c].inBytes + 1;
        cm[c].recomputedBytes = 500;
        cm[c].savedBytes -= 500;
      }
    }
    std::vector<StaticMemory> statics(4, {10, 20, 30});
    for (const RankMemory &r : planMemory(s, cm, statics)) {
      EXPECT_GE(r.arenaBytes, r.peakLiveBytes) << kindName(kind);
      for (size_t i = 0; i < r.blocks.size(); ++i) {
        const Block &a = r.blocks[i];
        EXPECT_LE(a.offset + a.bytes, r.arenaBytes);
        for (size_t j = i + 1; j < r.blocks.size(); ++j) {
          const Block &b = r.blocks[j];
          bool time = a.start <= b.end && b.start <= a.end;
          bool space = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
          EXPECT_FALSE(time && space) << kindName(kind) << " blocks " << i
                                      << " and " << j;
        }
      }
    }
  }
}

// More micro-batches in flight need more memory: GPipe keeps all M, 1F1B
// at most S on its first rank.
TEST(MemoryPlan, InFlightMicrobatches) {
  std::vector<ChunkMemory> cm(4);
  for (ChunkMemory &c : cm)
    c.savedBytes = 1000;
  std::vector<StaticMemory> statics(4);
  auto gpipe = planMemory(make(Kind::GPipe, 4, 8), cm, statics);
  auto ofob = planMemory(make(Kind::OneFOneB, 4, 8), cm, statics);
  EXPECT_EQ(gpipe[0].peakLiveBytes, 8 * 1000);
  EXPECT_EQ(ofob[0].peakLiveBytes, 4 * 1000);
  EXPECT_EQ(ofob[3].peakLiveBytes, 1 * 1000);
}

// planBuffers with exact buffers and a same-rank hand-over: one rank holds
// chunks 0 and 1, one micro-batch. Stream: F0 F1 B1 B0 W1 W0 (positions
// 0..5). Chunk 0's outgoing activation is read by F1 (the copy into chunk
// 1's input), chunk 1's outgoing gradient by B0; chunk 0 keeps 100 bytes
// until its W, chunk 1 keeps 50 that only its B reads.
//   c0 data [0,5] 100, c0 out_act [0,1] 8, c1 in_act [1,1] 8,
//   c1 data [1,2] 50, c1 out_grad [2,3] 16, c0 in_grad [3,3] 16.
// Live at position 1: 100 + 8 + 8 + 50 = 166, the peak; static 64.
TEST(MemoryPlan, ExactBuffersWithSameRankHandOver) {
  Schedule s;
  s.microbatches = 1;
  s.placement = {1, 2, {0, 0}};
  s.streams = {{{Op::Fwd, Op::Fwd, -1, 0, 0, -1},
                {Op::Fwd, Op::Fwd, -1, 1, 0, -1},
                {Op::BwdB, Op::BwdB, -1, 1, 0, -1},
                {Op::BwdB, Op::BwdB, -1, 0, 0, -1},
                {Op::BwdW, Op::BwdW, -1, 1, 0, -1},
                {Op::BwdW, Op::BwdW, -1, 0, 0, -1}}};
  std::vector<std::vector<ChunkBuffer>> buffers = {
      {{RoleSaved, 100, TouchF | TouchW, 0},
       {RoleOutAct, 8, TouchF | TouchSendOut | TouchNextF, 0},
       {RoleInGrad, 16, TouchRecvGradIn | TouchB, 0}},
      {{RoleSaved, 50, TouchF | TouchB, 0},
       {RoleInAct, 8, TouchRecvIn | TouchF, 0},
       {RoleOutGradMsg, 16, TouchB | TouchSendGradOut | TouchPrevB, 0}}};
  std::vector<RankMemory> mem =
      planBuffers(s, buffers, {{{BufferKind::Weights, 64}}});
  ASSERT_EQ(mem.size(), 1u);
  EXPECT_EQ(mem[0].peakLiveBytes, 64 + 166);
  EXPECT_EQ(mem[0].peakPosition, 1);
  auto lifetime = [&](int32_t role, int32_t chunk) {
    for (const Block &b : mem[0].blocks)
      if (b.role == role && b.chunk == chunk)
        return std::make_pair(b.start, b.end);
    return std::make_pair(-1, -1);
  };
  EXPECT_EQ(lifetime(RoleSaved, 0), std::make_pair(0, 5));
  EXPECT_EQ(lifetime(RoleOutAct, 0), std::make_pair(0, 1));
  EXPECT_EQ(lifetime(RoleInAct, 1), std::make_pair(1, 1));
  EXPECT_EQ(lifetime(RoleSaved, 1), std::make_pair(1, 2));
  EXPECT_EQ(lifetime(RoleOutGradMsg, 1), std::make_pair(2, 3));
  EXPECT_EQ(lifetime(RoleInGrad, 0), std::make_pair(3, 3));
  // Packed largest first, each at the lowest offset free over its
  // lifetime: 100 at 64, 50 at 164, the [2,3] gradient at 214, the [3,3]
  // one at 164 (the 50 is dead by then), the 8s at 214 and 222: the arena
  // is the live peak, 230.
  for (const Block &a : mem[0].blocks)
    for (const Block &b : mem[0].blocks)
      if (&a != &b && a.start <= b.end && b.start <= a.end)
        EXPECT_TRUE(a.offset + a.bytes <= b.offset ||
                    b.offset + b.bytes <= a.offset);
  EXPECT_EQ(mem[0].arenaBytes, 230);
}
