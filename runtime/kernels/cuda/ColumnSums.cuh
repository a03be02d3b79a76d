//===- ColumnSums.cuh - sums over the rows: bias gradients, norms' W ===//
//
// Every reduction over the rows of a rows x cols matrix: the broadcast
// operand's B (bf16) and W (into its fp32 accumulator), a matmul's bias
// gradient, layernorm's dgamma and dbeta and rmsnorm's dgamma. The split
// and the order of the sums are ColumnSumPlan.h's: blocks of kSumWarps
// warps over (a tile of columns, a chunk of rows), each warp adding its
// strided rows from zero, the warps added in order; with more than one
// chunk, the chunk sums go to the rank's workspace and a second launch adds
// them the same way. No atomics: each output is written by one thread, in
// an order fixed by the shape. Where the columns are a multiple of 8 and
// the operands 16-byte aligned a lane loads 8 columns at once (one 16-byte
// access); that changes which thread adds a column, never the order of its
// sum. Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_COLUMNSUMS_CUH
#define PIPERT_KERNELS_CUDA_COLUMNSUMS_CUH

#include "kernels/cuda/ColumnSumPlan.h"
#include "kernels/cuda/Kernels.h"
#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

// --- the terms of a row ------------------------------------------------------

/// dy[r, c] (* a[r, c] when a): a broadcast operand's or a bias's gradient.
struct BroadcastTerms {
  static constexpr int kOuts = 1;
  const bf16 *dy, *a;
  int64_t cols;
  template <int V>
  __device__ void add(float (&acc)[kOuts][V], int64_t r, int64_t c) const {
    float g[V];
    loadBf16<V>(g, dy + r * cols + c);
    if (a) {
      float x[V];
      loadBf16<V>(x, a + r * cols + c);
#pragma unroll
      for (int v = 0; v < V; ++v)
        g[v] = g[v] * x[v];
    }
#pragma unroll
    for (int v = 0; v < V; ++v)
      acc[0][v] += g[v];
  }
};

/// Layernorm's W: dy * xhat (dgamma) and dy (dbeta), xhat = (x - mean) rstd.
struct LayernormTerms {
  static constexpr int kOuts = 2;
  const bf16 *dy, *x;
  const float *mean, *rstd;
  int64_t cols;
  template <int V>
  __device__ void add(float (&acc)[kOuts][V], int64_t r, int64_t c) const {
    float g[V], xv[V];
    loadBf16<V>(g, dy + r * cols + c);
    loadBf16<V>(xv, x + r * cols + c);
    const float mu = mean[r], rs = rstd[r];
#pragma unroll
    for (int v = 0; v < V; ++v) {
      acc[0][v] += g[v] * ((xv[v] - mu) * rs);
      acc[1][v] += g[v];
    }
  }
};

/// Rmsnorm's W: dy * x * rstd.
struct RmsnormTerms {
  static constexpr int kOuts = 1;
  const bf16 *dy, *x;
  const float *rstd;
  int64_t cols;
  template <int V>
  __device__ void add(float (&acc)[kOuts][V], int64_t r, int64_t c) const {
    float g[V], xv[V];
    loadBf16<V>(g, dy + r * cols + c);
    loadBf16<V>(xv, x + r * cols + c);
    const float rs = rstd[r];
#pragma unroll
    for (int v = 0; v < V; ++v)
      acc[0][v] += g[v] * (xv[v] * rs);
  }
};

/// The second pass: row r is chunk r's partial sums ([K][chunks][cols]).
template <int K> struct PartialTerms {
  static constexpr int kOuts = K;
  const float *partials;
  int64_t chunks, cols;
  template <int V>
  __device__ void add(float (&acc)[kOuts][V], int64_t r, int64_t c) const {
#pragma unroll
    for (int k = 0; k < K; ++k)
#pragma unroll
      for (int v = 0; v < V; ++v)
        acc[k][v] += partials[(k * chunks + r) * cols + c + v];
  }
};

// --- where a block's sums go -------------------------------------------------

/// A chunk's sums into the workspace.
struct PartialSink {
  float *partials;
  int64_t chunks, cols;
  __device__ void put(int k, int64_t chunk, int64_t c, float s) const {
    partials[(k * chunks + chunk) * cols + c] = s;
  }
};

/// Added into fp32 accumulators (W): sum 0 into acc0, sum 1 into acc1 (two
/// members rather than an array, which a runtime index would put in
/// local memory).
struct IntoSink {
  float *acc0, *acc1;
  __device__ void put(int k, int64_t, int64_t c, float s) const {
    float *acc = k == 0 ? acc0 : acc1;
    acc[c] = acc[c] + s;
  }
};

/// Rounded once to bf16 (B).
struct StoreSink {
  bf16 *out;
  __device__ void put(int, int64_t, int64_t c, float s) const {
    out[c] = __float2bfloat16_rn(s);
  }
};

// --- kernels -----------------------------------------------------------------

/// One block: the columns [blockIdx.x * 32 V, + 32 V) over the rows of
/// chunk blockIdx.y (ColumnSumPlan.h's order).
template <int V, typename Terms, typename Sink>
__global__ void __launch_bounds__(kSumWarps * 32)
    columnSumsKernel(Terms terms, Sink sink, int64_t rows, int64_t cols,
                     int64_t chunkRows) {
  constexpr int K = Terms::kOuts, W = 32 * V;
  __shared__ float part[kSumWarps][K][W];
  const int warp = int(threadIdx.x / 32), lane = int(threadIdx.x % 32);
  const int64_t tile = int64_t(blockIdx.x) * W;
  const int64_t c = tile + int64_t(lane) * V;
  const int64_t first = int64_t(blockIdx.y) * chunkRows;
  const int64_t end = first + chunkRows < rows ? first + chunkRows : rows;
  float acc[K][V];
#pragma unroll
  for (int k = 0; k < K; ++k)
#pragma unroll
    for (int v = 0; v < V; ++v)
      acc[k][v] = 0.0f;
  // V = 8 only where cols is a multiple of 8: c < cols covers all 8.
  if (c < cols)
    for (int64_t r = first + warp; r < end; r += kSumWarps)
      terms.template add<V>(acc, r, c);
#pragma unroll
  for (int k = 0; k < K; ++k)
#pragma unroll
    for (int v = 0; v < V; ++v)
      part[warp][k][lane * V + v] = acc[k][v];
  __syncthreads();
  for (int j = int(threadIdx.x); j < K * W; j += kSumWarps * 32) {
    const int k = j / W, i = j % W;
    if (tile + i >= cols)
      continue;
    float s = part[0][k][i];
#pragma unroll
    for (int w = 1; w < kSumWarps; ++w)
      s += part[w][k][i];
    sink.put(k, int64_t(blockIdx.y), tile + i, s);
  }
}

// --- launchers ---------------------------------------------------------------

/// One pass of `plan` (its chunks as grid.y).
template <typename Terms, typename Sink>
cudaError_t launchColumnSums(const ColumnSumPlan &plan, bool vector8,
                             Terms terms, Sink sink, cudaStream_t stream) {
  const int64_t width = vector8 ? 8 * 32 : 32;
  const dim3 grid(unsigned((plan.cols + width - 1) / width),
                  unsigned(plan.chunks));
  if (vector8)
    columnSumsKernel<8><<<grid, kSumWarps * 32, 0, stream>>>(
        terms, sink, plan.rows, plan.cols, plan.chunkRows);
  else
    columnSumsKernel<1><<<grid, kSumWarps * 32, 0, stream>>>(
        terms, sink, plan.rows, plan.cols, plan.chunkRows);
  return launched();
}

/// The sums of `terms` over `rows` into `sink`: one pass, or chunk sums
/// into the workspace and a second pass over them.
template <typename Terms, typename Sink>
cudaError_t runColumnSums(Terms terms, Sink sink, int64_t rows, int64_t cols,
                          bool vector8, Workspace ws, cudaStream_t stream) {
  if (cols == 0)
    return cudaSuccess;
  const ColumnSumPlan plan =
      planColumnSums(rows, cols, Terms::kOuts, ws.p ? ws.bytes : 0);
  vector8 = vector8 && cols % 8 == 0;
  if (plan.chunks <= 1)
    return launchColumnSums(plan, vector8, terms, sink, stream);
  auto *partials = static_cast<float *>(ws.p);
  if (cudaError_t e = launchColumnSums(
          plan, vector8, terms, PartialSink{partials, plan.chunks, cols},
          stream);
      e != cudaSuccess)
    return e;
  ColumnSumPlan second;
  second.rows = plan.chunks;
  second.cols = cols;
  second.outs = plan.outs;
  second.chunkRows = plan.chunks;
  second.chunks = 1;
  return launchColumnSums(
      second, vector8, PartialTerms<Terms::kOuts>{partials, plan.chunks, cols},
      sink, stream);
}

cudaError_t columnSums(bf16 *db, const bf16 *dy, const bf16 *a, int64_t n,
                       int64_t bn, Workspace ws, cudaStream_t stream) {
  if (bn == 0)
    return cudaSuccess;
  return runColumnSums(BroadcastTerms{dy, a, bn}, StoreSink{db}, n / bn, bn,
                       aligned16(dy) && (!a || aligned16(a)), ws, stream);
}

cudaError_t columnSumsInto(float *acc, const bf16 *dy, const bf16 *a,
                           int64_t n, int64_t bn, Workspace ws,
                           cudaStream_t stream) {
  if (bn == 0)
    return cudaSuccess;
  return runColumnSums(BroadcastTerms{dy, a, bn}, IntoSink{acc, nullptr},
                       n / bn, bn, aligned16(dy) && (!a || aligned16(a)), ws,
                       stream);
}

cudaError_t layernormBackwardW(float *dgamma, float *dbeta, const bf16 *dy,
                               const bf16 *x, const float *mean,
                               const float *rstd, int64_t rows, int64_t dim,
                               Workspace ws, cudaStream_t stream) {
  return runColumnSums(LayernormTerms{dy, x, mean, rstd, dim},
                       IntoSink{dgamma, dbeta}, rows, dim,
                       aligned16(dy) && aligned16(x), ws, stream);
}

cudaError_t rmsnormBackwardW(float *dgamma, const bf16 *dy, const bf16 *x,
                             const float *rstd, int64_t rows, int64_t dim,
                             Workspace ws, cudaStream_t stream) {
  return runColumnSums(RmsnormTerms{dy, x, rstd, dim},
                       IntoSink{dgamma, nullptr}, rows, dim,
                       aligned16(dy) && aligned16(x), ws, stream);
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_COLUMNSUMS_CUH
