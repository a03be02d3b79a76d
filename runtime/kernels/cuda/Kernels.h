//===- Kernels.h - the cuda kernel library's launchers, for C++ callers ------===//
//
// The first kernels of the cuda target (issue 12): each launcher takes a
// cudaStream_t, launches, and returns the launch's error. Storage: bf16
// activations and weight copies, fp32 masters, gradients, moments and
// statistics (docs/CUDA.md). Defined in the family headers (*.cuh), which
// Kernels.cu compiles into libpipert_kernels_cuda for sm_90a and sm_80.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_KERNELS_H
#define PIPERT_KERNELS_CUDA_KERNELS_H

#include "kernels/cuda/FlashSupport.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace pipert::cuda {

/// Device memory a launcher may use between its own kernels on its stream:
/// the rank's cuBLASLt workspace (every kernel of a rank runs on the
/// rank's one stream, so outside a GEMM it is free). {nullptr, 0}: none;
/// the kernels that would use it take their form without it.
struct Workspace {
  void *p = nullptr;
  int64_t bytes = 0;
};

/// The shape of one attention op (runtime/kernels/cpu/Attention.h's
/// AttentionShape): query head h reads kv head h / (heads / kvHeads).
struct AttentionShape {
  int64_t batch = 0, seqQ = 0, seqKV = 0, heads = 0, kvHeads = 0, headDim = 0;
  bool causal = true;
  double scale = 0;
};

/// y = gelu_tanh(x), n elements.
cudaError_t geluForward(__nv_bfloat16 *y, const __nv_bfloat16 *x, int64_t n,
                        cudaStream_t stream);
/// dx = dy * gelu_tanh'(x).
cudaError_t geluBackward(__nv_bfloat16 *dx, const __nv_bfloat16 *dy,
                         const __nv_bfloat16 *x, int64_t n,
                         cudaStream_t stream);
/// y = silu(x) = x / (1 + exp(-x)); dx = dy * silu'(x).
cudaError_t siluForward(__nv_bfloat16 *y, const __nv_bfloat16 *x, int64_t n,
                        cudaStream_t stream);
cudaError_t siluBackward(__nv_bfloat16 *dx, const __nv_bfloat16 *dy,
                         const __nv_bfloat16 *x, int64_t n,
                         cudaStream_t stream);
/// y = x * rstd * gamma per row of dim, rstd fp32; and its B.
cudaError_t rmsnormForward(__nv_bfloat16 *y, float *rstd,
                           const __nv_bfloat16 *x, const __nv_bfloat16 *gamma,
                           int64_t rows, int64_t dim, float eps,
                           cudaStream_t stream);
/// sum = bf16(a + b), then the rmsnorm of sum, in one pass over a row.
cudaError_t addRmsnormForward(__nv_bfloat16 *sum, __nv_bfloat16 *y,
                              float *rstd, const __nv_bfloat16 *a,
                              const __nv_bfloat16 *b,
                              const __nv_bfloat16 *gamma, int64_t rows,
                              int64_t dim, float eps, cudaStream_t stream);
cudaError_t rmsnormBackwardB(__nv_bfloat16 *dx, const __nv_bfloat16 *dy,
                             const __nv_bfloat16 *x, const float *rstd,
                             const __nv_bfloat16 *gamma, int64_t rows,
                             int64_t dim, cudaStream_t stream);
/// Rotary embedding (Llama rotate-half) of [batch, seq, heads * headDim],
/// with the fp32 tables cos/sin [seq, headDim / 2] the runtime computes
/// once (in double, rounded once, as the cpu kernel); transpose: the B.
cudaError_t rope(__nv_bfloat16 *y, const __nv_bfloat16 *x, const float *cosT,
                 const float *sinT, int64_t batch, int64_t seq, int64_t heads,
                 int64_t headDim, bool transpose, cudaStream_t stream);
/// y = (x - mean) * rstd * gamma + beta per row of dim; mean and rstd fp32.
cudaError_t layernormForward(__nv_bfloat16 *y, float *mean, float *rstd,
                             const __nv_bfloat16 *x,
                             const __nv_bfloat16 *gamma,
                             const __nv_bfloat16 *beta, int64_t rows,
                             int64_t dim, float eps, cudaStream_t stream);
/// sum = bf16(a + b), then the layernorm of sum, in one pass over a row:
/// the bits of addForward followed by layernormForward.
cudaError_t addLayernormForward(__nv_bfloat16 *sum, __nv_bfloat16 *y,
                                float *mean, float *rstd,
                                const __nv_bfloat16 *a, const __nv_bfloat16 *b,
                                const __nv_bfloat16 *gamma,
                                const __nv_bfloat16 *beta, int64_t rows,
                                int64_t dim, float eps, cudaStream_t stream);
/// B: dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma.
cudaError_t layernormBackwardB(__nv_bfloat16 *dx, const __nv_bfloat16 *dy,
                               const __nv_bfloat16 *x, const float *mean,
                               const float *rstd, const __nv_bfloat16 *gamma,
                               int64_t rows, int64_t dim, cudaStream_t stream);
/// out[t] = table[ids[t]] (an id outside [0, vocab) gives zeros).
cudaError_t embeddingForward(__nv_bfloat16 *out, const __nv_bfloat16 *table,
                             const int32_t *ids, int64_t tokens, int64_t vocab,
                             int64_t dim, cudaStream_t stream);
/// dtable[ids[t]] += dout[t], fp32, tokens in ascending order, no atomics
/// (EmbeddingBackward.cu: the tokens grouped by id in the workspace).
cudaError_t embeddingBackwardW(float *dtable, const __nv_bfloat16 *dout,
                               const int32_t *ids, int64_t tokens,
                               int64_t vocab, int64_t dim, Workspace ws,
                               cudaStream_t stream);
/// One AdamW step of n fp32 masters; copy gets them rounded to bf16. The
/// learning rate, clip scale and 0-based step are read from device memory.
cudaError_t adamw(float *param, __nv_bfloat16 *copy, const float *grad,
                  float *m, float *v, int64_t n, const double *lr,
                  const double *clip, const int64_t *step, double beta1,
                  double beta2, float eps, float weightDecay,
                  cudaStream_t stream);
/// One parameter of a multi-tensor AdamW: its fp32 master, bf16 working
/// copy, gradient and moments (n elements), and its hyperparameters:
/// the betas in double, as the contract computes 1 - beta and the bias
/// corrections from them (cpu/AdamW.h).
struct AdamWTensor {
  float *param;
  __nv_bfloat16 *copy;
  const float *grad;
  float *m, *v;
  int64_t n;
  double beta1, beta2;
  float eps, weightDecay;
};
/// adamw of every tensor, 16 a launch: the same bits as one adamw each.
cudaError_t adamwMulti(const AdamWTensor *tensors, int64_t count,
                       const double *lr, const double *clip,
                       const int64_t *step, cudaStream_t stream);

// Optimizer.cuh: results in device memory. accs and squares are host
// arrays of device pointers.
/// g = accs[0] + accs[1] + ... (use order; zeros for none).
cudaError_t sumUses(float *g, const float *const *accs, int64_t uses,
                    int64_t n, cudaStream_t stream);
/// *out = sum of x[i]^2 in double (chunks' sums in the workspace, then
/// one block over them; Optimizer.cuh).
cudaError_t sumSquares(double *out, const float *x, int64_t n, Workspace ws,
                       cudaStream_t stream);
/// One gradient of a multi-tensor sum over uses: g = accs[0] + ... +
/// accs[uses - 1] over n elements.
struct SumUsesTensor {
  float *g;
  const float *const *accs;
  int64_t uses, n;
};
/// sumUses of every tensor, 16 a launch: the bits of one sumUses each.
cudaError_t sumUsesMulti(const SumUsesTensor *tensors, int64_t count,
                         cudaStream_t stream);
/// One sum of squares: *out = sum of x[i]^2 over n.
struct SquaresTensor {
  const float *x;
  int64_t n;
  double *out;
};
/// sumSquares of every tensor, 32 a pack in three launches (the small
/// tensors, the larger ones' chunks, their chunk sums): each result the
/// bits of its own sumSquares.
cudaError_t sumSquaresMulti(const SquaresTensor *tensors, int64_t count,
                            Workspace ws, cudaStream_t stream);
/// ZeRO-1 (pipert/ZeroShard.h): one replica's part [first, first +
/// count) of a gradient x of n elements, whose norm chunks' sums of
/// squares go to slots[chunk] (slots: the parameter's first norm slot);
/// `first` is a multiple of kNormChunk, as the rule's parts are.
struct ShardSquaresTensor {
  const float *x;
  int64_t n, first, count;
  double *slots;
};
/// Each tensor's chunk sums over its part: the bits sumSquares and
/// sumSquaresMulti give those chunks of the whole (a one-chunk tensor's
/// slot: its whole sum). Fails on a part that starts inside a chunk.
cudaError_t shardSquaresMulti(const ShardSquaresTensor *tensors,
                              int64_t count, cudaStream_t stream);
/// ZeRO-1: a parameter of n elements whose norm chunks' sums (every
/// replica's, all-reduced) are at slots; *out its sum of squares.
struct NormTotalTensor {
  const double *slots;
  int64_t n;
  double *out;
};
/// Each tensor's total from its chunks' sums, 32 a launch: the bits of
/// sumSquares of the whole gradient, so ZeRO-1 keeps the norm, the clip
/// scale and every update of the plan without it.
cudaError_t normTotals(const NormTotalTensor *tensors, int64_t count,
                       cudaStream_t stream);
/// *out = sqrt(sum of *squares[i]) in order.
cudaError_t gradNorm(double *out, const double *const *squares, int64_t count,
                     cudaStream_t stream);
/// *out = maxNorm / *norm when *norm > maxNorm > 0, else 1.
cudaError_t clipScale(double *out, const double *norm, double maxNorm,
                      cudaStream_t stream);
/// *out = the learning rate of step *step (pipert::LrSchedule::at).
cudaError_t lrSchedule(double *out, const int64_t *step, int64_t warmup,
                       int64_t decaySteps, bool cosine, double lr,
                       double minLr, cudaStream_t stream);

// ColumnSums.cuh: sums over the rows in ColumnSumPlan.h's order, with the
// workspace for the chunks' partial sums.
/// W: dgamma += sum_r dy xhat, dbeta += sum_r dy (fp32 accumulators).
cudaError_t layernormBackwardW(float *dgamma, float *dbeta,
                               const __nv_bfloat16 *dy, const __nv_bfloat16 *x,
                               const float *mean, const float *rstd,
                               int64_t rows, int64_t dim, Workspace ws,
                               cudaStream_t stream);
/// W: dgamma += sum_r dy x rstd (fp32 accumulator).
cudaError_t rmsnormBackwardW(float *dgamma, const __nv_bfloat16 *dy,
                             const __nv_bfloat16 *x, const float *rstd,
                             int64_t rows, int64_t dim, Workspace ws,
                             cudaStream_t stream);
/// db[c] = sum over the n / bn rows of dy[r, c] (* a[r, c] when a is not
/// null): the broadcast operand's B.
cudaError_t columnSums(__nv_bfloat16 *db, const __nv_bfloat16 *dy,
                       const __nv_bfloat16 *a, int64_t n, int64_t bn,
                       Workspace ws, cudaStream_t stream);
/// acc[c] += the same sums: a broadcast parameter's W.
cudaError_t columnSumsInto(float *acc, const __nv_bfloat16 *dy,
                           const __nv_bfloat16 *a, int64_t n, int64_t bn,
                           Workspace ws, cudaStream_t stream);

// Elementwise.cuh: b has bn elements, broadcast as b[i % bn].
cudaError_t addForward(__nv_bfloat16 *y, const __nv_bfloat16 *a,
                       const __nv_bfloat16 *b, int64_t n, int64_t bn,
                       cudaStream_t stream);
cudaError_t mulForward(__nv_bfloat16 *y, const __nv_bfloat16 *a,
                       const __nv_bfloat16 *b, int64_t n, int64_t bn,
                       cudaStream_t stream);
/// x[i] *= factor in place, n bf16 (rounded once) or fp32 values.
cudaError_t scaleInPlace(void *x, int64_t n, float factor, bool isBf16,
                         cudaStream_t stream);
/// acc[i] += x[i].
cudaError_t accumulate(float *acc, const __nv_bfloat16 *x, int64_t n,
                       cudaStream_t stream);
cudaError_t copy(__nv_bfloat16 *y, const __nv_bfloat16 *x, int64_t n,
                 cudaStream_t stream);
/// *loss = double(*value): a chunk's loss into the rank's loss slot.
cudaError_t storeLoss(double *loss, const float *value, cudaStream_t stream);
/// y[i] = x[i] rounded to bf16 (nearest, ties to even): a working copy.
cudaError_t roundToBf16(__nv_bfloat16 *y, const float *x, int64_t n,
                        cudaStream_t stream);
/// B of three slices of one tensor summed: dx [outer, dim, inner] holds
/// dy_w in the disjoint windows (off[w], size[w]) along dim, zeros
/// elsewhere (every element written once).
cudaError_t slices3(__nv_bfloat16 *dx, const __nv_bfloat16 *dy0,
                    const __nv_bfloat16 *dy1, const __nv_bfloat16 *dy2,
                    int64_t outer, int64_t dim, int64_t inner,
                    const int64_t off[3], const int64_t size[3],
                    cudaStream_t stream);

/// x [outer, dim, inner] sliced to [outer, size, inner] at offset; or its B
/// (y = dx [outer, dim, inner], zeros outside the slice).
cudaError_t slice(__nv_bfloat16 *y, const __nv_bfloat16 *x, int64_t outer,
                  int64_t dim, int64_t inner, int64_t offset, int64_t size,
                  bool backward, cudaStream_t stream);
/// y's axis a is x's axis perm[a], six axes.
cudaError_t transpose(__nv_bfloat16 *y, const __nv_bfloat16 *x,
                      const int64_t dims[6], const int64_t perm[6],
                      cudaStream_t stream);

// Softmax.cuh: over the last axis of [rows, dim].
cudaError_t softmaxForward(__nv_bfloat16 *y, const __nv_bfloat16 *x,
                           int64_t rows, int64_t dim, cudaStream_t stream);
cudaError_t softmaxBackwardB(__nv_bfloat16 *dx, const __nv_bfloat16 *dy,
                             const __nv_bfloat16 *y, int64_t rows, int64_t dim,
                             cudaStream_t stream);

/// CrossEntropy.cuh: logits [rows, stride] of which the first vocab columns
/// count; *loss = mean of rowLoss (fp32 [rows], scratch the caller owns);
/// dlogits (may be null: the inference form, may alias logits) = (softmax -
/// onehot) * (*lossScale / rows), zeros in the padding.
cudaError_t softmaxCrossEntropy(float *loss, float *rowLoss,
                                __nv_bfloat16 *dlogits,
                                const __nv_bfloat16 *logits,
                                const int32_t *targets,
                                const double *lossScale, int64_t rows,
                                int64_t vocab, int64_t stride,
                                cudaStream_t stream);

// Attention.cuh: headDim <= 256.
cudaError_t attentionForward(__nv_bfloat16 *out, float *lse,
                             const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                             const __nv_bfloat16 *v, const AttentionShape &s,
                             cudaStream_t stream);
cudaError_t attentionBackwardB(__nv_bfloat16 *dq, __nv_bfloat16 *dk,
                               __nv_bfloat16 *dv, const __nv_bfloat16 *dout,
                               const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                               const __nv_bfloat16 *v,
                               const __nv_bfloat16 *out, const float *lse,
                               const AttentionShape &s, cudaStream_t stream);

// FlashAttention.cuh: head sizes flashAttentionSupports (FlashSupport.h)
// takes, tensors 16-byte aligned (the arena aligns them to 256); otherwise
// cudaErrorInvalidValue. The backward's `dRow` is fp32 scratch of
// batch * heads * seqQ (D = dout . out per query row).
/// The most dynamic shared memory a block of the tiled kernels asks at
/// `headDim` (0 for a head size they are not built for).
int64_t flashAttentionSharedBytes(int64_t headDim);
cudaError_t flashAttentionForward(__nv_bfloat16 *out, float *lse,
                                  const __nv_bfloat16 *q,
                                  const __nv_bfloat16 *k,
                                  const __nv_bfloat16 *v,
                                  const AttentionShape &s,
                                  cudaStream_t stream);
cudaError_t flashAttentionBackwardB(
    __nv_bfloat16 *dq, __nv_bfloat16 *dk, __nv_bfloat16 *dv, float *dRow,
    const __nv_bfloat16 *dout, const __nv_bfloat16 *q, const __nv_bfloat16 *k,
    const __nv_bfloat16 *v, const __nv_bfloat16 *out, const float *lse,
    const AttentionShape &s, cudaStream_t stream);

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_KERNELS_H
