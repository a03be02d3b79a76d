//===- ColumnSumPlan.h - the column sums' split of the rows and order --===//
//
// A column sum (a bias's or a broadcast operand's gradient, a norm's W)
// reduces a rows x cols matrix of terms over its rows. One thread per column
// walking every row (the cpu's order) leaves most of a GPU idle: GPT-2's
// layernorm W is 768 columns over 16,384 rows, three blocks. So
// ColumnSums.cuh splits the rows into chunks of `chunkRows`: one block per
// (tile of columns, chunk), each of its kSumWarps warps adding the rows
// warp, warp + kSumWarps, ... of the chunk in ascending order from an fp32
// zero, the warps' sums then added in warp order. With more than one chunk
// the chunk sums go to the rank's workspace and a second pass adds them the
// same way (chunks as its rows, one chunk). The plan depends on the shape
// and the workspace's size only (a constant of the library), never on
// pointers or the device, so the bits of a column sum are the shape's
// (docs/NUMERICS.md); orderedColumnSum below is that order on the host,
// the spec the GPU harness holds the kernels to.
//
// Plain C++: included by ColumnSums.cuh, the harness and the unit tests.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_COLUMNSUMPLAN_H
#define PIPERT_KERNELS_CUDA_COLUMNSUMPLAN_H

#include <algorithm>
#include <cstdint>

namespace pipert::cuda {

/// Warps of a column-sum block: each takes every kSumWarps-th row.
constexpr int kSumWarps = 8;
/// Rows of a first-pass chunk while the workspace holds their partials:
/// 8 rows a warp, enough loads in flight and few partials.
constexpr int64_t kSumChunkRows = 64;
/// The most chunks (CUDA's grid.y limit).
constexpr int64_t kSumMaxChunks = 65535;

struct ColumnSumPlan {
  int64_t rows = 0, cols = 0;
  int outs = 1;          ///< sums per column (a layernorm's W has two)
  int64_t chunkRows = 0; ///< rows a block adds
  int64_t chunks = 0;    ///< > 1: partials in the workspace, a second pass

  /// fp32 partials the first pass writes ([outs][chunks][cols]).
  int64_t partialBytes() const {
    return chunks > 1 ? int64_t(outs) * chunks * cols * 4 : 0;
  }
};

/// The split of `rows` x `cols` with `outs` sums per column when the
/// workspace holds `workspaceBytes`: chunks of kSumChunkRows rows, fewer
/// and longer ones (a multiple of kSumWarps rows) when their partials would
/// not fit, one chunk (no second pass) when not even two fit.
inline ColumnSumPlan planColumnSums(int64_t rows, int64_t cols, int outs,
                                    int64_t workspaceBytes) {
  ColumnSumPlan p;
  p.rows = rows;
  p.cols = cols;
  p.outs = outs;
  p.chunkRows = std::max<int64_t>(rows, 1);
  p.chunks = 1;
  if (rows <= kSumChunkRows || cols <= 0)
    return p;
  const int64_t perChunk = int64_t(outs) * cols * 4;
  const int64_t fit =
      std::min(workspaceBytes / perChunk, kSumMaxChunks);
  if (fit < 2)
    return p;
  int64_t chunkRows = kSumChunkRows;
  if ((rows + chunkRows - 1) / chunkRows > fit) {
    chunkRows = (rows + fit - 1) / fit;
    chunkRows = (chunkRows + kSumWarps - 1) / kSumWarps * kSumWarps;
  }
  p.chunkRows = chunkRows;
  p.chunks = (rows + chunkRows - 1) / chunkRows;
  return p;
}

/// One block's sum of `term(r)` over rows [first, end): the warps' strided
/// sums from zero, added in warp order (ColumnSums.cuh's first pass).
template <typename Term>
float blockColumnSum(int64_t first, int64_t end, Term term) {
  float total = 0.0f;
  for (int w = 0; w < kSumWarps; ++w) {
    float s = 0.0f;
    for (int64_t r = first + w; r < end; r += kSumWarps)
      s += term(r);
    total = w == 0 ? s : total + s;
  }
  return total;
}

/// The column sum the kernels compute, on the host: `term(r)` of one
/// column, summed as `plan` splits the rows.
template <typename Term>
float orderedColumnSum(const ColumnSumPlan &plan, Term term) {
  if (plan.chunks <= 1)
    return blockColumnSum(0, plan.rows, term);
  auto chunkSum = [&](int64_t k) {
    return blockColumnSum(k * plan.chunkRows,
                          std::min(plan.rows, (k + 1) * plan.chunkRows), term);
  };
  return blockColumnSum(0, plan.chunks, chunkSum);
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_COLUMNSUMPLAN_H
