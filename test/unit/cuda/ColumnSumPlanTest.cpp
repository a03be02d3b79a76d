//===- ColumnSumPlanTest.cpp - the cuda column sums' split and order ===//
//
// runtime/kernels/cuda/ColumnSumPlan.h on the host: the split covers every
// row once, its partials fit the workspace, it depends on the shape and the
// workspace size only, and orderedColumnSum (the order the GPU harness
// holds ColumnSums.cuh to) adds each row exactly once. The kernels' bits
// against this order are gpu-check's.
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/ColumnSumPlan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace {

using pipert::cuda::ColumnSumPlan;
using pipert::cuda::kSumChunkRows;
using pipert::cuda::kSumWarps;
using pipert::cuda::orderedColumnSum;
using pipert::cuda::planColumnSums;

constexpr int64_t kRankWorkspace = int64_t(32) << 20;

TEST(ColumnSumPlan, GptShapesUse64RowChunks) {
  // GPT-2's layernorm W at 16 x 1024 tokens: 256 chunks of 64 rows.
  ColumnSumPlan p = planColumnSums(16384, 768, 2, kRankWorkspace);
  EXPECT_EQ(p.chunkRows, kSumChunkRows);
  EXPECT_EQ(p.chunks, 256);
  EXPECT_EQ(p.partialBytes(), 2 * 256 * 768 * 4);
  // Short matrices take one pass, without partials.
  p = planColumnSums(64, 3072, 1, kRankWorkspace);
  EXPECT_EQ(p.chunks, 1);
  EXPECT_EQ(p.chunkRows, 64);
  EXPECT_EQ(p.partialBytes(), 0);
}

TEST(ColumnSumPlan, SmallWorkspaceLengthensChunks) {
  // Room for 5 chunks of 97 columns' two sums: 1000 rows in 5 chunks of 200.
  ColumnSumPlan p = planColumnSums(1000, 97, 2, 5 * 2 * 97 * 4);
  EXPECT_EQ(p.chunks, 5);
  EXPECT_EQ(p.chunkRows, 200);
  // Room for fewer than two: one pass.
  p = planColumnSums(1000, 97, 2, 2 * 97 * 4);
  EXPECT_EQ(p.chunks, 1);
  EXPECT_EQ(p.chunkRows, 1000);
  // No workspace: one pass.
  p = planColumnSums(4096, 768, 1, 0);
  EXPECT_EQ(p.chunks, 1);
  // More 64-row chunks than a grid's y: 80-row chunks, within it.
  p = planColumnSums(5000000, 8, 1, kRankWorkspace);
  EXPECT_EQ(p.chunkRows, 80);
  EXPECT_EQ(p.chunks, 62500);
}

TEST(ColumnSumPlan, EverySplitCoversTheRowsOnceAndFits) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> rowsOf(0, 200000), colsOf(1, 5000),
      wsOf(0, int64_t(4) << 20);
  for (int trial = 0; trial < 2000; ++trial) {
    const int64_t rows = rowsOf(rng), cols = colsOf(rng), ws = wsOf(rng);
    const int outs = 1 + int(trial % 2);
    ColumnSumPlan p = planColumnSums(rows, cols, outs, ws);
    SCOPED_TRACE(testing::Message() << rows << " x " << cols << " outs "
                                    << outs << " workspace " << ws);
    ASSERT_GE(p.chunks, 1);
    ASSERT_LE(p.chunks, pipert::cuda::kSumMaxChunks);
    ASSERT_GE(p.chunks * p.chunkRows, rows);
    ASSERT_LT((p.chunks - 1) * p.chunkRows, std::max<int64_t>(rows, 1));
    ASSERT_LE(p.partialBytes(), ws);
    if (p.chunks > 1) {
      ASSERT_EQ(p.chunkRows % kSumWarps, 0);
    }
    // The same shape and workspace: the same split.
    ColumnSumPlan q = planColumnSums(rows, cols, outs, ws);
    ASSERT_EQ(q.chunkRows, p.chunkRows);
    ASSERT_EQ(q.chunks, p.chunks);
  }
}

TEST(ColumnSumPlan, OrderedSumAddsEachRowOnce) {
  std::mt19937_64 rng(11);
  for (int64_t rows : {0, 1, 7, 8, 9, 63, 64, 65, 1000, 4099}) {
    for (int64_t ws : {int64_t(0), int64_t(3 * 4), kRankWorkspace}) {
      ColumnSumPlan p = planColumnSums(rows, 1, 1, ws);
      std::vector<int> seen(static_cast<size_t>(rows), 0);
      // Powers of two below 2^24 add exactly in fp32 in any order.
      std::uniform_int_distribution<int> e(0, 10);
      std::vector<float> term(static_cast<size_t>(rows));
      double exact = 0;
      for (auto &t : term) {
        t = std::ldexp(1.0f, e(rng));
        exact += t;
      }
      float s = orderedColumnSum(p, [&](int64_t r) {
        ++seen[size_t(r)];
        return term[size_t(r)];
      });
      EXPECT_EQ(double(s), exact) << rows << " rows, workspace " << ws;
      for (int64_t r = 0; r < rows; ++r)
        ASSERT_EQ(seen[size_t(r)], 1) << "row " << r << " of " << rows;
    }
  }
}

TEST(ColumnSumPlan, OrderedSumIsTheWarpsThenChunksOrder) {
  // 130 rows in 64-row chunks: chunk sums 0..63, 64..127, 128..129, each
  // the warps' strided sums added in warp order; then the chunks the same
  // way (3 chunks: warps 0, 1, 2 take one each).
  std::vector<float> term(130);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (auto &t : term)
    t = d(rng);
  auto block = [&](int64_t first, int64_t end) {
    float total = 0;
    for (int w = 0; w < kSumWarps; ++w) {
      float s = 0;
      for (int64_t r = first + w; r < end; r += kSumWarps)
        s += term[size_t(r)];
      total = w == 0 ? s : total + s;
    }
    return total;
  };
  float c0 = block(0, 64), c1 = block(64, 128), c2 = block(128, 130);
  float want = ((c0 + c1) + c2) + 0.0f;
  for (int w = 3; w < kSumWarps; ++w)
    want = want + 0.0f;
  ColumnSumPlan p = planColumnSums(130, 5, 1, kRankWorkspace);
  ASSERT_EQ(p.chunks, 3);
  float got = orderedColumnSum(p, [&](int64_t r) { return term[size_t(r)]; });
  EXPECT_EQ(got, want);
  // Rounding differs from the cpu's sequential order, within fp32's reach.
  float sequential = 0;
  for (float t : term)
    sequential += t;
  EXPECT_NEAR(got, sequential, 1e-5);
}

} // namespace
