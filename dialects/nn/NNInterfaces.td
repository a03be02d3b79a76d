//===- NNInterfaces.td - interfaces every nn op implements -*- tablegen -*-===//

#ifndef PIPEC_NN_INTERFACES
#define PIPEC_NN_INTERFACES

include "mlir/IR/OpBase.td"

def NN_CostOpInterface : OpInterface<"CostOpInterface"> {
  let cppNamespace = "::pipec::nn";
  let description = [{
    The cost model's view of one op for one micro-batch: the partitioner
    turns FLOPs and bytes into time with per-target rates, and the memory
    planner adds the activation bytes each op keeps for its backward.
  }];
  let methods = [
    InterfaceMethod<"Floating-point operations of the forward op.",
      "int64_t", "getFlops">,
    InterfaceMethod<"Bytes read by the forward op (operands).",
      "int64_t", "getBytesRead">,
    InterfaceMethod<"Bytes written by the forward op (results).",
      "int64_t", "getBytesWritten">,
    InterfaceMethod<[{Activation bytes the op keeps from forward until its
      backward runs (inputs or outputs its vector-Jacobian product needs).}],
      "int64_t", "getSavedActivationBytes">,
  ];
}

#endif // PIPEC_NN_INTERFACES
