//===- Optimizer.cuh - the optimizer step's reductions and scalars -----------===//
//
// What @optimizer_step computes besides AdamW (AdamW.cuh), as the cpu
// kernels of AdamW.h and Calls.h do: a parameter's gradient as the sum of
// its per-use fp32 accumulators (use order), its sum of squares in double,
// the global norm over those sums (declaration order), the clip scale and
// the learning rate of the step. Every result stays in device memory, read
// by the next kernel, so the step needs no host round trip and can be
// captured as a CUDA graph (docs/CUDA.md).
//
// Determinism: the sum of squares splits the vector into chunks of
// kSquaresChunk elements, a block each: each thread adds its strided
// elements in ascending order in double, the block's partials combined by
// a fixed tree, into the rank's workspace; one block of kSquaresBlock
// threads then adds the chunks' sums the same way (a vector of one chunk,
// or with no room in the workspace, is that one block over the elements).
// The split depends on n and the workspace size only. The global norm is
// one thread adding in order. ZeRO-1 cuts the same sum at the chunks: a
// replica makes its part's chunk sums (shardSquaresMulti), the all-reduce
// brings the others', and normTotals adds them as the second pass does,
// so the norm has the bits of the plan without ZeRO.

// The summation order is not the cpu's (one pass over a vector), so a cuda
// run is held to the reference within a tolerance, never bit for bit.
// Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_OPTIMIZER_CUH
#define PIPERT_KERNELS_CUDA_OPTIMIZER_CUH

#include "kernels/cuda/Kernels.h"
#include "kernels/cuda/Launch.cuh"
#include "pipert/ZeroShard.h"

#include <algorithm>
#include <cstdint>

namespace pipert::cuda {

/// Threads of the sum-of-squares block that finishes (or does it all).
constexpr int kSquaresBlock = 1024;
/// Threads of a chunk's block, and the elements of a chunk (64 a thread).
constexpr int kSquaresChunkBlock = 256;
constexpr int64_t kSquaresChunk = int64_t(kSquaresChunkBlock) * 64;
// A chunk is a norm chunk of ZeRO-1's split (pipert/ZeroShard.h), so a
// replica's part is whole chunks and the chunk sums it makes are the ones
// the plan without ZeRO makes (shardSquaresMulti, normTotals).
static_assert(kSquaresChunk == pipert::kNormChunk,
              "the sum of squares' chunks are ZeRO-1's norm chunks");

// --- kernels -----------------------------------------------------------------

/// Device pointers passed by value (kernel parameters), so a launch needs
/// no pointer table in device memory; longer lists run as several launches
/// that continue the same sum in the same order.
template <typename T> struct PointerPack {
  static constexpr int kMax = 64;
  const T *p[kMax];
  int count;
};

/// g[i] = (continue ? g[i] : 0) + accs[0][i] + accs[1][i] + ..., in order.
__global__ void sumUsesKernel(float *g, PointerPack<float> accs, bool cont,
                              int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  float s = cont ? g[i] : (accs.count > 0 ? accs.p[0][i] : 0.0f);
  for (int u = cont ? 0 : 1; u < accs.count; ++u)
    s = s + accs.p[u][i];
  g[i] = s;
}

/// A block's sum of squares of x[first, end) (or of its values, Square
/// false), Threads threads: sumSquaresKernel's body.
template <int Threads, bool Square, typename T>
__device__ inline double blockSquares(const T *x, int64_t first,
                                      int64_t end, double *part) {
  double s = 0;
  for (int64_t i = first + threadIdx.x; i < end; i += Threads) {
    double v = double(x[i]);
    s += Square ? v * v : v;
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (int half = Threads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half)
      part[threadIdx.x] = part[threadIdx.x] + part[threadIdx.x + half];
    __syncthreads();
  }
  return part[0];
}

/// out[blockIdx.x] = the sum over elements [blockIdx.x * chunk, + chunk)
/// of n: of x[i]^2 in double (Square) or of x[i] (the chunks' sums).
template <int Threads, bool Square, typename T>
__global__ void __launch_bounds__(Threads)
    sumSquaresKernel(double *out, const T *x, int64_t n, int64_t chunk) {
  __shared__ double part[Threads];
  const int64_t first = int64_t(blockIdx.x) * chunk;
  const int64_t end = first + chunk < n ? first + chunk : n;
  double s = blockSquares<Threads, Square>(x, first, end, part);
  if (threadIdx.x == 0)
    out[blockIdx.x] = s;
}

/// Tensors, and their accumulators in all, a multi-tensor sum over uses
/// takes a launch (kernel parameters: about 1 KiB).
constexpr int kSumUsesPack = 16;
constexpr int kSumUsesPointers = 64;

/// The gradients of one launch: block b is tensor k's where
/// firstBlock[k] <= b < firstBlock[k + 1]; its accumulators are
/// accs[accFirst[k], accFirst[k + 1]).
struct SumUsesPack {
  float *g[kSumUsesPack];
  int64_t n[kSumUsesPack];
  int64_t firstBlock[kSumUsesPack + 1];
  int accFirst[kSumUsesPack + 1];
  const float *accs[kSumUsesPointers];
  int count;
};

/// g = accs[0] + accs[1] + ... in use order (zeros for none), per tensor:
/// sumUsesKernel's sum in one pass.
__global__ void sumUsesMultiKernel(SumUsesPack pack) {
  int k = 0;
  while (k + 1 < pack.count && int64_t(blockIdx.x) >= pack.firstBlock[k + 1])
    ++k;
  const int64_t i =
      (int64_t(blockIdx.x) - pack.firstBlock[k]) * blockDim.x + threadIdx.x;
  if (i >= pack.n[k])
    return;
  const int first = pack.accFirst[k], end = pack.accFirst[k + 1];
  float s = end > first ? pack.accs[first][i] : 0.0f;
  for (int u = first + 1; u < end; ++u)
    s = s + pack.accs[u][i];
  pack.g[k][i] = s;
}

/// Tensors a multi-tensor sum of squares takes a launch.
constexpr int kSquaresPack = 32;

/// The tensors of one multi-tensor sum of squares: `first[k]` is tensor
/// k's first block (chunk) and first partial; one chunk (or none, for an
/// empty tensor) means one block of kSquaresBlock over the tensor.
struct SquaresPack {
  SquaresTensor t[kSquaresPack];
  int64_t first[kSquaresPack + 1];
  int count;
};

/// The tensor of block b: first[k] <= b < first[k + 1].
__device__ inline int packTensor(const SquaresPack &pack, int64_t b) {
  int k = 0;
  while (k + 1 < pack.count && b >= pack.first[k + 1])
    ++k;
  return k;
}

/// The pack's single-chunk tensors, a block of kSquaresBlock each (the
/// blocks of the others return).
__global__ void __launch_bounds__(kSquaresBlock)
    squaresSmallKernel(SquaresPack pack) {
  __shared__ double part[kSquaresBlock];
  const SquaresTensor &t = pack.t[blockIdx.x];
  if (t.n > kSquaresChunk)
    return;
  double s = blockSquares<kSquaresBlock, true>(t.x, 0, t.n, part);
  if (threadIdx.x == 0)
    *t.out = s;
}

/// Every chunk of the pack's larger tensors: block b is chunk b - first[k]
/// of tensor k, its sum into partials[b].
__global__ void __launch_bounds__(kSquaresChunkBlock)
    squaresChunksKernel(SquaresPack pack, double *partials) {
  __shared__ double part[kSquaresChunkBlock];
  const int k = packTensor(pack, int64_t(blockIdx.x));
  const SquaresTensor &t = pack.t[k];
  const int64_t chunk = int64_t(blockIdx.x) - pack.first[k];
  const int64_t first = chunk * kSquaresChunk;
  const int64_t end = first + kSquaresChunk < t.n ? first + kSquaresChunk : t.n;
  double s = blockSquares<kSquaresChunkBlock, true>(t.x, first, end, part);
  if (threadIdx.x == 0)
    partials[blockIdx.x] = s;
}

/// Each larger tensor's chunk sums, a block of kSquaresBlock each.
__global__ void __launch_bounds__(kSquaresBlock)
    squaresFinishKernel(SquaresPack pack, const double *partials) {
  __shared__ double part[kSquaresBlock];
  const SquaresTensor &t = pack.t[blockIdx.x];
  const int64_t chunks = pack.first[blockIdx.x + 1] - pack.first[blockIdx.x];
  if (t.n <= kSquaresChunk)
    return;
  double s = blockSquares<kSquaresBlock, false>(
      partials + pack.first[blockIdx.x], 0, chunks, part);
  if (threadIdx.x == 0)
    *t.out = s;
}

/// Tensors whose totals one launch of normTotalsKernel makes.
constexpr int kNormTotalsPack = 32;
struct NormTotalsPack {
  NormTotalTensor t[kNormTotalsPack];
};

/// Tensor blockIdx.x's sum of squares from its chunk sums: one chunk's is
/// that chunk's (sumSquares' one-block path made it), more are added as
/// sumSquares' second pass and squaresFinishKernel add them.
__global__ void __launch_bounds__(kSquaresBlock)
    normTotalsKernel(NormTotalsPack pack) {
  __shared__ double part[kSquaresBlock];
  const NormTotalTensor &t = pack.t[blockIdx.x];
  if (t.n <= kSquaresChunk) {
    if (threadIdx.x == 0)
      *t.out = t.n > 0 ? t.slots[0] : 0.0;
    return;
  }
  const int64_t chunks = (t.n + kSquaresChunk - 1) / kSquaresChunk;
  double s = blockSquares<kSquaresBlock, false>(t.slots, 0, chunks, part);
  if (threadIdx.x == 0)
    *t.out = s;
}

/// The global norm's running sum in *out: (cont ? *out : 0) + squares in
/// order; the last launch takes the square root (cpu: globalNorm).
__global__ void gradNormKernel(double *out, PointerPack<double> squares,
                               bool cont, bool last) {
  double total = cont ? *out : 0.0;
  for (int i = 0; i < squares.count; ++i)
    total += *squares.p[i];
  *out = last ? sqrt(total) : total;
}

__global__ void clipScaleKernel(double *out, const double *norm,
                                double maxNorm) {
  double n = *norm;
  *out = (maxNorm <= 0 || !(n > maxNorm)) ? 1.0 : maxNorm / n;
}

/// The formula of pipert::LrSchedule::at (runtime/src/LrSchedule.cpp) on
/// the device; the harness checks the two within 1e-14 relative (device
/// cospi and host cos may differ in the last bit).
__global__ void lrScheduleKernel(double *out, const int64_t *stepPtr,
                                 int64_t warmup, int64_t decaySteps,
                                 bool cosine, double lr, double minLr) {
  int64_t step = *stepPtr;
  if (step < warmup) {
    *out = lr * double(step + 1) / double(warmup);
    return;
  }
  if (!cosine) {
    *out = lr;
    return;
  }
  int64_t span = decaySteps - warmup > 1 ? decaySteps - warmup : 1;
  double p = fmin(1.0, double(step - warmup) / double(span));
  // cospi(p) = cos(pi p) with no argument reduction (cos would keep its
  // large-argument path in local memory); p is in [0, 1].
  *out = minLr + 0.5 * (lr - minLr) * (1.0 + cospi(p));
}

// --- launchers ---------------------------------------------------------------

cudaError_t sumUses(float *g, const float *const *accs, int64_t uses,
                    int64_t n, cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  int64_t u = 0;
  do {
    PointerPack<float> pack{};
    pack.count = int(std::min<int64_t>(uses - u, PointerPack<float>::kMax));
    for (int i = 0; i < pack.count; ++i)
      pack.p[i] = accs[u + i];
    sumUsesKernel<<<blocksFor(n), kBlock, 0, stream>>>(g, pack, u > 0, n);
    if (cudaError_t e = launched(); e != cudaSuccess)
      return e;
    u += pack.count;
  } while (u < uses);
  return cudaSuccess;
}

cudaError_t sumSquares(double *out, const float *x, int64_t n, Workspace ws,
                       cudaStream_t stream) {
  const int64_t chunks = (n + kSquaresChunk - 1) / kSquaresChunk;
  const bool split = chunks > 1 && ws.p && chunks * 8 <= ws.bytes &&
                     chunks <= int64_t(INT32_MAX);
  if (!split) {
    sumSquaresKernel<kSquaresBlock, true>
        <<<1, kSquaresBlock, 0, stream>>>(out, x, n, n);
    return launched();
  }
  auto *sums = static_cast<double *>(ws.p);
  sumSquaresKernel<kSquaresChunkBlock, true>
      <<<unsigned(chunks), kSquaresChunkBlock, 0, stream>>>(sums, x, n,
                                                            kSquaresChunk);
  if (cudaError_t e = launched(); e != cudaSuccess)
    return e;
  sumSquaresKernel<kSquaresBlock, false>
      <<<1, kSquaresBlock, 0, stream>>>(out, sums, chunks, chunks);
  return launched();
}

cudaError_t sumUsesMulti(const SumUsesTensor *tensors, int64_t count,
                         cudaStream_t stream) {
  SumUsesPack pack{};
  auto flush = [&]() -> cudaError_t {
    if (pack.count == 0 || pack.firstBlock[pack.count] == 0) {
      pack = SumUsesPack{};
      return cudaSuccess;
    }
    sumUsesMultiKernel<<<unsigned(pack.firstBlock[pack.count]), kBlock, 0,
                         stream>>>(pack);
    pack = SumUsesPack{};
    return launched();
  };
  for (int64_t i = 0; i < count; ++i) {
    const SumUsesTensor &t = tensors[i];
    if (t.n == 0)
      continue;
    // More uses than a launch carries: its own sumUses (the same order).
    if (t.uses > kSumUsesPointers) {
      if (cudaError_t e = sumUses(t.g, t.accs, t.uses, t.n, stream);
          e != cudaSuccess)
        return e;
      continue;
    }
    const int64_t blocks = blocksFor(t.n);
    if (pack.count == kSumUsesPack ||
        pack.accFirst[pack.count] + t.uses > kSumUsesPointers ||
        pack.firstBlock[pack.count] + blocks > int64_t(INT32_MAX))
      if (cudaError_t e = flush(); e != cudaSuccess)
        return e;
    const int k = pack.count++;
    pack.g[k] = t.g;
    pack.n[k] = t.n;
    for (int64_t u = 0; u < t.uses; ++u)
      pack.accs[pack.accFirst[k] + u] = t.accs[u];
    pack.accFirst[k + 1] = pack.accFirst[k] + int(t.uses);
    pack.firstBlock[k + 1] = pack.firstBlock[k] + blocks;
  }
  return flush();
}

cudaError_t sumSquaresMulti(const SquaresTensor *tensors, int64_t count,
                            Workspace ws, cudaStream_t stream) {
  for (int64_t i = 0; i < count; i += kSquaresPack) {
    SquaresPack pack{};
    pack.count = int(std::min<int64_t>(count - i, kSquaresPack));
    bool large = false;
    for (int k = 0; k < pack.count; ++k) {
      const SquaresTensor &t = tensors[i + k];
      pack.t[k] = t;
      const int64_t chunks =
          t.n > kSquaresChunk ? (t.n + kSquaresChunk - 1) / kSquaresChunk : 0;
      pack.first[k + 1] = pack.first[k] + chunks;
      large = large || chunks > 0;
    }
    const int64_t blocks = pack.first[pack.count];
    // The partials must fit the workspace, as sumSquares asks of each:
    // where they do not, each tensor as sumSquares takes it.
    if (large && (!ws.p || blocks * 8 > ws.bytes || blocks > INT32_MAX)) {
      for (int k = 0; k < pack.count; ++k)
        if (cudaError_t e = sumSquares(pack.t[k].out, pack.t[k].x,
                                       pack.t[k].n, ws, stream);
            e != cudaSuccess)
          return e;
      continue;
    }
    squaresSmallKernel<<<unsigned(pack.count), kSquaresBlock, 0, stream>>>(
        pack);
    if (cudaError_t e = launched(); e != cudaSuccess)
      return e;
    if (!large)
      continue;
    auto *partials = static_cast<double *>(ws.p);
    squaresChunksKernel<<<unsigned(blocks), kSquaresChunkBlock, 0, stream>>>(
        pack, partials);
    if (cudaError_t e = launched(); e != cudaSuccess)
      return e;
    squaresFinishKernel<<<unsigned(pack.count), kSquaresBlock, 0, stream>>>(
        pack, partials);
    if (cudaError_t e = launched(); e != cudaSuccess)
      return e;
  }
  return cudaSuccess;
}

cudaError_t shardSquaresMulti(const ShardSquaresTensor *tensors,
                              int64_t count, cudaStream_t stream) {
  for (int64_t i = 0; i < count; ++i) {
    const ShardSquaresTensor &t = tensors[i];
    if (t.count <= 0)
      continue;
    // A part is whole chunks (the last may end at n): anything else would
    // write a partial chunk's sum, or a small tensor's whole sum twice.
    const int64_t end = t.first + t.count;
    if (t.first < 0 || t.first % kSquaresChunk != 0 || end > t.n ||
        (end != t.n && end % kSquaresChunk != 0) ||
        (t.n <= kSquaresChunk && (t.first != 0 || end != t.n)))
      return cudaErrorInvalidValue;
    if (t.n <= kSquaresChunk) {
      // The whole tensor, as sumSquares' one-block path.
      sumSquaresKernel<kSquaresBlock, true>
          <<<1, kSquaresBlock, 0, stream>>>(t.slots, t.x, t.n, t.n);
    } else {
      // Chunk b of the part is the tensor's chunk first / kSquaresChunk +
      // b, over the same elements in the same order as sumSquares' chunk
      // pass (the part starts on a chunk boundary).
      const int64_t blocks = (t.count + kSquaresChunk - 1) / kSquaresChunk;
      if (blocks > int64_t(INT32_MAX))
        return cudaErrorInvalidValue;
      sumSquaresKernel<kSquaresChunkBlock, true>
          <<<unsigned(blocks), kSquaresChunkBlock, 0, stream>>>(
              t.slots + t.first / kSquaresChunk, t.x + t.first, t.count,
              kSquaresChunk);
    }
    if (cudaError_t e = launched(); e != cudaSuccess)
      return e;
  }
  return cudaSuccess;
}

cudaError_t normTotals(const NormTotalTensor *tensors, int64_t count,
                       cudaStream_t stream) {
  for (int64_t i = 0; i < count; i += kNormTotalsPack) {
    NormTotalsPack pack{};
    const int64_t k = std::min<int64_t>(count - i, kNormTotalsPack);
    for (int64_t j = 0; j < k; ++j)
      pack.t[j] = tensors[i + j];
    normTotalsKernel<<<unsigned(k), kSquaresBlock, 0, stream>>>(pack);
    if (cudaError_t e = launched(); e != cudaSuccess)
      return e;
  }
  return cudaSuccess;
}

cudaError_t gradNorm(double *out, const double *const *squares, int64_t count,
                     cudaStream_t stream) {
  int64_t i = 0;
  do {
    PointerPack<double> pack{};
    pack.count = int(std::min<int64_t>(count - i, PointerPack<double>::kMax));
    for (int k = 0; k < pack.count; ++k)
      pack.p[k] = squares[i + k];
    bool last = i + pack.count >= count;
    gradNormKernel<<<1, 1, 0, stream>>>(out, pack, i > 0, last);
    if (cudaError_t e = launched(); e != cudaSuccess)
      return e;
    i += pack.count;
  } while (i < count);
  return cudaSuccess;
}

cudaError_t clipScale(double *out, const double *norm, double maxNorm,
                      cudaStream_t stream) {
  clipScaleKernel<<<1, 1, 0, stream>>>(out, norm, maxNorm);
  return launched();
}

cudaError_t lrSchedule(double *out, const int64_t *step, int64_t warmup,
                       int64_t decaySteps, bool cosine, double lr,
                       double minLr, cudaStream_t stream) {
  if (warmup < 0 || decaySteps < 0)
    return cudaErrorInvalidValue;
  lrScheduleKernel<<<1, 1, 0, stream>>>(out, step, warmup, decaySteps, cosine,
                                        lr, minLr);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_OPTIMIZER_CUH
