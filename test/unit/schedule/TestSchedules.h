//===- TestSchedules.h - schedules and costs for schedule tests -*- C++ -*-===//
#ifndef PIPEC_TEST_UNIT_SCHEDULE_TESTSCHEDULES_H
#define PIPEC_TEST_UNIT_SCHEDULE_TESTSCHEDULES_H

#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"
#include "compiler/schedule/Machine.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace pipec::schedule {

/// Every generated kind.
inline constexpr Kind kKinds[] = {Kind::GPipe, Kind::OneFOneB,
                                  Kind::Interleaved, Kind::ZBH1,
                                  Kind::ZBV,   Kind::DualPipeV};

/// The streams of `kind` on p ranks with m micro-batches, with the tied
/// groups `groups` (LowerOptions::groups).
inline Schedule lowered(Kind kind, int32_t p, int32_t m,
                        std::vector<std::vector<int32_t>> groups = {},
                        bool postValidation = false) {
  ComputePlan plan;
  GenerateOptions opt{kind, p, m, 0, 0};
  EXPECT_EQ(generatePlan(opt, plan), "");
  LowerOptions lo;
  lo.groups = std::move(groups);
  lo.postValidation = postValidation;
  return lowerPlan(plan, lo);
}

/// Random, non-zero costs per chunk and phase, collective and optimizer.
inline Costs randomCosts(int32_t chunks, std::mt19937 &rng) {
  std::uniform_real_distribution<double> d(0.5, 3.0);
  Costs c;
  for (int32_t i = 0; i < chunks; ++i) {
    c.f.push_back(d(rng));
    c.b.push_back(d(rng));
    c.w.push_back(d(rng));
  }
  c.allReduce = d(rng);
  c.optStep = d(rng);
  return c;
}

} // namespace pipec::schedule

#endif // PIPEC_TEST_UNIT_SCHEDULE_TESTSCHEDULES_H
