//===- KernelOps.td - the ops of the kernel dialect -------*- tablegen -*-===//

#ifndef PIPEC_KERNEL_OPS
#define PIPEC_KERNEL_OPS

include "dialects/kernel/KernelBase.td"

def Kernel_CallOp : Kernel_Op<"call"> {
  let summary = "one call of a named kernel of the target's library";
  let description = [{
    The kernel's pointer arguments are, in order: the call's results, the
    parameter storage named by `state`, then the operands. Its integer
    arguments are `ints` (every shape and flag, static) and its real ones
    `reals`. `state` entries read `KIND:USE:NAME`, KIND one of `acc` (the
    accumulator of use USE of parameter NAME, which a W kernel adds into),
    `value`, `m` or `v` (the parameter and its AdamW moments; USE is -1).
    `origin` names the op the call implements (messages, comments, and
    `--debug-perturb-vjp`), and the `nn.op_id` / `nn.role` attributes of
    that op stay on the call, so partitioning and memory planning read
    calls as they read ops.

    ```mlir
    %y, %mean, %rstd = kernel.call "layernorm_forward"(%x, %g, %b)
        ints [64, 32] reals [1.0e-05] state [] from "nn.layernorm_train"
        : (tensor<2x32x32xf32>, tensor<32xf32>, tensor<32xf32>)
        -> (tensor<2x32x32xf32>, tensor<64xf32>, tensor<64xf32>)
    kernel.call "matmul_backward_w"(%x, %dy) ints [64, 32, 128, 0]
        reals [] state ["acc:0:h0.fc.w"] from "nn.matmul_grad_w"
        : (tensor<2x32x32xf32>, tensor<2x32x128xf32>) -> ()
    ```
  }];
  let arguments = (ins StrAttr:$kernel, Variadic<AnyRankedTensor>:$inputs,
                       DenseI64ArrayAttr:$ints, DenseF64ArrayAttr:$reals,
                       StrArrayAttr:$state, StrAttr:$origin);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    $kernel `(` $inputs `)` `ints` $ints `reals` $reals `state` $state
    `from` $origin attr-dict `:` functional-type($inputs, $results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The storage entry `i` of `state`, parsed (the verifier checked it).
    ::pipec::kernel::StateRef getStateRef(unsigned i);
  }];
}

#endif // PIPEC_KERNEL_OPS
