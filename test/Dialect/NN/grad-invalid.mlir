// RUN: pipec-opt %s --split-input-file --verify-diagnostics

// Tests that layernorm_train's statistics must be shaped like x without its
// last dim.
func.func @layernorm_train_bad_mean(%x: tensor<2x8x64xf32>, %g: tensor<64xf32>) {
  // expected-error @+1 {{mean shape [2, 64] must be [2, 8] (x [2, 8, 64] without its last dim)}}
  %y, %m, %r = nn.layernorm_train %x, %g, %g eps = 1.0e-05 : (tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<2x8x64xf32>, tensor<2x64xf32>, tensor<2x8xf32>)
  return
}

// -----

// Tests that attention_train's log-sum-exp must be [B, heads, T].
func.func @attention_train_bad_lse(%q: tensor<2x8x64xf32>) {
  // expected-error @+1 {{lse shape [2, 8, 4] must be [2, 4, 8] ([B, heads, T] of q [2, 8, 64], k [2, 8, 64])}}
  %o, %lse = nn.attention_train %q, %q, %q heads = 4 kv_heads = 4 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x4xf32>)
  return
}

// -----

// Tests that the fused loss's dlogits must have the logits' shape.
func.func @cross_entropy_bad_dlogits(%l: tensor<2x8x256xf32>, %t: tensor<2x8xi32>, %s: tensor<f64>) {
  // expected-error @+1 {{dlogits shape [2, 8, 128] must be [2, 8, 256] (logits [2, 8, 256])}}
  %loss, %dl = nn.softmax_cross_entropy %l, %t, %s : (tensor<2x8x256xf32>, tensor<2x8xi32>, tensor<f64>) -> (tensor<f32>, tensor<2x8x128xf32>)
  return
}

// -----

// Tests that the fused loss needs targets shaped like the logits' rows.
func.func @cross_entropy_bad_targets(%l: tensor<2x8x256xf32>, %t: tensor<2x4xi32>, %s: tensor<f64>) {
  // expected-error @+1 {{targets shape [2, 4] must be logits shape without its last dim [2, 8]}}
  %loss, %dl = nn.softmax_cross_entropy %l, %t, %s : (tensor<2x8x256xf32>, tensor<2x4xi32>, tensor<f64>) -> (tensor<f32>, tensor<2x8x256xf32>)
  return
}

// -----

// Tests that matmul_grad_b's dy must end in the weight's output width.
func.func @matmul_grad_b_bad_dy(%dy: tensor<2x8x64xf32>, %w: tensor<64x192xf32>) {
  // expected-error @+1 {{dy's last dim 64 must be the output width 192 of w [64, 192]}}
  %dx = nn.matmul_grad_b %dy, %w : (tensor<2x8x64xf32>, tensor<64x192xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

// Tests that matmul_grad_b's result has x's shape.
func.func @matmul_grad_b_bad_result(%dy: tensor<2x8x192xf32>, %w: tensor<64x192xf32>) {
  // expected-error @+1 {{dx shape [2, 8, 192] must be [2, 8, 64] (dy [2, 8, 192] and w [64, 192])}}
  %dx = nn.matmul_grad_b %dy, %w : (tensor<2x8x192xf32>, tensor<64x192xf32>) -> tensor<2x8x192xf32>
  return
}

// -----

// Tests that layernorm_grad_b's gamma must be [D].
func.func @layernorm_grad_b_bad_gamma(%x: tensor<2x8x64xf32>, %s: tensor<2x8xf32>, %g: tensor<32xf32>) {
  // expected-error @+1 {{gamma shape [32] must be [64] (the last dim of x [2, 8, 64])}}
  %dx = nn.layernorm_grad_b %x, %x, %s, %s, %g : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<32xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

// Tests that add_grad_rhs refuses a same-shape operand (its gradient is dy).
func.func @add_grad_rhs_same_shape(%dy: tensor<2x8x64xf32>) {
  // expected-error @+1 {{result has dy's shape [2, 8, 64]: a same-shape operand's gradient is dy itself}}
  %d = nn.add_grad_rhs %dy : (tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

// Tests that add_grad_rhs's result must be a trailing part of dy.
func.func @add_grad_rhs_not_suffix(%dy: tensor<2x8x64xf32>) {
  // expected-error @+1 {{result shape [8] is not a trailing part of [2, 8, 64]}}
  %d = nn.add_grad_rhs %dy : (tensor<2x8x64xf32>) -> tensor<8xf32>
  return
}

// -----

// Tests that mul_grad_lhs's result has dy's shape.
func.func @mul_grad_lhs_bad_result(%dy: tensor<2x8x64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{result shape [64] must be [2, 8, 64] (dy's shape)}}
  %d = nn.mul_grad_lhs %dy, %b : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<64xf32>
  return
}

// -----

// Tests that slice_grad's window must fit the result.
func.func @slice_grad_bad_window(%dy: tensor<2x8x64xf32>) {
  // expected-error @+1 {{window [160, 224) of axis 2 does not fit the result [2, 8, 192]}}
  %d = nn.slice_grad %dy axis = 2 offset = 160 : (tensor<2x8x64xf32>) -> tensor<2x8x192xf32>
  return
}

// -----

// Tests that rope_grad needs an even head width.
func.func @rope_grad_odd_heads(%dy: tensor<2x8x12xf32>) {
  // expected-error @+1 {{dy width 12 must be heads = 4 times an even width}}
  %d = nn.rope_grad %dy heads = 4 theta = 1.0e+04 : tensor<2x8x12xf32>
  return
}

// -----

// Tests that attention_grad's dk must have k's shape.
func.func @attention_grad_bad_dk(%q: tensor<2x8x64xf32>, %kv: tensor<2x8x32xf32>, %lse: tensor<2x4x8xf32>) {
  // expected-error @+1 {{dk shape [2, 8, 64] must be [2, 8, 32] (k's shape)}}
  %dq, %dk, %dv = nn.attention_grad %q, %q, %kv, %kv, %q, %lse heads = 4 kv_heads = 2 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x32xf32>, tensor<2x8x32xf32>, tensor<2x8x64xf32>, tensor<2x4x8xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x32xf32>)
  return
}

// -----

// Tests that matmul_grad_w's dy must have x's rows.
nn.parameter @w : tensor<64x192xf32> <{init = "normal", std = 2.0e-02 : f64}>
func.func @matmul_grad_w_bad_rows(%x: tensor<2x8x64xf32>, %dy: tensor<2x4x192xf32>) {
  // expected-error @+1 {{dy shape [2, 4, 192] must have the leading dims of x [2, 8, 64]}}
  nn.matmul_grad_w %x, %dy into @w[0] : tensor<2x8x64xf32>, tensor<2x4x192xf32>
  return
}

// -----

// Tests that a W op's accumulator must be a declared parameter.
func.func @w_op_missing_param(%x: tensor<2x8x64xf32>) {
  // expected-error @+1 {{no nn.parameter named @nowhere}}
  nn.add_grad_w %x into @nowhere[0] : tensor<2x8x64xf32>
  return
}

// -----

// Tests that a W op's gradient must fit its parameter.
nn.parameter @w : tensor<64x64xf32> <{init = "normal", std = 2.0e-02 : f64}>
func.func @matmul_grad_w_wrong_param(%x: tensor<2x8x64xf32>, %dy: tensor<2x8x192xf32>) {
  // expected-error @+1 {{gradient of shape [64, 192] does not fit @w of type 'tensor<64x64xf32>'}}
  nn.matmul_grad_w %x, %dy into @w[0] : tensor<2x8x64xf32>, tensor<2x8x192xf32>
  return
}

// -----

// Tests that a use index must not be negative.
nn.parameter @b : tensor<64xf32> <{init = "zeros"}>
func.func @negative_use(%g: tensor<64xf32>) {
  // expected-error @+1 {{use of @b must not be negative, got -1}}
  nn.accumulate_grad %g into @b[-1] : tensor<64xf32>
  return
}

// -----

// Tests that add_grad_w's parameter must be a trailing part of dy.
nn.parameter @b : tensor<32xf32> <{init = "zeros"}>
func.func @add_grad_w_not_suffix(%dy: tensor<2x8x64xf32>) {
  // expected-error @+1 {{parameter @b shape [32] is not a trailing part of dy shape [2, 8, 64]}}
  nn.add_grad_w %dy into @b[0] : tensor<2x8x64xf32>
  return
}

// -----

// Tests that embedding_grad_w's dy must be the ids' shape plus the width.
nn.parameter @wte : tensor<256x64xf32> <{init = "normal", std = 2.0e-02 : f64}>
func.func @embedding_grad_w_bad_dy(%dy: tensor<2x8x64xf32>, %ids: tensor<2x4xi32>) {
  // expected-error @+1 {{dy shape [2, 8, 64] must be ids shape [2, 4] followed by the table width}}
  nn.embedding_grad_w %dy, %ids into @wte[0] : tensor<2x8x64xf32>, tensor<2x4xi32>
  return
}

// -----

// Tests that a position gradient longer than the table is refused.
nn.parameter @wpe : tensor<16x64xf32> <{init = "normal", std = 1.0e-02 : f64}>
func.func @position_grad_too_long(%dy: tensor<32x64xf32>) {
  // expected-error @+1 {{dy [32, 64] does not fit the first rows of @wpe [16, 64]}}
  nn.position_embedding_grad_w %dy into @wpe[0] : tensor<32x64xf32>
  return
}

// -----

// Tests that a negative use count is refused.
nn.parameter @b : tensor<64xf32> <{init = "zeros"}>
func.func @sum_uses_negative() {
  // expected-error @+1 {{uses must not be negative, got -2}}
  %g = nn.sum_uses @b uses = -2 : tensor<64xf32>
  return
}

// -----

// Tests that the global norm needs at least one tensor.
func.func @grad_norm_empty() {
  // expected-error @+1 {{needs at least one per-tensor sum of squares}}
  %n = nn.grad_norm
  return
}

// -----

// Tests that a negative clipping threshold is refused.
func.func @clip_negative(%n: tensor<f64>) {
  // expected-error @+1 {{max_norm must be finite and not negative, got -1}}
  %c = nn.clip_scale %n max_norm = -1.0
  return
}

// -----

// Tests that an unknown decay is refused.
func.func @lr_bad_decay(%s: tensor<i64>) {
  // expected-error @+1 {{decay must be cosine or constant, got 'linear'}}
  %lr = nn.lr_schedule %s lr = 1.0e-03 warmup_steps = 10 decay = "linear" decay_steps = 1000 min_lr = 1.0e-04
  return
}

// -----

// Tests that a cosine horizon before the end of warm-up is refused.
func.func @lr_horizon_before_warmup(%s: tensor<i64>) {
  // expected-error @+1 {{decay_steps 5 must not be below warmup_steps 10}}
  %lr = nn.lr_schedule %s lr = 1.0e-03 warmup_steps = 10 decay = "cosine" decay_steps = 5 min_lr = 1.0e-04
  return
}

// -----

// Tests that beta1 outside [0, 1) is refused.
nn.parameter @b : tensor<64xf32> <{init = "zeros"}>
func.func @adamw_bad_beta(%g: tensor<64xf32>, %lr: tensor<f64>, %s: tensor<i64>) {
  // expected-error @+1 {{beta1 must be in [0, 1), got 1}}
  nn.adamw @b, %g, %lr, %lr, %s beta1 = 1.0 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 : tensor<64xf32>
  return
}

// -----

// Tests that a negative weight decay is refused.
nn.parameter @b : tensor<64xf32> <{init = "zeros"}>
func.func @adamw_bad_decay(%g: tensor<64xf32>, %lr: tensor<f64>, %s: tensor<i64>) {
  // expected-error @+1 {{weight_decay must be finite and not negative, got -1.000000e-01}}
  nn.adamw @b, %g, %lr, %lr, %s beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = -0.1 : tensor<64xf32>
  return
}

// -----

// Tests that AdamW's gradient must fit its parameter.
nn.parameter @b : tensor<64xf32> <{init = "zeros"}>
func.func @adamw_wrong_grad(%g: tensor<32xf32>, %lr: tensor<f64>, %s: tensor<i64>) {
  // expected-error @+1 {{gradient of shape [32] does not fit @b of type 'tensor<64xf32>'}}
  nn.adamw @b, %g, %lr, %lr, %s beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 : tensor<32xf32>
  return
}
