//===- EmbeddingBackward.cu - the token embedding's W gradient ------===//
//
// dtable[id, :] += dout[t, :] for every token t with ids[t] = id, into the
// fp32 accumulator, without float atomics and in the cpu kernel's order
// (Embedding.h): each element takes its tokens' contributions one at a time
// in ascending token order, so the bits are the cpu's for any launch.
//
// The tokens are grouped by id with CUB's stable radix sort (ids as keys,
// token indices as values, in the rank's workspace): a stable sort keeps a
// group's tokens ascending. Then one warp per group start and tile of
// columns walks its group: a 16-byte load of 8 columns a lane where the
// width is a multiple of 8, and a group is as parallel as its columns
// (GPT-2: 16,384 tokens, 768 columns, a few thousand groups). Without room
// in the workspace the kernel falls back to one thread per column walking
// every token (the same order, so the same bits, at a fraction of the
// speed). Ids are checked by the runner's data checks; an id outside
// [0, vocab) is skipped (sorted last) rather than written out of bounds.
// Its own translation unit: CUB's sort is slow to compile.
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/Kernels.h"
#include "kernels/cuda/Launch.cuh"

#include <cub/device/device_radix_sort.cuh>

#include <climits>

namespace pipert::cuda {
namespace {

constexpr int kWarps = 8;

/// Sort keys (an invalid id becomes vocab: after every group) and values.
__global__ void sortInputsKernel(uint32_t *keys, uint32_t *order,
                                 const int32_t *ids, int64_t tokens,
                                 int64_t vocab) {
  int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= tokens)
    return;
  const int32_t id = ids[t];
  keys[t] = id >= 0 && id < vocab ? uint32_t(id) : uint32_t(vocab);
  order[t] = uint32_t(t);
}

/// Warp `threadIdx.x / 32` of the block takes sorted position
/// i = blockIdx.x * kWarps + warp and the columns of tile blockIdx.y;
/// where a group starts at i, its lanes add the group's tokens, in sorted
/// (ascending token) order, into their V columns of the id's row. The
/// group's end is found 32 keys a step (a ballot), and its token indices
/// are read 32 at a time and passed along the warp, so a long group (a
/// frequent token, padding) costs its rows' loads, not a chain of
/// dependent ones.
template <int V>
__global__ void __launch_bounds__(kWarps * 32)
    groupsKernel(float *dtable, const bf16 *dout, const uint32_t *keys,
                 const uint32_t *order, int64_t tokens, int64_t vocab,
                 int64_t dim) {
  const int lane = int(threadIdx.x % 32);
  const int64_t i =
      int64_t(blockIdx.x) * kWarps + int64_t(threadIdx.x / 32);
  const int64_t c = (int64_t(blockIdx.y) * 32 + lane) * V;
  // Every test up to the walk is the same for the whole warp (i is the
  // warp's), so the warp returns together and the shuffles see all lanes;
  // a lane past the last column (`mine` false) takes part without loading.
  if (i >= tokens)
    return;
  const uint32_t key = keys[i];
  if (key >= uint32_t(vocab) || (i > 0 && keys[i - 1] == key))
    return;
  const bool mine = c < dim;
  int64_t end = i + 1;
  for (;;) {
    const int64_t j = end + lane;
    const unsigned other =
        __ballot_sync(0xffffffffu, j >= tokens || keys[j] != key);
    if (other) {
      end += __ffs(int(other)) - 1;
      break;
    }
    end += 32;
  }
  float *cell = dtable + int64_t(key) * dim + c;
  float acc[V];
#pragma unroll
  for (int v = 0; v < V; ++v)
    acc[v] = mine ? cell[v] : 0.0f;
  for (int64_t base = i; base < end; base += 32) {
    const uint32_t token = base + lane < end ? order[base + lane] : 0;
    const int count = int(end - base < 32 ? end - base : 32);
#pragma unroll 4
    for (int s = 0; s < count; ++s) {
      const uint32_t t = __shfl_sync(0xffffffffu, token, s);
      if (!mine)
        continue;
      float d[V];
      loadBf16<V>(d, dout + int64_t(t) * dim + c);
#pragma unroll
      for (int v = 0; v < V; ++v)
        acc[v] = acc[v] + d[v];
    }
  }
  if (mine) {
#pragma unroll
    for (int v = 0; v < V; ++v)
      cell[v] = acc[v];
  }
}

/// The fallback: one thread per column over every token.
__global__ void columnsKernel(float *dtable, const bf16 *dout,
                              const int32_t *ids, int64_t tokens,
                              int64_t vocab, int64_t dim) {
  int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= dim)
    return;
  for (int64_t t = 0; t < tokens; ++t) {
    int32_t id = ids[t];
    if (id < 0 || id >= vocab)
      continue;
    float *cell = dtable + int64_t(id) * dim + c;
    *cell = *cell + __bfloat162float(dout[t * dim + c]);
  }
}

int64_t roundUp256(int64_t bytes) { return (bytes + 255) / 256 * 256; }

/// Bits of the sort keys: ids up to vocab (the invalid ones' key).
int keyBits(int64_t vocab) {
  int bits = 1;
  while (bits < 32 && (int64_t(1) << bits) <= vocab)
    ++bits;
  return bits;
}

} // namespace

cudaError_t embeddingBackwardW(float *dtable, const bf16 *dout,
                               const int32_t *ids, int64_t tokens,
                               int64_t vocab, int64_t dim, Workspace ws,
                               cudaStream_t stream) {
  if (dim == 0 || tokens == 0)
    return cudaSuccess;
  // The workspace: keys and values twice (CUB's double buffers), then
  // the sort's own temporary storage.
  const int64_t array = roundUp256(tokens * 4);
  size_t sortBytes = 0;
  bool grouped = ws.p && tokens < INT_MAX && vocab < int64_t(UINT32_MAX) &&
                 dim / 32 < 65535;
  if (grouped) {
    cub::DoubleBuffer<uint32_t> k(nullptr, nullptr), o(nullptr, nullptr);
    cudaError_t e = cub::DeviceRadixSort::SortPairs(
        nullptr, sortBytes, k, o, int(tokens), 0, keyBits(vocab), stream);
    if (e != cudaSuccess)
      return e;
    grouped = 4 * array + int64_t(sortBytes) <= ws.bytes;
  }
  if (!grouped) {
    columnsKernel<<<blocksFor(dim), kBlock, 0, stream>>>(dtable, dout, ids,
                                                         tokens, vocab, dim);
    return launched();
  }
  auto *base = static_cast<uint8_t *>(ws.p);
  auto *keys0 = reinterpret_cast<uint32_t *>(base);
  auto *keys1 = reinterpret_cast<uint32_t *>(base + array);
  auto *order0 = reinterpret_cast<uint32_t *>(base + 2 * array);
  auto *order1 = reinterpret_cast<uint32_t *>(base + 3 * array);
  void *sortTemp = base + 4 * array;
  sortInputsKernel<<<blocksFor(tokens), kBlock, 0, stream>>>(
      keys0, order0, ids, tokens, vocab);
  if (cudaError_t e = launched(); e != cudaSuccess)
    return e;
  cub::DoubleBuffer<uint32_t> keys(keys0, keys1), order(order0, order1);
  if (cudaError_t e = cub::DeviceRadixSort::SortPairs(
          sortTemp, sortBytes, keys, order, int(tokens), 0, keyBits(vocab),
          stream);
      e != cudaSuccess)
    return e;
  const bool vector8 =
      dim % 8 == 0 && aligned16(dout);
  const int64_t width = vector8 ? 8 * 32 : 32;
  const dim3 grid(unsigned((tokens + kWarps - 1) / kWarps),
                  unsigned((dim + width - 1) / width));
  if (vector8)
    groupsKernel<8><<<grid, kWarps * 32, 0, stream>>>(
        dtable, dout, keys.Current(), order.Current(), tokens, vocab, dim);
  else
    groupsKernel<1><<<grid, kWarps * 32, 0, stream>>>(
        dtable, dout, keys.Current(), order.Current(), tokens, vocab, dim);
  return launched();
}

} // namespace pipert::cuda
