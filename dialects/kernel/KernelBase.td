//===- KernelBase.td - the kernel dialect and its op base class -*- tablegen -*-===//

#ifndef PIPEC_KERNEL_BASE
#define PIPEC_KERNEL_BASE

include "mlir/IR/OpBase.td"

def Kernel_Dialect : Dialect {
  let name = "kernel";
  let cppNamespace = "::pipec::kernel";
  let summary = "Calls of named target kernels with static shapes";
  let description = [{
    `--nn-lower-to-kernels` replaces every `nn` op of the training
    functions by one `kernel.call`: the name of a kernel of the target's
    library (runtime/kernels/<target>/KernelList.def), its tensor operands
    and results, the integers it takes (shapes and flags, all static) and
    its real attributes, plus the parameter storage it reads or writes by
    name (gradient accumulators, AdamW moments). This is the one place that
    chooses a kernel per op (in the manner of IREE's ukernel calls); the
    reference executor and the emitters consume calls generically.
  }];
}

/// Base class of every kernel op.
class Kernel_Op<string mnemonic, list<Trait> traits = []>
    : Op<Kernel_Dialect, mnemonic, traits>;

#endif // PIPEC_KERNEL_BASE
