//===- CrossEntropyTest.cpp - fused softmax cross-entropy kernels ---------===//

#include "KernelTestUtil.h"

#include "kernels/cpu/CrossEntropy.h"

#include <gtest/gtest.h>

using namespace pipert::cpu;
using namespace kerneltest;

TEST(CrossEntropy, ForwardMatchesLogSoftmaxAndGradientMatches) {
  std::mt19937_64 rng(40);
  int64_t rows = randomInt(rng, 3, 8), vocab = randomInt(rng, 5, 30);
  auto logits = randomVector(rng, rows * vocab, 4.0);
  std::vector<int32_t> targets(static_cast<size_t>(rows));
  for (auto &t : targets)
    t = int32_t(randomInt(rng, 0, vocab - 1));
  double loss = 0;
  std::vector<double> perRow(static_cast<size_t>(rows));
  ASSERT_TRUE(crossEntropyForward(&loss, perRow.data(), logits.data(),
                                  targets.data(), rows, vocab)
                  .ok());
  double ref = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double z = 0;
    for (int64_t i = 0; i < vocab; ++i)
      z += std::exp(logits[r * vocab + i]);
    double row = std::log(z) - logits[r * vocab + targets[r]];
    EXPECT_NEAR(perRow[r], row, 1e-13);
    ref += row / rows;
  }
  EXPECT_NEAR(loss, ref, 1e-13);

  // The scale implements "mean over the global batch": here 1 / rows, the
  // gradient of the mean loss.
  std::vector<double> dlogits(logits.size());
  ASSERT_TRUE(crossEntropyBackward(dlogits.data(), logits.data(),
                                   targets.data(), rows, vocab, 1.0 / rows)
                  .ok());
  auto fd = finiteDifference(logits, [&] {
    double l = 0;
    (void)crossEntropyForward<double>(&l, nullptr, logits.data(), targets.data(), rows,
                              vocab);
    return l;
  });
  EXPECT_LT(normwiseError(dlogits, fd), kTolerance);

  // In place (dlogits == logits) gives the same bits.
  auto inPlace = logits;
  ASSERT_TRUE(crossEntropyBackward(inPlace.data(), inPlace.data(),
                                   targets.data(), rows, vocab, 1.0 / rows)
                  .ok());
  EXPECT_EQ(inPlace, dlogits);
}

TEST(CrossEntropy, RejectsOutOfRangeTargets) {
  std::vector<float> logits(6, 0.5f), grad(6, 0.0f);
  std::vector<int32_t> targets = {1, 3};
  float loss = -1;
  Status s = crossEntropyForward(&loss, static_cast<float *>(nullptr),
                                 logits.data(), targets.data(), 2, 3);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "cross_entropy: targets[1] = 3 is outside [0, 3)");
  EXPECT_EQ(loss, -1.0f);
  s = crossEntropyBackward(grad.data(), logits.data(), targets.data(), 2, 3,
                           1.0);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(grad, std::vector<float>(6, 0.0f));
}
