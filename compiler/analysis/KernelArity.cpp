//===- KernelArity.cpp - the kernel libraries' KernelList.def as tables ---===//

#include "compiler/analysis/KernelArity.h"

#include "llvm/ADT/StringMap.h"

using namespace llvm;
using namespace pipec;

const KernelArity *pipec::cpuKernelArity(StringRef name) {
  static const llvm::StringMap<KernelArity> table = [] {
    llvm::StringMap<KernelArity> t;
#define PIPERT_CPU_KERNEL(NAME, PTRS, INTS, REALS)                             \
  t[#NAME] = {PTRS, INTS, REALS};
#include "runtime/kernels/cpu/KernelList.def"
    return t;
  }();
  auto it = table.find(name);
  return it == table.end() ? nullptr : &it->second;
}

const KernelArity *pipec::cudaKernelArity(StringRef name) {
  static const llvm::StringMap<KernelArity> table = [] {
    llvm::StringMap<KernelArity> t;
#define PIPERT_CUDA_KERNEL(NAME, PTRS, INTS, REALS)                            \
  t[#NAME] = {PTRS, INTS, REALS};
#include "runtime/kernels/cuda/KernelList.def"
    return t;
  }();
  auto it = table.find(name);
  return it == table.end() ? nullptr : &it->second;
}

const KernelArity *pipec::kernelArity(StringRef target, StringRef name) {
  if (target == "cpu")
    return cpuKernelArity(name);
  if (target == "cuda")
    return cudaKernelArity(name);
  return nullptr;
}
