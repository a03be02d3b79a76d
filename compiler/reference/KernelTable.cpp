//===- KernelTable.cpp - the cpu kernels by name, with run-time shapes ----===//

#include "compiler/reference/KernelTable.h"

#include "kernels/cpu/CallArgs.h"
#include "kernels/cpu/Calls.h"

#include "llvm/ADT/StringMap.h"

#include <utility>

using namespace pipec::reference;
namespace call = pipert::cpu::call;
using pipert::cpu::Status;
using pipert::cpu::call::AnyPtr;
using pipert::cpu::call::AnyPtrArray;

namespace {

/// Calls `fn` with ptrs[P]..., ints[I]..., reals[R]....
template <typename Fn, size_t... P, size_t... I, size_t... R>
Status invoke(Fn fn, void *const *ptrs, const int64_t *ints,
              const double *reals, std::index_sequence<P...>,
              std::index_sequence<I...>, std::index_sequence<R...>) {
  (void)ptrs, (void)ints, (void)reals;
  return fn(AnyPtr{ptrs[P]}..., ints[I]..., reals[R]...);
}

/// Variadic kernels: the first pointer, then the others as an array.
template <typename Fn, size_t... I, size_t... R>
Status invokeVariadic(Fn fn, void *const *ptrs, size_t count,
                      const int64_t *ints, const double *reals,
                      std::index_sequence<I...>, std::index_sequence<R...>) {
  (void)ints, (void)reals;
  return fn(AnyPtr{ptrs[0]}, reinterpret_cast<const void *const *>(ptrs + 1),
            int64_t(count - 1), ints[I]..., reals[R]...);
}

template <typename T, int PTRS, int INTS, int REALS, auto Fn>
Status launch(void *const *ptrs, size_t count, const int64_t *ints,
              const double *reals) {
  if constexpr (PTRS < 0) {
    auto fn = [](AnyPtr first, const void *const *rest, int64_t n,
                 auto... args) {
      return Fn(first, AnyPtrArray{rest}, n, args...);
    };
    return invokeVariadic(fn, ptrs, count, ints, reals,
                          std::make_index_sequence<size_t(INTS)>(),
                          std::make_index_sequence<size_t(REALS)>());
  } else {
    (void)count;
    return invoke(Fn, ptrs, ints, reals,
                  std::make_index_sequence<size_t(PTRS)>(),
                  std::make_index_sequence<size_t(INTS)>(),
                  std::make_index_sequence<size_t(REALS)>());
  }
}

template <typename T> llvm::StringMap<KernelLaunch<T>> makeTable() {
  llvm::StringMap<KernelLaunch<T>> t;
#define PIPERT_CPU_KERNEL(NAME, PTRS, INTS, REALS)                             \
  t[#NAME] = &launch<T, PTRS, INTS, REALS, &call::NAME<T>>;
#include "kernels/cpu/KernelList.def"
  return t;
}

} // namespace

template <typename T>
KernelLaunch<T> pipec::reference::findKernel(llvm::StringRef name) {
  static const llvm::StringMap<KernelLaunch<T>> table = makeTable<T>();
  auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

template KernelLaunch<float> pipec::reference::findKernel<float>(llvm::StringRef);
template KernelLaunch<double> pipec::reference::findKernel<double>(llvm::StringRef);
