//===- NNOps.td - the ops of the nn dialect ---------------*- tablegen -*-===//

#ifndef PIPEC_NN_OPS
#define PIPEC_NN_OPS

include "dialects/nn/NNBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def NN_ParameterOp : Op<NN_Dialect, "parameter", [Symbol, HasParent<"::mlir::ModuleOp">]> {
  let summary = "a named trainable parameter with its shape and initialiser";
  let description = [{
    Declares one parameter of the model at module level. `init` is one of
    `normal` (with `std`), `zeros` or `ones`; GPT-2's scaled initialisation of
    residual projections is resolved by the importer into the `std` it stores.

    ```mlir
    nn.parameter @"h.0.attn.c_attn.weight" : tensor<64x192xf32> <{init = "normal", std = 2.000000e-02 : f64}>
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttrOf<NN_FloatTensor>:$type,
                       StrAttr:$init, DefaultValuedAttr<F64Attr, "0.0">:$std);
  let assemblyFormat = "$sym_name `:` $type prop-dict attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
  }];
}

def NN_ParamOp : NN_Op<"param", [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "reads a parameter inside a function";
  let description = [{
    ```mlir
    %w = nn.param @"wte.weight" : tensor<256x64xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

class NN_BinaryOp<string mnemonic, string what> : NN_ComputeOp<mnemonic> {
  let summary = what # " with broadcasting of a trailing-shape operand";
  let description = [{
    The right operand's shape must equal a suffix of the left operand's
    shape (a bias `[N]` added to `[B, T, N]`); the result has the left shape.

    ```mlir
    %y = nn.}] # mnemonic # [{ %x, %b : (tensor<4x64x64xf32>, tensor<64xf32>) -> tensor<4x64x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$lhs, NN_FloatTensor:$rhs);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def NN_AddOp : NN_BinaryOp<"add", "elementwise sum">;
def NN_MulOp : NN_BinaryOp<"mul", "elementwise product">;

class NN_UnaryOp<string mnemonic, string what> : NN_ComputeOp<mnemonic, [SameOperandsAndResultType]> {
  let summary = what;
  let arguments = (ins NN_FloatTensor:$input);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def NN_GeluOp : NN_UnaryOp<"gelu", "GELU, tanh approximation (as GPT-2)"> {
  let description = [{
    `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.

    ```mlir
    %y = nn.gelu %x : tensor<4x64x256xf32>
    ```
  }];
}

#endif // PIPEC_NN_OPS
