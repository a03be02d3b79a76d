//===- KernelOps.h - the ops of the kernel dialect --------------*- C++ -*-===//

#ifndef PIPEC_DIALECTS_KERNEL_KERNELOPS_H
#define PIPEC_DIALECTS_KERNEL_KERNELOPS_H

#include "dialects/kernel/KernelDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"

#include <cstdint>
#include <optional>
#include <string>

namespace pipec::kernel {

/// Parameter storage a kernel call names in its `state` attribute.
struct StateRef {
  /// Copy: the bf16 working copy of an fp32 master (the cuda target's
  /// AdamW refreshes it; docs/NUMERICS.md).
  enum Kind { Accumulator, Value, FirstMoment, SecondMoment, Copy };
  Kind kind = Value;
  /// The use of the parameter (accumulators only; -1 otherwise).
  int64_t use = -1;
  std::string param;

  /// `KIND:USE:NAME` as in the IR.
  std::string str() const;
  /// Parses `KIND:USE:NAME`; nullopt when malformed.
  static std::optional<StateRef> parse(llvm::StringRef text);
};

} // namespace pipec::kernel

#define GET_OP_CLASSES
#include "dialects/kernel/KernelOps.h.inc"

#endif // PIPEC_DIALECTS_KERNEL_KERNELOPS_H
