//===- KernelArity.cpp - the kernel libraries' KernelList.def as tables ---===//

#include "compiler/analysis/KernelArity.h"

#include "llvm/ADT/StringMap.h"

using namespace llvm;
using namespace pipec;

/// `name`'s entry of `table`, or null.
static const KernelArity *lookup(const StringMap<KernelArity> &table,
                                 StringRef name) {
  auto it = table.find(name);
  return it == table.end() ? nullptr : &it->second;
}

const KernelArity *pipec::cpuKernelArity(StringRef name) {
  static const StringMap<KernelArity> table = {
#define PIPERT_CPU_KERNEL(NAME, PTRS, INTS, REALS) {#NAME, {PTRS, INTS, REALS}},
#include "runtime/kernels/cpu/KernelList.def"
  };
  return lookup(table, name);
}

const KernelArity *pipec::cudaKernelArity(StringRef name) {
  static const StringMap<KernelArity> table = {
#define PIPERT_CUDA_KERNEL(NAME, PTRS, INTS, REALS) {#NAME, {PTRS, INTS, REALS}},
#include "runtime/kernels/cuda/KernelList.def"
  };
  return lookup(table, name);
}

const KernelArity *pipec::kernelArity(StringRef target, StringRef name) {
  if (target == "cpu")
    return cpuKernelArity(name);
  if (target == "cuda")
    return cudaKernelArity(name);
  return nullptr;
}
