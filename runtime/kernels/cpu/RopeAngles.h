//===- RopeAngles.h - the rotary embedding's angle tables -------*- C++ -*-===//
//
// Declared alone (no kernel templates, no numerics guard) so that the cuda
// call layer computes its tables with the very function the cpu kernels
// use (runtime/kernels/cpu/Rope.cpp, built into both libraries).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_ROPEANGLES_H
#define PIPERT_KERNELS_CPU_ROPEANGLES_H

#include <cstdint>

namespace pipert::cpu {

/// cos and sin of every (position t, frequency i) pair in double,
/// cosOut/sinOut[t * (headDim / 2) + i] for angle = t * theta^(-2i /
/// headDim). Out of line, so that libm's pow, cos and sin always run at run
/// time (a compile-time folded call may round differently).
void ropeAngles(double *cosOut, double *sinOut, int64_t seq, int64_t headDim,
                double theta);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_ROPEANGLES_H
