//===- NNGradOps.td - training forms, backward and optimizer ops -*- tablegen -*-===//
//
// The ops --nn-autodiff builds (docs/AUTODIFF.md): forward forms that keep
// what backward reads, B ops (activation gradients), W ops (adds into the
// accumulator of one parameter use) and the optimizer ops. Each op is one
// kernel call of runtime/kernels/cpu.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_NN_GRAD_OPS
#define PIPEC_NN_GRAD_OPS

include "dialects/nn/NNBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

/// A backward op that produces an activation gradient (role B).
class NN_GradBOp<string mnemonic, list<Trait> traits = []>
    : NN_Op<mnemonic, traits> {
  let hasVerifier = 1;
}

/// Marks W ops, so passes and schedules tell W from B by the op's kind.
def NN_WeightGradient : NativeOpTrait<"WeightGradient"> {
  let cppNamespace = "::pipec::nn::OpTrait";
}

/// A W op: adds a parameter gradient into the accumulator `@param[use]`
/// (one per use of the parameter in @forward) and produces nothing. The
/// write effect keeps it alive although nothing reads a result.
class NN_GradWOp<string mnemonic, list<Trait> traits = []>
    : Op<NN_Dialect, mnemonic, !listconcat(traits, [
        NN_WeightGradient, MemoryEffects<[MemRead, MemWrite]>,
        DeclareOpInterfaceMethods<SymbolUserOpInterface>])> {
  let hasVerifier = 1;
}

/// Host scalars of the optimizer step; buildable, so formats need not spell them.
def NN_F64Scalar : 0DTensorOf<[F64]>,
    BuildableType<"::mlir::RankedTensorType::get({}, $_builder.getF64Type())">;
def NN_I64Scalar : 0DTensorOf<[I64]>,
    BuildableType<"::mlir::RankedTensorType::get({}, $_builder.getIntegerType(64))">;

//===----------------------------------------------------------------------===//
// Forward forms that keep state for backward (role F)
//===----------------------------------------------------------------------===//

def NN_LayerNormTrainOp : NN_Op<"layernorm_train"> {
  let summary = "layernorm that also returns the per-row mean and rstd";
  let description = [{
    `nn.layernorm` (same operands and result) plus `mean` and
    `rstd = 1/sqrt(var + eps)` of every row, shaped like `x` without its last
    dim, for `nn.layernorm_grad_b` and `nn.layernorm_grad_w`
    (`layernormForward`).

    ```mlir
    %y, %mean, %rstd = nn.layernorm_train %x, %g, %b eps = 1.000000e-05 : (tensor<4x32x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<4x32x64xf32>, tensor<4x32xf32>, tensor<4x32xf32>)
    ```
  }];
  let arguments = (ins NN_FloatTensor:$x, NN_FloatTensor:$gamma,
                       NN_FloatTensor:$beta, F64Attr:$eps);
  let results = (outs NN_FloatTensor:$result, NN_FloatTensor:$mean,
                      NN_FloatTensor:$rstd);
  let assemblyFormat = [{
    $x `,` $gamma `,` $beta `eps` `=` $eps attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def NN_RMSNormTrainOp : NN_Op<"rmsnorm_train"> {
  let summary = "rmsnorm that also returns the per-row rstd";
  let description = [{
    `nn.rmsnorm` plus `rstd = 1/sqrt(mean(x^2) + eps)` of every row
    (`rmsnormForward`).

    ```mlir
    %y, %rstd = nn.rmsnorm_train %x, %g eps = 1.000000e-05 : (tensor<4x32x64xf32>, tensor<64xf32>) -> (tensor<4x32x64xf32>, tensor<4x32xf32>)
    ```
  }];
  let arguments = (ins NN_FloatTensor:$x, NN_FloatTensor:$gamma, F64Attr:$eps);
  let results = (outs NN_FloatTensor:$result, NN_FloatTensor:$rstd);
  let assemblyFormat = [{
    $x `,` $gamma `eps` `=` $eps attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def NN_AttentionTrainOp : NN_Op<"attention_train"> {
  let summary = "attention that also returns the log-sum-exp of every score row";
  let description = [{
    `nn.attention` plus `lse` `[B, Hq, T]`, the log-sum-exp of each row of
    scaled, masked scores, from which `nn.attention_grad` recomputes the
    probabilities (flash style; `attentionForward`).

    ```mlir
    %o, %lse = nn.attention_train %q, %k, %v heads = 4 kv_heads = 4 causal scale = 2.500000e-01 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> (tensor<2x8x64xf32>, tensor<2x4x8xf32>)
    ```
  }];
  let arguments = (ins NN_FloatTensor:$q, NN_FloatTensor:$k, NN_FloatTensor:$v,
                       I64Attr:$heads, I64Attr:$kv_heads, UnitAttr:$causal,
                       F64Attr:$scale);
  let results = (outs NN_FloatTensor:$result, NN_FloatTensor:$lse);
  let assemblyFormat = [{
    $q `,` $k `,` $v `heads` `=` $heads `kv_heads` `=` $kv_heads
    (`causal` $causal^)? `scale` `=` $scale attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def NN_SoftmaxCrossEntropyOp : NN_Op<"softmax_cross_entropy"> {
  let summary = "the loss fused with its gradient";
  let description = [{
    `loss` is `nn.cross_entropy`'s mean over the `B*T` rows
    (`crossEntropyForward`); `dlogits = (softmax(logits) - onehot(targets)) *
    (loss_scale / (B*T))` (`crossEntropyBackward`, the scale computed in
    double). `loss_scale` is d(step loss)/d(micro-batch loss). The kernel
    may write `dlogits` over `logits`. `classes` is `nn.cross_entropy`'s:
    the padded columns' `dlogits` are zero.

    ```mlir
    %loss, %dlogits = nn.softmax_cross_entropy %logits, %targets, %scale : (tensor<4x32x256xf32>, tensor<4x32xi32>, tensor<f64>) -> (tensor<f32>, tensor<4x32x256xf32>)
    ```
  }];
  let arguments = (ins NN_FloatTensor:$logits, NN_IndexTensor:$targets,
                       NN_F64Scalar:$loss_scale, OptionalAttr<I64Attr>:$classes);
  let results = (outs 0DTensorOf<[F32]>:$loss, NN_FloatTensor:$dlogits);
  let extraClassDeclaration = [{
    /// The classes: `classes` when set, else the logits' last dim.
    int64_t classCount() {
      return getClasses() ? int64_t(*getClasses())
                          : ::llvm::cast<::mlir::ShapedType>(getLogits().getType()).getShape().back();
    }
  }];
  let assemblyFormat = [{
    $logits `,` $targets `,` $loss_scale attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Fused forward forms (role F, built by --nn-fuse)
//===----------------------------------------------------------------------===//

def NN_MatmulGeluOp : NN_Op<"matmul_gelu"> {
  let summary = "matmul (+ bias) with its GELU epilogue";
  let description = [{
    `%pre = nn.matmul %x, %w(, %bias)` followed by `nn.gelu %pre` as one
    op: the fused unit of --nn-fuse, one kernel on every target. Returns the
    pre-activation as well, which `nn.gelu_grad` reads. On the cpu target it
    gives the bits of the two ops (`matmulGeluForward`).

    ```mlir
    %pre, %h = nn.matmul_gelu %x, %w, %b : (tensor<4x32x64xf32>, tensor<64x256xf32>, tensor<256xf32>) -> (tensor<4x32x256xf32>, tensor<4x32x256xf32>)
    ```
  }];
  let arguments = (ins NN_FloatTensor:$x, NN_FloatTensor:$w,
                       Optional<NN_FloatTensor>:$bias,
                       UnitAttr:$transpose_rhs);
  let results = (outs NN_FloatTensor:$pre, NN_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $w (`,` $bias^)? (`transpose_rhs` $transpose_rhs^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def NN_AddLayerNormTrainOp : NN_Op<"add_layernorm_train"> {
  let summary = "residual add followed by layernorm, keeping the sum";
  let description = [{
    `%sum = nn.add %lhs, %rhs` (same shapes) followed by
    `nn.layernorm_train %sum, ...` as one op (--nn-fuse): returns the sum
    (the residual stream goes on), the normalised rows and their mean and
    rstd. On the cpu target it gives the bits of the two ops
    (`addLayernormForward`).

    ```mlir
    %sum, %y, %mean, %rstd = nn.add_layernorm_train %a, %b, %g, %be eps = 1.000000e-05 : (tensor<4x32x64xf32>, tensor<4x32x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<4x32x64xf32>, tensor<4x32x64xf32>, tensor<4x32xf32>, tensor<4x32xf32>)
    ```
  }];
  let arguments = (ins NN_FloatTensor:$lhs, NN_FloatTensor:$rhs,
                       NN_FloatTensor:$gamma, NN_FloatTensor:$beta,
                       F64Attr:$eps);
  let results = (outs NN_FloatTensor:$sum, NN_FloatTensor:$result,
                      NN_FloatTensor:$mean, NN_FloatTensor:$rstd);
  let assemblyFormat = [{
    $lhs `,` $rhs `,` $gamma `,` $beta `eps` `=` $eps attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def NN_AddRMSNormTrainOp : NN_Op<"add_rmsnorm_train"> {
  let summary = "residual add followed by rmsnorm, keeping the sum";
  let description = [{
    `%sum = nn.add %lhs, %rhs` (same shapes) followed by
    `nn.rmsnorm_train %sum, ...` as one op (--nn-fuse): returns the sum, the
    normalised rows and their rstd (`addRmsnormForward` on the cpu).

    ```mlir
    %sum, %y, %rstd = nn.add_rmsnorm_train %a, %b, %g eps = 1.000000e-05 : (tensor<4x32x64xf32>, tensor<4x32x64xf32>, tensor<64xf32>) -> (tensor<4x32x64xf32>, tensor<4x32x64xf32>, tensor<4x32xf32>)
    ```
  }];
  let arguments = (ins NN_FloatTensor:$lhs, NN_FloatTensor:$rhs,
                       NN_FloatTensor:$gamma, F64Attr:$eps);
  let results = (outs NN_FloatTensor:$sum, NN_FloatTensor:$result,
                      NN_FloatTensor:$rstd);
  let assemblyFormat = [{
    $lhs `,` $rhs `,` $gamma `eps` `=` $eps attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// B ops: activation gradients
//===----------------------------------------------------------------------===//

def NN_MatmulGradBOp : NN_GradBOp<"matmul_grad_b"> {
  let summary = "gradient of a matmul's x: dy op(w)^T";
  let description = [{
    `dy` is `[..., N]`, `w` the forward weight (`[K, N]`, or `[N, K]` with
    `transpose_rhs`); the result is `[..., K]` (`matmulBackwardB`).

    ```mlir
    %dx = nn.matmul_grad_b %dy, %w : (tensor<4x32x192xf32>, tensor<64x192xf32>) -> tensor<4x32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, NN_FloatTensor:$w, UnitAttr:$transpose_rhs);
  let results = (outs NN_FloatTensor:$dx);
  let assemblyFormat = [{
    $dy `,` $w (`transpose_rhs` $transpose_rhs^)? attr-dict `:` functional-type(operands, results)
  }];
}

def NN_LayerNormGradBOp : NN_GradBOp<"layernorm_grad_b"> {
  let summary = "gradient of a layernorm's x";
  let description = [{
    `dx = rstd * (g - mean(g) - xhat * mean(g * xhat))` with `g = dy * gamma`
    and `xhat = (x - mean) * rstd` (`layernormBackwardB`).

    ```mlir
    %dx = nn.layernorm_grad_b %dy, %x, %mean, %rstd, %g : (tensor<4x32x64xf32>, tensor<4x32x64xf32>, tensor<4x32xf32>, tensor<4x32xf32>, tensor<64xf32>) -> tensor<4x32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, NN_FloatTensor:$x, NN_FloatTensor:$mean,
                       NN_FloatTensor:$rstd, NN_FloatTensor:$gamma);
  let results = (outs NN_FloatTensor:$dx);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
}

def NN_RMSNormGradBOp : NN_GradBOp<"rmsnorm_grad_b"> {
  let summary = "gradient of an rmsnorm's x";
  let description = [{
    `dx = rstd * (g - xhat * mean(g * xhat))` with `g = dy * gamma` and
    `xhat = x * rstd` (`rmsnormBackwardB`).

    ```mlir
    %dx = nn.rmsnorm_grad_b %dy, %x, %rstd, %g : (tensor<4x32x64xf32>, tensor<4x32x64xf32>, tensor<4x32xf32>, tensor<64xf32>) -> tensor<4x32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, NN_FloatTensor:$x,
                       NN_FloatTensor:$rstd, NN_FloatTensor:$gamma);
  let results = (outs NN_FloatTensor:$dx);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
}

/// Gradient of a pointwise activation from its input.
class NN_ActivationGradOp<string mnemonic, string what, string kernel>
    : NN_GradBOp<mnemonic, [SameOperandsAndResultType]> {
  let summary = "gradient of " # what # " from its forward input";
  let description = [{
    `dx = dy * f'(x)` with `x` the forward input (`}] # kernel # [{`).

    ```mlir
    %dx = nn.}] # mnemonic # [{ %dy, %x : tensor<4x32x256xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, NN_FloatTensor:$x);
  let results = (outs NN_FloatTensor:$dx);
  let assemblyFormat = "$dy `,` $x attr-dict `:` type($dx)";
}

def NN_GeluGradOp : NN_ActivationGradOp<"gelu_grad", "GELU (tanh)", "geluBackwardB">;
def NN_SiluGradOp : NN_ActivationGradOp<"silu_grad", "SiLU", "siluBackwardB">;

def NN_SoftmaxGradOp : NN_GradBOp<"softmax_grad", [SameOperandsAndResultType]> {
  let summary = "gradient of a softmax from its output";
  let description = [{
    `dx = y * (dy - sum(dy * y))` per row, `y` the forward output
    (`softmaxBackwardB`).

    ```mlir
    %dx = nn.softmax_grad %dy, %y : tensor<4x32x256xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, NN_FloatTensor:$y);
  let results = (outs NN_FloatTensor:$dx);
  let assemblyFormat = "$dy `,` $y attr-dict `:` type($dx)";
}

def NN_AddGradRhsOp : NN_GradBOp<"add_grad_rhs"> {
  let summary = "gradient of add's broadcast operand: column sums of dy";
  let description = [{
    The result's shape is a proper suffix of `dy`'s; element `j` is the sum
    of `dy` over the leading rows in ascending order
    (`addBackwardBroadcast`, accumulate = false).

    ```mlir
    %dp = nn.add_grad_rhs %dy : (tensor<4x32x64xf32>) -> tensor<32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy);
  let results = (outs NN_FloatTensor:$drhs);
  let assemblyFormat = "$dy attr-dict `:` functional-type(operands, results)";
}

def NN_MulGradLhsOp : NN_GradBOp<"mul_grad_lhs"> {
  let summary = "gradient of mul's full-shape operand: dy * rhs";
  let description = [{
    `dlhs[i] = dy[i] * rhs[i % n(rhs)]` (`mulBackwardLhs`).

    ```mlir
    %da = nn.mul_grad_lhs %dy, %b : (tensor<4x32x176xf32>, tensor<4x32x176xf32>) -> tensor<4x32x176xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, NN_FloatTensor:$rhs);
  let results = (outs NN_FloatTensor:$dlhs);
  let assemblyFormat = "$dy `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def NN_MulGradRhsOp : NN_GradBOp<"mul_grad_rhs"> {
  let summary = "gradient of mul's right operand: column sums of dy * lhs";
  let description = [{
    The result has the right operand's shape (a suffix of `dy`'s, possibly
    all of it): `drhs[j] = sum over rows r ascending of dy[r, j] * lhs[r, j]`
    (`mulBackwardRhs`).

    ```mlir
    %db = nn.mul_grad_rhs %dy, %a : (tensor<4x32x176xf32>, tensor<4x32x176xf32>) -> tensor<4x32x176xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, NN_FloatTensor:$lhs);
  let results = (outs NN_FloatTensor:$drhs);
  let assemblyFormat = "$dy `,` $lhs attr-dict `:` functional-type(operands, results)";
}

def NN_SliceGradOp : NN_GradBOp<"slice_grad"> {
  let summary = "gradient of a slice: dy in its window, zeros elsewhere";
  let description = [{
    The result has the forward input's shape (`sliceBackwardB`, accumulate
    = false).

    ```mlir
    %dqkv = nn.slice_grad %dk axis = 2 offset = 64 : (tensor<4x32x64xf32>) -> tensor<4x32x192xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, I64Attr:$axis, I64Attr:$offset);
  let results = (outs NN_FloatTensor:$dx);
  let assemblyFormat = [{
    $dy `axis` `=` $axis `offset` `=` $offset attr-dict `:` functional-type(operands, results)
  }];
}

def NN_RopeGradOp : NN_GradBOp<"rope_grad", [SameOperandsAndResultType]> {
  let summary = "gradient of rope: the transposed rotation";
  let description = [{
    (`ropeBackwardB`).

    ```mlir
    %dx = nn.rope_grad %dy heads = 4 theta = 1.000000e+04 : tensor<4x32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, I64Attr:$heads, F64Attr:$theta);
  let results = (outs NN_FloatTensor:$dx);
  let assemblyFormat = [{
    $dy `heads` `=` $heads `theta` `=` $theta attr-dict `:` type($dx)
  }];
}

def NN_AttentionGradOp : NN_GradBOp<"attention_grad"> {
  let summary = "gradients of attention's q, k and v (flash style)";
  let description = [{
    Recomputes the probabilities from `q`, `k` and `lse` and returns `dq`,
    `dk`, `dv` from `do` and the forward output `o`
    (`attentionBackwardB`). The attributes are the forward op's.

    ```mlir
    %dq, %dk, %dv = nn.attention_grad %do, %q, %k, %v, %o, %lse heads = 4 kv_heads = 4 causal scale = 2.500000e-01 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x4x8xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>)
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dout, NN_FloatTensor:$q, NN_FloatTensor:$k,
                       NN_FloatTensor:$v, NN_FloatTensor:$out, NN_FloatTensor:$lse,
                       I64Attr:$heads, I64Attr:$kv_heads, UnitAttr:$causal,
                       F64Attr:$scale);
  let results = (outs NN_FloatTensor:$dq, NN_FloatTensor:$dk, NN_FloatTensor:$dv);
  let assemblyFormat = [{
    $dout `,` $q `,` $k `,` $v `,` $out `,` $lse `heads` `=` $heads
    `kv_heads` `=` $kv_heads (`causal` $causal^)? `scale` `=` $scale attr-dict
    `:` functional-type(operands, results)
  }];
}

def NN_GradAddOp : NN_GradBOp<"grad_add", [SameOperandsAndResultType]> {
  let summary = "sums two gradient contributions of one value";
  let description = [{
    `lhs + rhs`, `lhs` the sum so far (`accumulateInto`, accumulate = true).

    ```mlir
    %d = nn.grad_add %d0, %d1 : tensor<4x32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$lhs, NN_FloatTensor:$rhs);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// W ops: adds into the accumulator of one parameter use
//===----------------------------------------------------------------------===//

def NN_MatmulGradWOp : NN_GradWOp<"matmul_grad_w"> {
  let summary = "adds a matmul's weight (and bias) gradient into their accumulators";
  let description = [{
    `acc(weight) += x^T dy` (`dy^T x` with `transpose_rhs`), all leading dims
    flattened into rows; with `bias`, `acc(bias) += column sums of dy`
    (`matmulBackwardW`).

    ```mlir
    nn.matmul_grad_w %x, %dy into @"fc.weight"[0], @"fc.bias"[0] : tensor<4x32x64xf32>, tensor<4x32x192xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$x, NN_FloatTensor:$dy, UnitAttr:$transpose_rhs,
                       FlatSymbolRefAttr:$weight, I64Attr:$weight_use,
                       OptionalAttr<FlatSymbolRefAttr>:$bias,
                       OptionalAttr<I64Attr>:$bias_use);
  let assemblyFormat = [{
    $x `,` $dy (`transpose_rhs` $transpose_rhs^)? `into` $weight `[` $weight_use `]`
    (`,` $bias^ `[` $bias_use `]`)? attr-dict `:` type($x) `,` type($dy)
  }];
}

def NN_LayerNormGradWOp : NN_GradWOp<"layernorm_grad_w"> {
  let summary = "adds a layernorm's gamma and beta gradients into their accumulators";
  let description = [{
    `acc(gamma) += sum over rows of dy * xhat`, `acc(beta) += sum over rows
    of dy` (`layernormBackwardW`).

    ```mlir
    nn.layernorm_grad_w %dy, %x, %mean, %rstd into @"ln.weight"[0], @"ln.bias"[0] : tensor<4x32x64xf32>, tensor<4x32x64xf32>, tensor<4x32xf32>, tensor<4x32xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, NN_FloatTensor:$x, NN_FloatTensor:$mean,
                       NN_FloatTensor:$rstd, FlatSymbolRefAttr:$gamma,
                       I64Attr:$gamma_use, FlatSymbolRefAttr:$beta,
                       I64Attr:$beta_use);
  let assemblyFormat = [{
    $dy `,` $x `,` $mean `,` $rstd `into` $gamma `[` $gamma_use `]` `,`
    $beta `[` $beta_use `]` attr-dict `:` type(operands)
  }];
}

def NN_RMSNormGradWOp : NN_GradWOp<"rmsnorm_grad_w"> {
  let summary = "adds an rmsnorm's gamma gradient into its accumulator";
  let description = [{
    `acc(gamma) += sum over rows of dy * x * rstd` (`rmsnormBackwardW`).

    ```mlir
    nn.rmsnorm_grad_w %dy, %x, %rstd into @"norm.weight"[0] : tensor<4x32x64xf32>, tensor<4x32x64xf32>, tensor<4x32xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, NN_FloatTensor:$x, NN_FloatTensor:$rstd,
                       FlatSymbolRefAttr:$gamma, I64Attr:$gamma_use);
  let assemblyFormat = [{
    $dy `,` $x `,` $rstd `into` $gamma `[` $gamma_use `]` attr-dict `:` type(operands)
  }];
}

def NN_EmbeddingGradWOp : NN_GradWOp<"embedding_grad_w"> {
  let summary = "scatter-adds an embedding's output gradient into its table's accumulator";
  let description = [{
    `acc(table)[ids[n], :] += dy[n, :]` for tokens `n` ascending
    (`embeddingBackwardW`).

    ```mlir
    nn.embedding_grad_w %dy, %ids into @"wte.weight"[0] : tensor<4x32x64xf32>, tensor<4x32xi32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, NN_IndexTensor:$ids,
                       FlatSymbolRefAttr:$table, I64Attr:$table_use);
  let assemblyFormat = [{
    $dy `,` $ids `into` $table `[` $table_use `]` attr-dict `:` type(operands)
  }];
}

def NN_PositionEmbeddingGradWOp : NN_GradWOp<"position_embedding_grad_w"> {
  let summary = "adds a position embedding's gradient into the first rows of its table's accumulator";
  let description = [{
    `acc(table)[t, :] += dy[t, :]` for `t < T` (`positionEmbeddingBackwardW`).

    ```mlir
    nn.position_embedding_grad_w %dy into @"wpe.weight"[0] : tensor<32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, FlatSymbolRefAttr:$table,
                       I64Attr:$table_use);
  let assemblyFormat = "$dy `into` $table `[` $table_use `]` attr-dict `:` type($dy)";
}

def NN_AddGradWOp : NN_GradWOp<"add_grad_w"> {
  let summary = "adds an add's gradient into the accumulator of its parameter operand";
  let description = [{
    The parameter's shape is a suffix of `dy`'s (add's broadcast rhs, or a
    same-shape operand): `acc[j] += sum over rows ascending of dy[r, j]`
    (`addBackwardBroadcast`, accumulate = true).

    ```mlir
    nn.add_grad_w %dy into @"b"[0] : tensor<4x32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, FlatSymbolRefAttr:$param, I64Attr:$use);
  let assemblyFormat = "$dy `into` $param `[` $use `]` attr-dict `:` type($dy)";
}

def NN_MulGradWOp : NN_GradWOp<"mul_grad_w"> {
  let summary = "adds a mul's gradient into the accumulator of its parameter rhs";
  let description = [{
    `acc[j] += sum over rows ascending of dy[r, j] * lhs[r, j]`
    (`mulBackwardRhs`, accumulate = true).

    ```mlir
    nn.mul_grad_w %dy, %x into @"scale"[0] : tensor<4x32x64xf32>, tensor<4x32x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$dy, NN_FloatTensor:$lhs,
                       FlatSymbolRefAttr:$param, I64Attr:$use);
  let assemblyFormat = [{
    $dy `,` $lhs `into` $param `[` $use `]` attr-dict `:` type(operands)
  }];
}

def NN_AccumulateGradOp : NN_GradWOp<"accumulate_grad"> {
  let summary = "adds a computed gradient into a parameter use's accumulator";
  let description = [{
    `acc += grad`, for a parameter read by an op that has no W op of its own
    (`accumulateInto`, accumulate = true).

    ```mlir
    nn.accumulate_grad %g into @"w"[1] : tensor<64x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$grad, FlatSymbolRefAttr:$param, I64Attr:$use);
  let assemblyFormat = "$grad `into` $param `[` $use `]` attr-dict `:` type($grad)";
}

//===----------------------------------------------------------------------===//
// The optimizer step
//===----------------------------------------------------------------------===//

def NN_SumUsesOp : Op<NN_Dialect, "sum_uses", [
    MemoryEffects<[MemRead]>, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "the gradient of a parameter: its per-use accumulators added in use order";
  let description = [{
    `acc[0] + acc[1] + ...`, left to right (`uses = 1`: the accumulator
    itself; `uses = 0`: zeros, a parameter nothing reads). Tied uses on
    different ranks meet here.

    ```mlir
    %g = nn.sum_uses @"wte.weight" uses = 2 : tensor<256x64xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$param, I64Attr:$uses);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = "$param `uses` `=` $uses attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def NN_SumSquaresOp : NN_Op<"sum_squares"> {
  let summary = "sum of the squares of a gradient, in double";
  let description = [{
    In the fixed chunked order of `sumOfSquares`.

    ```mlir
    %s = nn.sum_squares %g : tensor<256x64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$input);
  let results = (outs NN_F64Scalar:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def NN_GradNormOp : NN_Op<"grad_norm"> {
  let summary = "the global gradient norm: sqrt of per-tensor sums added in operand order";
  let description = [{
    One operand per parameter, in declaration order, so a tied parameter
    counts once (`globalNorm`).

    ```mlir
    %n = nn.grad_norm %s0, %s1, %s2
    ```
  }];
  let arguments = (ins Variadic<NN_F64Scalar>:$squares);
  let results = (outs NN_F64Scalar:$result);
  let assemblyFormat = "$squares attr-dict";
  let hasVerifier = 1;
}

def NN_ClipScaleOp : NN_Op<"clip_scale"> {
  let summary = "the factor global-norm clipping multiplies gradients by";
  let description = [{
    `max_norm / norm` when `norm > max_norm > 0`, else 1 (`clipScale`);
    `max_norm = 0` turns clipping off.

    ```mlir
    %c = nn.clip_scale %n max_norm = 1.000000e+00
    ```
  }];
  let arguments = (ins NN_F64Scalar:$norm, F64Attr:$max_norm);
  let results = (outs NN_F64Scalar:$result);
  let assemblyFormat = "$norm `max_norm` `=` $max_norm attr-dict";
  let hasVerifier = 1;
}

def NN_LrScheduleOp : NN_Op<"lr_schedule"> {
  let summary = "the learning rate of a step: linear warm-up, then cosine or constant";
  let description = [{
    docs/TRAINING.md's schedule for the 0-based `step`, with the horizon
    `decay_steps` from the train section.

    ```mlir
    %lr = nn.lr_schedule %step lr = 1.000000e-03 warmup_steps = 10 decay = "cosine" decay_steps = 1000 min_lr = 1.000000e-04
    ```
  }];
  let arguments = (ins NN_I64Scalar:$step, F64Attr:$lr, I64Attr:$warmup_steps,
                       StrAttr:$decay, I64Attr:$decay_steps, F64Attr:$min_lr);
  let results = (outs NN_F64Scalar:$result);
  let assemblyFormat = [{
    $step `lr` `=` $lr `warmup_steps` `=` $warmup_steps `decay` `=` $decay
    `decay_steps` `=` $decay_steps `min_lr` `=` $min_lr attr-dict
  }];
  let hasVerifier = 1;
}

def NN_AdamWOp : Op<NN_Dialect, "adamw", [
    MemoryEffects<[MemRead, MemWrite]>, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "one AdamW update of a parameter and its moments";
  let description = [{
    Updates the parameter and its first and second moments (runtime state
    per parameter, zero before step 0) with `t = step + 1`, the gradient
    multiplied by `clip_scale` first (`adamwStep`). `weight_decay` is 0 for
    parameters of rank below 2.

    ```mlir
    nn.adamw @"wte.weight", %g, %lr, %c, %step beta1 = 9.000000e-01 beta2 = 9.500000e-01 eps = 1.000000e-08 weight_decay = 1.000000e-01 : tensor<256x64xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$param, NN_FloatTensor:$grad,
                       NN_F64Scalar:$lr, NN_F64Scalar:$clip_scale,
                       NN_I64Scalar:$step, F64Attr:$beta1, F64Attr:$beta2,
                       F64Attr:$eps, F64Attr:$weight_decay);
  let assemblyFormat = [{
    $param `,` $grad `,` $lr `,` $clip_scale `,` $step `beta1` `=` $beta1
    `beta2` `=` $beta2 `eps` `=` $eps `weight_decay` `=` $weight_decay
    attr-dict `:` type($grad)
  }];
  let hasVerifier = 1;
}

#endif // PIPEC_NN_GRAD_OPS
