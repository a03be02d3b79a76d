//===- KernelArity.h - what a kernel.call may name, and its arguments -*- C++ -*-===//
//
// runtime/kernels/{cpu,cuda}/KernelList.def as lookups: --nn-lower-to-kernels
// checks every call it builds against its target's, the emitters read how a
// kernel takes its pointers.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_ANALYSIS_KERNELARITY_H
#define PIPEC_COMPILER_ANALYSIS_KERNELARITY_H

#include "llvm/ADT/StringRef.h"

namespace pipec {

/// Argument counts of a kernel; ptrs -1: variadic (its first pointer, then
/// an array of the others).
struct KernelArity {
  int ptrs, ints, reals;
};

/// The arity of the cpu kernel `name`, or null when the library has none.
const KernelArity *cpuKernelArity(llvm::StringRef name);
/// The arity of the cuda kernel `name`, or null when the library has none.
const KernelArity *cudaKernelArity(llvm::StringRef name);
/// The arity in `target`'s library (cpu or cuda; null for another target).
const KernelArity *kernelArity(llvm::StringRef target, llvm::StringRef name);

} // namespace pipec

#endif // PIPEC_COMPILER_ANALYSIS_KERNELARITY_H
