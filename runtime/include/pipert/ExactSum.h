//===- ExactSum.h - an order-independent, exactly rounded sum ----*- C++ -*-===//
//
// The step's loss adds the D x M micro-batch losses of the D replicas'
// loss ranks (docs/TRAINING.md). Added one after another in a fixed order,
// every process needs all of them: an exchange that grows with the ranks.
// Added exactly instead, the sum is the same whatever the order or the
// grouping, so each rank adds its own losses and the ranks' partial sums
// meet in an integer all-reduce of a fixed size, which any reduction order
// gives bit for bit.
//
// Every finite double is an integer multiple of 2^-1074 below 2^1024: the
// accumulator holds that integer in 32-bit limbs kept in int64 words, so a
// limb takes 2^31 additions before it can overflow (normalize() brings
// every limb back below 2^32); the non-finite terms are counted apart.
// value() rounds the exact sum once, to nearest with ties to even, as
// IEEE addition would round the true sum.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_EXACTSUM_H
#define PIPERT_EXACTSUM_H

#include <array>
#include <cstdint>

namespace pipert {

class ExactSum {
public:
  /// Bits 2^-1074 .. 2^1023 in 32-bit limbs (66), two more for the carries
  /// of sums beyond the largest double, then the counts of NaN, +inf and
  /// -inf terms.
  static constexpr int kLimbs = 68;
  static constexpr int kWords = kLimbs + 3;

  /// Adds `x` exactly.
  void add(double x);
  /// Adds another sum's terms (the words as an integer sum would combine
  /// them: what an all-reduce of words() with + computes).
  void merge(const ExactSum &other);
  /// Carries every limb into [0, 2^32) but the top one (signed); the value
  /// is unchanged. Do this before an all-reduce over up to 2^31 sums.
  void normalize();
  /// The exact sum rounded to the nearest double (ties to even); NaN when a
  /// term was NaN or both infinities occur, +-inf for an infinite term or
  /// a sum beyond the doubles; +0 for an exact zero.
  double value() const;

  /// The words of the accumulator, for an all-reduce with integer +.
  int64_t *words() { return w.data(); }
  const int64_t *words() const { return w.data(); }

private:
  std::array<int64_t, kWords> w{};
};

} // namespace pipert

#endif // PIPERT_EXACTSUM_H
