//===- VecMathTest.cpp - vecExp / vecTanh against double libm ------------===//
//
// Sweeps ~70 million float bit patterns (every 61st of all 2^32, which hits
// every binade, both signs, denormals, inf and NaN payloads), all floats
// around each threshold of the implementation, and the special values, and
// compares with the double-precision std:: function: the ulp error (relative
// to the correctly rounded float) must be at most the documented bound, and
// inf / NaN / zero results must match exactly. A second test checks that a
// vectorized `omp simd` loop computes the same bits as scalar calls.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/VecMath.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace pipert::cpu;

namespace {

float fromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

uint32_t toBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

/// The worst error seen and where; `bad` counts results outside the bound or
/// with a wrong special value.
struct Errors {
  double maxUlp = 0;
  float worstX = 0;
  int64_t count = 0, bad = 0;
  float firstBadX = 0, firstBadY = 0;
};

/// Error of y against the exact value ref, in ulps of the float binade of
/// ref (denormal spacing below FLT_MIN).
double ulpError(float y, double ref) {
  int e;
  std::frexp(ref, &e); // |ref| = m * 2^e, m in [0.5, 1)
  double ulp = std::ldexp(1.0, std::max(e - 24, -149));
  return std::fabs(double(y) - ref) / ulp;
}

void check(float x, float y, double ref, double bound, Errors &err) {
  ++err.count;
  float refF = float(ref);
  bool ok;
  if (std::isnan(ref)) {
    ok = std::isnan(y);
  } else if (std::isinf(refF) || std::isinf(y)) {
    ok = y == refF;
  } else if (ref == 0) {
    ok = y == 0 && std::signbit(y) == std::signbit(ref);
  } else {
    double u = ulpError(y, ref);
    if (u > err.maxUlp) {
      err.maxUlp = u;
      err.worstX = x;
    }
    ok = u <= bound;
  }
  if (!ok && err.bad++ == 0) {
    err.firstBadX = x;
    err.firstBadY = y;
  }
}

template <typename F, typename R>
Errors sweep(F f, R ref, double bound, const std::vector<float> &extra) {
  Errors err;
  // Every 61st bit pattern of all 2^32 (61 is odd, so the low bits vary).
  for (uint64_t u = 0; u < (uint64_t(1) << 32); u += 61) {
    float x = fromBits(uint32_t(u));
    check(x, f(x), ref(double(x)), bound, err);
  }
  // Every float within 2^16 bit patterns of each threshold.
  for (float c : extra)
    for (int32_t d = -65536; d <= 65536; ++d) {
      float x = fromBits(uint32_t(int64_t(toBits(c)) + d));
      check(x, f(x), ref(double(x)), bound, err);
    }
  return err;
}

std::vector<float> specials() {
  const float inf = std::numeric_limits<float>::infinity();
  return {0.0f,      -0.0f,         FLT_MIN,        -FLT_MIN, 1e-45f,
          -1e-45f,   FLT_TRUE_MIN,  FLT_MAX,        -FLT_MAX, inf,
          -inf,      std::nanf(""), -std::nanf(""), 1.0f,     -1.0f,
          88.72283f, -87.33654f,    -103.97208f,    0.625f,   -0.625f,
          9.1f,      -9.1f};
}

TEST(VecMath, ExpWholeRangeWithinBound) {
  std::vector<float> edges = {88.72283f, -87.33654f,  -103.97208f,  0.0f,
                              -0.0f,     0.34657359f, -0.34657359f, 1.0f};
  Errors err =
      sweep([](float x) { return vecExp(x); },
            [](double x) { return std::exp(x); }, kVecExpMaxUlp, edges);
  for (float x : specials()) {
    float y = vecExp(x);
    check(x, y, std::exp(double(x)), kVecExpMaxUlp, err);
  }
  EXPECT_GT(err.count, int64_t(60'000'000));
  EXPECT_EQ(err.bad, 0) << "first bad: vecExp(" << err.firstBadX
                        << ") = " << err.firstBadY << " (exact "
                        << std::exp(double(err.firstBadX)) << ")";
  EXPECT_LE(err.maxUlp, kVecExpMaxUlp) << "at x = " << err.worstX;
  // The bound is tight enough to mean something: the worst case is not
  // far below it.
  EXPECT_GT(err.maxUlp, 0.5);
  std::printf("vecExp: %lld values, max %.3f ulp at x = %.9g\n",
              (long long)err.count, err.maxUlp, double(err.worstX));
}

TEST(VecMath, TanhWholeRangeWithinBound) {
  std::vector<float> edges = {0.625f, -0.625f, 9.1f,  -9.1f,
                              9.01f,  0.0f,    -0.0f, 1e-4f};
  Errors err =
      sweep([](float x) { return vecTanh(x); },
            [](double x) { return std::tanh(x); }, kVecTanhMaxUlp, edges);
  for (float x : specials()) {
    float y = vecTanh(x);
    check(x, y, std::tanh(double(x)), kVecTanhMaxUlp, err);
  }
  EXPECT_GT(err.count, int64_t(60'000'000));
  EXPECT_EQ(err.bad, 0) << "first bad: vecTanh(" << err.firstBadX
                        << ") = " << err.firstBadY << " (exact "
                        << std::tanh(double(err.firstBadX)) << ")";
  EXPECT_LE(err.maxUlp, kVecTanhMaxUlp) << "at x = " << err.worstX;
  EXPECT_GT(err.maxUlp, 0.5);
  std::printf("vecTanh: %lld values, max %.3f ulp at x = %.9g\n",
              (long long)err.count, err.maxUlp, double(err.worstX));
}

TEST(VecMath, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(vecExp(0.0f), 1.0f);
  EXPECT_EQ(vecExp(-0.0f), 1.0f);
  EXPECT_EQ(vecExp(inf), inf);
  EXPECT_EQ(vecExp(-inf), 0.0f);
  EXPECT_EQ(vecExp(100.0f), inf);
  EXPECT_EQ(vecExp(-200.0f), 0.0f);
  EXPECT_TRUE(std::isnan(vecExp(std::nanf(""))));
  EXPECT_EQ(vecExp(FLT_TRUE_MIN), 1.0f);
  EXPECT_EQ(vecTanh(0.0f), 0.0f);
  EXPECT_TRUE(std::signbit(vecTanh(-0.0f)));
  EXPECT_EQ(vecTanh(FLT_TRUE_MIN), FLT_TRUE_MIN);
  EXPECT_EQ(vecTanh(-FLT_TRUE_MIN), -FLT_TRUE_MIN);
  EXPECT_EQ(vecTanh(inf), 1.0f);
  EXPECT_EQ(vecTanh(-inf), -1.0f);
  EXPECT_TRUE(std::isnan(vecTanh(std::nanf(""))));
  // Denormal results of exp are rounded once.
  EXPECT_EQ(vecExp(-100.0f), float(std::exp(-100.0)));
  // The double overloads are libm.
  EXPECT_EQ(vecExp(0.5), std::exp(0.5));
  EXPECT_EQ(vecTanh(0.5), std::tanh(0.5));
}

/// One scalar call per element that the compiler cannot vectorize.
__attribute__((noinline)) float scalarExp(float x) { return vecExp(x); }
__attribute__((noinline)) float scalarTanh(float x) { return vecTanh(x); }

TEST(VecMath, SimdLoopMatchesScalarBits) {
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-120.0f, 120.0f);
  const int n = 1 << 16;
  std::vector<float> x(n), e(n), t(n);
  for (float &v : x)
    v = dist(rng);
  x[0] = std::nanf("");
  x[1] = -std::numeric_limits<float>::infinity();
  x[2] = -0.0f;
  x[3] = FLT_TRUE_MIN;
  float *px = x.data(), *pe = e.data(), *pt = t.data();
#pragma omp simd
  for (int i = 0; i < n; ++i) {
    pe[i] = vecExp(px[i]);
    pt[i] = vecTanh(px[i] * 0.1f);
  }
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(toBits(pe[i]), toBits(scalarExp(px[i]))) << "exp at " << px[i];
    ASSERT_EQ(toBits(pt[i]), toBits(scalarTanh(px[i] * 0.1f)))
        << "tanh at " << px[i] * 0.1f;
  }
}

} // namespace
