//===- KernelTable.h - the cpu kernels by name, with run-time shapes -*- C++ -*-===//
//
// The reference executor runs a `kernel.call` by its name: this table has a
// launcher per entry of runtime/kernels/cpu/KernelList.def, which unpacks
// the call's pointers, integers and reals into pipert::cpu::call::NAME<T>
// (Calls.h) with every shape passed at run time. A compiled plan calls the
// same functions with the shapes as template arguments.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_REFERENCE_KERNELTABLE_H
#define PIPEC_COMPILER_REFERENCE_KERNELTABLE_H

#include "kernels/cpu/Status.h"

#include "llvm/ADT/StringRef.h"

#include <cstddef>
#include <cstdint>

namespace pipec::reference {

/// Runs one kernel on `count` pointers (results, state, operands), its
/// integers and its reals.
template <typename T>
using KernelLaunch = pipert::cpu::Status (*)(void *const *ptrs, size_t count,
                                             const int64_t *ints,
                                             const double *reals);

/// The launcher of the cpu kernel `name`, or null.
template <typename T> KernelLaunch<T> findKernel(llvm::StringRef name);

} // namespace pipec::reference

#endif // PIPEC_COMPILER_REFERENCE_KERNELTABLE_H
