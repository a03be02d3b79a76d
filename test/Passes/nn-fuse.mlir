// RUN: pipec-opt %s --split-input-file --nn-autodiff --nn-fuse | FileCheck %s
// RUN: pipec-opt %s --split-input-file --nn-autodiff=recompute=layernorm --nn-fuse | FileCheck %s --check-prefix=RECOMPUTE

// Tests @fuse_matmul_bias_gelu: a matmul with bias then the GELU of its
// result become one nn.matmul_gelu with the matmul's op id; the GELU's B op
// reads the fused op's pre-activation, the matmul's W op its input; in
// @forward the GELU is marked as fused with the op before it.
// CHECK-LABEL: func.func @forward
// CHECK: nn.gelu %{{.+}} {nn.fused_with_previous = "matmul_gelu"}
// CHECK-LABEL: func.func @train_step
// CHECK: %[[PRE:.+]], %[[ACT:.+]] = nn.matmul_gelu %[[X:.+]], %{{.+}}, %{{.+}} {nn.op_id = 3 : i64, nn.role = "F"} : (tensor<2x4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x16xf32>)
// CHECK-NOT: nn.gelu %
// CHECK: nn.matmul %[[ACT]]
// CHECK: nn.gelu_grad %{{.+}}, %[[PRE]] {nn.op_id = 4 : i64, nn.role = "B"}
// CHECK: nn.matmul_grad_w %[[X]], %{{.+}} into @w[0], @b[0]
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @b : tensor<16xf32> <{init = "zeros"}>
  nn.parameter @head : tensor<16x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x16xf32>
    %b = nn.param @b : tensor<16xf32>
    %head = nn.param @head : tensor<16x16xf32>
    %h = nn.matmul %x, %w, %b : (tensor<2x4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<2x4x16xf32>
    %g = nn.gelu %h : tensor<2x4x16xf32>
    %l = nn.matmul %g, %head : (tensor<2x4x16xf32>, tensor<16x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests @fuse_matmul_gelu_no_bias: the epilogue fuses without a bias too.
// CHECK-LABEL: func.func @train_step
// CHECK: %{{.+}}, %{{.+}} = nn.matmul_gelu %{{.+}}, %{{.+}} {nn.op_id = 1 : i64, nn.role = "F"} : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x16xf32>)
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x16xf32>
    %h = nn.matmul %x, %w : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %g = nn.gelu %h : tensor<2x4x16xf32>
    %loss = nn.cross_entropy %g, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests @fuse_residual_add_layernorm: a residual add of two activations
// then the layernorm of the sum become one nn.add_layernorm_train, which
// keeps the sum for the residual stream; the parameter reads between the
// two ops join the group. The training form is what recompute=layernorm
// replaces by a plain forward, so there nothing is fused (RECOMPUTE).
// CHECK-LABEL: func.func @forward
// CHECK: nn.layernorm %{{.+}}, %{{.+}}, %{{.+}} eps = 1.000000e-05 {nn.fused_with_previous = "add_layernorm"}
// CHECK-LABEL: func.func @train_step
// CHECK: %[[H:.+]] = nn.matmul
// CHECK: %[[SUM:.+]], %[[Y:.+]], %[[MEAN:.+]], %[[RSTD:.+]] = nn.add_layernorm_train %[[H]], %{{.+}}, %{{.+}}, %{{.+}} eps = 1.000000e-05 {nn.op_id = 2 : i64, nn.role = "F"}
// CHECK: nn.add %[[Y]], %[[SUM]]
// CHECK: nn.layernorm_grad_b %{{.+}}, %[[SUM]], %[[MEAN]], %[[RSTD]]
// RECOMPUTE-LABEL: func.func @train_step
// RECOMPUTE: nn.add %{{.+}}, %{{.+}} {nn.op_id = 2 : i64, nn.role = "F"}
// RECOMPUTE: nn.layernorm %{{.+}} {nn.op_id = 5 : i64, nn.role = "F"}
// RECOMPUTE-NOT: nn.add_layernorm_train
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @g : tensor<8xf32> <{init = "ones"}>
  nn.parameter @be : tensor<8xf32> <{init = "zeros"}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x8xf32>
    %h = nn.matmul %x, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %s = nn.add %h, %x : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %g = nn.param @g : tensor<8xf32>
    %be = nn.param @be : tensor<8xf32>
    %y = nn.layernorm %s, %g, %be eps = 1.0e-05 : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %r = nn.add %y, %s : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %loss = nn.cross_entropy %r, %t : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests @fuse_residual_add_rmsnorm.
// CHECK-LABEL: func.func @train_step
// CHECK: %{{.+}}, %{{.+}}, %{{.+}} = nn.add_rmsnorm_train %{{.+}}, %{{.+}}, %{{.+}} eps = 1.000000e-05 {nn.op_id = 2 : i64, nn.role = "F"} : (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<8xf32>) -> (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4xf32>)
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @g : tensor<8xf32> <{init = "ones"}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x8xf32>
    %h = nn.matmul %x, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %s = nn.add %h, %x : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %g = nn.param @g : tensor<8xf32>
    %y = nn.rmsnorm %s, %g eps = 1.0e-05 : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %loss = nn.cross_entropy %y, %t : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests @no_fuse_bias_add: an add of a parameter (a broadcast bias) is not
// a residual, so the layernorm after it stays alone.
// CHECK-LABEL: func.func @forward
// CHECK-NOT: nn.fused_with_previous
// CHECK-LABEL: func.func @train_step
// CHECK: nn.add %{{.+}}, %{{.+}} {nn.op_id = 2 : i64, nn.role = "F"}
// CHECK: nn.layernorm_train
// CHECK-NOT: nn.add_layernorm_train
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @c : tensor<8xf32> <{init = "zeros"}>
  nn.parameter @g : tensor<8xf32> <{init = "ones"}>
  nn.parameter @be : tensor<8xf32> <{init = "zeros"}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %x2 = nn.gelu %x : tensor<2x4x8xf32>
    %c = nn.param @c : tensor<8xf32>
    %s = nn.add %x2, %c : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %g = nn.param @g : tensor<8xf32>
    %be = nn.param @be : tensor<8xf32>
    %y = nn.layernorm %s, %g, %be eps = 1.0e-05 : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %loss = nn.cross_entropy %y, %t : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests @no_fuse_not_adjacent: a GELU of a matmul's result with another
// compute op between them is not fused (the pair would not be one piece).
// CHECK-LABEL: func.func @forward
// CHECK-NOT: nn.fused_with_previous
// CHECK-LABEL: func.func @train_step
// CHECK-NOT: nn.matmul_gelu
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x8xf32>
    %h = nn.matmul %x, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %m = nn.mul %h, %x : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %g = nn.gelu %h : tensor<2x4x8xf32>
    %a = nn.add %g, %m : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %loss = nn.cross_entropy %a, %t : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests @no_fuse_batch1_broadcast_add: at batch 1 a [1, T, C] activation
// plus a [T, C] one (GPT's token and position embeddings) has equal element
// counts but is a broadcast, not a residual: the layernorm stays alone.
// CHECK-LABEL: func.func @forward
// CHECK-NOT: nn.fused_with_previous
// CHECK-LABEL: func.func @train_step
// CHECK: nn.add %{{.+}}, %{{.+}} {nn.op_id = 2 : i64, nn.role = "F"} : (tensor<1x4x8xf32>, tensor<4x8xf32>) -> tensor<1x4x8xf32>
// CHECK: nn.layernorm_train
// CHECK-NOT: nn.add_layernorm_train
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @g : tensor<8xf32> <{init = "ones"}>
  nn.parameter @be : tensor<8xf32> <{init = "zeros"}>
  func.func @forward(%x: tensor<1x4x8xf32>, %p: tensor<4x8xf32>, %t: tensor<1x4xi32>) -> tensor<f32> {
    %x2 = nn.gelu %x : tensor<1x4x8xf32>
    %p2 = nn.gelu %p : tensor<4x8xf32>
    %s = nn.add %x2, %p2 : (tensor<1x4x8xf32>, tensor<4x8xf32>) -> tensor<1x4x8xf32>
    %g = nn.param @g : tensor<8xf32>
    %be = nn.param @be : tensor<8xf32>
    %y = nn.layernorm %s, %g, %be eps = 1.0e-05 : (tensor<1x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
    %loss = nn.cross_entropy %y, %t : (tensor<1x4x8xf32>, tensor<1x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}
