//===- StaticShapeTest.cpp - Static shapes give the run-time shapes' bits -===//
//
// Every kernel runs once with run-time shapes (`k<T>(...)`) and once with
// every shape and flag as a template argument (`k<T, 5, 37>(...)`) on the same
// random non-zero data (accumulating kernels start from the same non-zero
// outputs), and the outputs are compared bit for bit. Each check runs at odd
// small sizes, which stay below kParallelWork (no parallel region), and at a
// size above it (a parallel region), so both paths are covered.
//
//===----------------------------------------------------------------------===//

#include "KernelTestUtil.h"

#include "kernels/cpu/Activation.h"
#include "kernels/cpu/AdamW.h"
#include "kernels/cpu/Attention.h"
#include "kernels/cpu/CrossEntropy.h"
#include "kernels/cpu/Elementwise.h"
#include "kernels/cpu/Embedding.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Norm.h"
#include "kernels/cpu/Rope.h"
#include "kernels/cpu/Shape.h"
#include "kernels/cpu/Softmax.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

using namespace pipert::cpu;
using namespace kerneltest;

template <typename T> using Vec = std::vector<T>;

/// Expects a and b to hold the same bits; reports the first element that
/// differs.
template <typename T>
static void expectSameBits(const Vec<T> &a, const Vec<T> &b,
                           const std::string &what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) {
      ADD_FAILURE() << what << ": element " << i << " of " << a.size()
                    << " differs: " << a[i] << " (run-time shapes) vs " << b[i]
                    << " (static shapes)";
      return;
    }
}

template <typename T>
static void expectSameScalarBits(T a, T b, const std::string &what) {
  expectSameBits(Vec<T>{a}, Vec<T>{b}, what);
}

/// n random ids in [0, vocab).
static std::vector<int32_t> randomIds(std::mt19937_64 &rng, int64_t n,
                                      int64_t vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto &id : ids)
    id = int32_t(randomInt(rng, 0, vocab - 1));
  return ids;
}

//===----------------------------------------------------------------------===//
// Static shapes themselves
//===----------------------------------------------------------------------===//

static_assert(detail::fixedOr<0>(7) == 7, "no static shapes: run time");
static_assert(detail::fixedOr<0, 5, 37>(7) == 5, "first static shape");
static_assert(detail::fixedOr<1, 5, 37>(7) == 37, "second static shape");
static_assert(detail::fixedOr<2, 5, 37>(7) == 7, "past the pack: run time");
static_assert(detail::fixedOr<0, kDynamic, 37>(7) == 7, "kDynamic: run time");

TEST(StaticShape, MixedDynamicAndStaticShapes) {
  std::mt19937_64 rng(700);
  constexpr int64_t rows = 5, dim = 37;
  auto x = randomVector<float>(rng, rows * dim);
  auto g = randomVector<float>(rng, dim), b = randomVector<float>(rng, dim);
  auto y1 = randomVector<float>(rng, rows * dim);
  auto m1 = randomVector<float>(rng, rows), r1 = randomVector<float>(rng, rows);
  auto y2 = y1, m2 = m1, r2 = r1;
  layernormForward<float>(y1.data(), m1.data(), r1.data(), x.data(), g.data(),
                          b.data(), rows, dim, 1e-5);
  layernormForward<float, kDynamic, dim>(y2.data(), m2.data(), r2.data(),
                                         x.data(), g.data(), b.data(), rows,
                                         dim, 1e-5);
  expectSameBits(y1, y2, "layernorm y");
  expectSameBits(m1, m2, "layernorm mean");
  expectSameBits(r1, r2, "layernorm rstd");
}

//===----------------------------------------------------------------------===//
// Activation
//===----------------------------------------------------------------------===//

template <typename T, int64_t N> static void checkActivation(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto x = randomVector<T>(rng, N, 3.0), dy = randomVector<T>(rng, N);
  auto y0 = randomVector<T>(rng, N);
  {
    auto y1 = y0, y2 = y0;
    geluForward<T>(y1.data(), x.data(), N);
    geluForward<T, N>(y2.data(), x.data(), N);
    expectSameBits(y1, y2, "geluForward");
    y1 = y0, y2 = y0;
    siluForward<T>(y1.data(), x.data(), N);
    siluForward<T, N>(y2.data(), x.data(), N);
    expectSameBits(y1, y2, "siluForward");
  }
  for (bool acc : {false, true}) {
    auto d1 = y0, d2 = y0;
    geluBackwardB<T>(d1.data(), dy.data(), x.data(), N, acc);
    if (acc)
      geluBackwardB<T, N, 1>(d2.data(), dy.data(), x.data(), N, acc);
    else
      geluBackwardB<T, N, 0>(d2.data(), dy.data(), x.data(), N, acc);
    expectSameBits(d1, d2, "geluBackwardB acc=" + std::to_string(acc));
    d1 = y0, d2 = y0;
    siluBackwardB<T>(d1.data(), dy.data(), x.data(), N, acc);
    if (acc)
      siluBackwardB<T, N, 1>(d2.data(), dy.data(), x.data(), N, acc);
    else
      siluBackwardB<T, N, 0>(d2.data(), dy.data(), x.data(), N, acc);
    expectSameBits(d1, d2, "siluBackwardB acc=" + std::to_string(acc));
  }
}

TEST(StaticShape, Activation) {
  checkActivation<float, 1001>(701);
  checkActivation<float, 40001>(702);
  checkActivation<double, 1001>(703);
}

//===----------------------------------------------------------------------===//
// AdamW
//===----------------------------------------------------------------------===//

template <typename T, int64_t N> static void checkAdamW(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto p0 = randomVector<T>(rng, N), grad = randomVector<T>(rng, N);
  auto m0 = randomVector<T>(rng, N, 0.1), v0 = randomVector<T>(rng, N, 0.01);
  for (auto &e : v0)
    e = std::fabs(e);
  AdamWConfig c;
  c.lr = 3e-3;
  c.weightDecay = 0.1;
  for (bool decay : {false, true}) {
    auto p1 = p0, m1 = m0, v1 = v0, p2 = p0, m2 = m0, v2 = v0;
    ASSERT_TRUE(adamwStep<T>(p1.data(), grad.data(), m1.data(), v1.data(), N,
                             c, decay, 3, 0.7)
                    .ok());
    Status st = decay ? adamwStep<T, N, 1, 3>(p2.data(), grad.data(),
                                              m2.data(), v2.data(), N, c,
                                              decay, 3, 0.7)
                      : adamwStep<T, N, 0, 3>(p2.data(), grad.data(),
                                              m2.data(), v2.data(), N, c,
                                              decay, 3, 0.7);
    ASSERT_TRUE(st.ok());
    std::string what = "adamwStep decay=" + std::to_string(decay);
    expectSameBits(p1, p2, what + " param");
    expectSameBits(m1, m2, what + " m");
    expectSameBits(v1, v2, what + " v");
  }
  expectSameScalarBits(sumOfSquares<T>(grad.data(), N),
                 sumOfSquares<T, N>(grad.data(), N), "sumOfSquares");
  auto s1 = grad, s2 = grad;
  scaleInPlace<T>(s1.data(), N, 0.37);
  scaleInPlace<T, N>(s2.data(), N, 0.37);
  expectSameBits(s1, s2, "scaleInPlace");
}

TEST(StaticShape, AdamW) {
  checkAdamW<float, 1001>(711);
  checkAdamW<float, 40001>(712);
  checkAdamW<double, 1001>(713);
}

//===----------------------------------------------------------------------===//
// Attention (a struct shape: the pack is accepted and unused)
//===----------------------------------------------------------------------===//

template <typename T, int64_t B, int64_t SQ, int64_t SKV, int64_t H,
          int64_t KVH, int64_t HD, int64_t CAUSAL>
static void checkAttention(uint64_t seed) {
  std::mt19937_64 rng(seed);
  AttentionShape s;
  s.batch = B, s.seqQ = SQ, s.seqKV = SKV, s.heads = H, s.kvHeads = KVH;
  s.headDim = HD, s.causal = CAUSAL != 0;
  s.scale = 1.0 / std::sqrt(double(HD));
  int64_t qn = B * SQ * H * HD, kn = B * SKV * KVH * HD;
  auto q = randomVector<T>(rng, qn), k = randomVector<T>(rng, kn);
  auto v = randomVector<T>(rng, kn), dout = randomVector<T>(rng, qn);
  auto o1 = randomVector<T>(rng, qn), l1 = randomVector<T>(rng, B * H * SQ);
  auto o2 = o1, l2 = l1;
  attentionForward<T>(o1.data(), l1.data(), q.data(), k.data(), v.data(), s);
  attentionForward<T, B, SQ, SKV, H, KVH, HD, CAUSAL>(
      o2.data(), l2.data(), q.data(), k.data(), v.data(), s);
  expectSameBits(o1, o2, "attentionForward out");
  expectSameBits(l1, l2, "attentionForward lse");
  auto dq1 = randomVector<T>(rng, qn), dk1 = randomVector<T>(rng, kn);
  auto dv1 = randomVector<T>(rng, kn);
  auto dq2 = dq1, dk2 = dk1, dv2 = dv1;
  attentionBackwardB<T>(dq1.data(), dk1.data(), dv1.data(), dout.data(),
                        q.data(), k.data(), v.data(), o1.data(), l1.data(), s);
  attentionBackwardB<T, B, SQ, SKV, H, KVH, HD, CAUSAL>(
      dq2.data(), dk2.data(), dv2.data(), dout.data(), q.data(), k.data(),
      v.data(), o1.data(), l1.data(), s);
  expectSameBits(dq1, dq2, "attentionBackwardB dq");
  expectSameBits(dk1, dk2, "attentionBackwardB dk");
  expectSameBits(dv1, dv2, "attentionBackwardB dv");
}

TEST(StaticShape, Attention) {
  checkAttention<float, 2, 5, 7, 3, 1, 6, 1>(721);
  checkAttention<float, 2, 5, 5, 3, 3, 6, 0>(722);
  checkAttention<float, 2, 33, 33, 4, 2, 16, 1>(723);
  checkAttention<double, 2, 5, 7, 3, 3, 6, 1>(724);
}

//===----------------------------------------------------------------------===//
// CrossEntropy
//===----------------------------------------------------------------------===//

template <typename T, int64_t R, int64_t V>
static void checkCrossEntropy(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto logits = randomVector<T>(rng, R * V, 4.0);
  auto targets = randomIds(rng, R, V);
  T loss1 = T(1), loss2 = T(1);
  auto rl1 = randomVector<T>(rng, R), rl2 = rl1;
  ASSERT_TRUE(crossEntropyForward<T>(&loss1, rl1.data(), logits.data(),
                                     targets.data(), R, V)
                  .ok());
  Status st = crossEntropyForward<T, R, V>(&loss2, rl2.data(), logits.data(),
                                           targets.data(), R, V);
  ASSERT_TRUE(st.ok());
  expectSameScalarBits(loss1, loss2, "crossEntropyForward loss");
  expectSameBits(rl1, rl2, "crossEntropyForward rowLosses");
  auto g1 = randomVector<T>(rng, R * V), g2 = g1;
  ASSERT_TRUE(crossEntropyBackward<T>(g1.data(), logits.data(), targets.data(),
                                      R, V, 0.3)
                  .ok());
  st = crossEntropyBackward<T, R, V>(g2.data(), logits.data(), targets.data(),
                                     R, V, 0.3);
  ASSERT_TRUE(st.ok());
  expectSameBits(g1, g2, "crossEntropyBackward");
}

TEST(StaticShape, CrossEntropy) {
  checkCrossEntropy<float, 5, 29>(731);
  checkCrossEntropy<float, 64, 1001>(732);
  checkCrossEntropy<double, 5, 29>(733);
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

template <typename T, int64_t N, int64_t BN>
static void checkElementwise(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto a = randomVector<T>(rng, N), b = randomVector<T>(rng, BN);
  auto dy = randomVector<T>(rng, N), y0 = randomVector<T>(rng, N);
  auto db0 = randomVector<T>(rng, BN);
  {
    auto y1 = y0, y2 = y0;
    addForward<T>(y1.data(), a.data(), b.data(), N, BN);
    addForward<T, N, BN>(y2.data(), a.data(), b.data(), N, BN);
    expectSameBits(y1, y2, "addForward");
    y1 = y0, y2 = y0;
    mulForward<T>(y1.data(), a.data(), b.data(), N, BN);
    mulForward<T, N, BN>(y2.data(), a.data(), b.data(), N, BN);
    expectSameBits(y1, y2, "mulForward");
  }
  for (bool acc : {false, true}) {
    std::string tag = " acc=" + std::to_string(acc);
    auto d1 = db0, d2 = db0;
    addBackwardBroadcast<T>(d1.data(), dy.data(), N, BN, acc);
    if (acc)
      addBackwardBroadcast<T, N, BN, 1>(d2.data(), dy.data(), N, BN, acc);
    else
      addBackwardBroadcast<T, N, BN, 0>(d2.data(), dy.data(), N, BN, acc);
    expectSameBits(d1, d2, "addBackwardBroadcast" + tag);
    d1 = db0, d2 = db0;
    mulBackwardRhs<T>(d1.data(), dy.data(), a.data(), N, BN, acc);
    if (acc)
      mulBackwardRhs<T, N, BN, 1>(d2.data(), dy.data(), a.data(), N, BN, acc);
    else
      mulBackwardRhs<T, N, BN, 0>(d2.data(), dy.data(), a.data(), N, BN, acc);
    expectSameBits(d1, d2, "mulBackwardRhs" + tag);
    auto e1 = y0, e2 = y0;
    mulBackwardLhs<T>(e1.data(), dy.data(), b.data(), N, BN, acc);
    if (acc)
      mulBackwardLhs<T, N, BN, 1>(e2.data(), dy.data(), b.data(), N, BN, acc);
    else
      mulBackwardLhs<T, N, BN, 0>(e2.data(), dy.data(), b.data(), N, BN, acc);
    expectSameBits(e1, e2, "mulBackwardLhs" + tag);
    e1 = y0, e2 = y0;
    accumulateInto<T>(e1.data(), a.data(), N, acc);
    if (acc)
      accumulateInto<T, N, 1>(e2.data(), a.data(), N, acc);
    else
      accumulateInto<T, N, 0>(e2.data(), a.data(), N, acc);
    expectSameBits(e1, e2, "accumulateInto" + tag);
  }
}

TEST(StaticShape, Elementwise) {
  checkElementwise<float, 5 * 37, 37>(741);
  checkElementwise<float, 1001, 1001>(742);
  checkElementwise<float, 301 * 137, 137>(743);
  checkElementwise<double, 5 * 37, 37>(744);
}

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

template <typename T, int64_t TOK, int64_t V, int64_t D>
static void checkEmbedding(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto table = randomVector<T>(rng, V * D);
  auto dout = randomVector<T>(rng, TOK * D);
  auto ids = randomIds(rng, TOK, V);
  auto o1 = randomVector<T>(rng, TOK * D), o2 = o1;
  ASSERT_TRUE(embeddingForward<T>(o1.data(), table.data(), ids.data(), TOK, V,
                                  D)
                  .ok());
  Status st = embeddingForward<T, TOK, V, D>(o2.data(), table.data(),
                                             ids.data(), TOK, V, D);
  ASSERT_TRUE(st.ok());
  expectSameBits(o1, o2, "embeddingForward");
  auto t1 = table, t2 = table;
  ASSERT_TRUE(embeddingBackwardW<T>(t1.data(), dout.data(), ids.data(), TOK,
                                    V, D)
                  .ok());
  st = embeddingBackwardW<T, TOK, V, D>(t2.data(), dout.data(), ids.data(),
                                        TOK, V, D);
  ASSERT_TRUE(st.ok());
  expectSameBits(t1, t2, "embeddingBackwardW");
  // The position table: the first TOK rows of a [TOK + 3, D] table.
  auto pos = randomVector<T>(rng, (TOK + 3) * D);
  o1 = randomVector<T>(rng, TOK * D), o2 = o1;
  positionEmbeddingForward<T>(o1.data(), pos.data(), TOK, D);
  positionEmbeddingForward<T, TOK, D>(o2.data(), pos.data(), TOK, D);
  expectSameBits(o1, o2, "positionEmbeddingForward");
  auto p1 = pos, p2 = pos;
  positionEmbeddingBackwardW<T>(p1.data(), dout.data(), TOK, D);
  positionEmbeddingBackwardW<T, TOK, D>(p2.data(), dout.data(), TOK, D);
  expectSameBits(p1, p2, "positionEmbeddingBackwardW");
}

TEST(StaticShape, Embedding) {
  checkEmbedding<float, 7, 29, 37>(751);
  checkEmbedding<float, 401, 29, 131>(752);
  checkEmbedding<double, 7, 29, 37>(753);
}

//===----------------------------------------------------------------------===//
// Matmul
//===----------------------------------------------------------------------===//

template <typename T, int64_t M, int64_t K, int64_t N, int64_t TR>
static void checkMatmul(uint64_t seed) {
  std::mt19937_64 rng(seed);
  const bool tr = TR != 0;
  auto x = randomVector<T>(rng, M * K), w = randomVector<T>(rng, K * N);
  auto bias = randomVector<T>(rng, N), dy = randomVector<T>(rng, M * N);
  auto y1 = randomVector<T>(rng, M * N), y2 = y1;
  matmulForward<T>(y1.data(), x.data(), w.data(), bias.data(), M, K, N, tr);
  matmulForward<T, M, K, N, TR>(y2.data(), x.data(), w.data(), bias.data(), M,
                                K, N, tr);
  expectSameBits(y1, y2, "matmulForward with bias");
  matmulForward<T>(y1.data(), x.data(), w.data(), nullptr, M, K, N, tr);
  matmulForward<T, M, K, N, TR>(y2.data(), x.data(), w.data(), nullptr, M, K,
                                N, tr);
  expectSameBits(y1, y2, "matmulForward");
  auto dx0 = randomVector<T>(rng, M * K);
  for (bool acc : {false, true}) {
    auto dx1 = dx0, dx2 = dx0;
    matmulBackwardB<T>(dx1.data(), dy.data(), w.data(), M, K, N, tr, acc);
    if (acc)
      matmulBackwardB<T, M, K, N, TR, 1>(dx2.data(), dy.data(), w.data(), M,
                                         K, N, tr, acc);
    else
      matmulBackwardB<T, M, K, N, TR, 0>(dx2.data(), dy.data(), w.data(), M,
                                         K, N, tr, acc);
    expectSameBits(dx1, dx2, "matmulBackwardB acc=" + std::to_string(acc));
  }
  auto dw1 = randomVector<T>(rng, K * N), db1 = randomVector<T>(rng, N);
  auto dw2 = dw1, db2 = db1;
  matmulBackwardW<T>(dw1.data(), db1.data(), x.data(), dy.data(), M, K, N, tr);
  matmulBackwardW<T, M, K, N, TR>(dw2.data(), db2.data(), x.data(), dy.data(),
                                  M, K, N, tr);
  expectSameBits(dw1, dw2, "matmulBackwardW dw");
  expectSameBits(db1, db2, "matmulBackwardW dbias");
}

TEST(StaticShape, Matmul) {
  checkMatmul<float, 5, 13, 37, 0>(761);
  checkMatmul<float, 5, 13, 37, 1>(762);
  checkMatmul<float, 301, 17, 137, 0>(763);
  checkMatmul<double, 5, 13, 37, 1>(764);
}

//===----------------------------------------------------------------------===//
// Norm
//===----------------------------------------------------------------------===//

template <typename T, int64_t R, int64_t D>
static void checkNorm(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto x = randomVector<T>(rng, R * D, 2.0), dy = randomVector<T>(rng, R * D);
  auto g = randomVector<T>(rng, D), b = randomVector<T>(rng, D);
  auto y1 = randomVector<T>(rng, R * D), mean1 = randomVector<T>(rng, R);
  auto rstd1 = randomVector<T>(rng, R);
  auto y2 = y1, mean2 = mean1, rstd2 = rstd1;
  layernormForward<T>(y1.data(), mean1.data(), rstd1.data(), x.data(),
                      g.data(), b.data(), R, D, 1e-5);
  layernormForward<T, R, D>(y2.data(), mean2.data(), rstd2.data(), x.data(),
                            g.data(), b.data(), R, D, 1e-5);
  expectSameBits(y1, y2, "layernormForward y");
  expectSameBits(mean1, mean2, "layernormForward mean");
  expectSameBits(rstd1, rstd2, "layernormForward rstd");
  auto dx0 = randomVector<T>(rng, R * D);
  for (bool acc : {false, true}) {
    auto dx1 = dx0, dx2 = dx0;
    layernormBackwardB<T>(dx1.data(), dy.data(), x.data(), mean1.data(),
                          rstd1.data(), g.data(), R, D, acc);
    if (acc)
      layernormBackwardB<T, R, D, 1>(dx2.data(), dy.data(), x.data(),
                                     mean1.data(), rstd1.data(), g.data(), R,
                                     D, acc);
    else
      layernormBackwardB<T, R, D, 0>(dx2.data(), dy.data(), x.data(),
                                     mean1.data(), rstd1.data(), g.data(), R,
                                     D, acc);
    expectSameBits(dx1, dx2, "layernormBackwardB acc=" + std::to_string(acc));
  }
  auto dg1 = randomVector<T>(rng, D), dbeta1 = randomVector<T>(rng, D);
  auto dg2 = dg1, dbeta2 = dbeta1;
  layernormBackwardW<T>(dg1.data(), dbeta1.data(), dy.data(), x.data(),
                        mean1.data(), rstd1.data(), R, D);
  layernormBackwardW<T, R, D>(dg2.data(), dbeta2.data(), dy.data(), x.data(),
                              mean1.data(), rstd1.data(), R, D);
  expectSameBits(dg1, dg2, "layernormBackwardW dgamma");
  expectSameBits(dbeta1, dbeta2, "layernormBackwardW dbeta");

  rmsnormForward<T>(y1.data(), rstd1.data(), x.data(), g.data(), R, D, 1e-6);
  rmsnormForward<T, R, D>(y2.data(), rstd2.data(), x.data(), g.data(), R, D,
                          1e-6);
  expectSameBits(y1, y2, "rmsnormForward y");
  expectSameBits(rstd1, rstd2, "rmsnormForward rstd");
  for (bool acc : {false, true}) {
    auto dx1 = dx0, dx2 = dx0;
    rmsnormBackwardB<T>(dx1.data(), dy.data(), x.data(), rstd1.data(),
                        g.data(), R, D, acc);
    if (acc)
      rmsnormBackwardB<T, R, D, 1>(dx2.data(), dy.data(), x.data(),
                                   rstd1.data(), g.data(), R, D, acc);
    else
      rmsnormBackwardB<T, R, D, 0>(dx2.data(), dy.data(), x.data(),
                                   rstd1.data(), g.data(), R, D, acc);
    expectSameBits(dx1, dx2, "rmsnormBackwardB acc=" + std::to_string(acc));
  }
  dg2 = dg1;
  rmsnormBackwardW<T>(dg1.data(), dy.data(), x.data(), rstd1.data(), R, D);
  rmsnormBackwardW<T, R, D>(dg2.data(), dy.data(), x.data(), rstd1.data(), R,
                            D);
  expectSameBits(dg1, dg2, "rmsnormBackwardW");
}

TEST(StaticShape, Norm) {
  checkNorm<float, 5, 37>(771);
  checkNorm<float, 301, 137>(772);
  checkNorm<double, 5, 37>(773);
}

//===----------------------------------------------------------------------===//
// Rope
//===----------------------------------------------------------------------===//

template <typename T, int64_t B, int64_t S, int64_t H, int64_t HD>
static void checkRope(uint64_t seed) {
  std::mt19937_64 rng(seed);
  constexpr int64_t n = B * S * H * HD;
  auto x = randomVector<T>(rng, n), y0 = randomVector<T>(rng, n);
  auto y1 = y0, y2 = y0;
  ropeForward<T>(y1.data(), x.data(), B, S, H, HD, 10000.0);
  ropeForward<T, B, S, H, HD>(y2.data(), x.data(), B, S, H, HD, 10000.0);
  expectSameBits(y1, y2, "ropeForward");
  // In place (the output may alias the input).
  y1 = x, y2 = x;
  ropeForward<T>(y1.data(), y1.data(), B, S, H, HD, 500000.0);
  ropeForward<T, B, S, H, HD>(y2.data(), y2.data(), B, S, H, HD, 500000.0);
  expectSameBits(y1, y2, "ropeForward in place");
  for (bool acc : {false, true}) {
    y1 = y0, y2 = y0;
    ropeBackwardB<T>(y1.data(), x.data(), B, S, H, HD, 10000.0, acc);
    if (acc)
      ropeBackwardB<T, B, S, H, HD, 1>(y2.data(), x.data(), B, S, H, HD,
                                       10000.0, acc);
    else
      ropeBackwardB<T, B, S, H, HD, 0>(y2.data(), x.data(), B, S, H, HD,
                                       10000.0, acc);
    expectSameBits(y1, y2, "ropeBackwardB acc=" + std::to_string(acc));
  }
}

TEST(StaticShape, Rope) {
  checkRope<float, 2, 7, 3, 6>(781);
  checkRope<float, 2, 101, 3, 64>(782);
  checkRope<double, 2, 7, 3, 6>(783);
}

//===----------------------------------------------------------------------===//
// Shape (transpose takes arrays: the pack is accepted and unused)
//===----------------------------------------------------------------------===//

template <typename T, int64_t O, int64_t D, int64_t I, int64_t OFF, int64_t SZ>
static void checkSliceReshape(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto x = randomVector<T>(rng, O * D * I);
  auto dy = randomVector<T>(rng, O * SZ * I);
  auto y1 = randomVector<T>(rng, O * SZ * I), y2 = y1;
  sliceForward<T>(y1.data(), x.data(), O, D, I, OFF, SZ);
  sliceForward<T, O, D, I, OFF, SZ>(y2.data(), x.data(), O, D, I, OFF, SZ);
  expectSameBits(y1, y2, "sliceForward");
  auto dx0 = randomVector<T>(rng, O * D * I);
  for (bool acc : {false, true}) {
    std::string tag = " acc=" + std::to_string(acc);
    auto dx1 = dx0, dx2 = dx0;
    sliceBackwardB<T>(dx1.data(), dy.data(), O, D, I, OFF, SZ, acc);
    if (acc)
      sliceBackwardB<T, O, D, I, OFF, SZ, 1>(dx2.data(), dy.data(), O, D, I,
                                             OFF, SZ, acc);
    else
      sliceBackwardB<T, O, D, I, OFF, SZ, 0>(dx2.data(), dy.data(), O, D, I,
                                             OFF, SZ, acc);
    expectSameBits(dx1, dx2, "sliceBackwardB" + tag);
    constexpr int64_t n = O * D * I;
    dx1 = dx0, dx2 = dx0;
    reshapeBackwardB<T>(dx1.data(), x.data(), n, acc);
    if (acc)
      reshapeBackwardB<T, n, 1>(dx2.data(), x.data(), n, acc);
    else
      reshapeBackwardB<T, n, 0>(dx2.data(), x.data(), n, acc);
    expectSameBits(dx1, dx2, "reshapeBackwardB" + tag);
  }
  // Three windows: this one, one before it (or after) and one of size 1.
  constexpr int64_t off1 = OFF >= 1 ? 0 : OFF + SZ, size1 = 1;
  constexpr int64_t off2 = OFF >= 2 ? 1 : OFF + SZ + 1, size2 = 1;
  if constexpr (off2 + size2 <= D && off1 + size1 <= D) {
    auto dy1 = randomVector<T>(rng, O * size1 * I);
    auto dy2 = randomVector<T>(rng, O * size2 * I);
    auto s1 = dx0, s2 = dx0;
    slices3BackwardB<T>(s1.data(), dy.data(), dy1.data(), dy2.data(), O, D, I,
                        OFF, SZ, off1, size1, off2, size2);
    slices3BackwardB<T, O, D, I, OFF, SZ, off1, size1, off2, size2>(
        s2.data(), dy.data(), dy1.data(), dy2.data(), O, D, I, OFF, SZ, off1,
        size1, off2, size2);
    expectSameBits(s1, s2, "slices3BackwardB");
  }
  auto r1 = randomVector<T>(rng, O * D * I), r2 = r1;
  reshapeForward<T>(r1.data(), x.data(), O * D * I);
  reshapeForward<T, O * D * I>(r2.data(), x.data(), O * D * I);
  expectSameBits(r1, r2, "reshapeForward");
}

template <typename T, int64_t D0, int64_t D1, int64_t D2, int64_t D3>
static void checkTranspose(uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t dims[4] = {D0, D1, D2, D3}, perm[4] = {2, 0, 3, 1};
  constexpr int64_t n = D0 * D1 * D2 * D3;
  auto x = randomVector<T>(rng, n), y1 = randomVector<T>(rng, n), y2 = y1;
  transposeForward<T>(y1.data(), x.data(), dims, perm, 4);
  transposeForward<T, D0, D1, D2, D3, 2, 0, 3, 1>(y2.data(), x.data(), dims,
                                                  perm, 4);
  expectSameBits(y1, y2, "transposeForward");
  auto dx0 = randomVector<T>(rng, n);
  for (bool acc : {false, true}) {
    auto dx1 = dx0, dx2 = dx0;
    transposeBackwardB<T>(dx1.data(), y1.data(), dims, perm, 4, acc);
    transposeBackwardB<T, D0, D1, D2, D3, 2, 0, 3, 1>(dx2.data(), y1.data(),
                                                      dims, perm, 4, acc);
    expectSameBits(dx1, dx2,
                   "transposeBackwardB acc=" + std::to_string(acc));
  }
}

TEST(StaticShape, Shape) {
  checkSliceReshape<float, 3, 9, 5, 2, 4>(791);
  checkSliceReshape<float, 301, 9, 37, 2, 5>(792);
  checkSliceReshape<double, 3, 9, 5, 2, 4>(793);
  checkTranspose<float, 2, 3, 5, 7>(794);
  checkTranspose<float, 2, 31, 5, 111>(795);
  checkTranspose<double, 2, 3, 5, 7>(796);
}

//===----------------------------------------------------------------------===//
// Softmax
//===----------------------------------------------------------------------===//

template <typename T, int64_t R, int64_t D>
static void checkSoftmax(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto x = randomVector<T>(rng, R * D, 5.0), dy = randomVector<T>(rng, R * D);
  auto y1 = randomVector<T>(rng, R * D), y2 = y1;
  softmaxForward<T>(y1.data(), x.data(), R, D);
  softmaxForward<T, R, D>(y2.data(), x.data(), R, D);
  expectSameBits(y1, y2, "softmaxForward");
  auto dx0 = randomVector<T>(rng, R * D);
  for (bool acc : {false, true}) {
    auto dx1 = dx0, dx2 = dx0;
    softmaxBackwardB<T>(dx1.data(), dy.data(), y1.data(), R, D, acc);
    if (acc)
      softmaxBackwardB<T, R, D, 1>(dx2.data(), dy.data(), y1.data(), R, D,
                                   acc);
    else
      softmaxBackwardB<T, R, D, 0>(dx2.data(), dy.data(), y1.data(), R, D,
                                   acc);
    expectSameBits(dx1, dx2, "softmaxBackwardB acc=" + std::to_string(acc));
  }
}

TEST(StaticShape, Softmax) {
  checkSoftmax<float, 5, 37>(801);
  checkSoftmax<float, 301, 137>(802);
  checkSoftmax<double, 5, 37>(803);
}
