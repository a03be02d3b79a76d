//===- Numerics.h - Compile contract and static shapes of the CPU kernels -===//
//
// The kernels are header-only templates, so they are compiled in whatever
// translation unit includes them; their bits are only those of the recorded
// results when no FMA contraction and no fast-math reassociation happen. The
// checks below refuse every other compilation: the pipert_kernels_cpu target
// carries -ffp-contract=off and PIPERT_KERNELS_CPU_NUMERICS to its users.
//
// Shapes can be template arguments (ThunderKittens style): a kernel
// `k<T, S...>` takes its I-th int64_t/bool parameter from S when S has an
// I-th value other than kDynamic, and from the run-time argument otherwise.
// Fixing a shape lets the compiler unroll and specialise; it never changes
// the order of operations, so the bits are those of the run-time call.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_NUMERICS_H
#define PIPERT_KERNELS_CPU_NUMERICS_H

#ifdef __FAST_MATH__
#error "pipert CPU kernels must not be compiled with -ffast-math: their bits would change"
#endif

#ifndef PIPERT_KERNELS_CPU_NUMERICS
#error "compile pipert CPU kernels through the pipert_kernels_cpu target (-ffp-contract=off, -DPIPERT_KERNELS_CPU_NUMERICS)"
#endif

#include <cstddef>
#include <cstdint>

namespace pipert::cpu {

/// A static shape argument meaning "known at run time".
constexpr int64_t kDynamic = -1;

namespace detail {

/// The I-th value of S when S has one and it is not kDynamic, else runtime.
template <size_t I, int64_t... S> constexpr int64_t fixedOr(int64_t runtime) {
  if constexpr (I < sizeof...(S)) {
    constexpr int64_t values[] = {S...};
    return values[I] != kDynamic ? values[I] : runtime;
  } else {
    return runtime;
  }
}

/// A loop with fewer element operations than this runs without a parallel
/// region (the fork-join costs more than the work). Every loop gives the same
/// bits on one thread as on many, so results never depend on it.
constexpr int64_t kParallelWork = 32768;

} // namespace detail

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_NUMERICS_H
