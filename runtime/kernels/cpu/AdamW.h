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

#include "kernels/cpu/Status.h"

#include <cstdint>

namespace pipert::cpu {

/// Hyperparameters of one AdamW step (lr already scheduled for the step).
struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weightDecay = 0.0;
};

/// Updates param, m and v (n elements each) in place for step t (1-based).
/// decay selects decoupled weight decay for this tensor. Fails (writing
/// nothing) when step < 1.
template <typename T>
Status adamwStep(T *param, const T *grad, T *m, T *v, int64_t n,
                 const AdamWConfig &config, bool decay, int64_t step,
                 double gradScale = 1.0);

/// Sum of x[i]^2 in the fixed chunked order, accumulated in double.
template <typename T> double sumOfSquares(const T *x, int64_t n);

/// sqrt of the sum of per-tensor squared norms, added in ascending index.
double globalNorm(const double *squares, int64_t count);

/// The factor clipping multiplies gradients by: maxNorm / norm when
/// norm > maxNorm > 0, else 1 (maxNorm <= 0 turns clipping off).
double clipScale(double norm, double maxNorm);

/// x[i] = x[i] * T(scale).
template <typename T> void scaleInPlace(T *x, int64_t n, double scale);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_ADAMW_H
