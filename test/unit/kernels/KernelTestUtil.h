//===- KernelTestUtil.h - Random data and finite-difference checks --------===//
//
// Gradient checks compare a kernel's gradient g with central differences
// g_fd of the scalar L(x) = sum(dy * f(x)) for a random dy, by the normwise
// relative error ||g - g_fd|| / max(||g_fd||, tiny): an elementwise error is
// meaningless where a true gradient is zero.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_TEST_UNIT_KERNELS_KERNELTESTUTIL_H
#define PIPEC_TEST_UNIT_KERNELS_KERNELTESTUTIL_H

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace kerneltest {

/// Step of the central differences and the accepted normwise error.
constexpr double kStep = 1e-6;
constexpr double kTolerance = 1e-6;

/// n random values in [-1, -0.1] u [0.1, 1]: non-zero, with random signs.
template <typename T = double>
inline std::vector<T> randomVector(std::mt19937_64 &rng, int64_t n,
                                   double scale = 1.0) {
  std::uniform_real_distribution<double> mag(0.1, 1.0);
  std::bernoulli_distribution sign(0.5);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto &x : v)
    x = T(scale * (sign(rng) ? mag(rng) : -mag(rng)));
  return v;
}

/// A random integer in [lo, hi].
inline int64_t randomInt(std::mt19937_64 &rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

/// sum(a * b) in double.
inline double dot(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

/// Central-difference gradient of f with respect to x; x is perturbed in
/// place and restored bit for bit.
inline std::vector<double> finiteDifference(std::vector<double> &x,
                                            const std::function<double()> &f) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double saved = x[i];
    x[i] = saved + kStep;
    double up = f();
    x[i] = saved - kStep;
    double down = f();
    x[i] = saved;
    g[i] = (up - down) / (2 * kStep);
  }
  return g;
}

/// ||g - ref|| / max(||ref||, tiny).
inline double normwiseError(const std::vector<double> &g,
                            const std::vector<double> &ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    num += (g[i] - ref[i]) * (g[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

/// a - b elementwise (to undo the starting value of an accumulated gradient).
inline std::vector<double> minus(const std::vector<double> &a,
                                 const std::vector<double> &b) {
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i)
    d[i] = a[i] - b[i];
  return d;
}

} // namespace kerneltest

#endif // PIPEC_TEST_UNIT_KERNELS_KERNELTESTUTIL_H
