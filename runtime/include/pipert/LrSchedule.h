//===- LrSchedule.h - the learning rate of each step ------------*- C++ -*-===//
//
// docs/TRAINING.md: linear warm-up over warmup_steps, then constant or a
// cosine decay to min_lr over the horizon decay_steps (never the run length,
// so runs of different lengths agree step by step).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_LRSCHEDULE_H
#define PIPERT_LRSCHEDULE_H

#include <cstdint>

namespace pipert {

/// The schedule's parameters, as the model's train section gives them.
struct LrSchedule {
  double lr = 0;
  double minLr = 0;
  int64_t warmupSteps = 0;
  int64_t decaySteps = 0;
  /// Cosine decay after the warm-up; constant otherwise.
  bool cosine = true;

  /// The learning rate of step `step` (0-based).
  double at(int64_t step) const;
};

} // namespace pipert

#endif // PIPERT_LRSCHEDULE_H
