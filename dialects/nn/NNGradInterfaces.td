//===- NNGradInterfaces.td - the gradient interface of nn ops -*- tablegen -*-===//

#ifndef PIPEC_NN_GRAD_INTERFACES
#define PIPEC_NN_GRAD_INTERFACES

include "mlir/IR/OpBase.td"

def NN_GradOpInterface : OpInterface<"GradOpInterface"> {
  let cppNamespace = "::pipec::nn";
  let description = [{
    How an `nn` op takes part in training (docs/AUTODIFF.md): the form it
    runs in the forward pass of `@train_step` (with the extra state its
    backward reads), and its vector-Jacobian product, built as B ops
    (activation gradients, values) and W ops (adds into the accumulators of
    parameter uses). `--nn-autodiff` asks every op through this interface and
    knows no op by name; the implementations are external models attached
    by the dialect (dialects/nn/NNGrad*.cpp).
  }];
  let methods = [
    InterfaceMethod<[{
      Creates the op's forward form for @train_step at the builder's point,
      on `operands` (the op's operands as values of @train_step). With
      `keep`, the training form that also returns what the backward reads
      (layernorm's mean and rstd, ...) into `saved`; without it, the plain
      op. `results` gets the values that stand for the op's results.
    }], "::llvm::LogicalResult", "buildTrainingForward",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::ValueRange":$operands,
           "::pipec::nn::GradContext &":$ctx, "bool":$keep,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$results,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$saved),
      "", [{
        ::mlir::Operation *copy = builder.clone(*$_op.getOperation());
        copy->setOperands(operands);
        results.append(copy->result_begin(), copy->result_end());
        return ::mlir::success();
      }]>,
    InterfaceMethod<[{
      Builds the vector-Jacobian product at the context's builder: reads the
      result cotangents, the forward values and the kept state from `ctx`,
      and hands each operand's gradient to `ctx.addOperandGrad` (a value) or
      writes it with a W op into `ctx.getParamUse(i)`'s accumulator. Emits a
      diagnostic and fails on what it cannot differentiate.
    }], "::llvm::LogicalResult", "buildVJP",
      (ins "::pipec::nn::GradContext &":$ctx)>,
    InterfaceMethod<[{
      Whether `recompute=all` recomputes this op in the backward pass instead
      of keeping its results and state.
    }], "bool", "isRecomputable", (ins), "", [{ return false; }]>,
  ];
}

#endif // PIPEC_NN_GRAD_INTERFACES
