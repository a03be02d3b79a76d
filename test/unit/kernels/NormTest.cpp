//===- NormTest.cpp - layernorm, rmsnorm and softmax kernels --------------===//

#include "KernelTestUtil.h"

#include "kernels/cpu/Norm.h"
#include "kernels/cpu/Softmax.h"

#include <gtest/gtest.h>

using namespace pipert::cpu;
using namespace kerneltest;

TEST(LayerNorm, ForwardMatchesNaiveFormula) {
  std::mt19937_64 rng(10);
  int64_t rows = 3, dim = 11;
  double eps = 1e-5;
  auto x = randomVector(rng, rows * dim), gamma = randomVector(rng, dim),
       beta = randomVector(rng, dim);
  std::vector<double> y(static_cast<size_t>(rows * dim)), mean(static_cast<size_t>(rows)),
      rstd(static_cast<size_t>(rows));
  layernormForward(y.data(), mean.data(), rstd.data(), x.data(), gamma.data(),
                   beta.data(), rows, dim, eps);
  for (int64_t r = 0; r < rows; ++r) {
    double mu = 0, var = 0;
    for (int64_t i = 0; i < dim; ++i)
      mu += x[r * dim + i] / dim;
    for (int64_t i = 0; i < dim; ++i)
      var += (x[r * dim + i] - mu) * (x[r * dim + i] - mu) / dim;
    EXPECT_NEAR(mean[r], mu, 1e-14);
    EXPECT_NEAR(rstd[r], 1 / std::sqrt(var + eps), 1e-12);
    for (int64_t i = 0; i < dim; ++i)
      EXPECT_NEAR(y[r * dim + i],
                  (x[r * dim + i] - mu) / std::sqrt(var + eps) * gamma[i] +
                      beta[i],
                  1e-12);
  }
}

TEST(LayerNorm, GradientsMatchFiniteDifferences) {
  std::mt19937_64 rng(11);
  int64_t rows = randomInt(rng, 2, 5), dim = randomInt(rng, 3, 20);
  auto x = randomVector(rng, rows * dim), gamma = randomVector(rng, dim),
       beta = randomVector(rng, dim), dy = randomVector(rng, rows * dim);
  std::vector<double> y(static_cast<size_t>(rows * dim)), mean(static_cast<size_t>(rows)),
      rstd(static_cast<size_t>(rows));
  auto loss = [&] {
    layernormForward(y.data(), mean.data(), rstd.data(), x.data(),
                     gamma.data(), beta.data(), rows, dim, 1e-5);
    return dot(dy, y);
  };
  loss();
  std::vector<double> dx(static_cast<size_t>(rows * dim));
  layernormBackwardB(dx.data(), dy.data(), x.data(), mean.data(), rstd.data(),
                     gamma.data(), rows, dim);
  auto gStart = randomVector(rng, dim), bStart = randomVector(rng, dim);
  auto dgamma = gStart, dbeta = bStart;
  layernormBackwardW(dgamma.data(), dbeta.data(), dy.data(), x.data(),
                     mean.data(), rstd.data(), rows, dim);
  EXPECT_LT(normwiseError(dx, finiteDifference(x, loss)), kTolerance);
  EXPECT_LT(normwiseError(minus(dgamma, gStart), finiteDifference(gamma, loss)),
            kTolerance);
  EXPECT_LT(normwiseError(minus(dbeta, bStart), finiteDifference(beta, loss)),
            kTolerance);
}

TEST(RmsNorm, ForwardAndGradientsMatchReference) {
  std::mt19937_64 rng(12);
  int64_t rows = randomInt(rng, 2, 5), dim = randomInt(rng, 3, 20);
  double eps = 1e-6;
  auto x = randomVector(rng, rows * dim), gamma = randomVector(rng, dim),
       dy = randomVector(rng, rows * dim);
  std::vector<double> y(static_cast<size_t>(rows * dim)), rstd(static_cast<size_t>(rows));
  auto loss = [&] {
    rmsnormForward(y.data(), rstd.data(), x.data(), gamma.data(), rows, dim,
                   eps);
    return dot(dy, y);
  };
  loss();
  for (int64_t r = 0; r < rows; ++r) {
    double ms = 0;
    for (int64_t i = 0; i < dim; ++i)
      ms += x[r * dim + i] * x[r * dim + i] / dim;
    for (int64_t i = 0; i < dim; ++i)
      EXPECT_NEAR(y[r * dim + i], x[r * dim + i] / std::sqrt(ms + eps) * gamma[i],
                  1e-12);
  }
  std::vector<double> dx(static_cast<size_t>(rows * dim));
  rmsnormBackwardB(dx.data(), dy.data(), x.data(), rstd.data(), gamma.data(),
                   rows, dim);
  auto gStart = randomVector(rng, dim);
  auto dgamma = gStart;
  rmsnormBackwardW(dgamma.data(), dy.data(), x.data(), rstd.data(), rows, dim);
  EXPECT_LT(normwiseError(dx, finiteDifference(x, loss)), kTolerance);
  EXPECT_LT(normwiseError(minus(dgamma, gStart), finiteDifference(gamma, loss)),
            kTolerance);
}

TEST(Softmax, ForwardAndGradientMatchReference) {
  std::mt19937_64 rng(13);
  int64_t rows = randomInt(rng, 2, 5), dim = randomInt(rng, 3, 20);
  auto x = randomVector(rng, rows * dim, 3.0), dy = randomVector(rng, rows * dim);
  std::vector<double> y(static_cast<size_t>(rows * dim));
  auto loss = [&] {
    softmaxForward(y.data(), x.data(), rows, dim);
    return dot(dy, y);
  };
  loss();
  for (int64_t r = 0; r < rows; ++r) {
    double z = 0;
    for (int64_t i = 0; i < dim; ++i)
      z += std::exp(x[r * dim + i]);
    for (int64_t i = 0; i < dim; ++i)
      EXPECT_NEAR(y[r * dim + i], std::exp(x[r * dim + i]) / z, 1e-14);
  }
  std::vector<double> dx(static_cast<size_t>(rows * dim));
  softmaxBackwardB(dx.data(), dy.data(), y.data(), rows, dim);
  EXPECT_LT(normwiseError(dx, finiteDifference(x, loss)), kTolerance);
}
