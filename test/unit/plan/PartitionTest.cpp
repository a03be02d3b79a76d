//===- PartitionTest.cpp - the partitioner against brute force ------------===//

#include "compiler/plan/Partition.h"
#include "compiler/schedule/Generate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

using namespace pipec::plan;
using namespace pipec::schedule;

namespace {

double maxOf(const std::vector<double> &v) {
  return *std::max_element(v.begin(), v.end());
}

/// A small transformer-like model whose layers have different widths: per
/// layer a norm, two matmuls and an elementwise op, with times scaled by
/// the layer's width, then a heavy head, plus random jitter.
std::vector<double> unevenModel(int layers, std::mt19937 &rng) {
  std::uniform_real_distribution<double> width(0.5, 3.0), jitter(0.8, 1.2);
  std::vector<double> t = {0.05 * jitter(rng)}; // embedding
  for (int l = 0; l < layers; ++l) {
    double w = width(rng);
    t.push_back(0.1 * w * jitter(rng));     // norm
    t.push_back(1.0 * w * w * jitter(rng)); // matmul
    t.push_back(0.2 * w * jitter(rng));     // activation
    t.push_back(1.0 * w * w * jitter(rng)); // matmul
  }
  t.push_back(2.5 * jitter(rng)); // LM head
  t.push_back(0.3 * jitter(rng)); // loss
  return t;
}

struct Case {
  const char *name;
  Placement placement;
};

std::vector<Case> placements(int32_t s) {
  std::vector<Case> cases = {{"linear", linearPlacement(s)},
                             {"looped-2", loopedPlacement(s, 2)},
                             {"v-shape", vShapePlacement(s)}};
  if (s == 2)
    cases.push_back({"looped-3", loopedPlacement(s, 3)});
  return cases;
}

} // namespace

// The criterion: for every S and placement tried, the worst rank of
// the partition is within 1% of the brute-force optimum.
TEST(Partition, WithinOnePercentOfBruteForce) {
  std::mt19937 rng(20261125);
  int checked = 0;
  for (int trial = 0; trial < 12; ++trial) {
    std::vector<double> t = unevenModel(3 + trial % 2, rng); // 15 or 19 pieces
    for (int32_t s : {2, 3, 4})
      for (const Case &c : placements(s)) {
        if (c.placement.chunks > int32_t(t.size()) || c.placement.chunks > 8)
          continue;
        Cuts got = partitionPieces(t, c.placement.rankOf, s);
        Cuts best = bruteForcePartition(t, c.placement.rankOf, s);
        double g = maxOf(rankTimes(t, c.placement.rankOf, s, got));
        double b = maxOf(rankTimes(t, c.placement.rankOf, s, best));
        EXPECT_LE(g, b * 1.01) << "trial " << trial << " S=" << s << " "
                               << c.name;
        // Never better than the optimum, never below the bound.
        EXPECT_GE(g, b * (1 - 1e-12));
        EXPECT_GE(b, balanceBound(t, s) * (1 - 1e-12));
        ++checked;
      }
  }
  EXPECT_GT(checked, 100);
}

TEST(Partition, CutsAreValid) {
  std::mt19937 rng(7);
  std::vector<double> t = unevenModel(10, rng);
  Placement p = vShapePlacement(4);
  Cuts cuts = partitionPieces(t, p.rankOf, 4);
  ASSERT_EQ(cuts.chunks(), 8);
  EXPECT_EQ(cuts.cuts.front(), 0);
  EXPECT_EQ(cuts.cuts.back(), int32_t(t.size()));
  for (int32_t c = 0; c < 8; ++c)
    EXPECT_LT(cuts.cuts[c], cuts.cuts[c + 1]) << "chunk " << c << " is empty";
}

// One chunk per rank: the binary search is exact; check a case by hand.
TEST(Partition, LinearByHand) {
  std::vector<double> t = {1, 2, 3, 4, 5, 6};
  Placement p = linearPlacement(3);
  Cuts cuts = partitionPieces(t, p.rankOf, 3);
  // Best max is 9: {1,2,3,4}=10 is too much; {1,2,3}{4,5}{6} = 6, 9, 6.
  std::vector<double> load = rankTimes(t, p.rankOf, 3, cuts);
  EXPECT_DOUBLE_EQ(maxOf(load), 9.0);
  EXPECT_DOUBLE_EQ(balanceBound(t, 3), 7.0);
}

// A heavy last piece on a V placement: rank 0 holds the first and the last
// chunk, so it gets the head and as little else as possible.
TEST(Partition, VShapePutsHeadWithLittle) {
  std::vector<double> t(24, 1.0);
  t.back() = 8.0; // 23 + 8 = 31 over 3 ranks: bound 10.33
  Placement p = vShapePlacement(3);
  Cuts cuts = partitionPieces(t, p.rankOf, 3);
  Cuts best = bruteForcePartition(t, p.rankOf, 3);
  EXPECT_DOUBLE_EQ(maxOf(rankTimes(t, p.rankOf, 3, cuts)),
                   maxOf(rankTimes(t, p.rankOf, 3, best)));
  EXPECT_DOUBLE_EQ(maxOf(rankTimes(t, p.rankOf, 3, best)), 11.0);
}

// The bound: the mean rank time or the largest piece, whichever is larger.
TEST(Partition, BalanceBound) {
  EXPECT_DOUBLE_EQ(balanceBound({1, 1, 1, 9}, 2), 9.0);
  EXPECT_DOUBLE_EQ(balanceBound({3, 3, 3, 3}, 2), 6.0);
}

// Models too large for the full DP use its dominance version (V and looped)
// or the descent (looped with three chunks): with pieces of at most 2 (the
// head aside) a partition within one piece of the bound exists (greedy
// chunks of bound + 2 each take at least the bound), so each must be.
TEST(Partition, LargeModelsReachTheBound) {
  std::mt19937 rng(99);
  std::uniform_real_distribution<double> piece(1.0, 2.0);
  for (int32_t n : {200, 400}) {
    std::vector<double> t(n);
    for (double &x : t)
      x = piece(rng);
    t.back() = 20.0; // a head, still smaller than a rank's share
    for (int32_t s : {4, 8}) {
      for (const Case &c : placements(s)) {
        Cuts cuts = partitionPieces(t, c.placement.rankOf, s);
        ASSERT_EQ(cuts.chunks(), c.placement.chunks);
        double worst = maxOf(rankTimes(t, c.placement.rankOf, s, cuts));
        EXPECT_LE(worst, balanceBound(t, s) + 2.0)
            << "n=" << n << " S=" << s << " " << c.name;
      }
      Placement looped3 = loopedPlacement(s, 3);
      Cuts cuts = partitionPieces(t, looped3.rankOf, s);
      EXPECT_LE(maxOf(rankTimes(t, looped3.rankOf, s, cuts)),
                balanceBound(t, s) + 2.0)
          << "n=" << n << " S=" << s << " looped-3";
    }
  }
}
