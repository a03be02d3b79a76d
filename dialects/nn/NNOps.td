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

    `logical_shape`, when present, is the model's shape of a parameter
    whose declared type is padded (--nn-pad-vocab: a vocabulary rounded up
    for aligned GEMMs): each dim at most the declared one. The elements
    inside the logical shape are the model's, initialised and saved by
    their logical index; the padding is zero and stays zero.
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttrOf<NN_AnyShapeFloatTensor>:$type,
                       StrAttr:$init, DefaultValuedAttr<F64Attr, "0.0">:$std,
                       OptionalAttr<DenseI64ArrayAttr>:$logical_shape);
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
// Embeddings
//===----------------------------------------------------------------------===//

def NN_EmbeddingOp : NN_ComputeOp<"embedding"> {
  let summary = "gathers one row of a table per token id";
  let description = [{
    `table` is `[V, D]`; `ids` holds token ids of any shape `[...]` (usually
    `[B, T]`) and the result is `[..., D]`: row `ids[i]` of the table for every
    id. Ids outside `[0, V)` are a runtime error of the kernels.

    ```mlir
    %h = nn.embedding %wte, %ids : (tensor<256x64xf32>, tensor<4x32xi32>) -> tensor<4x32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$table, NN_IndexTensor:$ids);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = "$table `,` $ids attr-dict `:` functional-type(operands, results)";
}

def NN_PositionEmbeddingOp : NN_ComputeOp<"position_embedding"> {
  let summary = "the first T rows of a learned position table";
  let description = [{
    `table` is `[Tmax, D]`; the result `[T, D]` holds its rows `0 .. T-1`, with
    `T <= Tmax` given by the result type. Added to a `[B, T, D]` token
    embedding with `nn.add`, it broadcasts over the batch.

    ```mlir
    %p = nn.position_embedding %wpe : (tensor<1024x64xf32>) -> tensor<32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$table);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = "$table attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

def NN_MatmulOp : NN_ComputeOp<"matmul"> {
  let summary = "a product with a 2-D weight, with an optional bias";
  let description = [{
    `x` is `[..., K]` and `w` is `[K, N]` (GPT-2's `Conv1D` layout), or
    `[N, K]` when `transpose_rhs` is set (PyTorch's `Linear` layout, and a tied
    LM head that reuses the `[V, D]` embedding table). The optional `bias` is
    `[N]`. The result is `[..., N]`: every leading dimension of `x` is a row.

    ```mlir
    %y = nn.matmul %x, %w, %b : (tensor<4x32x64xf32>, tensor<64x192xf32>, tensor<192xf32>) -> tensor<4x32x192xf32>
    %logits = nn.matmul %h, %wte transpose_rhs : (tensor<4x32x64xf32>, tensor<256x64xf32>) -> tensor<4x32x256xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$x, NN_FloatTensor:$w,
                       Optional<NN_FloatTensor>:$bias,
                       UnitAttr:$transpose_rhs);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $w (`,` $bias^)? (`transpose_rhs` $transpose_rhs^)? attr-dict
    `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Normalisation
//===----------------------------------------------------------------------===//

def NN_LayerNormOp : NN_ComputeOp<"layernorm"> {
  let summary = "layer normalisation over the last axis, with scale and shift";
  let description = [{
    `y = (x - mean(x)) / sqrt(var(x) + eps) * gamma + beta` over the last axis
    `D` of `x`; the variance is the biased one (divided by `D`), as in
    PyTorch. `gamma` and `beta` are `[D]`.

    ```mlir
    %y = nn.layernorm %x, %g, %b eps = 1.000000e-05 : (tensor<4x32x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<4x32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$x, NN_FloatTensor:$gamma,
                       NN_FloatTensor:$beta, F64Attr:$eps);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $gamma `,` $beta `eps` `=` $eps attr-dict `:` functional-type(operands, results)
  }];
}

def NN_RMSNormOp : NN_ComputeOp<"rmsnorm"> {
  let summary = "root-mean-square normalisation over the last axis, with scale";
  let description = [{
    `y = x / sqrt(mean(x^2) + eps) * gamma` over the last axis `D` of `x`
    (Llama's `RMSNorm`); `gamma` is `[D]`.

    ```mlir
    %y = nn.rmsnorm %x, %g eps = 1.000000e-05 : (tensor<4x32x64xf32>, tensor<64xf32>) -> tensor<4x32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$x, NN_FloatTensor:$gamma, F64Attr:$eps);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $gamma `eps` `=` $eps attr-dict `:` functional-type(operands, results)
  }];
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

/// Shape-preserving ops of one operand; SameOperandsAndResultType checks the
/// types, so their verifiers have nothing left to check.
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

def NN_SiluOp : NN_UnaryOp<"silu", "SiLU (swish), the gate activation of Llama's MLP"> {
  let description = [{
    `x * sigmoid(x) = x / (1 + exp(-x))`.

    ```mlir
    %y = nn.silu %x : tensor<4x32x172xf32>
    ```
  }];
}

def NN_SoftmaxOp : NN_UnaryOp<"softmax", "softmax over the last axis"> {
  let description = [{
    `y_i = exp(x_i - max(x)) / sum_j exp(x_j - max(x))` along the last axis;
    every other axis is a batch of rows.

    ```mlir
    %y = nn.softmax %x : tensor<4x32x256xf32>
    ```
  }];
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

def NN_SliceOp : NN_ComputeOp<"slice"> {
  let summary = "a contiguous range of one axis";
  let description = [{
    Keeps `size` entries of axis `axis`, starting at `offset`; every other
    axis is kept whole. Splits a fused QKV projection into its three parts.

    ```mlir
    %k = nn.slice %qkv axis = 2 offset = 64 size = 64 : (tensor<4x32x192xf32>) -> tensor<4x32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$input, I64Attr:$axis, I64Attr:$offset,
                       I64Attr:$size);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $input `axis` `=` $axis `offset` `=` $offset `size` `=` $size attr-dict
    `:` functional-type(operands, results)
  }];
}

def NN_ReshapeOp : NN_ComputeOp<"reshape"> {
  let summary = "the same elements, row-major, in another static shape";
  let description = [{
    The result type gives the new shape; it must hold as many elements as the
    input. Row-major order is kept, so the op is a view that moves no data.

    ```mlir
    %y = nn.reshape %x : (tensor<4x32x64xf32>) -> tensor<128x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$input);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

def NN_TransposeOp : NN_ComputeOp<"transpose"> {
  let summary = "a permutation of the axes";
  let description = [{
    Result axis `i` is input axis `perm[i]`, so the result shape is
    `[in[perm[0]], in[perm[1]], ...]`; `perm` must be a permutation of
    `0 .. rank-1`.

    ```mlir
    %y = nn.transpose %x perm = [0, 2, 1] : (tensor<4x32x64xf32>) -> tensor<4x64x32xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $input `perm` `=` $perm attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

def NN_RopeOp : NN_ComputeOp<"rope"> {
  let summary = "rotary position embedding, in Hugging Face Llama's rotate-half form";
  let description = [{
    `x` is `[B, T, H * Dh]` with `H = heads` and an even head width `Dh`.
    Within each head, position `t` (`0 .. T-1`) and frequency index
    `i` (`0 .. Dh/2 - 1`) give the angle `a = t * theta^(-2i / Dh)`; with the
    head split into halves `x1 = x[:Dh/2]` and `x2 = x[Dh/2:]`,

    ```
    y[i]        = x1[i] * cos(a) - x2[i] * sin(a)
    y[i + Dh/2] = x2[i] * cos(a) + x1[i] * sin(a)
    ```

    which is `x * cos + rotate_half(x) * sin` of Hugging Face's
    `modeling_llama.py` (not the interleaved pairs of the original RoFormer
    and Meta's reference code), so Hugging Face checkpoints load unchanged.

    ```mlir
    %q = nn.rope %x heads = 4 theta = 1.000000e+04 : (tensor<4x32x64xf32>) -> tensor<4x32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$input, I64Attr:$heads, F64Attr:$theta);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $input `heads` `=` $heads `theta` `=` $theta attr-dict `:` functional-type(operands, results)
  }];
}

def NN_AttentionOp : NN_ComputeOp<"attention"> {
  let summary = "multi-head scaled dot-product attention, with grouped-query heads";
  let description = [{
    `q` is `[B, T, Hq * Dh]`, `k` and `v` are `[B, S, Hkv * Dh]` with
    `Hq = heads`, `Hkv = kv_heads` and `Hq % Hkv == 0`: query head `h` attends
    with key/value head `h / (Hq / Hkv)` (grouped-query attention; `Hkv == Hq`
    is ordinary multi-head attention). Per head,
    `o = softmax(scale * q k^T + mask) v`, where `causal` masks key `s > t` for
    query `t` and requires `T == S`. The result is `[B, T, Hq * Dh]`, the heads
    concatenated along the last axis.

    The op is one kernel (flash-style): it never materialises the `T x S`
    scores, and keeps a per-row log-sum-exp for its backward instead.

    ```mlir
    %o = nn.attention %q, %k, %v heads = 8 kv_heads = 2 causal scale = 1.250000e-01 : (tensor<4x32x512xf32>, tensor<4x32x128xf32>, tensor<4x32x128xf32>) -> tensor<4x32x512xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$q, NN_FloatTensor:$k, NN_FloatTensor:$v,
                       I64Attr:$heads, I64Attr:$kv_heads, UnitAttr:$causal,
                       F64Attr:$scale);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $q `,` $k `,` $v `heads` `=` $heads `kv_heads` `=` $kv_heads
    (`causal` $causal^)? `scale` `=` $scale attr-dict
    `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

def NN_CrossEntropyOp : NN_ComputeOp<"cross_entropy"> {
  let summary = "mean cross-entropy of softmax(logits) against target ids";
  let description = [{
    `logits` is `[B, T, V]` and `targets` `[B, T]` (i32 ids in `[0, V)`). The
    result is the f32 scalar `-(1 / (B*T)) sum log softmax(logits)[target]`,
    the mean over all `B*T` tokens. The softmax is fused into the loss, so
    the probabilities are never a separate value of the graph.

    ```mlir
    %loss = nn.cross_entropy %logits, %targets : (tensor<4x32x256xf32>, tensor<4x32xi32>) -> tensor<f32>
    ```

    `classes`, when present, is how many of the last dim's columns are
    classes (targets in `[0, classes)`); the rest pad a vocabulary for
    aligned GEMMs (--nn-pad-vocab) and take no part in the softmax.
  }];
  let arguments = (ins NN_FloatTensor:$logits, NN_IndexTensor:$targets,
                       OptionalAttr<I64Attr>:$classes);
  let results = (outs 0DTensorOf<[F32]>:$result);
  let extraClassDeclaration = [{
    /// The classes: `classes` when set, else the logits' last dim.
    int64_t classCount() {
      return getClasses() ? int64_t(*getClasses())
                          : ::llvm::cast<::mlir::ShapedType>(getLogits().getType()).getShape().back();
    }
  }];
  let assemblyFormat = "$logits `,` $targets attr-dict `:` functional-type(operands, results)";
}

#endif // PIPEC_NN_OPS
