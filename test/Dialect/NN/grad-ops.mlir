// RUN: pipec-opt %s --split-input-file | pipec-opt --split-input-file | FileCheck %s
// RUN: pipec-opt %s --split-input-file --mlir-print-op-generic | pipec-opt --split-input-file | FileCheck %s

// Tests that the training forms and the fused loss round-trip.
// CHECK-LABEL: func.func @training_forms
// CHECK: %{{.+}}, %{{.+}}, %{{.+}} = nn.layernorm_train %{{.+}}, %{{.+}}, %{{.+}} eps = 1.000000e-05 : (tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
// CHECK: nn.rmsnorm_train %{{.+}}, %{{.+}} eps = 1.000000e-05 : (tensor<2x8x64xf32>, tensor<64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8xf32>)
// CHECK: nn.attention_train %{{.+}}, %{{.+}}, %{{.+}} heads = 4 kv_heads = 2 causal scale = 2.500000e-01 : (tensor<2x8x64xf32>, tensor<2x8x32xf32>, tensor<2x8x32xf32>) -> (tensor<2x8x64xf32>, tensor<2x4x8xf32>)
// CHECK: nn.softmax_cross_entropy %{{.+}}, %{{.+}}, %{{.+}} : (tensor<2x8x256xf32>, tensor<2x8xi32>, tensor<f64>) -> (tensor<f32>, tensor<2x8x256xf32>)
func.func @training_forms(%x: tensor<2x8x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf32>, %kv: tensor<2x8x32xf32>, %logits: tensor<2x8x256xf32>, %t: tensor<2x8xi32>, %s: tensor<f64>) {
  %y, %mean, %rstd = nn.layernorm_train %x, %g, %b eps = 1.0e-05 : (tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
  %r, %rr = nn.rmsnorm_train %x, %g eps = 1.0e-05 : (tensor<2x8x64xf32>, tensor<64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8xf32>)
  %o, %lse = nn.attention_train %x, %kv, %kv heads = 4 kv_heads = 2 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x32xf32>, tensor<2x8x32xf32>) -> (tensor<2x8x64xf32>, tensor<2x4x8xf32>)
  %loss, %dl = nn.softmax_cross_entropy %logits, %t, %s : (tensor<2x8x256xf32>, tensor<2x8xi32>, tensor<f64>) -> (tensor<f32>, tensor<2x8x256xf32>)
  return
}

// -----

// Tests that the B ops round-trip.
// CHECK-LABEL: func.func @b_ops
// CHECK: nn.matmul_grad_b %{{.+}}, %{{.+}} : (tensor<2x8x192xf32>, tensor<64x192xf32>) -> tensor<2x8x64xf32>
// CHECK: nn.matmul_grad_b %{{.+}}, %{{.+}} transpose_rhs : (tensor<2x8x256xf32>, tensor<256x64xf32>) -> tensor<2x8x64xf32>
// CHECK: nn.layernorm_grad_b %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
// CHECK: nn.rmsnorm_grad_b %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
// CHECK: nn.gelu_grad %{{.+}}, %{{.+}} : tensor<2x8x64xf32>
// CHECK: nn.silu_grad %{{.+}}, %{{.+}} : tensor<2x8x64xf32>
// CHECK: nn.softmax_grad %{{.+}}, %{{.+}} : tensor<2x8x64xf32>
// CHECK: nn.add_grad_rhs %{{.+}} : (tensor<2x8x64xf32>) -> tensor<8x64xf32>
// CHECK: nn.mul_grad_lhs %{{.+}}, %{{.+}} : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
// CHECK: nn.mul_grad_rhs %{{.+}}, %{{.+}} : (tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<64xf32>
// CHECK: nn.slice_grad %{{.+}} axis = 2 offset = 64 : (tensor<2x8x64xf32>) -> tensor<2x8x192xf32>
// CHECK: nn.rope_grad %{{.+}} heads = 4 theta = 1.000000e+04 : tensor<2x8x64xf32>
// CHECK: nn.attention_grad %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} heads = 4 kv_heads = 2 causal scale = 2.500000e-01 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x32xf32>, tensor<2x8x32xf32>, tensor<2x8x64xf32>, tensor<2x4x8xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x32xf32>, tensor<2x8x32xf32>)
// CHECK: nn.grad_add %{{.+}}, %{{.+}} : tensor<2x8x64xf32>
func.func @b_ops(%dy: tensor<2x8x64xf32>, %x: tensor<2x8x64xf32>, %dqkv: tensor<2x8x192xf32>, %w: tensor<64x192xf32>, %dl: tensor<2x8x256xf32>, %wte: tensor<256x64xf32>, %stat: tensor<2x8xf32>, %g: tensor<64xf32>, %kv: tensor<2x8x32xf32>, %lse: tensor<2x4x8xf32>) {
  %0 = nn.matmul_grad_b %dqkv, %w : (tensor<2x8x192xf32>, tensor<64x192xf32>) -> tensor<2x8x64xf32>
  %1 = nn.matmul_grad_b %dl, %wte transpose_rhs : (tensor<2x8x256xf32>, tensor<256x64xf32>) -> tensor<2x8x64xf32>
  %2 = nn.layernorm_grad_b %dy, %x, %stat, %stat, %g : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  %3 = nn.rmsnorm_grad_b %dy, %x, %stat, %g : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  %4 = nn.gelu_grad %dy, %x : tensor<2x8x64xf32>
  %5 = nn.silu_grad %dy, %x : tensor<2x8x64xf32>
  %6 = nn.softmax_grad %dy, %x : tensor<2x8x64xf32>
  %7 = nn.add_grad_rhs %dy : (tensor<2x8x64xf32>) -> tensor<8x64xf32>
  %8 = nn.mul_grad_lhs %dy, %g : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  %9 = nn.mul_grad_rhs %dy, %x : (tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<64xf32>
  %10 = nn.slice_grad %dy axis = 2 offset = 64 : (tensor<2x8x64xf32>) -> tensor<2x8x192xf32>
  %11 = nn.rope_grad %dy heads = 4 theta = 1.0e+04 : tensor<2x8x64xf32>
  %dq, %dk, %dv = nn.attention_grad %dy, %x, %kv, %kv, %x, %lse heads = 4 kv_heads = 2 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x32xf32>, tensor<2x8x32xf32>, tensor<2x8x64xf32>, tensor<2x4x8xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x32xf32>, tensor<2x8x32xf32>)
  %12 = nn.grad_add %dy, %x : tensor<2x8x64xf32>
  return
}

// -----

// Tests that the W ops round-trip with their accumulators and that the
// canonicalizer keeps them although they have no results.
// CHECK-LABEL: func.func @w_ops
// CHECK: nn.matmul_grad_w %{{.+}}, %{{.+}} into @attn.weight[0], @attn.bias[0] : tensor<2x8x64xf32>, tensor<2x8x192xf32>
// CHECK: nn.matmul_grad_w %{{.+}}, %{{.+}} transpose_rhs into @wte[1] : tensor<2x8x64xf32>, tensor<2x8x256xf32>
// CHECK: nn.layernorm_grad_w %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} into @ln.weight[0], @ln.bias[0] : tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>, tensor<2x8xf32>
// CHECK: nn.rmsnorm_grad_w %{{.+}}, %{{.+}}, %{{.+}} into @ln.weight[1] : tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>
// CHECK: nn.embedding_grad_w %{{.+}}, %{{.+}} into @wte[0] : tensor<2x8x64xf32>, tensor<2x8xi32>
// CHECK: nn.position_embedding_grad_w %{{.+}} into @wpe[0] : tensor<8x64xf32>
// CHECK: nn.add_grad_w %{{.+}} into @ln.bias[1] : tensor<2x8x64xf32>
// CHECK: nn.mul_grad_w %{{.+}}, %{{.+}} into @ln.weight[2] : tensor<2x8x64xf32>, tensor<2x8x64xf32>
// CHECK: nn.accumulate_grad %{{.+}} into @wpe[1] : tensor<16x64xf32>
nn.parameter @wte : tensor<256x64xf32> <{init = "normal", std = 2.0e-02 : f64}>
nn.parameter @wpe : tensor<16x64xf32> <{init = "normal", std = 1.0e-02 : f64}>
nn.parameter @ln.weight : tensor<64xf32> <{init = "ones"}>
nn.parameter @ln.bias : tensor<64xf32> <{init = "zeros"}>
nn.parameter @attn.weight : tensor<64x192xf32> <{init = "normal", std = 2.0e-02 : f64}>
nn.parameter @attn.bias : tensor<192xf32> <{init = "zeros"}>
func.func @w_ops(%x: tensor<2x8x64xf32>, %dqkv: tensor<2x8x192xf32>, %dl: tensor<2x8x256xf32>, %stat: tensor<2x8xf32>, %ids: tensor<2x8xi32>, %dpos: tensor<8x64xf32>, %dwpe: tensor<16x64xf32>) {
  nn.matmul_grad_w %x, %dqkv into @attn.weight[0], @attn.bias[0] : tensor<2x8x64xf32>, tensor<2x8x192xf32>
  nn.matmul_grad_w %x, %dl transpose_rhs into @wte[1] : tensor<2x8x64xf32>, tensor<2x8x256xf32>
  nn.layernorm_grad_w %x, %x, %stat, %stat into @ln.weight[0], @ln.bias[0] : tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>, tensor<2x8xf32>
  nn.rmsnorm_grad_w %x, %x, %stat into @ln.weight[1] : tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>
  nn.embedding_grad_w %x, %ids into @wte[0] : tensor<2x8x64xf32>, tensor<2x8xi32>
  nn.position_embedding_grad_w %dpos into @wpe[0] : tensor<8x64xf32>
  nn.add_grad_w %x into @ln.bias[1] : tensor<2x8x64xf32>
  nn.mul_grad_w %x, %x into @ln.weight[2] : tensor<2x8x64xf32>, tensor<2x8x64xf32>
  nn.accumulate_grad %dwpe into @wpe[1] : tensor<16x64xf32>
  return
}

// -----

// Tests that the optimizer ops round-trip.
// CHECK-LABEL: func.func @optimizer_ops
// CHECK-SAME: (%[[STEP:.+]]: tensor<i64>)
// CHECK: %[[G:.+]] = nn.sum_uses @wte uses = 2 : tensor<256x64xf32>
// CHECK: %[[S:.+]] = nn.sum_squares %[[G]] : tensor<256x64xf32>
// CHECK: %[[B:.+]] = nn.sum_uses @b uses = 0 : tensor<64xf32>
// CHECK: %[[SB:.+]] = nn.sum_squares %[[B]] : tensor<64xf32>
// CHECK: %[[N:.+]] = nn.grad_norm %[[S]], %[[SB]]
// CHECK: %[[C:.+]] = nn.clip_scale %[[N]] max_norm = 1.000000e+00
// CHECK: %[[LR:.+]] = nn.lr_schedule %[[STEP]] lr = 1.000000e-03 warmup_steps = 10 decay = "cosine" decay_steps = 1000 min_lr = 1.000000e-04
// CHECK: nn.adamw @wte, %[[G]], %[[LR]], %[[C]], %[[STEP]] beta1 = 9.000000e-01 beta2 = 0.99899999999999999 eps = 1.000000e-08 weight_decay = 1.000000e-01 : tensor<256x64xf32>
// CHECK: return %[[N]], %[[LR]]
nn.parameter @wte : tensor<256x64xf32> <{init = "normal", std = 2.0e-02 : f64}>
nn.parameter @b : tensor<64xf32> <{init = "zeros"}>
func.func @optimizer_ops(%step: tensor<i64>) -> (tensor<f64>, tensor<f64>) {
  %g = nn.sum_uses @wte uses = 2 : tensor<256x64xf32>
  %s = nn.sum_squares %g : tensor<256x64xf32>
  %gb = nn.sum_uses @b uses = 0 : tensor<64xf32>
  %sb = nn.sum_squares %gb : tensor<64xf32>
  %n = nn.grad_norm %s, %sb
  %c = nn.clip_scale %n max_norm = 1.0
  %lr = nn.lr_schedule %step lr = 1.0e-03 warmup_steps = 10 decay = "cosine" decay_steps = 1000 min_lr = 1.0e-04
  nn.adamw @wte, %g, %lr, %c, %step beta1 = 0.9 beta2 = 0.999 eps = 1.0e-08 weight_decay = 0.1 : tensor<256x64xf32>
  return %n, %lr : tensor<f64>, tensor<f64>
}
