//===- LinearTest.cpp - embedding, matmul, add and mul kernels ------------===//

#include "KernelTestUtil.h"

#include "kernels/cpu/Elementwise.h"
#include "kernels/cpu/Embedding.h"
#include "kernels/cpu/Matmul.h"

#include <gtest/gtest.h>

using namespace pipert::cpu;
using namespace kerneltest;

TEST(Embedding, ForwardGathersAndBackwardScattersInOrder) {
  std::mt19937_64 rng(1);
  int64_t vocab = 7, dim = 5, tokens = 12;
  auto table = randomVector(rng, vocab * dim);
  std::vector<int32_t> ids(static_cast<size_t>(tokens));
  for (auto &id : ids)
    id = int32_t(randomInt(rng, 0, 3)); // repeats, and rows with no token
  std::vector<double> out(static_cast<size_t>(tokens * dim));
  ASSERT_TRUE(embeddingForward(out.data(), table.data(), ids.data(), tokens,
                               vocab, dim)
                  .ok());
  for (int64_t n = 0; n < tokens; ++n)
    for (int64_t d = 0; d < dim; ++d)
      EXPECT_EQ(out[n * dim + d], table[ids[n] * dim + d]);

  auto dy = randomVector(rng, tokens * dim);
  auto start = randomVector(rng, vocab * dim);
  auto dtable = start;
  ASSERT_TRUE(embeddingBackwardW(dtable.data(), dy.data(), ids.data(), tokens,
                                 vocab, dim)
                  .ok());
  auto fd = finiteDifference(table, [&] {
    (void)embeddingForward(out.data(), table.data(), ids.data(), tokens, vocab,
                           dim);
    return dot(dy, out);
  });
  EXPECT_LT(normwiseError(minus(dtable, start), fd), kTolerance);
}

TEST(Embedding, RejectsOutOfRangeIds) {
  std::vector<double> table(8, 1.0), out(8, 0.0);
  std::vector<int32_t> ids = {0, 4, 1, 2};
  Status s = embeddingForward(out.data(), table.data(), ids.data(), 4, 4, 2);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "embedding: ids[1] = 4 is outside [0, 4)");
  EXPECT_EQ(out, std::vector<double>(8, 0.0));
  ids[1] = -3;
  s = embeddingBackwardW(table.data(), out.data(), ids.data(), 4, 4, 2);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "embedding backward: ids[1] = -3 is outside [0, 4)");
}

TEST(PositionEmbedding, GradientMatchesFiniteDifferences) {
  std::mt19937_64 rng(2);
  int64_t maxLen = 9, len = 6, dim = 4;
  auto table = randomVector(rng, maxLen * dim);
  auto dy = randomVector(rng, len * dim);
  std::vector<double> out(static_cast<size_t>(len * dim));
  positionEmbeddingForward(out.data(), table.data(), len, dim);
  for (int64_t i = 0; i < len * dim; ++i)
    EXPECT_EQ(out[i], table[i]);
  auto start = randomVector(rng, maxLen * dim);
  auto dtable = start;
  positionEmbeddingBackwardW(dtable.data(), dy.data(), len, dim);
  auto fd = finiteDifference(table, [&] {
    positionEmbeddingForward(out.data(), table.data(), len, dim);
    return dot(dy, out);
  });
  EXPECT_LT(normwiseError(minus(dtable, start), fd), kTolerance);
}

/// Runs the matmul checks for one transpose_rhs setting on random shapes.
static void checkMatmul(bool transposeRhs, uint64_t seed) {
  std::mt19937_64 rng(seed);
  int64_t m = randomInt(rng, 2, 9), k = randomInt(rng, 2, 9),
          n = randomInt(rng, 2, 9);
  auto x = randomVector(rng, m * k), w = randomVector(rng, k * n),
       bias = randomVector(rng, n), dy = randomVector(rng, m * n);
  std::vector<double> y(static_cast<size_t>(m * n));
  auto forward = [&] {
    matmulForward(y.data(), x.data(), w.data(), bias.data(), m, k, n,
                  transposeRhs);
    return dot(dy, y);
  };
  forward();
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double ref = bias[j];
      for (int64_t i = 0; i < k; ++i)
        ref += x[r * k + i] * (transposeRhs ? w[j * k + i] : w[i * n + j]);
      EXPECT_NEAR(y[r * n + j], ref, 1e-12);
    }

  std::vector<double> dx(static_cast<size_t>(m * k));
  matmulBackwardB(dx.data(), dy.data(), w.data(), m, k, n, transposeRhs);
  auto dwStart = randomVector(rng, k * n), dbStart = randomVector(rng, n);
  auto dw = dwStart, db = dbStart;
  matmulBackwardW(dw.data(), db.data(), x.data(), dy.data(), m, k, n,
                  transposeRhs);
  EXPECT_LT(normwiseError(dx, finiteDifference(x, forward)), kTolerance);
  EXPECT_LT(normwiseError(minus(dw, dwStart), finiteDifference(w, forward)),
            kTolerance);
  EXPECT_LT(normwiseError(minus(db, dbStart), finiteDifference(bias, forward)),
            kTolerance);

  // accumulate adds the B gradient onto what dx held.
  auto acc = dx;
  matmulBackwardB(acc.data(), dy.data(), w.data(), m, k, n, transposeRhs,
                  /*accumulate=*/true);
  for (size_t i = 0; i < dx.size(); ++i)
    EXPECT_NEAR(acc[i], 2 * dx[i], 1e-12);
}

TEST(Matmul, GradientsMatchFiniteDifferences) { checkMatmul(false, 3); }
TEST(Matmul, TransposedRhsGradientsMatchFiniteDifferences) {
  checkMatmul(true, 4);
}

TEST(Matmul, FusedBiasEqualsSeparateAddBitwise) {
  std::mt19937_64 rng(5);
  // Two k blocks and two column panels of the GEMM, so that the bias
  // epilogue meets tiles of every kind.
  int64_t m = 101, k = 300, n = 600;
  auto x = randomVector<float>(rng, m * k), w = randomVector<float>(rng, k * n),
       bias = randomVector<float>(rng, n), dy = randomVector<float>(rng, m * n);
  std::vector<float> fused(static_cast<size_t>(m * n)), plain(static_cast<size_t>(m * n)),
      separate(static_cast<size_t>(m * n));
  matmulForward(fused.data(), x.data(), w.data(), bias.data(), m, k, n, false);
  matmulForward<float>(plain.data(), x.data(), w.data(), nullptr, m, k, n, false);
  addForward(separate.data(), plain.data(), bias.data(), m * n, n);
  EXPECT_EQ(fused, separate);
  std::vector<float> dw(static_cast<size_t>(k * n)), dbFused(static_cast<size_t>(n), 0.5f),
      dbAdd(static_cast<size_t>(n), 0.5f);
  matmulBackwardW(dw.data(), dbFused.data(), x.data(), dy.data(), m, k, n,
                  false);
  addBackwardBroadcast(dbAdd.data(), dy.data(), m * n, n, true);
  EXPECT_EQ(dbFused, dbAdd);
}

/// Gradient checks of add and mul with a broadcast trailing operand.
TEST(Elementwise, BroadcastGradientsMatchFiniteDifferences) {
  std::mt19937_64 rng(6);
  int64_t rows = randomInt(rng, 2, 6), bn = randomInt(rng, 2, 7),
          n = rows * bn;
  auto a = randomVector(rng, n), b = randomVector(rng, bn),
       dy = randomVector(rng, n);
  std::vector<double> y(static_cast<size_t>(n));
  auto addLoss = [&] {
    addForward(y.data(), a.data(), b.data(), n, bn);
    return dot(dy, y);
  };
  auto mulLoss = [&] {
    mulForward(y.data(), a.data(), b.data(), n, bn);
    return dot(dy, y);
  };
  mulLoss();
  for (int64_t i = 0; i < n; ++i)
    EXPECT_EQ(y[i], a[i] * b[i % bn]);

  std::vector<double> db(static_cast<size_t>(bn)), da(static_cast<size_t>(n));
  addBackwardBroadcast(db.data(), dy.data(), n, bn, false);
  EXPECT_LT(normwiseError(db, finiteDifference(b, addLoss)), kTolerance);
  EXPECT_LT(normwiseError(dy, finiteDifference(a, addLoss)), kTolerance);

  mulBackwardLhs(da.data(), dy.data(), b.data(), n, bn, false);
  mulBackwardRhs(db.data(), dy.data(), a.data(), n, bn, false);
  EXPECT_LT(normwiseError(da, finiteDifference(a, mulLoss)), kTolerance);
  EXPECT_LT(normwiseError(db, finiteDifference(b, mulLoss)), kTolerance);

  // Without broadcast (bn == n) mul is symmetric.
  std::vector<double> full = randomVector(rng, n), dfull(static_cast<size_t>(n));
  mulBackwardRhs(dfull.data(), dy.data(), a.data(), n, n, false);
  auto fullLoss = [&] {
    mulForward(y.data(), a.data(), full.data(), n, n);
    return dot(dy, y);
  };
  EXPECT_LT(normwiseError(dfull, finiteDifference(full, fullLoss)),
            kTolerance);
}
