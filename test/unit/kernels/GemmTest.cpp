//===- GemmTest.cpp - pipec's GEMM: its order, its threads, its accuracy --===//
//
// The GEMM of Gemm.h must perform exactly the operations its header
// promises: the AVX-512 and the portable micro-kernels are compared bit for
// bit with a plain loop written in that order, on odd shapes (edges of
// every blocking), every transpose, beta 0, 1 and 0.5, and strided
// operands; the bits must not move with the OpenMP thread count; and the
// result must be within the FMA-summation bound of a float64 product.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/Gemm.h"
#include "test/unit/kernels/KernelTestUtil.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

using namespace pipert::cpu;

namespace {

struct Case {
  bool ta, tb;
  int64_t m, n, k;
  float beta;
};

/// A random problem with row strides 3 past the minimum.
struct Problem {
  Case cs;
  int64_t lda, ldb, ldc;
  std::vector<float> a, b, c;
  Problem(const Case &cs, std::mt19937_64 &rng) : cs(cs) {
    int64_t ar = cs.ta ? cs.k : cs.m, ac = cs.ta ? cs.m : cs.k;
    int64_t br = cs.tb ? cs.n : cs.k, bc = cs.tb ? cs.k : cs.n;
    lda = ac + 3, ldb = bc + 3, ldc = cs.n + 3;
    a = kerneltest::randomVector<float>(rng, std::max<int64_t>(ar * lda, 1));
    b = kerneltest::randomVector<float>(rng, std::max<int64_t>(br * ldb, 1));
    c = kerneltest::randomVector<float>(rng, std::max<int64_t>(cs.m * ldc, 1));
  }
  float at(const std::vector<float> &x, int64_t ld, bool t, int64_t r,
           int64_t col) const {
    return t ? x[size_t(col * ld + r)] : x[size_t(r * ld + col)];
  }
};

/// Gemm.h's order, written plainly: per element, each k block summed from
/// zero by FMAs in ascending k, the blocks added to C in order.
std::vector<float> reference(const Problem &p) {
  std::vector<float> c = p.c;
  const Case &s = p.cs;
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j) {
      float &out = c[size_t(i * p.ldc + j)];
      if (s.k == 0)
        out = s.beta == 0.0f ? 0.0f : s.beta * out;
      for (int64_t k0 = 0; k0 < s.k; k0 += kGemmKc) {
        float sum = 0.0f;
        for (int64_t k = k0; k < std::min(s.k, k0 + kGemmKc); ++k)
          sum = std::fma(p.at(p.a, p.lda, s.ta, i, k),
                         p.at(p.b, p.ldb, s.tb, k, j), sum);
        if (k0 > 0 || s.beta == 1.0f)
          out = out + sum;
        else if (s.beta == 0.0f)
          out = sum;
        else
          out = s.beta * out + sum;
      }
    }
  return c;
}

std::vector<float> run(const Problem &p, bool portable) {
  std::vector<float> c = p.c;
  (portable ? gemmPortable : gemm)(p.cs.ta, p.cs.tb, p.cs.m, p.cs.n, p.cs.k,
                                   p.a.data(), p.lda, p.b.data(), p.ldb,
                                   p.cs.beta, c.data(), p.ldc);
  return c;
}

/// The first element where two results differ, or -1.
int64_t firstDifference(const std::vector<float> &x,
                        const std::vector<float> &y) {
  for (size_t i = 0; i < x.size(); ++i)
    if (std::memcmp(&x[i], &y[i], sizeof(float)) != 0)
      return int64_t(i);
  return -1;
}

const int64_t kShapes[][3] = {
    {1, 1, 1},     {5, 7, 3},      {12, 32, 192},  {13, 33, 191},
    {13, 33, 193}, {97, 65, 385},  {95, 511, 200}, {97, 513, 17},
    {37, 1, 400},  {1, 37, 50},    {200, 40, 0},   {25, 600, 384}};

TEST(Gemm, BothMicroKernelsFollowTheWrittenOrder) {
  std::mt19937_64 rng(20261206);
  int cases = 0;
  for (const auto &shape : kShapes)
    for (int t = 0; t < 4; ++t)
      for (float beta : {0.0f, 1.0f, 0.5f}) {
        Case cs{(t & 1) != 0, (t & 2) != 0, shape[0], shape[1], shape[2],
                beta};
        Problem p(cs, rng);
        std::vector<float> want = reference(p);
        for (bool portable : {false, true}) {
          std::vector<float> got = run(p, portable);
          int64_t at = firstDifference(got, want);
          EXPECT_EQ(at, -1)
              << (portable ? "portable" : "gemm") << " m=" << cs.m
              << " n=" << cs.n << " k=" << cs.k << " ta=" << cs.ta
              << " tb=" << cs.tb << " beta=" << beta << ": element " << at
              << " is " << (at >= 0 ? got[size_t(at)] : 0.0f) << ", the "
              << "written order gives " << (at >= 0 ? want[size_t(at)] : 0.0f);
          ++cases;
        }
      }
  EXPECT_EQ(cases, 12 * 4 * 3 * 2);
}

TEST(Gemm, BitsDoNotDependOnTheThreadCount) {
  std::mt19937_64 rng(7);
  // Many tiles in both directions, k over several blocks; a weight
  // gradient's few rows and many columns (the team cuts columns too); one
  // sliver of rows (some threads get nothing).
  const int kThreads[] = {1, 2, 3, 4, 5};
  for (Case cs : {Case{false, false, 300, 1100, 500, 0.0f},
                  Case{true, false, 257, 700, 611, 1.0f},
                  Case{false, true, 401, 545, 450, 0.0f},
                  Case{true, false, 64, 256, 256, 1.0f},
                  Case{true, false, 20, 1300, 300, 0.5f},
                  Case{false, true, 6, 900, 70, 0.0f}}) {
    Problem p(cs, rng);
    std::vector<float> want = reference(p);
    for (int threads : kThreads) {
      omp_set_num_threads(threads);
      EXPECT_EQ(firstDifference(run(p, false), want), -1)
          << "m=" << cs.m << " n=" << cs.n << " k=" << cs.k << " with "
          << threads << " threads";
    }
    omp_set_num_threads(1);
  }
}

TEST(Gemm, BetaZeroDoesNotReadC) {
  std::mt19937_64 rng(9);
  Problem p({false, false, 30, 70, 250, 0.0f}, rng);
  std::vector<float> nan = p.c;
  for (float &x : nan)
    x = std::numeric_limits<float>::quiet_NaN();
  gemm(false, false, 30, 70, 250, p.a.data(), p.lda, p.b.data(), p.ldb, 0.0f,
       nan.data(), p.ldc);
  std::vector<float> want = reference(p);
  for (int64_t i = 0; i < 30; ++i)
    for (int64_t j = 0; j < 70; ++j)
      ASSERT_EQ(nan[size_t(i * p.ldc + j)], want[size_t(i * p.ldc + j)])
          << i << "," << j;
  // The padding past n in each row is left alone.
  EXPECT_TRUE(std::isnan(nan[size_t(70)]));
}

TEST(Gemm, WithinTheSummationBoundOfFloat64) {
  std::mt19937_64 rng(11);
  for (Case cs : {Case{false, false, 64, 96, 2000, 0.0f},
                  Case{true, true, 33, 47, 777, 1.0f}}) {
    Problem p(cs, rng);
    std::vector<float> got = run(p, false);
    const double u = std::ldexp(1.0, -24);
    double worst = 0;
    for (int64_t i = 0; i < cs.m; ++i)
      for (int64_t j = 0; j < cs.n; ++j) {
        double exact = cs.beta * double(p.c[size_t(i * p.ldc + j)]),
               magnitude = std::fabs(exact);
        for (int64_t k = 0; k < cs.k; ++k) {
          double prod = double(p.at(p.a, p.lda, cs.ta, i, k)) *
                        double(p.at(p.b, p.ldb, cs.tb, k, j));
          exact += prod;
          magnitude += std::fabs(prod);
        }
        // One rounding per FMA and per block update: (k + blocks + 1) u.
        double bound = double(cs.k + cs.k / kGemmKc + 2) * u * magnitude;
        double err = std::fabs(double(got[size_t(i * p.ldc + j)]) - exact);
        ASSERT_LE(err, bound) << i << "," << j;
        worst = std::max(worst, err / magnitude);
      }
    // Random signs: the error is far below the worst case, but not zero.
    EXPECT_GT(worst, 0.0);
  }
}

} // namespace
