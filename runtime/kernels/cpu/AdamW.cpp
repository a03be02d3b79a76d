//===- AdamW.cpp - AdamW step, global gradient norm and clipping ----------===//

#include "kernels/cpu/AdamW.h"

#include "kernels/cpu/Reduce.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace pipert::cpu {

template <typename T>
Status adamwStep(T *param, const T *grad, T *m, T *v, int64_t n,
                 const AdamWConfig &c, bool decay, int64_t step,
                 double gradScale) {
  if (step < 1)
    return Status::failure("adamw: step " + std::to_string(step) +
                           " must be at least 1 (bias correction)");
  const T b1 = T(c.beta1), b2 = T(c.beta2);
  const T ob1 = T(1.0 - c.beta1), ob2 = T(1.0 - c.beta2);
  const T bc1 = T(1.0 - std::pow(c.beta1, double(step)));
  const T bc2 = T(1.0 - std::pow(c.beta2, double(step)));
  const T lr = T(c.lr), eps = T(c.eps), wd = decay ? T(c.weightDecay) : T(0);
  const T gs = T(gradScale);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    T g = grad[i] * gs;
    T mi = b1 * m[i] + ob1 * g;
    T vi = b2 * v[i] + ob2 * (g * g);
    T update = (mi / bc1) / (std::sqrt(vi / bc2) + eps) + wd * param[i];
    param[i] = param[i] - lr * update;
    m[i] = mi;
    v[i] = vi;
  }
  return Status::success();
}

template <typename T> double sumOfSquares(const T *x, int64_t n) {
  // Partial sums of fixed 16K-element chunks, added in chunk order. The
  // partials live on the stack, a batch of chunks at a time, so the
  // optimizer step allocates nothing; batching does not change the order.
  constexpr int64_t kChunk = 16384, kBatch = 256;
  int64_t chunks = (n + kChunk - 1) / kChunk;
  double total = 0;
  for (int64_t first = 0; first < chunks; first += kBatch) {
    int64_t count = std::min(kBatch, chunks - first);
    double partial[kBatch];
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < count; ++j) {
      int64_t c = first + j;
      const T *xc = x + c * kChunk;
      int64_t len = c + 1 < chunks ? kChunk : n - c * kChunk;
      partial[j] = detail::reduceFixed<double>(len, [xc](int64_t i) {
        double d = double(xc[i]);
        return d * d;
      });
    }
    for (int64_t j = 0; j < count; ++j)
      total += partial[j];
  }
  return total;
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

template <typename T> void scaleInPlace(T *x, int64_t n, double scale) {
  const T s = T(scale);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    x[i] = x[i] * s;
}

#define PIPERT_INSTANTIATE(T)                                                  \
  template Status adamwStep<T>(T *, const T *, T *, T *, int64_t,              \
                               const AdamWConfig &, bool, int64_t, double);    \
  template double sumOfSquares<T>(const T *, int64_t);                         \
  template void scaleInPlace<T>(T *, int64_t, double);
PIPERT_INSTANTIATE(float)
PIPERT_INSTANTIATE(double)
#undef PIPERT_INSTANTIATE

} // namespace pipert::cpu
