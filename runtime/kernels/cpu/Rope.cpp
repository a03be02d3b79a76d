//===- Rope.cpp - Angle tables of the rotary position embedding -----------===//
//
// The out-of-line (non-template) part of Rope.h. The tables call libm (pow,
// cos, sin); computing them here, never in a template, keeps every call a
// run-time glibc call even when the kernel's shapes are template arguments,
// so the bits do not depend on what the compiler could fold.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/Rope.h"

#include <cmath>

namespace pipert::cpu {

void ropeAngles(double *cosOut, double *sinOut, int64_t seq, int64_t headDim,
                double theta) {
  int64_t half = headDim / 2;
  for (int64_t i = 0; i < half; ++i) {
    double invFreq = 1.0 / std::pow(theta, double(2 * i) / double(headDim));
    for (int64_t t = 0; t < seq; ++t) {
      double angle = double(t) * invFreq;
      cosOut[t * half + i] = std::cos(angle);
      sinOut[t * half + i] = std::sin(angle);
    }
  }
}

} // namespace pipert::cpu
