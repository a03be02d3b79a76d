//===- InitTest.cpp - the seeded initialiser: values, determinism, moments ===//

#include "pipert/Init.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

using namespace pipert;

namespace {

TEST(Init, KnownHashValues) {
  // FNV-1a 64 test vectors and splitmix64's first output from seed 0.
  EXPECT_EQ(fnv1a64(""), 0xCBF29CE484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xAF63DC4C8601EC8Cull);
  EXPECT_EQ(splitmix64(0), 0xE220A8397B1DCDAFull);
}

TEST(Init, ElementIsAFunctionOfSeedNameIndex) {
  std::vector<float> whole(1000), part(300);
  ASSERT_TRUE(initParameter(whole.data(), 0, 1000, 1337,
                            "h.0.attn.c_attn.weight", "normal", 0.02));
  // A shard starting at element 500 sees the same values.
  ASSERT_TRUE(initParameter(part.data(), 500, 300, 1337,
                            "h.0.attn.c_attn.weight", "normal", 0.02));
  for (int i = 0; i < 300; ++i)
    EXPECT_EQ(part[i], whole[500 + i]);
  // float is the double value rounded once.
  for (int i : {0, 17, 999})
    EXPECT_EQ(whole[i],
              float(normalInitValue(1337, "h.0.attn.c_attn.weight", i, 0.02)));
  // Another name or seed gives other values.
  std::vector<float> other(1000);
  ASSERT_TRUE(initParameter(other.data(), 0, 1000, 1337,
                            "h.1.attn.c_attn.weight", "normal", 0.02));
  EXPECT_NE(other, whole);
  ASSERT_TRUE(initParameter(other.data(), 0, 1000, 1338,
                            "h.0.attn.c_attn.weight", "normal", 0.02));
  EXPECT_NE(other, whole);
}

TEST(Init, MatchesTheFormulaOfTrainingMd) {
  // Written out independently from docs/TRAINING.md for one element.
  const uint64_t golden = 0x9E3779B97F4A7C15ull, seed = 42, i = 12345;
  uint64_t key = fnv1a64("wte.weight");
  uint64_t x1 = splitmix64(seed ^ key ^ (2 * i) * golden);
  uint64_t x2 = splitmix64(seed ^ key ^ (2 * i + 1) * golden);
  double u1 = double((x1 >> 11) + 1) / 9007199254740992.0;
  double u2 = double(x2 >> 11) / 9007199254740992.0;
  double expected =
      0.5 * std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  EXPECT_EQ(normalInitValue(seed, "wte.weight", i, 0.5), expected);
  // The value test/reference/init.py's scalar oracle prints for this element.
  EXPECT_EQ(expected, 0.15268273873022986);
}

TEST(Init, NormalMomentsAreSane) {
  const int64_t n = 200000;
  const double std = 0.02;
  std::vector<double> v(n);
  ASSERT_TRUE(initParameter(v.data(), 0, n, 1337, "wte.weight", "normal", std));
  double mean = 0, sq = 0;
  for (double x : v)
    mean += x;
  mean /= n;
  for (double x : v)
    sq += (x - mean) * (x - mean);
  double sd = std::sqrt(sq / (n - 1));
  // 5 standard errors: mean's is std/sqrt(n), the std's about std/sqrt(2n).
  EXPECT_NEAR(mean, 0.0, 5 * std / std::sqrt(double(n)));
  EXPECT_NEAR(sd, std, 5 * std / std::sqrt(2.0 * n));
  int64_t beyond3 = 0;
  for (double x : v)
    beyond3 += std::fabs(x) > 3 * std;
  // P(|z| > 3) = 0.0027.
  EXPECT_NEAR(double(beyond3) / n, 0.0027, 0.0006);
}

TEST(Init, ZerosOnesAndUnknown) {
  std::vector<float> v(5, 7.0f);
  ASSERT_TRUE(initParameter(v.data(), 0, 5, 1, "b", "zeros", 0));
  EXPECT_EQ(v, std::vector<float>(5, 0.0f));
  ASSERT_TRUE(initParameter(v.data(), 0, 5, 1, "g", "ones", 0));
  EXPECT_EQ(v, std::vector<float>(5, 1.0f));
  EXPECT_FALSE(initParameter(v.data(), 0, 5, 1, "g", "uniform", 0));
}

} // namespace
