//===- MessageCostTest.cpp - per-chunk message costs, by hand -------------===//
//
// pipec-sim --link prices each chunk's activation and gradient messages
// (alpha plus bytes over bandwidth: Costs::actCommOf / gradCommOf). A
// message completes that long after both its send and its recv are posted.
// Two ranks, one micro-batch, F = B = W = 1, worked out by hand.
//
//===----------------------------------------------------------------------===//

#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"
#include "compiler/schedule/Machine.h"

#include <gtest/gtest.h>

using namespace pipec::schedule;

namespace {

Schedule gpipeTwoRanksOneMicrobatch() {
  GenerateOptions opt;
  opt.kind = Kind::GPipe;
  opt.stages = 2;
  opt.microbatches = 1;
  ComputePlan plan;
  EXPECT_EQ(generatePlan(opt, plan), "");
  return lowerPlan(plan);
}

TEST(MessageCost, TwoRanksByHand) {
  Schedule s = gpipeTwoRanksOneMicrobatch();
  Costs costs = Costs::uniform(2, 1, 1, 1);
  // The scalar costs are what the per-chunk ones replace.
  costs.actComm = costs.gradComm = 10;
  costs.actCommOf = {0.5, 0.5};
  costs.gradCommOf = {0.25, 0.25};
  MachineResult r = runMachine(s, costs, /*recordSpans=*/true);
  ASSERT_EQ(r.verdict, Verdict::Completed) << r.message;
  // The streams (pipec schedule --kind gpipe --stages 2 --microbatches 1):
  //   rank 0: <G1 F0 >A1 ~>A1 ~<G1 B0 W0 AR OPT
  //   rank 1: <A0 ~<A0 F1 B1 W1 >G0 ~>G0 AR OPT
  // Rank 0: F [0, 1]. Chunk 0's activation lands on rank 1 at 1 + 0.5:
  // F [1.5, 2.5], B [2.5, 3.5], W [3.5, 4.5]; chunk 1's gradient, sent
  // then, lands on rank 0 at 4.5 + 0.25: B [4.75, 5.75], W [5.75, 6.75].
  // The gradient norm's all-reduce (free) holds rank 1 until rank 0 joins.
  EXPECT_DOUBLE_EQ(r.finish[0], 6.75);
  EXPECT_DOUBLE_EQ(r.finish[1], 6.75);
  EXPECT_DOUBLE_EQ(r.stepTime, 6.75);
  // Each rank is busy 3 of the 6.75.
  EXPECT_DOUBLE_EQ(r.bubbleFraction, (2 * 6.75 - 6) / (2 * 6.75));
}

TEST(MessageCost, WithoutPerChunkCostsTheScalarsHold) {
  Schedule s = gpipeTwoRanksOneMicrobatch();
  Costs costs = Costs::uniform(2, 1, 1, 1);
  costs.actComm = 0.5;
  costs.gradComm = 0.25;
  EXPECT_DOUBLE_EQ(runMachine(s, costs).stepTime, 6.75);
  // Free messages: the textbook (M + S - 1) x 3 = 6.
  costs.actComm = costs.gradComm = 0;
  EXPECT_DOUBLE_EQ(runMachine(s, costs).stepTime, 6.0);
}

} // namespace
