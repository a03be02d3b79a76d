//===- AdamW.h - AdamW step, global gradient norm and clipping ------------===//
//
// The update follows optax.adamw (the JAX reference), per element:
//   g = grad * gradScale            (gradScale carries the clipping factor)
//   m = beta1 m + (1 - beta1) g
//   v = beta2 v + (1 - beta2) g^2
//   p = p - lr (m / (1 - beta1^t) / (sqrt(v / (1 - beta2^t)) + eps) + wd p)
// with wd = weightDecay for tensors that decay (2-D weights) and 0 for the
// rest. Constants (1 - beta1, the bias corrections) are computed in double
// and rounded once to T; the element update runs in T, elementwise, so the
// split across threads changes nothing.
//
// Global norm: every tensor's sum of squares is accumulated in double in a
// fixed order (fixed 16384-element chunks, 8 interleaved lanes inside a
// chunk, chunks added in ascending order), independent of the thread
// count; the caller adds the per-tensor sums in its canonical tensor order
// (globalNorm). Clipping follows optax.clip_by_global_norm: gradients are
// multiplied by maxNorm / norm when norm exceeds maxNorm.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_ADAMW_H
#define PIPERT_KERNELS_CPU_ADAMW_H

#include "kernels/cpu/Numerics.h"

#include "kernels/cpu/Reduce.h"
#include "kernels/cpu/Status.h"
#include "pipert/ZeroShard.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

namespace pipert::cpu {

/// Hyperparameters of one AdamW step (lr already scheduled for the step).
struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weightDecay = 0.0;
};

/// 1 - beta^step in double. Out of line, so that libm's pow runs at run time
/// even when step is a template argument (a folded pow may round otherwise).
double adamwBiasCorrection(double beta, int64_t step);

/// Updates param, m and v (n elements each) in place for step t (1-based).
/// decay selects decoupled weight decay for this tensor. Fails (writing
/// nothing) when step < 1.
template <typename T, int64_t... S>
inline Status adamwStep(T *param, const T *grad, T *m, T *v, int64_t nArg,
                        const AdamWConfig &config, bool decayArg,
                        int64_t stepArg, double gradScale = 1.0) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  const bool decay = detail::fixedOr<1, S...>(int64_t(decayArg)) != 0;
  const int64_t step = detail::fixedOr<2, S...>(stepArg);
  if (step < 1)
    return Status::failure("adamw: step " + std::to_string(step) +
                           " must be at least 1 (bias correction)");
  const T b1 = T(config.beta1), b2 = T(config.beta2);
  const T ob1 = T(1.0 - config.beta1), ob2 = T(1.0 - config.beta2);
  const T bc1 = T(adamwBiasCorrection(config.beta1, step));
  const T bc2 = T(adamwBiasCorrection(config.beta2, step));
  const T lr = T(config.lr), eps = T(config.eps),
          wd = decay ? T(config.weightDecay) : T(0);
  const T gs = T(gradScale);
#pragma omp parallel for schedule(static) if (n * 16 >= detail::kParallelWork)
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

namespace detail {
/// The norm chunks [first, first + count) of x (n elements): partial[j] is
/// chunk first + j's sum of squares in double, in the fixed lane order.
template <typename T>
inline void chunkSquares(const T *x, int64_t n, int64_t first, int64_t count,
                         double *partial) {
  constexpr int64_t kChunk = kNormChunk;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int64_t work =
      std::max<int64_t>(0, std::min(count * kChunk, n - first * kChunk)) * 2;
#pragma omp parallel for schedule(static) if (work >= kParallelWork)
  for (int64_t j = 0; j < count; ++j) {
    int64_t c = first + j;
    const T *xc = x + c * kChunk;
    int64_t len = c + 1 < chunks ? kChunk : n - c * kChunk;
    partial[j] = reduceFixed<double>(len, [xc](int64_t i) {
      double d = double(xc[i]);
      return d * d;
    });
  }
}
} // namespace detail

/// Sum of x[i]^2 in the fixed chunked order, accumulated in double.
template <typename T, int64_t... S>
inline double sumOfSquares(const T *x, int64_t nArg) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  // Partial sums of fixed 16K-element chunks, added in chunk order. The
  // partials live on the stack, a batch of chunks at a time, so the
  // optimizer step allocates nothing; batching does not change the order.
  constexpr int64_t kBatch = 256;
  int64_t chunks = normChunks(n);
  double total = 0;
  for (int64_t first = 0; first < chunks; first += kBatch) {
    int64_t count = std::min(kBatch, chunks - first);
    double partial[kBatch];
    detail::chunkSquares(x, n, first, count, partial);
    for (int64_t j = 0; j < count; ++j)
      total += partial[j];
  }
  return total;
}

/// ZeRO-1: the partial sums of squares of the norm chunks that elements
/// [first, first + count) of x (n elements) cover, into partial[c] for
/// each such chunk c; `first` is a chunk boundary and the range ends at
/// one or at n (pipert::zeroShard), so each partial has the bits
/// sumOfSquares adds for it.
template <typename T>
inline void shardSquares(const T *x, int64_t n, int64_t first, int64_t count,
                         double *partial) {
  if (count <= 0)
    return;
  const int64_t c0 = first / kNormChunk,
                c1 = normChunks(std::min(n, first + count));
  detail::chunkSquares(x, n, c0, c1 - c0, partial + c0);
}

/// sqrt of the sum of per-tensor squared norms, added in ascending index.
double globalNorm(const double *squares, int64_t count);

/// The factor clipping multiplies gradients by: maxNorm / norm when
/// norm > maxNorm > 0, else 1 (maxNorm <= 0 turns clipping off).
double clipScale(double norm, double maxNorm);

/// x[i] = x[i] * T(scale).
template <typename T, int64_t... S>
inline void scaleInPlace(T *x, int64_t nArg, double scale) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  const T s = T(scale);
#pragma omp parallel for schedule(static) if (n >= detail::kParallelWork)
  for (int64_t i = 0; i < n; ++i)
    x[i] = x[i] * s;
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_ADAMW_H
