//===- ExactSum.cpp - an order-independent, exactly rounded sum -----------===//

#include "pipert/ExactSum.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace pipert {

namespace {
constexpr int kNan = ExactSum::kLimbs;
constexpr int kPosInf = ExactSum::kLimbs + 1;
constexpr int kNegInf = ExactSum::kLimbs + 2;
constexpr int64_t kLimbBase = int64_t(1) << 32;
} // namespace

void ExactSum::add(double x) {
  if (std::isnan(x)) {
    ++w[kNan];
    return;
  }
  if (std::isinf(x)) {
    ++w[x > 0 ? kPosInf : kNegInf];
    return;
  }
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const bool negative = bits >> 63;
  const int biased = int((bits >> 52) & 0x7FF);
  uint64_t mantissa = bits & ((uint64_t(1) << 52) - 1);
  if (mantissa == 0 && biased == 0)
    return; // +-0
  // x = mantissa * 2^(position - 1074): a subnormal's exponent is the
  // smallest normal one's, without the implicit bit.
  int position = 0;
  if (biased != 0) {
    mantissa |= uint64_t(1) << 52;
    position = biased - 1;
  }
  // The 53 bits starting at `position` span at most three limbs.
  unsigned __int128 shifted = (unsigned __int128)mantissa << (position % 32);
  for (int limb = position / 32; shifted != 0; ++limb, shifted >>= 32) {
    int64_t part = int64_t(uint64_t(shifted) & 0xFFFFFFFFu);
    w[size_t(limb)] += negative ? -part : part;
  }
}

void ExactSum::merge(const ExactSum &other) {
  for (int i = 0; i < kWords; ++i)
    w[size_t(i)] += other.w[size_t(i)];
}

void ExactSum::normalize() {
  for (int i = 0; i + 1 < kLimbs; ++i) {
    // Floor division by 2^32 (an arithmetic shift): the limb keeps the
    // non-negative remainder.
    int64_t carry = w[size_t(i)] >> 32;
    w[size_t(i)] -= carry * kLimbBase;
    w[size_t(i + 1)] += carry;
  }
}

double ExactSum::value() const {
  if (w[kNan] > 0 || (w[kPosInf] > 0 && w[kNegInf] > 0))
    return std::numeric_limits<double>::quiet_NaN();
  if (w[kPosInf] > 0)
    return std::numeric_limits<double>::infinity();
  if (w[kNegInf] > 0)
    return -std::numeric_limits<double>::infinity();
  // The magnitude in limbs of [0, 2^32): a negative sum (its top limb
  // negative once carried) is negated limb by limb and carried again.
  ExactSum m = *this;
  m.normalize();
  const bool negative = m.w[kLimbs - 1] < 0;
  if (negative) {
    for (int i = 0; i < kLimbs; ++i)
      m.w[size_t(i)] = -m.w[size_t(i)];
    m.normalize();
  }
  const double sign = negative ? -1.0 : 1.0;
  // Limbs 66 and 67 hold 2^1038 and above: beyond every double.
  constexpr int kFinite = 66;
  for (int i = kFinite; i < kLimbs; ++i)
    if (m.w[size_t(i)] != 0)
      return sign * std::numeric_limits<double>::infinity();
  int top = kFinite - 1;
  while (top >= 0 && m.w[size_t(top)] == 0)
    --top;
  if (top < 0)
    return 0.0;
  auto limb = [&](int i) { return uint64_t(m.w[size_t(i)]); };
  // b: the bit length of the integer N, the sum in units of 2^-1074.
  const int b = 32 * top + (64 - __builtin_clzll(limb(top)));
  if (b <= 53) {
    uint64_t n = limb(0) | (top >= 1 ? limb(1) << 32 : 0);
    return sign * std::ldexp(double(n), -1074); // exact
  }
  auto bit = [&](int pos) -> uint64_t {
    return pos < 0 ? 0 : (limb(pos / 32) >> (pos % 32)) & 1;
  };
  // The top 64 bits of N, and whether any bit below them is set.
  uint64_t head = 0;
  for (int k = 0; k < 64; ++k)
    head = (head << 1) | bit(b - 1 - k);
  bool sticky = false;
  const int below = b - 64; // bits [0, below) are not in `head`
  for (int i = 0; below > 0 && i < below / 32 && !sticky; ++i)
    sticky = limb(i) != 0;
  if (below > 0 && below % 32 != 0)
    sticky = sticky ||
             (limb(below / 32) & ((uint64_t(1) << (below % 32)) - 1)) != 0;
  // Round the 64 bits to 53: to nearest, ties to even.
  uint64_t mantissa = head >> 11;
  const uint64_t rest = head & 0x7FF, half = 0x400;
  if (rest > half || (rest == half && (sticky || (mantissa & 1))))
    ++mantissa;
  int length = b;
  if (mantissa == (uint64_t(1) << 53)) {
    mantissa >>= 1;
    ++length;
  }
  // ldexp rounds nothing here (53 bits, exponent at least -1074) and
  // gives infinity past the largest double, as IEEE rounding does.
  return sign * std::ldexp(double(mantissa), length - 53 - 1074);
}

} // namespace pipert
