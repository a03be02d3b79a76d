//===- VecMath.h - Branch-free float exp and tanh that vectorize ----------===//
//
// glibc's scalar expf/tanhf are one call per element and never vectorize
// without -ffast-math (which the numerics contract forbids). vecExp and
// vecTanh below are plain IEEE float arithmetic, integer bit operations and
// selects, so GCC inlines and vectorizes them inside `#pragma omp simd` (and
// auto-vectorized) loops, and a vector lane computes exactly the bits of the
// scalar call: with -ffp-contract=off every operation rounds as written.
//
// The CPU kernels (float instantiations) and the loops the cpu target emits
// call these same functions, which keeps the compiled plan bitwise equal to
// `pipec reference-train`. The double overloads are std::exp / std::tanh
// (the f64 path is compared with JAX at 1e-15).
//
// Accuracy over the whole float range, against the correctly rounded value
// (test/unit/kernels/VecMathTest.cpp sweeps it): vecExp <= 1 ulp,
// vecTanh <= 2 ulp (kVecExpMaxUlp / kVecTanhMaxUlp); inf, -inf, NaN, +-0 and
// denormals give the libm results (exp: inf, 0, NaN, 1; tanh: +-1, NaN, +-0,
// x).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_VECMATH_H
#define PIPERT_KERNELS_CPU_VECMATH_H

#include <cmath>
#include <cstdint>
#include <cstring>

namespace pipert::cpu {

/// The documented error bounds, in units in the last place of the result.
constexpr double kVecExpMaxUlp = 1.0;
constexpr double kVecTanhMaxUlp = 2.0;

namespace detail {

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// 2^k for k in [-126, 127], built in the exponent field.
inline float pow2i(int32_t k) { return bitsFloat(uint32_t(k + 127) << 23); }

} // namespace detail

/// e^x for float, within kVecExpMaxUlp. Cephes expf: x = n ln2 + r with
/// |r| <= ln2/2 (ln2 split in two constants so n*C1 is exact), a degree-7
/// polynomial in r, then the result scaled by 2^n as two factors 2^(n/2)
/// and 2^(n - n/2), so a denormal result is rounded once and 2^128 (x just
/// below the overflow threshold) needs no special case.
__attribute__((always_inline)) inline float vecExp(float x) {
  // Beyond these e^x is 0 or inf in float; the clamps keep n in
  // [-150, 128]. NaN fails both comparisons and propagates.
  x = x < -104.0f ? -104.0f : x;
  x = x > 89.0f ? 89.0f : x;
  // n = round(x / ln2): adding 1.5 * 2^23 rounds to an integer, which then
  // sits in the low mantissa bits (no float -> int conversion, which is
  // undefined for NaN).
  const float kShifter = 12582912.0f;
  float t = x * 1.44269504088896341f + kShifter;
  float n = t - kShifter;
  int32_t ni = int32_t(detail::floatBits(t) - detail::floatBits(kShifter));
  float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float z = r * r;
  // 1 + r + r^2 P(r), Horner (the order of operations is the contract).
  float p = 1.9875691500e-4f * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  int32_t n1 = ni / 2;
  return (p * detail::pow2i(n1)) * detail::pow2i(ni - n1);
}

/// tanh(x) for float, within kVecTanhMaxUlp. Cephes tanhf: for |x| < 0.625
/// an odd polynomial, otherwise 1 - 2 / (e^(2|x|) + 1) with the sign of x
/// (|x| clamped at 9.1, past which tanh rounds to 1). Both are computed and
/// one is selected, so the function has no branch.
__attribute__((always_inline)) inline float vecTanh(float x) {
  float a = std::fabs(x);
  float z = x * x;
  // x + x^3 Q(x^2), Horner.
  float q = -5.70498872745e-3f * z + 2.06390887954e-2f;
  q = q * z - 5.37397155531e-2f;
  q = q * z + 1.33314422036e-1f;
  q = q * z - 3.33332819422e-1f;
  float small = q * z * x + x;
  // x + x*z*P(z) is +0 for x = -0; tanh(-0) is -0.
  small = a == 0.0f ? x : small;
  float ac = a > 9.1f ? 9.1f : a;
  float e = vecExp(ac + ac);
  float large = std::copysign(1.0f - 2.0f / (e + 1.0f), x);
  return a < 0.625f ? small : large;
}

/// The double path keeps libm (the f64 comparison with JAX needs 1e-15).
inline double vecExp(double x) { return std::exp(x); }
inline double vecTanh(double x) { return std::tanh(x); }

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_VECMATH_H
