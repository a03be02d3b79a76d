//===- RandomCosts.h - random machine costs for schedule tests -*- C++ -*-===//
#ifndef PIPEC_TEST_UNIT_SCHEDULE_RANDOMCOSTS_H
#define PIPEC_TEST_UNIT_SCHEDULE_RANDOMCOSTS_H

#include "compiler/schedule/Machine.h"

#include <random>

namespace pipec::schedule {

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

#endif // PIPEC_TEST_UNIT_SCHEDULE_RANDOMCOSTS_H
