//===- PlannerTest.cpp - kept activations from liveness, by hand ----------===//

#include "compiler/plan/Planner.h"

#include <gtest/gtest.h>

using namespace pipec::plan;

namespace {

/// Four equal pieces with a W each, split 2 + 2 over two ranks by 1F1B.
ModelCosts fourPieces() {
  ModelCosts m;
  for (int32_t i = 0; i < 4; ++i) {
    Piece p;
    p.firstOp = p.lastOp = i;
    p.f = p.b = p.w = 1.0;
    p.savedBytes = 999999; // ignored: the liveness list replaces it
    m.pieces.push_back(p);
  }
  m.crossBytes.assign(5, 0);
  m.exactKept = true;
  auto kept = [](int64_t bytes, bool back, int32_t def,
                 std::vector<int32_t> b, std::vector<int32_t> w) {
    KeptValue k;
    k.bytes = bytes;
    k.fromBackward = back;
    k.defPiece = def;
    k.bPieces = std::move(b);
    k.wPieces = std::move(w);
    return k;
  };
  m.kept = {
      kept(100, false, 0, {0, 1}, {}), // B readers in one chunk: once
      kept(10, false, 1, {1}, {2}),    // B in chunk 0, W in chunk 1
      kept(1000, true, 2, {}, {3}),    // an output gradient for W
      kept(7, false, -1, {}, {0, 1}),  // an argument two W ops read
  };
  return m;
}

PlanOptions options() {
  PlanOptions o;
  o.kind = pipec::schedule::Kind::OneFOneB;
  o.stages = 2;
  o.microbatches = 2;
  o.recompute = Recompute::None;
  EXPECT_TRUE(ratesForTarget("cpu", o.rates));
  return o;
}

} // namespace

TEST(Planner, KeptFromLivenessByHand) {
  Plan plan;
  ASSERT_EQ(makePlan(fourPieces(), options(), plan), "");
  ASSERT_EQ(plan.chunks.size(), 2u);
  const ChunkMemory &c0 = plan.chunks[0].memory, &c1 = plan.chunks[1].memory;
  EXPECT_EQ(plan.chunks[0].endPiece, 2);
  EXPECT_EQ(c0.savedForBBytes, 110); // 100 once, and 10
  EXPECT_EQ(c0.savedBytes, 7);       // read by W: kept until W
  EXPECT_EQ(c0.wGradBytes, 0);
  EXPECT_EQ(c1.savedForBBytes, 0);
  EXPECT_EQ(c1.savedBytes, 10);
  EXPECT_EQ(c1.wGradBytes, 1000);
}

TEST(Planner, RecomputedPrefixRebuildsItsValues) {
  PlanOptions o = options();
  o.recompute = Recompute::Full;
  Plan plan;
  ASSERT_EQ(makePlan(fourPieces(), o, plan), "");
  const ChunkMemory &c0 = plan.chunks[0].memory, &c1 = plan.chunks[1].memory;
  // Chunk 0 makes the 100 and the 10 itself: rebuilt in B. The argument
  // is not made by the chunk, so it is kept.
  EXPECT_EQ(c0.recomputedBytes, 110);
  EXPECT_EQ(c0.savedForBBytes, 0);
  EXPECT_EQ(c0.savedBytes, 7);
  // Chunk 1 reads the 10 (made in chunk 0): kept, not rebuilt.
  EXPECT_EQ(c1.savedBytes, 10);
  EXPECT_EQ(c1.recomputedBytes, 0);
  // Recomputation adds each chunk's F to its B.
  EXPECT_DOUBLE_EQ(plan.chunks[0].b, 4.0);
}

TEST(Planner, RefusesWhatCannotBeServed) {
  PlanOptions o = options();
  o.stages = 5;
  Plan plan;
  EXPECT_NE(makePlan(fourPieces(), o, plan).find("needs 5 chunks"),
            std::string::npos);
  o = options();
  o.memoryCap = 10;
  o.recompute = Recompute::Auto;
  EXPECT_NE(makePlan(fourPieces(), o, plan).find("no plan fits the memory cap"),
            std::string::npos);
}
