//===- Elementwise.h - add and mul with trailing broadcast ---------------===//
//
// a has n elements; b has bn elements, a suffix of a's shape, so b[i % bn]
// pairs with a[i] (bn == n: no broadcast). Which operand is an activation and
// which a parameter depends on the graph, so each operand's gradient has its
// own kernel (the compiler puts the parameter's in W).
//
// Numerics: elementwise results are exact functions of their operands. The
// broadcast operand's gradient is a reduction over the n / bn leading rows in
// ascending row order (the same column reduction as matmul's bias, so a fused
// bias gives the same bits); threads split the columns, never the rows.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_ELEMENTWISE_H
#define PIPERT_KERNELS_CPU_ELEMENTWISE_H

#include "kernels/cpu/Numerics.h"

#include "kernels/cpu/Reduce.h"

#include <cstdint>

namespace pipert::cpu {

/// y[i] = a[i] + b[i % bn].
template <typename T, int64_t... S>
inline void addForward(T *y, const T *a, const T *b, int64_t nArg,
                       int64_t bnArg) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  const int64_t bn = detail::fixedOr<1, S...>(bnArg);
  int64_t rows = bn ? n / bn : 0;
#pragma omp parallel for schedule(static) if (n >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r)
#pragma omp simd
    for (int64_t j = 0; j < bn; ++j)
      y[r * bn + j] = a[r * bn + j] + b[j];
}

/// Gradient of add's broadcast operand: db[j] (+)= sum over rows r ascending
/// of dy[r * bn + j]. (The full-shape operand's gradient is dy itself.)
template <typename T, int64_t... S>
inline void addBackwardBroadcast(T *db, const T *dy, int64_t nArg,
                                 int64_t bnArg, bool accumulateArg) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  const int64_t bn = detail::fixedOr<1, S...>(bnArg);
  const bool accumulate =
      detail::fixedOr<2, S...>(int64_t(accumulateArg)) != 0;
  int64_t rows = bn ? n / bn : 0;
  detail::columnSums<T>(db, rows, bn, accumulate,
                        [dy, bn](int64_t r, int64_t c) { return dy[r * bn + c]; });
}

/// y[i] = a[i] * b[i % bn].
template <typename T, int64_t... S>
inline void mulForward(T *y, const T *a, const T *b, int64_t nArg,
                       int64_t bnArg) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  const int64_t bn = detail::fixedOr<1, S...>(bnArg);
  int64_t rows = bn ? n / bn : 0;
#pragma omp parallel for schedule(static) if (n >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r)
#pragma omp simd
    for (int64_t j = 0; j < bn; ++j)
      y[r * bn + j] = a[r * bn + j] * b[j];
}

/// Gradient of mul's full-shape operand: da[i] (+)= dy[i] * b[i % bn].
template <typename T, int64_t... S>
inline void mulBackwardLhs(T *da, const T *dy, const T *b, int64_t nArg,
                           int64_t bnArg, bool accumulateArg) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  const int64_t bn = detail::fixedOr<1, S...>(bnArg);
  const bool accumulate =
      detail::fixedOr<2, S...>(int64_t(accumulateArg)) != 0;
  int64_t rows = bn ? n / bn : 0;
#pragma omp parallel for schedule(static) if (n * 2 >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r)
#pragma omp simd
    for (int64_t j = 0; j < bn; ++j) {
      T g = dy[r * bn + j] * b[j];
      da[r * bn + j] = accumulate ? da[r * bn + j] + g : g;
    }
}

/// Gradient of mul's broadcast operand: db[j] (+)= sum over rows r
/// ascending of dy[r * bn + j] * a[r * bn + j].
template <typename T, int64_t... S>
inline void mulBackwardRhs(T *db, const T *dy, const T *a, int64_t nArg,
                           int64_t bnArg, bool accumulateArg) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  const int64_t bn = detail::fixedOr<1, S...>(bnArg);
  const bool accumulate =
      detail::fixedOr<2, S...>(int64_t(accumulateArg)) != 0;
  int64_t rows = bn ? n / bn : 0;
  detail::columnSums<T>(db, rows, bn, accumulate,
                        [dy, a, bn](int64_t r, int64_t c) {
                          return dy[r * bn + c] * a[r * bn + c];
                        });
}

/// y[i] (+)= x[i]: copies a gradient, or adds two gradients of one value.
template <typename T, int64_t... S>
inline void accumulateInto(T *y, const T *x, int64_t nArg,
                           bool accumulateArg) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  const bool accumulate =
      detail::fixedOr<1, S...>(int64_t(accumulateArg)) != 0;
#pragma omp parallel for simd schedule(static) if (n >= detail::kParallelWork)
  for (int64_t i = 0; i < n; ++i)
    y[i] = accumulate ? y[i] + x[i] : x[i];
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_ELEMENTWISE_H
