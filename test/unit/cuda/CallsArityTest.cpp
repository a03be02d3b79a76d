//===- CallsArityTest.cpp - cuda Calls.h against its KernelList.def --------===//
//
// Every entry of runtime/kernels/cuda/KernelList.def has a function in
// pipert::cuda::call (Calls.h) taking the Context, then exactly PTRS
// pointers, INTS integers and REALS reals (a variadic one: its first
// pointer, the host array of the others and their count, then INTS and
// REALS): the arity the lowering checks every cuda call against. Built and
// run without a GPU (the calls only launch when called).
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/Calls.h"

#include <gtest/gtest.h>

#include <string>
#include <type_traits>

namespace {

namespace call = pipert::cuda::call;

template <typename F> struct Signature;
template <typename... A> struct Signature<pipert::cpu::Status (*)(A...)> {
  static constexpr int ptrs =
      ((std::is_same_v<std::decay_t<A>, call::P> ? 1 : 0) + ... + 0);
  static constexpr int ints = ((std::is_same_v<A, int64_t> ? 1 : 0) + ... + 0);
  static constexpr int reals = ((std::is_same_v<A, double> ? 1 : 0) + ... + 0);
  static constexpr int arrays = ((std::is_pointer_v<A> ? 1 : 0) + ... + 0);
  static constexpr int params = sizeof...(A);
};

struct Entry {
  std::string name;
  int ptrs, ints, reals;
  int gotPtrs, gotInts, gotReals, gotArrays, gotParams;
};

std::vector<Entry> entries() {
  std::vector<Entry> out;
#define PIPERT_CUDA_KERNEL(NAME, PTRS, INTS, REALS)                            \
  {                                                                            \
    using S = Signature<decltype(&call::NAME)>;                                \
    out.push_back({#NAME, PTRS, INTS, REALS, S::ptrs, S::ints, S::reals,       \
                   S::arrays, S::params});                                     \
  }
#include "kernels/cuda/KernelList.def"
  return out;
}

TEST(CudaCalls, EveryListedKernelHasItsArity) {
  auto all = entries();
  EXPECT_GE(all.size(), 40u);
  for (const Entry &e : all) {
    SCOPED_TRACE(e.name);
    if (e.ptrs < 0) {
      // Variadic: the first pointer, a host array of device pointers and
      // the count (an integer besides INTS).
      EXPECT_EQ(e.gotPtrs, 1);
      EXPECT_EQ(e.gotArrays, 1);
      EXPECT_EQ(e.gotInts, e.ints + 1);
    } else {
      EXPECT_EQ(e.gotPtrs, e.ptrs);
      EXPECT_EQ(e.gotArrays, 0);
      EXPECT_EQ(e.gotInts, e.ints);
    }
    EXPECT_EQ(e.gotReals, e.reals);
    // Nothing but the context and the counted arguments.
    EXPECT_EQ(e.gotParams,
              1 + e.gotPtrs + e.gotArrays + e.gotInts + e.gotReals);
  }
}

} // namespace

namespace {

/// Arguments the call layer refuses before anything is launched (so these
/// run without a GPU): each failure names its kernel.
TEST(CudaCalls, RefusesBadArgumentsBeforeLaunching) {
  call::Context c; // no stream, no GEMMs, no rope tables: nothing may run
  call::P none{nullptr};
  auto refused = [](const pipert::cpu::Status &st, const char *kernel) {
    EXPECT_FALSE(st.ok()) << kernel;
    EXPECT_NE(st.message().find(kernel), std::string::npos) << st.message();
  };
  // A broadcast operand whose size does not divide the other's.
  refused(call::add_forward(c, none, none, none, 10, 3), "add_forward");
  refused(call::mul_forward(c, none, none, none, 10, 0), "mul_forward");
  // Not a permutation.
  refused(call::transpose_forward(c, none, none, 1, 1, 2, 3, 4, 5, 0, 1, 2,
                                  2, 4, 5),
          "transpose_forward");
  // A head wider than the attention kernels hold, a group that does not
  // divide the heads.
  refused(call::attention_forward(c, none, none, none, none, none, 1, 8, 8, 2,
                                  2, 300, 1, 0.1),
          "attention_forward");
  refused(call::attention_backward_b(c, none, none, none, none, none, none,
                                     none, none, none, 1, 8, 8, 3, 2, 64, 1,
                                     0.1),
          "attention_backward_b");
  // Logits rows narrower than the vocabulary; a gradient without its
  // loss scale.
  refused(call::cross_entropy_forward(c, none, none, none, none, 4, 100, 64),
          "cross_entropy_forward");
  refused(call::softmax_cross_entropy(c, none, none, none, none, none, none, 4,
                                      100, 128),
          "softmax_cross_entropy");
  // The cpu's copy form of accumulate, which no cuda lowering builds.
  refused(call::accumulate(c, none, none, 16, 0), "accumulate");
  // rope without the rank's tables.
  refused(call::rope_forward(c, none, none, none, none, 1, 4, 2, 8, 1e4),
          "rope_forward");
  // A negative warm-up.
  refused(call::lr_schedule(c, none, none, -1, 10, 1, 1e-3, 1e-4),
          "lr_schedule");
}

} // namespace
