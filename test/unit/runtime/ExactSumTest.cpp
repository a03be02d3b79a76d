//===- ExactSumTest.cpp - the exactly rounded, order-independent sum ------===//
//
// Against Shewchuk's exact summation (the algorithm of Python's math.fsum,
// correctly rounded) on random terms spread over the doubles' exponents,
// subnormals included; in every order and split into partial sums that
// meet as an all-reduce would add their words.
//
//===----------------------------------------------------------------------===//

#include "pipert/ExactSum.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace pipert;

namespace {

uint64_t bitsOf(double x) {
  uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

/// Shewchuk's partials with fsum's final rounding (CPython mathmodule.c):
/// the correctly rounded sum of finite terms whose partial sums stay
/// finite.
double fsum(const std::vector<double> &terms) {
  std::vector<double> partials;
  for (double x : terms) {
    size_t i = 0;
    for (double y : partials) {
      if (std::fabs(x) < std::fabs(y))
        std::swap(x, y);
      double hi = x + y;
      double lo = y - (hi - x);
      if (lo != 0.0)
        partials[i++] = lo;
      x = hi;
    }
    partials.resize(i);
    partials.push_back(x);
  }
  double hi = 0.0, lo = 0.0;
  size_t n = partials.size();
  if (n > 0) {
    hi = partials[--n];
    while (n > 0) {
      double x = hi, y = partials[--n];
      hi = x + y;
      lo = y - (hi - x);
      if (lo != 0.0)
        break;
    }
    if (n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) ||
                  (lo > 0.0 && partials[n - 1] > 0.0))) {
      double y = lo * 2.0, x = hi + y;
      if (y == x - hi)
        hi = x;
    }
  }
  return hi;
}

double sumOf(const std::vector<double> &terms) {
  ExactSum s;
  for (double x : terms)
    s.add(x);
  return s.value();
}

TEST(ExactSum, MatchesCorrectlyRoundedSumsInEveryOrderAndGrouping) {
  std::mt19937_64 rng(20261207);
  std::uniform_real_distribution<double> unit(0.5, 1.0);
  for (int trial = 0; trial < 400; ++trial) {
    // Exponent spreads from one binade (heavy cancellation and ties) to the
    // whole range (subnormals up to 2^1000).
    const int spread = std::vector<int>{1, 8, 60, 400, 2000}[trial % 5];
    std::uniform_int_distribution<int> exponent(-1070,
                                                std::min(1000, -1070 + spread));
    std::uniform_int_distribution<int> centre(-1000, 1000 - spread);
    const int base = spread >= 2000 ? 0 : centre(rng);
    std::vector<double> terms(size_t(1 + rng() % 64));
    for (double &t : terms) {
      int e = spread >= 2000 ? exponent(rng)
                             : base + int(rng() % uint64_t(spread));
      t = std::ldexp(unit(rng), e) * ((rng() & 1) ? -1.0 : 1.0);
    }
    const double want = fsum(terms);
    ASSERT_EQ(bitsOf(sumOf(terms)), bitsOf(want == 0.0 ? 0.0 : want))
        << "trial " << trial << ": " << terms.size() << " terms";
    // Another order, and partial sums of random groups merged after their
    // words were carried.
    std::shuffle(terms.begin(), terms.end(), rng);
    ExactSum total;
    for (size_t at = 0; at < terms.size();) {
      size_t take = 1 + rng() % 5;
      ExactSum part;
      for (size_t k = 0; k < take && at < terms.size(); ++k, ++at)
        part.add(terms[at]);
      part.normalize();
      total.merge(part);
    }
    ASSERT_EQ(bitsOf(total.value()), bitsOf(want == 0.0 ? 0.0 : want))
        << "trial " << trial << " (shuffled and grouped)";
  }
}

TEST(ExactSum, EveryDoubleRoundTrips) {
  const double cases[] = {1.0,
                          -2.5,
                          0.1,
                          std::numeric_limits<double>::denorm_min(),
                          -std::numeric_limits<double>::denorm_min(),
                          std::numeric_limits<double>::min(),
                          std::numeric_limits<double>::max(),
                          -std::numeric_limits<double>::max(),
                          std::nextafter(1.0, 2.0),
                          3.4028234663852886e38 /* FLT_MAX */};
  for (double x : cases)
    EXPECT_EQ(bitsOf(sumOf({x})), bitsOf(x)) << x;
}

TEST(ExactSum, RoundsOnceToNearestEven) {
  const double big = std::ldexp(1.0, 53);
  // big + 1 is a tie between big and big + 2: even wins.
  EXPECT_EQ(sumOf({big, 1.0}), big);
  EXPECT_EQ(sumOf({big, 3.0}), big + 4.0);
  // A tie broken by a term far below it (added one at a time in double,
  // the tiny term would be lost first).
  EXPECT_EQ(sumOf({big, 1.0, std::ldexp(1.0, -1000)}), big + 2.0);
  // Cancellation leaves the small terms whole.
  EXPECT_EQ(sumOf({1e300, 1.0, -1e300}), 1.0);
  EXPECT_EQ(sumOf({0.1, 0.2, -0.3}), fsum({0.1, 0.2, -0.3}));
  // Subnormal results are exact.
  const double tiny = std::numeric_limits<double>::denorm_min();
  EXPECT_EQ(sumOf({tiny, tiny, tiny}), 3 * tiny);
  EXPECT_EQ(sumOf({std::numeric_limits<double>::min(), -tiny}),
            std::numeric_limits<double>::min() - tiny);
}

TEST(ExactSum, NonFiniteAndOverflow) {
  const double inf = std::numeric_limits<double>::infinity();
  const double max = std::numeric_limits<double>::max();
  EXPECT_TRUE(std::isnan(sumOf({1.0, std::nan(""), 2.0})));
  EXPECT_TRUE(std::isnan(sumOf({inf, -inf})));
  EXPECT_EQ(sumOf({1.0, inf}), inf);
  EXPECT_EQ(sumOf({-inf, -1.0}), -inf);
  // Beyond the largest double: infinity, as IEEE rounding gives it; an
  // exact sum comes back once the excess cancels.
  EXPECT_EQ(sumOf({max, max}), inf);
  EXPECT_EQ(sumOf({-max, -max}), -inf);
  EXPECT_EQ(sumOf({max, max, -max}), max);
  EXPECT_EQ(bitsOf(sumOf({2.0, -2.0})), bitsOf(0.0));
  EXPECT_EQ(bitsOf(sumOf({})), bitsOf(0.0));
}

TEST(ExactSum, ManyPartialSumsMergeWithoutOverflow) {
  // 100,000 ranks' carried sums of 8 float-sized losses each, merged as an
  // integer all-reduce adds them: the mean of the constant loss is exact.
  ExactSum one;
  for (int mb = 0; mb < 8; ++mb)
    one.add(double(10.8125f));
  one.normalize();
  ExactSum total;
  for (int r = 0; r < 100000; ++r)
    total.merge(one);
  EXPECT_EQ(total.value(), 10.8125 * 800000);
}

} // namespace
