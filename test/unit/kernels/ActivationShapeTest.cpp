//===- ActivationShapeTest.cpp - gelu, silu, rope and the shape kernels ---===//

#include "KernelTestUtil.h"

#include "kernels/cpu/Activation.h"
#include "kernels/cpu/Rope.h"
#include "kernels/cpu/Shape.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace pipert::cpu;
using namespace kerneltest;

/// Gradient check of an elementwise activation over random inputs in [-3, 3].
template <typename Fwd, typename Bwd>
static void checkActivation(Fwd fwd, Bwd bwd, uint64_t seed) {
  std::mt19937_64 rng(seed);
  int64_t n = randomInt(rng, 10, 40);
  auto x = randomVector(rng, n, 3.0), dy = randomVector(rng, n);
  std::vector<double> y(static_cast<size_t>(n)), dx(static_cast<size_t>(n));
  auto loss = [&] {
    fwd(y.data(), x.data(), n);
    return dot(dy, y);
  };
  bwd(dx.data(), dy.data(), x.data(), n, false);
  EXPECT_LT(normwiseError(dx, finiteDifference(x, loss)), kTolerance);
}

TEST(Gelu, ForwardMatchesTanhApproximationValues) {
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), evaluated in Python.
  std::vector<double> x = {-2.0, -0.5, 0.3, 1.0, 3.0}, y(5);
  std::vector<double> ref = {-0.04540230591222, -0.15428599017486,
                             0.18537092354276, 0.84119199060828,
                             2.99636260791823};
  geluForward(y.data(), x.data(), 5);
  for (int i = 0; i < 5; ++i)
    EXPECT_NEAR(y[i], ref[i], 1e-12) << "x = " << x[i];
  checkActivation(geluForward<double>, geluBackwardB<double>, 20);
}

TEST(Silu, ForwardAndGradientMatchReference) {
  std::vector<double> x = {-2.0, 0.5, 3.0}, y(3);
  siluForward(y.data(), x.data(), 3);
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(y[i], x[i] / (1 + std::exp(-x[i])), 1e-15);
  checkActivation(siluForward<double>, siluBackwardB<double>, 21);
}

TEST(Slice, ForwardAndGradientAlongMiddleAxis) {
  std::mt19937_64 rng(22);
  int64_t outer = 3, dim = 7, inner = 4, offset = 2, size = 3;
  auto x = randomVector(rng, outer * dim * inner),
       dy = randomVector(rng, outer * size * inner);
  std::vector<double> y(static_cast<size_t>(outer * size * inner));
  auto loss = [&] {
    sliceForward(y.data(), x.data(), outer, dim, inner, offset, size);
    return dot(dy, y);
  };
  loss();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t s = 0; s < size; ++s)
      for (int64_t i = 0; i < inner; ++i)
        EXPECT_EQ(y[(o * size + s) * inner + i],
                  x[(o * dim + offset + s) * inner + i]);
  std::vector<double> dx = randomVector(rng, outer * dim * inner);
  sliceBackwardB(dx.data(), dy.data(), outer, dim, inner, offset, size);
  EXPECT_LT(normwiseError(dx, finiteDifference(x, loss)), kTolerance);
  // Accumulating the same window again doubles it and keeps the zeros.
  auto twice = dx;
  sliceBackwardB(twice.data(), dy.data(), outer, dim, inner, offset, size,
                 true);
  for (size_t i = 0; i < dx.size(); ++i)
    EXPECT_EQ(twice[i], 2 * dx[i]);
}

TEST(Slice, ThreeWindowsInOnePassGiveTheSumsBits) {
  // slices3_backward_b replaces slice_backward_b x 3 and two adds: the
  // same bits (in the adds' order, zeros and negative zeros included),
  // with windows that tile the axis (q, k, v) and windows with gaps, in
  // any order along it.
  std::mt19937_64 rng(23);
  struct Windows {
    int64_t dim, off[3], size[3];
  };
  for (const Windows &w : {Windows{12, {8, 4, 0}, {4, 4, 4}},
                           Windows{13, {9, 1, 5}, {2, 3, 4}},
                           Windows{9, {0, 3, 6}, {3, 3, 3}}}) {
    const int64_t outer = 5, inner = 3;
    std::vector<std::vector<float>> dy(3);
    for (int k = 0; k < 3; ++k) {
      auto v = randomVector(rng, outer * w.size[k] * inner);
      dy[size_t(k)].assign(v.begin(), v.end());
      dy[size_t(k)][0] = -0.0f; // a negative zero in every window
      dy[size_t(k)][1] = 0.0f;
    }
    const size_t n = size_t(outer * w.dim * inner);
    std::vector<float> s[3], want(n);
    for (int k = 0; k < 3; ++k) {
      s[k].assign(n, 7.0f);
      sliceBackwardB(s[k].data(), dy[size_t(k)].data(), outer, w.dim, inner,
                     w.off[k], w.size[k]);
    }
    for (size_t i = 0; i < n; ++i)
      want[i] = (s[0][i] + s[1][i]) + s[2][i];
    std::vector<float> got(n, 7.0f);
    slices3BackwardB(got.data(), dy[0].data(), dy[1].data(), dy[2].data(),
                     outer, w.dim, inner, w.off[0], w.size[0], w.off[1],
                     w.size[1], w.off[2], w.size[2]);
    for (size_t i = 0; i < n; ++i)
      EXPECT_EQ(std::signbit(got[i]), std::signbit(want[i])) << "element " << i;
    EXPECT_EQ(std::memcmp(got.data(), want.data(), n * sizeof(float)), 0)
        << "dim " << w.dim;
  }
}

TEST(Reshape, IsACopyBothWays) {
  std::mt19937_64 rng(23);
  auto x = randomVector(rng, 12), dy = randomVector(rng, 12);
  std::vector<double> y(12), dx(12);
  reshapeForward(y.data(), x.data(), 12);
  EXPECT_EQ(y, x);
  reshapeBackwardB(dx.data(), dy.data(), 12);
  EXPECT_EQ(dx, dy);
}

TEST(Transpose, ForwardMatchesIndexingAndGradientIsInverse) {
  std::mt19937_64 rng(24);
  int64_t dims[4] = {2, 3, 4, 5}, perm[4] = {2, 0, 3, 1};
  int64_t n = 2 * 3 * 4 * 5;
  auto x = randomVector(rng, n), dy = randomVector(rng, n);
  std::vector<double> y(static_cast<size_t>(n));
  auto loss = [&] {
    transposeForward(y.data(), x.data(), dims, perm, 4);
    return dot(dy, y);
  };
  loss();
  // y[c, a, d, b] = x[a, b, c, d]
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t c = 0; c < 4; ++c)
        for (int64_t d = 0; d < 5; ++d)
          EXPECT_EQ(y[((c * 2 + a) * 5 + d) * 3 + b],
                    x[((a * 3 + b) * 4 + c) * 5 + d]);
  std::vector<double> dx(static_cast<size_t>(n));
  transposeBackwardB(dx.data(), dy.data(), dims, perm, 4);
  EXPECT_LT(normwiseError(dx, finiteDifference(x, loss)), kTolerance);
}

TEST(Rope, ForwardMatchesRotateHalfAndGradientMatches) {
  std::mt19937_64 rng(25);
  int64_t batch = 2, seq = 5, heads = 3, headDim = 6, half = 3;
  double theta = 10000;
  int64_t n = batch * seq * heads * headDim;
  auto x = randomVector(rng, n), dy = randomVector(rng, n);
  std::vector<double> y(static_cast<size_t>(n));
  auto loss = [&] {
    ropeForward(y.data(), x.data(), batch, seq, heads, headDim, theta);
    return dot(dy, y);
  };
  loss();
  // Hugging Face: emb = cat(freqs, freqs); y = x cos(emb) + rotate_half(x)
  // sin(emb) with rotate_half(x) = cat(-x[half:], x[:half]).
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq; ++t)
      for (int64_t h = 0; h < heads; ++h) {
        const double *xh = &x[((b * seq + t) * heads + h) * headDim];
        const double *yh = &y[((b * seq + t) * heads + h) * headDim];
        for (int64_t i = 0; i < headDim; ++i) {
          double freq = t / std::pow(theta, double(2 * (i % half)) / headDim);
          double rot = i < half ? -xh[i + half] : xh[i - half];
          EXPECT_NEAR(yh[i], xh[i] * std::cos(freq) + rot * std::sin(freq),
                      1e-14);
        }
      }
  std::vector<double> dx(static_cast<size_t>(n));
  ropeBackwardB(dx.data(), dy.data(), batch, seq, heads, headDim, theta);
  EXPECT_LT(normwiseError(dx, finiteDifference(x, loss)), kTolerance);
  // In place gives the same bits as out of place.
  loss();
  auto inPlace = x;
  ropeForward(inPlace.data(), inPlace.data(), batch, seq, heads, headDim,
              theta);
  EXPECT_EQ(inPlace, y);
}
