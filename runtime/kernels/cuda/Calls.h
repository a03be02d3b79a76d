//===- Calls.h - the cuda kernels as kernel.call runs them -----*- C++ -*-===//
//
// One function per entry of runtime/kernels/cuda/KernelList.def, named as
// the kernel.call names it, taking the rank's Context, then its pointers
// (results, state, operands), its integers and its reals, and returning the
// plan ABI's Status (kernels/cpu/Status.h: a message, no cpu code). Each
// launches the kernels of this library (Kernels.h, Gemm.h) on the context's
// stream and turns a launch or cuBLASLt error into a failure naming the
// kernel. Storage follows --nn-storage{type=bf16} and the lowering
// (docs/NUMERICS.md): bf16 activations and weight copies, fp32 statistics,
// accumulators, masters and moments, double scalars. This file is the only
// map from a kernel.call to the cuda library; it holds no kernels.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_CALLS_H
#define PIPERT_KERNELS_CUDA_CALLS_H

#include "kernels/cpu/CallArgs.h"
#include "kernels/cpu/RopeAngles.h"
#include "kernels/cpu/Status.h"
#include "kernels/cuda/Gemm.h"
#include "kernels/cuda/GraphReplay.h"
#include "kernels/cuda/HostInputs.h"
#include "kernels/cuda/KernelEvents.h"
#include "kernels/cuda/Kernels.h"
#include "kernels/cuda/PollWait.h"
#include "kernels/cuda/StepGraph.h"
#include "pipert/ZeroShard.h"

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace pipert::cuda::call {

using pipert::cpu::Status;
using P = pipert::cpu::call::AnyPtr;
using bf16 = __nv_bfloat16;

/// The rotary embedding's fp32 angle tables of one (seq, headDim, theta),
/// computed once per rank on the host with the cpu kernels' ropeAngles
/// (double, rounded once) and copied into the call's scratch. They live in
/// pinned host memory that never changes, so the copy can be captured in a
/// CUDA graph (GraphReplay.h) and replayed.
class RopeTables {
public:
  struct Tables {
    float *cos = nullptr, *sin = nullptr; ///< pinned; null until made
    size_t n = 0;
    Tables() = default;
    Tables(const Tables &) = delete;
    Tables &operator=(const Tables &) = delete;
    ~Tables() {
      if (cos)
        cudaFreeHost(cos);
      if (sin)
        cudaFreeHost(sin);
    }
  };
  /// The tables of (seq, headDim, theta), made on first use; null members
  /// when pinned memory cannot be had.
  const Tables &get(int64_t seq, int64_t headDim, double theta) {
    uint64_t bits;
    std::memcpy(&bits, &theta, sizeof bits);
    Tables &t = tables[{seq, headDim, bits}];
    if (!t.cos && seq * (headDim / 2) > 0) {
      size_t n = size_t(seq * (headDim / 2));
      std::vector<double> c(n), s(n);
      pipert::cpu::ropeAngles(c.data(), s.data(), seq, headDim, theta);
      void *pc = nullptr, *ps = nullptr;
      if (cudaMallocHost(&pc, n * sizeof(float)) != cudaSuccess ||
          cudaMallocHost(&ps, n * sizeof(float)) != cudaSuccess) {
        if (pc)
          cudaFreeHost(pc);
        return t;
      }
      t.cos = static_cast<float *>(pc);
      t.sin = static_cast<float *>(ps);
      t.n = n;
      for (size_t i = 0; i < n; ++i) {
        t.cos[i] = float(c[i]);
        t.sin[i] = float(s[i]);
      }
    }
    return t;
  }

private:
  std::map<std::tuple<int64_t, int64_t, uint64_t>, Tables> tables;
};

/// What every call of one rank gets: its device, compute stream and GEMMs.
struct Context {
  cudaStream_t stream = nullptr;
  Gemm *gemm = nullptr;
  int device = 0;
  RopeTables *rope = nullptr;
  /// The rank's timing events (pipec-plan --profile; KernelEvents.h).
  KernelEvents *events = nullptr;
  /// The rank's captured functions (pipec-plan --cuda-graphs;
  /// GraphReplay.h); null: every kernel launched one by one.
  GraphCache *graphs = nullptr;
  /// The rank's cuBLASLt workspace, free between GEMMs: the column sums'
  /// partials (ColumnSums.cuh), the embedding gradient's sort
  /// (EmbeddingBackward.cu), the sum of squares' chunks (Optimizer.cuh).
  Workspace workspace;
  /// The rank's pinned slots for the host's inputs (copyHostInput); null:
  /// copied from the source.
  HostInputs *inputs = nullptr;
  /// The step's functions leave the stream running (endFunction): set by
  /// PlanTarget::deferSyncs where the transport orders the messages and
  /// carries out the collectives on the device (cuda-local's queues,
  /// nccl); the host reads the arena only after the executor drained the
  /// rank at the end of the step.
  bool deferSync = false;
  /// Set once the run is abandoned (cuda-local's queues: a rank failed):
  /// a synchronize then polls the stream and gives up instead of waiting
  /// for an event another, faulted device will never complete
  /// (PollWait.h). Null: cudaStreamSynchronize.
  const std::atomic<bool> *abandoned = nullptr;
  /// pipec-plan --step-graph: the process's whole-step graph (StepGraph.h),
  /// and the phase of the rank's current step in it.
  StepGraph *stepGraph = nullptr;
  int stepPhase = 0;
};

/// Times the enclosing kernel call of the generated code on the rank's
/// stream while the executor asks (the thread's KernelTimes table is set):
/// an event before the launch, one after; read at the next synchronize.
class KernelClock {
public:
  KernelClock(const Context &c, int32_t id)
      : c(c), on(pipert::threadKernelTimes != nullptr && c.events) {
    if (on)
      c.events->start(c.stream, id);
  }
  ~KernelClock() {
    if (on)
      c.events->stop(c.stream);
  }
  KernelClock(const KernelClock &) = delete;
  KernelClock &operator=(const KernelClock &) = delete;

private:
  const Context &c;
  bool on;
};

/// Makes the rank's device current on the calling thread (the executor
/// runs each rank on its own thread): the first statement of every
/// generated function.
inline Status enter(const Context &c) {
  cudaError_t e = cudaSetDevice(c.device);
  if (e == cudaSuccess)
    return Status::success();
  return Status::failure(std::string("cudaSetDevice: ") +
                         cudaGetErrorString(e));
}

/// The Status of a launch or a cuBLASLt call of `kernel`.
inline Status check(cudaError_t e, const char *kernel) {
  if (e == cudaSuccess)
    return Status::success();
  return Status::failure(std::string(kernel) + ": " + cudaGetErrorString(e));
}
inline Status check(cublasStatus_t s, const char *kernel) {
  if (s == CUBLAS_STATUS_SUCCESS)
    return Status::success();
  return Status::failure(std::string(kernel) + ": cuBLASLt " +
                         gemmStatusString(s));
}
/// The first failure of a sequence of launches.
#define PIPERT_CUDA_CALL(expr, kernel)                                         \
  do {                                                                         \
    Status st_ = check((expr), kernel);                                        \
    if (!st_.ok())                                                             \
      return st_;                                                              \
  } while (0)

//===----------------------------------------------------------------------===//
// What the generated code does besides kernel calls
//===----------------------------------------------------------------------===//

/// n bytes from src to dst in the arena, on the rank's stream.
inline Status copyBytes(const Context &c, void *dst, const void *src,
                        int64_t n) {
  return check(cudaMemcpyAsync(dst, src, size_t(n), cudaMemcpyDefault,
                               c.stream),
               "copy");
}
/// n bytes of a host input (the micro-batch's tokens, targets and loss
/// scale; the step) to dst in the arena, on the rank's stream, through the
/// rank's pinned slots (HostInputs.h): the source may be rewritten at
/// once, and the host does not wait for the stream.
/// `what` names the function and input for a failure (which may also be
/// an earlier kernel's fault, seen here first when chunks do not wait).
inline Status copyHostInput(const Context &c, void *dst, const void *src,
                            int64_t n, const char *what) {
  if (!c.inputs)
    return check(cudaMemcpyAsync(dst, src, size_t(n), cudaMemcpyDefault,
                                 c.stream),
                 what);
  return check(c.inputs->copy(dst, src, n, c.stream), what);
}
/// n zero bytes at dst in the arena, on the rank's stream.
inline Status zeroBytes(const Context &c, void *dst, int64_t n) {
  return check(cudaMemsetAsync(dst, 0, size_t(n), c.stream), "zero");
}
/// A query's answer (cudaStreamQuery, cudaEventQuery), as it was.
/// NotReady is not a fault, but the runtime records it as the thread's
/// last error, where the next launch's check (cudaPeekAtLastError) or a
/// cudaGetLastError would report it as one; it is cleared here (as
/// PyTorch's event queries do).
inline cudaError_t queried(cudaError_t e) {
  if (e == cudaErrorNotReady)
    (void)cudaGetLastError();
  return e;
}
/// Polls `stream` until its work is done or failed (`e` the last
/// answer), or `abandoned` is set (NotReady).
inline Polled pollStream(cudaStream_t stream,
                         const std::atomic<bool> *abandoned, cudaError_t &e) {
  return pollUntilDone(
      [&] {
        e = queried(cudaStreamQuery(stream));
        return e == cudaSuccess         ? Polled::Done
               : e == cudaErrorNotReady ? Polled::NotReady
                                        : Polled::Failed;
      },
      abandoned);
}
/// Waits for the rank's stream; a kernel's fault surfaces here, named by
/// `what` (the chunk and phase, or the optimizer part).
/// The kernels' times since the last one go into the thread's table.
inline Status synchronize(const Context &c, const char *what) {
  cudaError_t e = cudaSuccess;
  if (!c.abandoned) {
    e = cudaStreamSynchronize(c.stream);
  } else if (pollStream(c.stream, c.abandoned, e) == Polled::NotReady) {
    return Status::failure(std::string(what) +
                           ": abandoned while waiting for the device (another "
                           "rank failed)");
  }
  if (e == cudaSuccess) {
    e = cudaGetLastError();
    if (e == cudaErrorNotReady) // a query's answer, not a fault
      e = cudaSuccess;
  }
  if (e != cudaSuccess)
    return Status::failure(std::string(what) + ": " + cudaGetErrorString(e));
  if (c.events && pipert::threadKernelTimes)
    if (Status st = c.events->harvest(*pipert::threadKernelTimes); !st.ok())
      return Status::failure(std::string(what) + ": " + st.message());
  return Status::success();
}
/// The end of a function of the step (a chunk's F, B or W, the all-reduce
/// operands, the gradients, the optimizer, the working copies after an
/// all-gather). With the rank's syncs deferred the stream keeps their
/// order and the host goes on to the next instruction (the transport
/// orders messages and collectives by events; the same-rank hand-over is a
/// copy on the stream; host code reads the arena only after the
/// executor's drain at the end of the step): a launch's error shows here,
/// a fault while running at the step's drain (pipec-plan
/// --sync-each-function names the function). Otherwise, in the
/// steps the executor traces (their spans are the kernels') and while
/// kernels are timed (their events are read at a synchronize), the stream
/// is synchronized.
inline Status endFunction(const Context &c, const char *what) {
  if (!c.deferSync || pipert::threadStepTraced ||
      (c.events && pipert::threadKernelTimes))
    return synchronize(c, what);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    return Status::failure(std::string(what) + ": " + cudaGetErrorString(e));
  return Status::success();
}
/// pipec compile --debug-perturb-vjp on the cuda target: `n` values (bf16
/// or fp32) of a B result times kPerturbFactor, a negative control for
/// gpu-check (docs/CUDA.md): 1 + 2^-6, since the reference's 1 + 1e-3 is
/// under half a bf16 ulp and would round away.
constexpr float kPerturbFactor = 1.0f + 1.0f / 64.0f;
inline Status debug_perturb(const Context &c, P x, int64_t n, bool isBf16) {
  return check(scaleInPlace(x, n, kPerturbFactor, isBf16, c.stream),
               "debug_perturb");
}
/// The loss slot (a double in the arena) from a chunk's f32 loss.
inline Status store_loss(const Context &c, double *loss, const float *value) {
  return check(storeLoss(loss, value, c.stream), "store_loss");
}
/// The bf16 working copy of n fp32 masters (round to nearest even).
inline Status round_copy(const Context &c, P copy, P master, int64_t n) {
  return check(roundToBf16(copy, master, n, c.stream), "round_copy");
}

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

inline Status embedding_forward(const Context &c, P out, P table, P ids,
                                int64_t tokens, int64_t vocab, int64_t dim) {
  return check(embeddingForward(out, table, ids, tokens, vocab, dim, c.stream),
               "embedding_forward");
}
inline Status position_embedding_forward(const Context &c, P out, P table,
                                         int64_t length, int64_t dim) {
  return check(copy(out, table, length * dim, c.stream),
               "position_embedding_forward");
}
inline Status matmul_forward(const Context &c, P y, P x, P w, int64_t m,
                             int64_t k, int64_t n, int64_t transposeRhs) {
  return check(c.gemm->forward(y, x, w, nullptr, m, k, n, transposeRhs != 0,
                               c.stream),
               "matmul_forward");
}
inline Status matmul_bias_forward(const Context &c, P y, P x, P w, P bias,
                                  int64_t m, int64_t k, int64_t n,
                                  int64_t transposeRhs) {
  return check(c.gemm->forward(y, x, w, bias, m, k, n, transposeRhs != 0,
                               c.stream),
               "matmul_bias_forward");
}
inline Status add_forward(const Context &c, P y, P a, P b, int64_t n,
                          int64_t bn) {
  return check(addForward(y, a, b, n, bn, c.stream), "add_forward");
}
inline Status mul_forward(const Context &c, P y, P a, P b, int64_t n,
                          int64_t bn) {
  return check(mulForward(y, a, b, n, bn, c.stream), "mul_forward");
}
inline Status gelu_forward(const Context &c, P y, P x, int64_t n) {
  return check(geluForward(y, x, n, c.stream), "gelu_forward");
}
inline Status silu_forward(const Context &c, P y, P x, int64_t n) {
  return check(siluForward(y, x, n, c.stream), "silu_forward");
}
inline Status softmax_forward(const Context &c, P y, P x, int64_t rows,
                              int64_t dim) {
  return check(softmaxForward(y, x, rows, dim, c.stream), "softmax_forward");
}
inline Status slice_forward(const Context &c, P y, P x, int64_t outer,
                            int64_t dim, int64_t inner, int64_t offset,
                            int64_t size) {
  return check(slice(y, x, outer, dim, inner, offset, size, false, c.stream),
               "slice_forward");
}
inline Status copy(const Context &c, P y, P x, int64_t n) {
  return check(cuda::copy(y, x, n, c.stream), "copy");
}
inline Status transpose_forward(const Context &c, P y, P x, int64_t d0,
                                int64_t d1, int64_t d2, int64_t d3, int64_t d4,
                                int64_t d5, int64_t p0, int64_t p1, int64_t p2,
                                int64_t p3, int64_t p4, int64_t p5) {
  const int64_t dims[6] = {d0, d1, d2, d3, d4, d5};
  const int64_t perm[6] = {p0, p1, p2, p3, p4, p5};
  return check(transpose(y, x, dims, perm, c.stream), "transpose_forward");
}
/// The rotary embedding (forward, or its B, the transpose) with the
/// rank's cached tables copied into the call's scratch first.
inline Status ropeCall(const Context &c, P y, P cosT, P sinT, P x,
                       int64_t batch, int64_t seq, int64_t heads,
                       int64_t headDim, double theta, bool transpose,
                       const char *kernel) {
  if (!c.rope || headDim % 2 != 0)
    return Status::failure(std::string(kernel) +
                           ": no angle tables (an odd head size?)");
  const RopeTables::Tables &t = c.rope->get(seq, headDim, theta);
  if (!t.cos && seq * (headDim / 2) > 0)
    return Status::failure(std::string(kernel) +
                           ": no pinned host memory for the angle tables");
  size_t bytes = t.n * sizeof(float);
  if (bytes > 0) {
    PIPERT_CUDA_CALL(cudaMemcpyAsync(cosT, t.cos, bytes,
                                     cudaMemcpyHostToDevice, c.stream),
                     kernel);
    PIPERT_CUDA_CALL(cudaMemcpyAsync(sinT, t.sin, bytes,
                                     cudaMemcpyHostToDevice, c.stream),
                     kernel);
  }
  return check(rope(y, x, cosT, sinT, batch, seq, heads, headDim, transpose,
                    c.stream),
               kernel);
}
inline Status rope_forward(const Context &c, P y, P cosT, P sinT, P x,
                           int64_t batch, int64_t seq, int64_t heads,
                           int64_t headDim, double theta) {
  return ropeCall(c, y, cosT, sinT, x, batch, seq, heads, headDim, theta,
                  false, "rope_forward");
}
inline Status layernorm_forward(const Context &c, P y, P mean, P rstd, P x,
                                P gamma, P beta, int64_t rows, int64_t dim,
                                double eps) {
  return check(layernormForward(y, mean, rstd, x, gamma, beta, rows, dim,
                                float(eps), c.stream),
               "layernorm_forward");
}
inline Status rmsnorm_forward(const Context &c, P y, P rstd, P x, P gamma,
                              int64_t rows, int64_t dim, double eps) {
  return check(rmsnormForward(y, rstd, x, gamma, rows, dim, float(eps),
                              c.stream),
               "rmsnorm_forward");
}
inline AttentionShape attentionShape(int64_t batch, int64_t seqQ,
                                     int64_t seqKV, int64_t heads,
                                     int64_t kvHeads, int64_t headDim,
                                     int64_t causal, double scale) {
  AttentionShape s;
  s.batch = batch;
  s.seqQ = seqQ;
  s.seqKV = seqKV;
  s.heads = heads;
  s.kvHeads = kvHeads;
  s.headDim = headDim;
  s.causal = causal != 0;
  s.scale = scale;
  return s;
}
inline Status attention_forward(const Context &c, P out, P lse, P q, P k, P v,
                                int64_t batch, int64_t seqQ, int64_t seqKV,
                                int64_t heads, int64_t kvHeads,
                                int64_t headDim, int64_t causal,
                                double scale) {
  return check(attentionForward(out, lse, q, k, v,
                                attentionShape(batch, seqQ, seqKV, heads,
                                               kvHeads, headDim, causal,
                                               scale),
                                c.stream),
               "attention_forward");
}
/// The tiled kernels' shared memory fits a block of this device (sm_80
/// and sm_90 yes, sm_86 and sm_89 not at head size 128); else what to do.
inline Status flashFits(const Context &c, int64_t headDim, const char *kernel) {
  int optin = 0;
  cudaError_t e = cudaDeviceGetAttribute(
      &optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, c.device);
  if (e != cudaSuccess)
    return check(e, kernel);
  const int64_t need = flashAttentionSharedBytes(headDim);
  if (need <= optin)
    return Status::success();
  return Status::failure(
      std::string(kernel) + ": the tiled attention at head size " +
      std::to_string(headDim) + " needs " + std::to_string(need) +
      " bytes of shared memory a block, this GPU allows " +
      std::to_string(optin) +
      "; compile the plan with --attention rows");
}
/// The tiled tensor-core kernels (FlashAttention.cuh), which the lowering
/// chooses for the head sizes flashAttentionSupports.
inline Status flash_attention_forward(const Context &c, P out, P lse, P q,
                                      P k, P v, int64_t batch, int64_t seqQ,
                                      int64_t seqKV, int64_t heads,
                                      int64_t kvHeads, int64_t headDim,
                                      int64_t causal, double scale) {
  if (Status st = flashFits(c, headDim, "flash_attention_forward"); !st.ok())
    return st;
  return check(flashAttentionForward(out, lse, q, k, v,
                                     attentionShape(batch, seqQ, seqKV, heads,
                                                    kvHeads, headDim, causal,
                                                    scale),
                                     c.stream),
               "flash_attention_forward");
}
/// The mean loss of the rows (inference form): no gradient.
inline Status cross_entropy_forward(const Context &c, P loss, P rowLoss,
                                    P logits, P targets, int64_t rows,
                                    int64_t vocab, int64_t stride) {
  return check(softmaxCrossEntropy(loss, rowLoss, nullptr, logits, targets,
                                   nullptr, rows, vocab, stride, c.stream),
               "cross_entropy_forward");
}
inline Status softmax_cross_entropy(const Context &c, P loss, P dlogits,
                                    P rowLoss, P logits, P targets,
                                    P lossScale, int64_t rows, int64_t vocab,
                                    int64_t stride) {
  return check(softmaxCrossEntropy(loss, rowLoss, dlogits, logits, targets,
                                   lossScale, rows, vocab, stride, c.stream),
               "softmax_cross_entropy");
}

//===----------------------------------------------------------------------===//
// Fused forward units (--nn-fuse): the intermediate stored as the unfused
// pair stores it; the residual norms in one kernel (Layernorm.cuh,
// Rmsnorm.cuh), the matmul units as the GEMM and then the activation.
//===----------------------------------------------------------------------===//

inline Status matmul_gelu_forward(const Context &c, P pre, P y, P x, P w,
                                  int64_t m, int64_t k, int64_t n,
                                  int64_t transposeRhs) {
  PIPERT_CUDA_CALL(c.gemm->forward(pre, x, w, nullptr, m, k, n,
                                   transposeRhs != 0, c.stream),
                   "matmul_gelu_forward");
  return check(geluForward(y, pre, m * n, c.stream), "matmul_gelu_forward");
}
inline Status matmul_bias_gelu_forward(const Context &c, P pre, P y, P x, P w,
                                       P bias, int64_t m, int64_t k,
                                       int64_t n, int64_t transposeRhs) {
  PIPERT_CUDA_CALL(c.gemm->forward(pre, x, w, bias, m, k, n,
                                   transposeRhs != 0, c.stream),
                   "matmul_bias_gelu_forward");
  return check(geluForward(y, pre, m * n, c.stream),
               "matmul_bias_gelu_forward");
}
inline Status add_layernorm_forward(const Context &c, P sum, P y, P mean,
                                    P rstd, P a, P b, P gamma, P beta,
                                    int64_t rows, int64_t dim, double eps) {
  return check(addLayernormForward(sum, y, mean, rstd, a, b, gamma, beta,
                                   rows, dim, float(eps), c.stream),
               "add_layernorm_forward");
}
inline Status add_rmsnorm_forward(const Context &c, P sum, P y, P rstd, P a,
                                  P b, P gamma, int64_t rows, int64_t dim,
                                  double eps) {
  return check(addRmsnormForward(sum, y, rstd, a, b, gamma, rows, dim,
                                 float(eps), c.stream),
               "add_rmsnorm_forward");
}

//===----------------------------------------------------------------------===//
// B: gradients with respect to activations (written, never accumulated)
//===----------------------------------------------------------------------===//

inline Status matmul_backward_b(const Context &c, P dx, P dy, P w, int64_t m,
                                int64_t k, int64_t n, int64_t transposeRhs) {
  return check(c.gemm->backwardB(dx, dy, w, m, k, n, transposeRhs != 0,
                                 c.stream),
               "matmul_backward_b");
}
inline Status layernorm_backward_b(const Context &c, P dx, P dy, P x, P mean,
                                   P rstd, P gamma, int64_t rows,
                                   int64_t dim) {
  return check(layernormBackwardB(dx, dy, x, mean, rstd, gamma, rows, dim,
                                  c.stream),
               "layernorm_backward_b");
}
inline Status rmsnorm_backward_b(const Context &c, P dx, P dy, P x, P rstd,
                                 P gamma, int64_t rows, int64_t dim) {
  return check(rmsnormBackwardB(dx, dy, x, rstd, gamma, rows, dim, c.stream),
               "rmsnorm_backward_b");
}
inline Status gelu_backward_b(const Context &c, P dx, P dy, P x, int64_t n) {
  return check(geluBackward(dx, dy, x, n, c.stream), "gelu_backward_b");
}
inline Status silu_backward_b(const Context &c, P dx, P dy, P x, int64_t n) {
  return check(siluBackward(dx, dy, x, n, c.stream), "silu_backward_b");
}
inline Status softmax_backward_b(const Context &c, P dx, P dy, P y,
                                 int64_t rows, int64_t dim) {
  return check(softmaxBackwardB(dx, dy, y, rows, dim, c.stream),
               "softmax_backward_b");
}
/// The broadcast operand's gradient: written in bf16 (B) or added into an
/// fp32 accumulator (W, accumulate = 1).
inline Status add_backward_broadcast(const Context &c, P db, P dy, int64_t n,
                                     int64_t bn, int64_t accumulate) {
  return check(accumulate
                   ? columnSumsInto(db, dy, nullptr, n, bn, c.workspace,
                                    c.stream)
                   : columnSums(db, dy, nullptr, n, bn, c.workspace, c.stream),
               "add_backward_broadcast");
}
inline Status mul_backward_lhs(const Context &c, P da, P dy, P b, int64_t n,
                               int64_t bn) {
  return check(mulForward(da, dy, b, n, bn, c.stream), "mul_backward_lhs");
}
inline Status mul_backward_rhs(const Context &c, P db, P dy, P a, int64_t n,
                               int64_t bn, int64_t accumulate) {
  return check(accumulate
                   ? columnSumsInto(db, dy, a, n, bn, c.workspace, c.stream)
                   : columnSums(db, dy, a, n, bn, c.workspace, c.stream),
               "mul_backward_rhs");
}
inline Status slice_backward_b(const Context &c, P dx, P dy, int64_t outer,
                               int64_t dim, int64_t inner, int64_t offset,
                               int64_t size) {
  return check(slice(dx, dy, outer, dim, inner, offset, size, true, c.stream),
               "slice_backward_b");
}
inline Status slices3_backward_b(const Context &c, P dx, P dy0, P dy1, P dy2,
                                 int64_t outer, int64_t dim, int64_t inner,
                                 int64_t off0, int64_t size0, int64_t off1,
                                 int64_t size1, int64_t off2, int64_t size2) {
  const int64_t off[3] = {off0, off1, off2}, size[3] = {size0, size1, size2};
  return check(slices3(dx, dy0, dy1, dy2, outer, dim, inner, off, size,
                       c.stream),
               "slices3_backward_b");
}
inline Status rope_backward_b(const Context &c, P dx, P cosT, P sinT, P dy,
                              int64_t batch, int64_t seq, int64_t heads,
                              int64_t headDim, double theta) {
  return ropeCall(c, dx, cosT, sinT, dy, batch, seq, heads, headDim, theta,
                  true, "rope_backward_b");
}
inline Status attention_backward_b(const Context &c, P dq, P dk, P dv, P dout,
                                   P q, P k, P v, P out, P lse, int64_t batch,
                                   int64_t seqQ, int64_t seqKV, int64_t heads,
                                   int64_t kvHeads, int64_t headDim,
                                   int64_t causal, double scale) {
  return check(attentionBackwardB(dq, dk, dv, dout, q, k, v, out, lse,
                                  attentionShape(batch, seqQ, seqKV, heads,
                                                 kvHeads, headDim, causal,
                                                 scale),
                                  c.stream),
               "attention_backward_b");
}
/// `rowDot`: fp32 scratch of batch * heads * seqQ after the op's results.
inline Status flash_attention_backward_b(const Context &c, P dq, P dk, P dv,
                                         P rowDot, P dout, P q, P k, P v,
                                         P out, P lse, int64_t batch,
                                         int64_t seqQ, int64_t seqKV,
                                         int64_t heads, int64_t kvHeads,
                                         int64_t headDim, int64_t causal,
                                         double scale) {
  if (Status st = flashFits(c, headDim, "flash_attention_backward_b");
      !st.ok())
    return st;
  return check(flashAttentionBackwardB(dq, dk, dv, rowDot, dout, q, k, v, out,
                                       lse,
                                       attentionShape(batch, seqQ, seqKV,
                                                      heads, kvHeads, headDim,
                                                      causal, scale),
                                       c.stream),
               "flash_attention_backward_b");
}

//===----------------------------------------------------------------------===//
// W: adds into the fp32 accumulator of one parameter use
//===----------------------------------------------------------------------===//

inline Status matmul_backward_w(const Context &c, P dw, P x, P dy, int64_t m,
                                int64_t k, int64_t n, int64_t transposeRhs) {
  return check(c.gemm->backwardW(dw, x, dy, m, k, n, transposeRhs != 0,
                                 c.stream),
               "matmul_backward_w");
}
inline Status matmul_bias_backward_w(const Context &c, P dw, P db, P x, P dy,
                                     int64_t m, int64_t k, int64_t n,
                                     int64_t transposeRhs) {
  PIPERT_CUDA_CALL(c.gemm->backwardW(dw, x, dy, m, k, n, transposeRhs != 0,
                                     c.stream),
                   "matmul_bias_backward_w");
  return check(
      columnSumsInto(db, dy, nullptr, m * n, n, c.workspace, c.stream),
               "matmul_bias_backward_w");
}
inline Status layernorm_backward_w(const Context &c, P dgamma, P dbeta, P dy,
                                   P x, P mean, P rstd, int64_t rows,
                                   int64_t dim) {
  return check(layernormBackwardW(dgamma, dbeta, dy, x, mean, rstd, rows, dim,
                                  c.workspace, c.stream),
               "layernorm_backward_w");
}
inline Status rmsnorm_backward_w(const Context &c, P dgamma, P dy, P x,
                                 P rstd, int64_t rows, int64_t dim) {
  return check(rmsnormBackwardW(dgamma, dy, x, rstd, rows, dim, c.workspace,
                                c.stream),
               "rmsnorm_backward_w");
}
inline Status embedding_backward_w(const Context &c, P dtable, P dy, P ids,
                                   int64_t tokens, int64_t vocab,
                                   int64_t dim) {
  return check(embeddingBackwardW(dtable, dy, ids, tokens, vocab, dim,
                                  c.workspace, c.stream),
               "embedding_backward_w");
}
inline Status position_embedding_backward_w(const Context &c, P dtable, P dy,
                                            int64_t length, int64_t dim) {
  return check(cuda::accumulate(dtable, dy, length * dim, c.stream),
               "position_embedding_backward_w");
}
/// acc += grad (a parameter used as an activation); the cpu's copy form
/// (accumulate = 0) is an accumulator's first use, which the lowering
/// never builds (accumulators start at zero).
inline Status accumulate(const Context &c, P acc, P grad, int64_t n,
                         int64_t accumulateFlag) {
  if (!accumulateFlag)
    return Status::failure("accumulate: the cuda target adds into "
                           "accumulators only (accumulate = 0)");
  return check(cuda::accumulate(acc, grad, n, c.stream), "accumulate");
}

//===----------------------------------------------------------------------===//
// The optimizer step: results in device memory
//===----------------------------------------------------------------------===//

/// g = the per-use accumulators (a host array of device pointers) in use
/// order.
inline Status sum_uses(const Context &c, P g, const float *const *accs,
                       int64_t uses, int64_t n) {
  return check(sumUses(g, accs, uses, n, c.stream), "sum_uses");
}
inline Status sum_squares(const Context &c, P out, P x, int64_t n) {
  return check(sumSquares(out, x, n, c.workspace, c.stream), "sum_squares");
}
/// Every sum_uses of a rank's gradients function at once (the emitter's
/// table): the bits of one sum_uses call each.
inline Status sum_uses_multi(const Context &c, const SumUsesTensor *tensors,
                             int64_t count) {
  return check(sumUsesMulti(tensors, count, c.stream), "sum_uses_multi");
}
/// Every sum_squares of a rank's gradients function at once (the
/// emitter's table): the bits of one sum_squares call each.
inline Status sum_squares_multi(const Context &c, const SquaresTensor *tensors,
                                int64_t count) {
  return check(sumSquaresMulti(tensors, count, c.workspace, c.stream),
               "sum_squares_multi");
}
/// ZeRO-1: this replica's norm chunks of every gradient its rank squares
/// (the emitter's table, each part from pipert::zeroShard), into the
/// all-reduce operand's slots.
inline Status shard_squares_multi(const Context &c,
                                  const ShardSquaresTensor *tensors,
                                  int64_t count) {
  return check(shardSquaresMulti(tensors, count, c.stream),
               "shard_squares_multi");
}
/// ZeRO-1: every parameter's sum of squares from the all-reduced chunk
/// sums, into the rank's workspace (free between GEMMs; the optimizer
/// step has none), where grad_norm reads them.
inline Status norm_totals(const Context &c, const NormTotalTensor *tensors,
                          int64_t count) {
  const auto *ws = static_cast<const uint8_t *>(c.workspace.p);
  for (int64_t i = 0; i < count; ++i) {
    const auto *out = reinterpret_cast<const uint8_t *>(tensors[i].out);
    if (!ws || out < ws || out + 8 > ws + c.workspace.bytes)
      return Status::failure(
          "norm_totals: " + std::to_string(count) +
          " parameters' sums of squares do not fit the rank's workspace of " +
          std::to_string(c.workspace.bytes) + " bytes");
  }
  return check(normTotals(tensors, count, c.stream), "norm_totals");
}
/// Where norm_totals leaves parameter p's sum of squares.
inline double *norm_total(const Context &c, int64_t p) {
  return static_cast<double *>(c.workspace.p) + p;
}
inline Status grad_norm(const Context &c, P out, const double *const *squares,
                        int64_t count) {
  return check(gradNorm(out, squares, count, c.stream), "grad_norm");
}
inline Status clip_scale(const Context &c, P out, P norm, double maxNorm) {
  return check(clipScale(out, norm, maxNorm, c.stream), "clip_scale");
}
inline Status lr_schedule(const Context &c, P out, P step, int64_t warmup,
                          int64_t decaySteps, int64_t cosine, double lr,
                          double minLr) {
  return check(cuda::lrSchedule(out, step, warmup, decaySteps, cosine != 0, lr,
                                minLr, c.stream),
               "lr_schedule");
}
inline Status adamw(const Context &c, P param, P m, P v, P copy, P grad, P lr,
                    P clip, P step, int64_t n, int64_t decay, double beta1,
                    double beta2, double eps, double weightDecay) {
  return check(cuda::adamw(param, copy, grad, m, v, n, lr, clip, step,
                           beta1, beta2, float(eps),
                           decay ? float(weightDecay) : 0.0f, c.stream),
               "adamw");
}

/// Every adamw of a rank's optimizer step in launches of 16 tensors (the
/// emitter's table; one lr, clip scale and step for all), the bits of
/// one adamw call each.
inline Status adamw_multi(const Context &c, const AdamWTensor *tensors,
                          int64_t count, P lr, P clip, P step) {
  return check(adamwMulti(tensors, count, lr, clip, step, c.stream),
               "adamw_multi");
}

#undef PIPERT_CUDA_CALL

} // namespace pipert::cuda::call

#endif // PIPERT_KERNELS_CUDA_CALLS_H
