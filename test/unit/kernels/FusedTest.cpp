//===- FusedTest.cpp - each fused kernel gives the bits of its parts ------===//
//
// The kernels of --nn-fuse (runtime/kernels/cpu/Fused.h) against the
// kernels they replace, run one after the other on the same random non-zero
// data: the GELU epilogue of a matmul (with and without a bias, both
// transposes), the residual add + layernorm / rmsnorm and the one-pass
// softmax cross-entropy, at odd shapes (row
// lengths that are not multiples of 8, column counts that are not of 64),
// small (no parallel region) and large (threaded), with run-time and with
// static shapes, in float and double. Bits are compared, not tolerances.
//
//===----------------------------------------------------------------------===//

#include "KernelTestUtil.h"

#include "kernels/cpu/Activation.h"
#include "kernels/cpu/CrossEntropy.h"
#include "kernels/cpu/Elementwise.h"
#include "kernels/cpu/Fused.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Norm.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

using namespace pipert::cpu;
using namespace kerneltest;

template <typename T>
static void expectSameBits(const std::vector<T> &fused,
                           const std::vector<T> &parts,
                           const std::string &what) {
  ASSERT_EQ(fused.size(), parts.size()) << what;
  for (size_t i = 0; i < fused.size(); ++i)
    if (std::memcmp(&fused[i], &parts[i], sizeof(T)) != 0) {
      ADD_FAILURE() << what << ": element " << i << " of " << fused.size()
                    << ": fused " << fused[i] << ", parts " << parts[i];
      return;
    }
}

/// matmul (+ bias) then gelu, against matmulGeluForward; M K N static
/// when Static.
template <typename T, int64_t M, int64_t K, int64_t N, bool Static>
static void checkMatmulGelu(uint64_t seed, bool bias, bool transposeRhs) {
  std::mt19937_64 rng(seed);
  auto x = randomVector<T>(rng, M * K), w = randomVector<T>(rng, K * N);
  auto b = randomVector<T>(rng, N);
  std::vector<T> pre1(M * N), y1(M * N), y2(M * N);
  auto pre2 = randomVector<T>(rng, M * N); // overwritten: garbage first
  const T *bp = bias ? b.data() : nullptr;
  matmulForward<T>(pre1.data(), x.data(), w.data(), bp, M, K, N,
                   transposeRhs);
  geluForward<T>(y1.data(), pre1.data(), M * N);
  if constexpr (Static) {
    if (transposeRhs)
      matmulGeluForward<T, M, K, N, 1>(pre2.data(), y2.data(), x.data(),
                                       w.data(), bp, M, K, N, true);
    else
      matmulGeluForward<T, M, K, N, 0>(pre2.data(), y2.data(), x.data(),
                                       w.data(), bp, M, K, N, false);
  } else {
    matmulGeluForward<T>(pre2.data(), y2.data(), x.data(), w.data(), bp, M,
                         K, N, transposeRhs);
  }
  std::string what = std::string(bias ? "bias" : "no bias") +
                     (transposeRhs ? ", transposed" : "") +
                     (Static ? ", static" : ", run time");
  expectSameBits(pre2, pre1, "matmul_gelu pre (" + what + ")");
  expectSameBits(y2, y1, "matmul_gelu y (" + what + ")");
}

TEST(Fused, MatmulGeluGivesTheBitsOfItsParts) {
  for (bool bias : {true, false})
    for (bool tr : {false, true}) {
      checkMatmulGelu<float, 7, 13, 37, false>(11, bias, tr);
      checkMatmulGelu<float, 7, 13, 37, true>(12, bias, tr);
      // Above the parallel threshold: the rows are threaded.
      checkMatmulGelu<float, 96, 24, 300, false>(13, bias, tr);
      checkMatmulGelu<float, 96, 24, 300, true>(14, bias, tr);
      // Two k blocks and two column panels of the GEMM: the epilogue runs
      // once per tile, after its last k block.
      checkMatmulGelu<float, 100, 300, 600, false>(16, bias, tr);
      checkMatmulGelu<double, 5, 9, 19, false>(15, bias, tr);
    }
}

/// add then layernorm / rmsnorm, against the fused kernels.
template <typename T, int64_t Rows, int64_t Dim, bool Static>
static void checkAddNorm(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto a = randomVector<T>(rng, Rows * Dim, 3.0);
  auto b = randomVector<T>(rng, Rows * Dim, 3.0);
  auto gamma = randomVector<T>(rng, Dim), beta = randomVector<T>(rng, Dim);
  const double eps = 1e-5;
  std::vector<T> sum1(Rows * Dim), y1(Rows * Dim), mean1(Rows), rstd1(Rows);
  addForward<T>(sum1.data(), a.data(), b.data(), Rows * Dim, Rows * Dim);
  layernormForward<T>(y1.data(), mean1.data(), rstd1.data(), sum1.data(),
                      gamma.data(), beta.data(), Rows, Dim, eps);
  std::vector<T> sum2(Rows * Dim), y2(Rows * Dim), mean2(Rows), rstd2(Rows);
  if constexpr (Static)
    addLayernormForward<T, Rows, Dim>(sum2.data(), y2.data(), mean2.data(),
                                      rstd2.data(), a.data(), b.data(),
                                      gamma.data(), beta.data(), Rows, Dim,
                                      eps);
  else
    addLayernormForward<T>(sum2.data(), y2.data(), mean2.data(), rstd2.data(),
                           a.data(), b.data(), gamma.data(), beta.data(), Rows,
                           Dim, eps);
  std::string how = Static ? " (static)" : " (run time)";
  expectSameBits(sum2, sum1, "add_layernorm sum" + how);
  expectSameBits(y2, y1, "add_layernorm y" + how);
  expectSameBits(mean2, mean1, "add_layernorm mean" + how);
  expectSameBits(rstd2, rstd1, "add_layernorm rstd" + how);

  std::vector<T> ry1(Rows * Dim), rr1(Rows), ry2(Rows * Dim), rr2(Rows),
      rs2(Rows * Dim);
  rmsnormForward<T>(ry1.data(), rr1.data(), sum1.data(), gamma.data(), Rows,
                    Dim, eps);
  if constexpr (Static)
    addRmsnormForward<T, Rows, Dim>(rs2.data(), ry2.data(), rr2.data(),
                                    a.data(), b.data(), gamma.data(), Rows,
                                    Dim, eps);
  else
    addRmsnormForward<T>(rs2.data(), ry2.data(), rr2.data(), a.data(),
                         b.data(), gamma.data(), Rows, Dim, eps);
  expectSameBits(rs2, sum1, "add_rmsnorm sum" + how);
  expectSameBits(ry2, ry1, "add_rmsnorm y" + how);
  expectSameBits(rr2, rr1, "add_rmsnorm rstd" + how);
}

TEST(Fused, AddNormGivesTheBitsOfItsParts) {
  checkAddNorm<float, 5, 37, false>(21);
  checkAddNorm<float, 5, 37, true>(22);
  checkAddNorm<float, 3, 6, true>(23);
  // Above the parallel threshold.
  checkAddNorm<float, 300, 100, false>(24);
  checkAddNorm<float, 300, 100, true>(25);
  checkAddNorm<double, 7, 11, false>(26);
}

/// crossEntropyForward then crossEntropyBackward (scale = lossScale / rows)
/// against the one-pass softmaxCrossEntropy.
template <typename T, int64_t Rows, int64_t Vocab, bool Static>
static void checkSoftmaxCrossEntropy(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto logits = randomVector<T>(rng, Rows * Vocab, 4.0);
  std::vector<int32_t> targets(Rows);
  for (auto &t : targets)
    t = int32_t(randomInt(rng, 0, Vocab - 1));
  const double lossScale = 0.37;
  T loss1 = 0, loss2 = 0;
  std::vector<T> d1(Rows * Vocab), d2(Rows * Vocab);
  ASSERT_TRUE(crossEntropyForward<T>(&loss1, nullptr, logits.data(),
                                     targets.data(), Rows, Vocab)
                  .ok());
  ASSERT_TRUE(crossEntropyBackward<T>(d1.data(), logits.data(),
                                      targets.data(), Rows, Vocab,
                                      lossScale / double(Rows))
                  .ok());
  pipert::cpu::Status st =
      Static ? softmaxCrossEntropy<T, Rows, Vocab>(&loss2, d2.data(),
                                                   logits.data(),
                                                   targets.data(), &lossScale,
                                                   Rows, Vocab)
             : softmaxCrossEntropy<T>(&loss2, d2.data(), logits.data(),
                                      targets.data(), &lossScale, Rows, Vocab);
  ASSERT_TRUE(st.ok()) << st.message();
  expectSameBits(std::vector<T>{loss2}, std::vector<T>{loss1},
                 "softmax_cross_entropy loss");
  expectSameBits(d2, d1, "softmax_cross_entropy dlogits");
}

TEST(Fused, SoftmaxCrossEntropyGivesTheBitsOfItsParts) {
  checkSoftmaxCrossEntropy<float, 7, 29, false>(31);
  checkSoftmaxCrossEntropy<float, 7, 29, true>(32);
  checkSoftmaxCrossEntropy<float, 300, 257, true>(33);
  checkSoftmaxCrossEntropy<double, 5, 13, false>(34);
  // A target outside the vocabulary is refused before anything is written.
  std::vector<float> logits(3 * 5, 0.5f), d(3 * 5, 7.0f);
  std::vector<int32_t> targets = {1, 5, 0};
  float loss = 9.0f;
  double scale = 1.0;
  pipert::cpu::Status st = softmaxCrossEntropy<float>(
      &loss, d.data(), logits.data(), targets.data(), &scale, 3, 5);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("targets[1] = 5 is outside [0, 5)"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(loss, 9.0f);
  EXPECT_EQ(d[0], 7.0f);
}
