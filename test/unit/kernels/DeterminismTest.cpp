//===- DeterminismTest.cpp - Same bits for 1 and 2 OpenMP threads ---------===//
//
// The numerics contract: reductions never depend on the thread count. Each
// test runs a kernel with 1 and with 2 threads on float data large enough
// for every thread to get work, and compares the results bit for bit.
//
//===----------------------------------------------------------------------===//

#include "KernelTestUtil.h"

#include "kernels/cpu/AdamW.h"
#include "kernels/cpu/Attention.h"
#include "kernels/cpu/CrossEntropy.h"
#include "kernels/cpu/Embedding.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Norm.h"

#include <gtest/gtest.h>
#include <omp.h>

using namespace pipert::cpu;
using namespace kerneltest;

/// Runs f with 1 thread and with 2 threads and returns both results.
template <typename F> static auto withOneAndTwoThreads(F f) {
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  auto one = f();
  omp_set_num_threads(2);
  auto two = f();
  omp_set_num_threads(saved);
  return std::make_pair(one, two);
}

TEST(Determinism, EmbeddingBackward) {
  std::mt19937_64 rng(60);
  int64_t vocab = 64, dim = 200, tokens = 2048;
  auto dy = randomVector<float>(rng, tokens * dim);
  std::vector<int32_t> ids(static_cast<size_t>(tokens));
  for (auto &id : ids)
    id = int32_t(randomInt(rng, 0, vocab - 1));
  auto start = randomVector<float>(rng, vocab * dim);
  auto [one, two] = withOneAndTwoThreads([&] {
    auto dtable = start;
    EXPECT_TRUE(embeddingBackwardW(dtable.data(), dy.data(), ids.data(), tokens,
                                   vocab, dim)
                    .ok());
    return dtable;
  });
  EXPECT_EQ(one, two);
}

TEST(Determinism, LayerNormBackward) {
  std::mt19937_64 rng(61);
  int64_t rows = 256, dim = 300;
  auto x = randomVector<float>(rng, rows * dim),
       gamma = randomVector<float>(rng, dim),
       beta = randomVector<float>(rng, dim),
       dy = randomVector<float>(rng, rows * dim);
  auto [one, two] = withOneAndTwoThreads([&] {
    std::vector<float> y(static_cast<size_t>(rows * dim)), mean(static_cast<size_t>(rows)),
        rstd(static_cast<size_t>(rows)), dx(static_cast<size_t>(rows * dim)), dgamma(static_cast<size_t>(dim), 0.1f),
        dbeta(static_cast<size_t>(dim), -0.1f);
    layernormForward(y.data(), mean.data(), rstd.data(), x.data(),
                     gamma.data(), beta.data(), rows, dim, 1e-5);
    layernormBackwardB(dx.data(), dy.data(), x.data(), mean.data(),
                       rstd.data(), gamma.data(), rows, dim);
    layernormBackwardW(dgamma.data(), dbeta.data(), dy.data(), x.data(),
                       mean.data(), rstd.data(), rows, dim);
    return std::vector<std::vector<float>>{y, dx, dgamma, dbeta};
  });
  EXPECT_EQ(one, two);
}

TEST(Determinism, AttentionBackward) {
  std::mt19937_64 rng(62);
  AttentionShape s;
  // Several blocks of kAttentionBlock queries and keys, a partial last one.
  s.batch = 2, s.seqQ = s.seqKV = 150, s.heads = 4, s.kvHeads = 2,
  s.headDim = 24, s.scale = 0.25;
  int64_t qn = s.batch * s.seqQ * s.heads * s.headDim;
  int64_t kvn = s.batch * s.seqKV * s.kvHeads * s.headDim;
  auto q = randomVector<float>(rng, qn), k = randomVector<float>(rng, kvn),
       v = randomVector<float>(rng, kvn), dy = randomVector<float>(rng, qn);
  auto [one, two] = withOneAndTwoThreads([&] {
    std::vector<float> out(static_cast<size_t>(qn)), lse(static_cast<size_t>(s.batch * s.heads * s.seqQ)),
        dq(static_cast<size_t>(qn)), dk(static_cast<size_t>(kvn)), dv(static_cast<size_t>(kvn));
    attentionForward(out.data(), lse.data(), q.data(), k.data(), v.data(), s);
    attentionBackwardB(dq.data(), dk.data(), dv.data(), dy.data(), q.data(),
                       k.data(), v.data(), out.data(), lse.data(), s);
    return std::vector<std::vector<float>>{out, lse, dq, dk, dv};
  });
  EXPECT_EQ(one, two);
}

TEST(Determinism, CrossEntropyAndSumOfSquares) {
  std::mt19937_64 rng(63);
  int64_t rows = 128, vocab = 1000;
  auto logits = randomVector<float>(rng, rows * vocab, 5.0);
  std::vector<int32_t> targets(static_cast<size_t>(rows));
  for (auto &t : targets)
    t = int32_t(randomInt(rng, 0, vocab - 1));
  auto [one, two] = withOneAndTwoThreads([&] {
    float loss = 0;
    std::vector<float> dlogits(logits.size());
    EXPECT_TRUE(crossEntropyForward(&loss, static_cast<float *>(nullptr),
                                    logits.data(), targets.data(), rows, vocab)
                    .ok());
    EXPECT_TRUE(crossEntropyBackward(dlogits.data(), logits.data(),
                                     targets.data(), rows, vocab, 1.0 / 512)
                    .ok());
    double sq = sumOfSquares(dlogits.data(), int64_t(dlogits.size()));
    return std::make_tuple(loss, dlogits, sq);
  });
  EXPECT_EQ(std::get<0>(one), std::get<0>(two));
  EXPECT_EQ(std::get<1>(one), std::get<1>(two));
  EXPECT_EQ(std::get<2>(one), std::get<2>(two));
}

TEST(Determinism, MatmulWithFixedBlasThreads) {
  std::mt19937_64 rng(64);
  int64_t m = 96, k = 80, n = 72;
  auto x = randomVector<float>(rng, m * k), w = randomVector<float>(rng, k * n),
       bias = randomVector<float>(rng, n), dy = randomVector<float>(rng, m * n);
  int savedBlas = blasThreadCount();
  setBlasThreadCount(2);
  EXPECT_EQ(blasThreadCount(), 2);
  auto [one, two] = withOneAndTwoThreads([&] {
    std::vector<float> y(static_cast<size_t>(m * n)),
        dx(static_cast<size_t>(m * k)), dw(static_cast<size_t>(k * n), 0.25f),
        db(static_cast<size_t>(n), -0.25f);
    matmulForward(y.data(), x.data(), w.data(), bias.data(), m, k, n, false);
    matmulBackwardB(dx.data(), dy.data(), w.data(), m, k, n, false);
    matmulBackwardW(dw.data(), db.data(), x.data(), dy.data(), m, k, n, false);
    return std::vector<std::vector<float>>{y, dx, dw, db};
  });
  setBlasThreadCount(savedBlas);
  EXPECT_EQ(one, two);
}
