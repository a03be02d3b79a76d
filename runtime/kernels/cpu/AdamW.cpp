//===- AdamW.cpp - AdamW step, global gradient norm and clipping ----------===//
//
// The out-of-line (non-template) part of AdamW.h; the kernels are in the
// header.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/AdamW.h"

#include <cmath>

namespace pipert::cpu {

double adamwBiasCorrection(double beta, int64_t step) {
  return 1.0 - std::pow(beta, double(step));
}

double globalNorm(const double *squares, int64_t count) {
  double total = 0;
  for (int64_t i = 0; i < count; ++i)
    total += squares[i];
  return std::sqrt(total);
}

double clipScale(double norm, double maxNorm) {
  if (maxNorm <= 0 || !(norm > maxNorm))
    return 1.0;
  return maxNorm / norm;
}

} // namespace pipert::cpu
