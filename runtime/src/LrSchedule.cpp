//===- LrSchedule.cpp - the learning rate of each step --------------------===//

#include "pipert/LrSchedule.h"

#include <algorithm>
#include <cmath>

namespace pipert {

double LrSchedule::at(int64_t step) const {
  if (step < warmupSteps)
    return lr * double(step + 1) / double(warmupSteps);
  if (!cosine)
    return lr;
  double p =
      std::min(1.0, double(step - warmupSteps) /
                        double(std::max<int64_t>(1, decaySteps - warmupSteps)));
  return minLr + 0.5 * (lr - minLr) * (1.0 + std::cos(M_PI * p));
}

} // namespace pipert
