// RUN: pipec-opt %s --split-input-file --nn-autodiff --nn-lower-to-kernels | FileCheck %s
// RUN: pipec-opt %s --split-input-file --nn-autodiff --nn-lower-to-kernels=optimizer=false | FileCheck %s --check-prefix=NOOPT
// RUN: pipec-opt %s --split-input-file --nn-autodiff --nn-fuse --nn-lower-to-kernels | FileCheck %s --check-prefix=FUSED
// RUN: pipec-opt %s --split-input-file --nn-autodiff --nn-lower-to-kernels | FileCheck %s --check-prefix=SLICES3
// RUN: pipec-opt %s --split-input-file --nn-autodiff --nn-lower-to-kernels=target=cuda | FileCheck %s --check-prefix=SLICES3

// Tests that every op of the three functions becomes one kernel.call: the
// shapes as integers (rows, k, n, transpose), the accumulators a W op adds
// into as state, the op's nn.op_id / nn.role kept, results rewired in place;
// the optimizer's calls name the parameter, its moments and accumulators.
// CHECK-LABEL: func.func @forward
// CHECK: %[[W:.+]] = nn.param @w
// CHECK: %[[B:.+]] = nn.param @b
// CHECK: %[[HEAD:.+]] = nn.param @head
// CHECK: %[[H:.+]] = kernel.call "matmul_bias_forward"(%{{.+}}, %[[W]], %[[B]]) ints [8, 8, 8, 0] reals [] state [] from "nn.matmul" : (tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
// CHECK: %[[L:.+]] = kernel.call "matmul_forward"(%[[H]], %[[HEAD]]) ints [8, 8, 16, 0]
// CHECK: kernel.call "cross_entropy_forward"(%[[L]], %{{.+}}) ints [8, 16, 16] reals [] state [] from "nn.cross_entropy"
// CHECK-NOT: nn.matmul
// CHECK-LABEL: func.func @train_step
// CHECK: %[[SH:.+]] = kernel.call "matmul_bias_forward"({{.*}}) ints [8, 8, 8, 0] reals [] state [] from "nn.matmul" {nn.op_id = 3 : i64, nn.role = "F"}
// CHECK: %[[SL:.+]] = kernel.call "matmul_forward"(%[[SH]], %{{.+}}) ints [8, 8, 16, 0]
// CHECK: %[[LOSS:.+]]:2 = kernel.call "softmax_cross_entropy"(%[[SL]], %{{.+}}, %{{.+}}) ints [8, 16, 16] reals [] state [] from "nn.softmax_cross_entropy" {nn.op_id = 5 : i64, nn.role = "F"} : (tensor<2x4x16xf32>, tensor<2x4xi32>, tensor<f64>) -> (tensor<f32>, tensor<2x4x16xf32>)
// CHECK: %[[DH:.+]] = kernel.call "matmul_backward_b"(%[[LOSS]]#1, %{{.+}}) ints [8, 8, 16, 0] reals [] state [] from "nn.matmul_grad_b" {nn.op_id = 4 : i64, nn.role = "B"}
// CHECK: kernel.call "matmul_backward_w"(%[[SH]], %[[LOSS]]#1) ints [8, 8, 16, 0] reals [] state ["acc:0:head"] from "nn.matmul_grad_w" {nn.op_id = 4 : i64, nn.role = "W"}
// CHECK: kernel.call "matmul_bias_backward_w"(%{{.+}}, %[[DH]]) ints [8, 8, 8, 0] reals [] state ["acc:0:w", "acc:0:b"] from "nn.matmul_grad_w"
// CHECK-NEXT: return %[[LOSS]]#0 : tensor<f32>
// CHECK-LABEL: func.func @optimizer_step
// CHECK: %[[G:.+]] = kernel.call "sum_uses"() ints [64] reals [] state ["acc:0:w"] from "nn.sum_uses"
// CHECK: %[[SQ:.+]] = kernel.call "sum_squares"(%[[G]]) ints [64]
// CHECK: %[[NORM:.+]] = kernel.call "grad_norm"(%[[SQ]], %{{.+}}, %{{.+}}) ints [] reals []
// CHECK: %[[CLIP:.+]] = kernel.call "clip_scale"(%[[NORM]]) ints [] reals [1.000000e+00]
// CHECK: %[[LR:.+]] = kernel.call "lr_schedule"(%{{.+}}) ints [2, 10, 1] reals [1.000000e-03, 1.000000e-04]
// CHECK: kernel.call "adamw"(%[[G]], %[[LR]], %[[CLIP]], %{{.+}}) ints [64, 1] reals [{{.+}}] state ["value:-1:w", "m:-1:w", "v:-1:w"] from "nn.adamw"
// CHECK: kernel.call "adamw"({{.*}}) ints [8, 0] reals [{{.+}}, 0.000000e+00] state ["value:-1:b", "m:-1:b", "v:-1:b"]
// CHECK-NOT: {{^ *}}nn.adamw
// NOOPT-LABEL: func.func @train_step
// NOOPT: kernel.call "softmax_cross_entropy"
// NOOPT-LABEL: func.func @optimizer_step
// NOOPT: nn.sum_uses @w
// NOOPT: nn.adamw @w,
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @b : tensor<8xf32> <{init = "zeros"}>
  nn.parameter @head : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x8xf32>
    %b = nn.param @b : tensor<8xf32>
    %head = nn.param @head : tensor<8x16xf32>
    %h = nn.matmul %x, %w, %b : (tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %l = nn.matmul %h, %head : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests that the inference form of layernorm keeps its statistics as extra
// results of the one kernel its training form calls, that a 3-D transpose
// is padded to the kernel's 6 axes with leading axes of size 1 that stay
// in place, and that the broadcast add's W gradient adds into the bias's
// accumulator (x is an input: layernorm has no B).
// CHECK-LABEL: func.func @forward
// CHECK: %[[Y:.+]]:3 = kernel.call "layernorm_forward"(%{{.+}}, %{{.+}}, %{{.+}}) ints [8, 8] reals [1.000000e-05] state [] from "nn.layernorm" : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>)
// CHECK: %[[T:.+]] = kernel.call "transpose_forward"(%[[Y]]#0) ints [1, 1, 1, 2, 4, 8, 0, 1, 2, 3, 5, 4] reals [] state [] from "nn.transpose"
// CHECK: %[[BACK:.+]] = kernel.call "transpose_forward"(%[[T]]) ints [1, 1, 1, 2, 8, 4, 0, 1, 2, 3, 5, 4]
// CHECK: kernel.call "add_forward"(%[[BACK]], %{{.+}}) ints [64, 8]
// CHECK-LABEL: func.func @train_step
// CHECK: kernel.call "layernorm_forward"({{.*}}) ints [8, 8] reals [1.000000e-05] state [] from "nn.layernorm_train"
// CHECK: kernel.call "add_backward_broadcast"(%{{.+}}) ints [64, 8, 1] reals [] state ["acc:0:c"] from "nn.add_grad_w"
// CHECK: kernel.call "layernorm_backward_w"({{.*}}) ints [8, 8] reals [] state ["acc:0:g", "acc:0:be"]
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "constant", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @g : tensor<8xf32> <{init = "ones"}>
  nn.parameter @be : tensor<8xf32> <{init = "zeros"}>
  nn.parameter @c : tensor<8xf32> <{init = "zeros"}>
  nn.parameter @head : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %g = nn.param @g : tensor<8xf32>
    %be = nn.param @be : tensor<8xf32>
    %c = nn.param @c : tensor<8xf32>
    %head = nn.param @head : tensor<8x16xf32>
    %y = nn.layernorm %x, %g, %be eps = 1.0e-05 : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %tr = nn.transpose %y perm = [0, 2, 1] : (tensor<2x4x8xf32>) -> tensor<2x8x4xf32>
    %back = nn.transpose %tr perm = [0, 2, 1] : (tensor<2x8x4xf32>) -> tensor<2x4x8xf32>
    %a = nn.add %back, %c : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %l = nn.matmul %a, %head : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests that the fused units of --nn-fuse lower to their fused kernels:
// the GELU epilogue with and without a bias, the residual add + rmsnorm.
// FUSED: nn.parameter @w2
// FUSED: func.func @train_step
// FUSED: %[[G:.+]]:2 = kernel.call "matmul_bias_gelu_forward"(%{{.+}}, %{{.+}}, %{{.+}}) ints [8, 8, 16, 0] reals [] state [] from "nn.matmul_gelu" {nn.op_id = 2 : i64, nn.role = "F"} : (tensor<2x4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x16xf32>)
// FUSED: kernel.call "matmul_gelu_forward"(%[[G]]#1, %{{.+}}) ints [8, 16, 8, 0]
// FUSED: kernel.call "add_rmsnorm_forward"(%{{.+}}, %{{.+}}, %{{.+}}) ints [8, 8] reals [1.000000e-05] state [] from "nn.add_rmsnorm_train"
// FUSED: kernel.call "gelu_backward_b"(%{{.+}}, %[[G]]#0)
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @b : tensor<16xf32> <{init = "zeros"}>
  nn.parameter @w2 : tensor<16x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @g : tensor<8xf32> <{init = "ones"}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x16xf32>
    %b = nn.param @b : tensor<16xf32>
    %h = nn.matmul %x, %w, %b : (tensor<2x4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<2x4x16xf32>
    %a = nn.gelu %h : tensor<2x4x16xf32>
    %w2 = nn.param @w2 : tensor<16x8xf32>
    %h2 = nn.matmul %a, %w2 : (tensor<2x4x16xf32>, tensor<16x8xf32>) -> tensor<2x4x8xf32>
    %a2 = nn.gelu %h2 : tensor<2x4x8xf32>
    %s = nn.add %a2, %x : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %g = nn.param @g : tensor<8xf32>
    %y = nn.rmsnorm %s, %g eps = 1.0e-05 : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %loss = nn.cross_entropy %y, %t : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests that the gradient of three disjoint slices of one tensor (q, k, v
// out of one matmul), three slice_grads summed by two grad_adds, becomes
// one kernel.call "slices3_backward_b" (the dy of each window, its offset
// and size along the axis), and that the matmul's B reads it; windows that
// overlap (the second case's k) keep the slice gradients and the adds.
// SLICES3-LABEL: nn.parameter @w : tensor<8x24xf32>
// SLICES3: func.func @train_step
// SLICES3-NOT: "slice_backward_b"
// SLICES3: %[[DQKV:.+]] = kernel.call "slices3_backward_b"(%{{.+}}, %{{.+}}, %{{.+}}) ints [8, 24, 1, 16, 8, 8, 8, 0, 8] reals [] state [] from "nn.grad_add" {{.*}}: (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x24xf32>
// SLICES3-NOT: "slice_backward_b"
// SLICES3: kernel.call "matmul_backward_w"(%{{.+}}, %[[DQKV]])
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "constant", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x24xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @head : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x24xf32>
    %head = nn.param @head : tensor<8x16xf32>
    %qkv = nn.matmul %x, %w : (tensor<2x4x8xf32>, tensor<8x24xf32>) -> tensor<2x4x24xf32>
    %q = nn.slice %qkv axis = 2 offset = 0 size = 8 : (tensor<2x4x24xf32>) -> tensor<2x4x8xf32>
    %k = nn.slice %qkv axis = 2 offset = 8 size = 8 : (tensor<2x4x24xf32>) -> tensor<2x4x8xf32>
    %v = nn.slice %qkv axis = 2 offset = 16 size = 8 : (tensor<2x4x24xf32>) -> tensor<2x4x8xf32>
    %qk = nn.mul %q, %k : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %h = nn.add %qk, %v : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %l = nn.matmul %h, %head : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// SLICES3-LABEL: nn.parameter @w : tensor<8x24xf32>
// SLICES3: func.func @train_step
// SLICES3-NOT: "slices3_backward_b"
// SLICES3: kernel.call "slice_backward_b"
// SLICES3: kernel.call "add_forward"({{.*}}) ints [192, 192]
// SLICES3-NOT: "slices3_backward_b"
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "constant", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x24xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @head : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x24xf32>
    %head = nn.param @head : tensor<8x16xf32>
    %qkv = nn.matmul %x, %w : (tensor<2x4x8xf32>, tensor<8x24xf32>) -> tensor<2x4x24xf32>
    %q = nn.slice %qkv axis = 2 offset = 0 size = 8 : (tensor<2x4x24xf32>) -> tensor<2x4x8xf32>
    %k = nn.slice %qkv axis = 2 offset = 4 size = 8 : (tensor<2x4x24xf32>) -> tensor<2x4x8xf32>
    %v = nn.slice %qkv axis = 2 offset = 16 size = 8 : (tensor<2x4x24xf32>) -> tensor<2x4x8xf32>
    %qk = nn.mul %q, %k : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %h = nn.add %qk, %v : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %l = nn.matmul %h, %head : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}
