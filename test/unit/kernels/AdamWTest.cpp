//===- AdamWTest.cpp - AdamW step, global norm and clipping ---------------===//

#include "KernelTestUtil.h"

#include "kernels/cpu/AdamW.h"

#include <gtest/gtest.h>

using namespace pipert::cpu;
using namespace kerneltest;

TEST(AdamW, TwoStepsMatchHandComputedValues) {
  AdamWConfig c;
  c.lr = 0.1, c.beta1 = 0.9, c.beta2 = 0.999, c.eps = 1e-8, c.weightDecay = 0.1;
  // Element 0 decays, element 1 is a separate tensor that does not.
  double p0 = 1.0, m0 = 0, v0 = 0, p1 = -2.0, m1 = 0, v1 = 0;
  double g0 = 0.5, g1 = -0.1;
  ASSERT_TRUE(adamwStep(&p0, &g0, &m0, &v0, 1, c, true, 1).ok());
  ASSERT_TRUE(adamwStep(&p1, &g1, &m1, &v1, 1, c, false, 1).ok());
  // t = 1: m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25,
  // p = 1 - 0.1 (0.5 / (0.5 + 1e-8) + 0.1 * 1) = 0.890000002.
  EXPECT_NEAR(m0, 0.05, 1e-15);
  EXPECT_NEAR(v0, 0.00025, 1e-18);
  EXPECT_NEAR(p0, 0.890000002, 1e-12);
  // No decay: p = -2 - 0.1 (-0.1 / (0.1 + 1e-8)) = -1.90000001.
  EXPECT_NEAR(p1, -1.90000001, 1e-12);

  g0 = -1.0, g1 = 0.3;
  ASSERT_TRUE(adamwStep(&p0, &g0, &m0, &v0, 1, c, true, 2).ok());
  ASSERT_TRUE(adamwStep(&p1, &g1, &m1, &v1, 1, c, false, 2).ok());
  // t = 2: m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975,
  // mhat = -0.055 / 0.19, vhat = 0.00124975 / 0.001999,
  // p = 0.890000002 - 0.1 (mhat / (sqrt(vhat) + 1e-8) + 0.0890000002).
  EXPECT_NEAR(m0, -0.055, 1e-15);
  EXPECT_NEAR(v0, 0.00124975, 1e-17);
  EXPECT_NEAR(p0, 0.9177103542205653, 1e-12);
  EXPECT_NEAR(p1, -1.9494189911200654, 1e-12);

  // The float instantiation follows within float rounding.
  float pf = 1.0f, mf = 0, vf = 0, gf = 0.5f;
  ASSERT_TRUE(adamwStep(&pf, &gf, &mf, &vf, 1, c, true, 1).ok());
  EXPECT_NEAR(pf, 0.890000002, 1e-6);
}

TEST(AdamW, GradScaleIsAppliedBeforeTheMoments) {
  AdamWConfig c;
  c.lr = 0.01;
  std::mt19937_64 rng(50);
  auto p = randomVector(rng, 9), g = randomVector(rng, 9);
  auto scaled = g;
  scaleInPlace(scaled.data(), 9, 0.25);
  auto pa = p, pb = p;
  std::vector<double> ma(9, 0), va(9, 0), mb(9, 0), vb(9, 0);
  ASSERT_TRUE(adamwStep(pa.data(), g.data(), ma.data(), va.data(), 9, c, true,
                        3, 0.25)
                  .ok());
  ASSERT_TRUE(adamwStep(pb.data(), scaled.data(), mb.data(), vb.data(), 9, c,
                        true, 3)
                  .ok());
  EXPECT_EQ(pa, pb);
  EXPECT_EQ(ma, mb);
  EXPECT_EQ(va, vb);
}

TEST(AdamW, RejectsStepZero) {
  double p = 1, g = 1, m = 0, v = 0;
  Status s = adamwStep(&p, &g, &m, &v, 1, AdamWConfig(), false, 0);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "adamw: step 0 must be at least 1 (bias correction)");
  EXPECT_EQ(p, 1.0);
}

TEST(GlobalNorm, SumsSquaresAndClipsLikeOptax) {
  std::vector<float> a = {3.0f, 4.0f};
  std::vector<double> b = {12.0};
  double sq[2] = {sumOfSquares(a.data(), 2), sumOfSquares(b.data(), 1)};
  EXPECT_EQ(sq[0], 25.0);
  EXPECT_EQ(sq[1], 144.0);
  double norm = globalNorm(sq, 2);
  EXPECT_EQ(norm, 13.0);
  EXPECT_EQ(clipScale(norm, 1.3), 0.1);
  EXPECT_EQ(clipScale(norm, 20.0), 1.0);
  EXPECT_EQ(clipScale(norm, 0.0), 1.0); // 0 turns clipping off

  // Many chunks: equal to a plain double sum to rounding.
  std::mt19937_64 rng(51);
  auto big = randomVector(rng, 100003);
  double plain = 0;
  for (double x : big)
    plain += x * x;
  EXPECT_NEAR(sumOfSquares(big.data(), int64_t(big.size())), plain,
              1e-10 * plain);
}
