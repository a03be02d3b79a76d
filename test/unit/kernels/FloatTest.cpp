//===- FloatTest.cpp - float instantiations agree with double -------------===//
//
// The reference executor runs in float32 and float64 through the same
// templates; the gradient checks run in double. These tests run the float
// instantiations of the kernels on the same data and expect agreement to
// float rounding (normwise relative error below 1e-5).
//
//===----------------------------------------------------------------------===//

#include "KernelTestUtil.h"

#include "kernels/cpu/Activation.h"
#include "kernels/cpu/Attention.h"
#include "kernels/cpu/CrossEntropy.h"
#include "kernels/cpu/Elementwise.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Norm.h"
#include "kernels/cpu/Rope.h"
#include "kernels/cpu/Softmax.h"

#include <gtest/gtest.h>

using namespace pipert::cpu;
using namespace kerneltest;

constexpr double kFloatTolerance = 1e-5;

static std::vector<float> toFloat(const std::vector<double> &v) {
  return std::vector<float>(v.begin(), v.end());
}

static double floatError(const std::vector<float> &f,
                         const std::vector<double> &d) {
  return normwiseError(std::vector<double>(f.begin(), f.end()), d);
}

TEST(Float, MatmulAndNormsAgreeWithDouble) {
  std::mt19937_64 rng(70);
  int64_t m = 24, k = 40, n = 56;
  auto x = randomVector(rng, m * k), w = randomVector(rng, n * k),
       bias = randomVector(rng, n), dy = randomVector(rng, m * n);
  std::vector<double> y(static_cast<size_t>(m * n)),
      dx(static_cast<size_t>(m * k)), dw(static_cast<size_t>(n * k));
  std::vector<float> yf(y.size()), dxf(dx.size()), dwf(dw.size());
  matmulForward(y.data(), x.data(), w.data(), bias.data(), m, k, n, true);
  matmulForward(yf.data(), toFloat(x).data(), toFloat(w).data(),
                toFloat(bias).data(), m, k, n, true);
  matmulBackwardB(dx.data(), dy.data(), w.data(), m, k, n, true);
  matmulBackwardB(dxf.data(), toFloat(dy).data(), toFloat(w).data(), m, k, n,
                  true);
  matmulBackwardW<double>(dw.data(), nullptr, x.data(), dy.data(), m, k, n,
                          true);
  matmulBackwardW<float>(dwf.data(), nullptr, toFloat(x).data(),
                         toFloat(dy).data(), m, k, n, true);
  EXPECT_LT(floatError(yf, y), kFloatTolerance);
  EXPECT_LT(floatError(dxf, dx), kFloatTolerance);
  EXPECT_LT(floatError(dwf, dw), kFloatTolerance);

  // layernorm then rmsnorm on the matmul output, forward and B.
  auto gamma = randomVector(rng, n), beta = randomVector(rng, n);
  std::vector<double> ln(y.size()), mean(static_cast<size_t>(m)),
      rstd(static_cast<size_t>(m)), dln(y.size());
  std::vector<float> lnf(y.size()), meanf(mean.size()), rstdf(rstd.size()),
      dlnf(y.size());
  layernormForward(ln.data(), mean.data(), rstd.data(), y.data(), gamma.data(),
                   beta.data(), m, n, 1e-5);
  layernormForward(lnf.data(), meanf.data(), rstdf.data(), yf.data(),
                   toFloat(gamma).data(), toFloat(beta).data(), m, n, 1e-5);
  layernormBackwardB(dln.data(), dy.data(), y.data(), mean.data(), rstd.data(),
                     gamma.data(), m, n);
  layernormBackwardB(dlnf.data(), toFloat(dy).data(), yf.data(), meanf.data(),
                     rstdf.data(), toFloat(gamma).data(), m, n);
  EXPECT_LT(floatError(lnf, ln), kFloatTolerance);
  EXPECT_LT(floatError(dlnf, dln), kFloatTolerance);
  rmsnormForward(ln.data(), rstd.data(), y.data(), gamma.data(), m, n, 1e-5);
  rmsnormForward(lnf.data(), rstdf.data(), yf.data(), toFloat(gamma).data(), m,
                 n, 1e-5);
  EXPECT_LT(floatError(lnf, ln), kFloatTolerance);
}

TEST(Float, ElementwiseAndActivationsAgreeWithDouble) {
  std::mt19937_64 rng(71);
  int64_t rows = 16, bn = 33, n = rows * bn;
  auto a = randomVector(rng, n, 3.0), b = randomVector(rng, bn),
       dy = randomVector(rng, n);
  std::vector<double> y(static_cast<size_t>(n)), g(static_cast<size_t>(n));
  std::vector<float> yf(y.size()), gf(g.size());
  using DFn = void (*)(double *, const double *, int64_t);
  using FFn = void (*)(float *, const float *, int64_t);
  using DBn = void (*)(double *, const double *, const double *, int64_t, bool);
  using FBn = void (*)(float *, const float *, const float *, int64_t, bool);
  struct Case {
    const char *name;
    DFn fd;
    FFn ff;
    DBn bd;
    FBn bf;
  } cases[] = {
      {"gelu", geluForward<double>, geluForward<float>, geluBackwardB<double>,
       geluBackwardB<float>},
      {"silu", siluForward<double>, siluForward<float>, siluBackwardB<double>,
       siluBackwardB<float>},
  };
  for (const Case &c : cases) {
    c.fd(y.data(), a.data(), n);
    c.ff(yf.data(), toFloat(a).data(), n);
    c.bd(g.data(), dy.data(), a.data(), n, false);
    c.bf(gf.data(), toFloat(dy).data(), toFloat(a).data(), n, false);
    EXPECT_LT(floatError(yf, y), kFloatTolerance) << c.name;
    EXPECT_LT(floatError(gf, g), kFloatTolerance) << c.name;
  }
  mulForward(y.data(), a.data(), b.data(), n, bn);
  mulForward(yf.data(), toFloat(a).data(), toFloat(b).data(), n, bn);
  EXPECT_LT(floatError(yf, y), kFloatTolerance);
  std::vector<double> db(static_cast<size_t>(bn));
  std::vector<float> dbf(db.size());
  mulBackwardRhs(db.data(), dy.data(), a.data(), n, bn, false);
  mulBackwardRhs(dbf.data(), toFloat(dy).data(), toFloat(a).data(), n, bn,
                 false);
  EXPECT_LT(floatError(dbf, db), kFloatTolerance);
  softmaxForward(y.data(), a.data(), rows, bn);
  softmaxForward(yf.data(), toFloat(a).data(), rows, bn);
  EXPECT_LT(floatError(yf, y), kFloatTolerance);
}

TEST(Float, RopeAttentionCrossEntropyAgreeWithDouble) {
  std::mt19937_64 rng(72);
  AttentionShape s;
  s.batch = 2, s.seqQ = s.seqKV = 16, s.heads = 4, s.kvHeads = 2,
  s.headDim = 8, s.scale = 1 / std::sqrt(8.0);
  int64_t qn = s.batch * s.seqQ * s.heads * s.headDim;
  int64_t kvn = s.batch * s.seqKV * s.kvHeads * s.headDim;
  auto q = randomVector(rng, qn), k = randomVector(rng, kvn),
       v = randomVector(rng, kvn), dy = randomVector(rng, qn);
  ropeForward(q.data(), q.data(), s.batch, s.seqQ, s.heads, s.headDim, 1e4);
  std::vector<float> qf = toFloat(q), kf = toFloat(k);
  ropeForward(k.data(), k.data(), s.batch, s.seqKV, s.kvHeads, s.headDim, 1e4);
  ropeForward(kf.data(), kf.data(), s.batch, s.seqKV, s.kvHeads, s.headDim,
              1e4);
  EXPECT_LT(floatError(kf, k), kFloatTolerance);

  std::vector<double> out(static_cast<size_t>(qn)),
      lse(static_cast<size_t>(s.batch * s.heads * s.seqQ)), dq(out.size()),
      dk(static_cast<size_t>(kvn)), dv(dk.size());
  std::vector<float> outf(out.size()), lsef(lse.size()), dqf(dq.size()),
      dkf(dk.size()), dvf(dv.size());
  attentionForward(out.data(), lse.data(), q.data(), k.data(), v.data(), s);
  attentionForward(outf.data(), lsef.data(), qf.data(), kf.data(),
                   toFloat(v).data(), s);
  attentionBackwardB(dq.data(), dk.data(), dv.data(), dy.data(), q.data(),
                     k.data(), v.data(), out.data(), lse.data(), s);
  attentionBackwardB(dqf.data(), dkf.data(), dvf.data(), toFloat(dy).data(),
                     qf.data(), kf.data(), toFloat(v).data(), outf.data(),
                     lsef.data(), s);
  EXPECT_LT(floatError(outf, out), kFloatTolerance);
  EXPECT_LT(floatError(lsef, lse), kFloatTolerance);
  EXPECT_LT(floatError(dqf, dq), kFloatTolerance);
  EXPECT_LT(floatError(dkf, dk), kFloatTolerance);
  EXPECT_LT(floatError(dvf, dv), kFloatTolerance);

  // Cross-entropy over the attention output read as [rows, vocab] logits.
  int64_t rows = s.batch * s.seqQ, vocab = s.heads * s.headDim;
  std::vector<int32_t> targets(static_cast<size_t>(rows));
  for (auto &t : targets)
    t = int32_t(randomInt(rng, 0, vocab - 1));
  double loss = 0;
  float lossf = 0;
  ASSERT_TRUE(crossEntropyForward<double>(&loss, nullptr, out.data(),
                                          targets.data(), rows, vocab)
                  .ok());
  ASSERT_TRUE(crossEntropyForward<float>(&lossf, nullptr, outf.data(),
                                         targets.data(), rows, vocab)
                  .ok());
  EXPECT_NEAR(lossf, loss, 1e-5 * loss);
}
