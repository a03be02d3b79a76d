//===- CallArgs.h - untyped pointers that become a kernel's typed ones -----===//
//
// A kernel call's pointers travel untyped where one piece of code serves
// every kernel: the reference executor's launcher table and the wrappers of
// a compiled plan's kernels.cpp. Passed to a kernel, they convert to the
// pointer type of the parameter they meet.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_CALLARGS_H
#define PIPERT_KERNELS_CPU_CALLARGS_H

namespace pipert::cpu::call {

/// A pointer of any element type.
struct AnyPtr {
  void *p;
  template <typename U> operator U *() const { return static_cast<U *>(p); }
};

/// An array of pointers of any element type (variadic kernels).
struct AnyPtrArray {
  const void *const *p;
  template <typename U> operator const U *const *() const {
    return reinterpret_cast<const U *const *>(p);
  }
};

} // namespace pipert::cpu::call

#endif // PIPERT_KERNELS_CPU_CALLARGS_H
