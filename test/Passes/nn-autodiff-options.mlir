// RUN: not pipec-opt %s --nn-autodiff=recompute=bogus 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not pipec-opt %s --nn-autodiff=recompute=matmul 2>&1 | FileCheck %s --check-prefix=NOTRECOMPUTABLE
// RUN: pipec-opt %s --nn-autodiff=recompute=gelu | FileCheck %s --check-prefix=GELU

// Tests the recompute option: an unknown name and an op that cannot be
// recomputed are refused; a named op is recomputed before the W op that
// reads it.
// UNKNOWN: error: nn-autodiff: recompute names 'bogus', which is not an nn op with a gradient
// NOTRECOMPUTABLE: error: nn-autodiff: recompute names 'matmul', but this op cannot be recomputed
// GELU: %[[A:.+]] = nn.gelu %[[H:[^ ]+]] {nn.op_id = 3 : i64, nn.role = "F"}
// GELU: nn.softmax_cross_entropy
// GELU-NEXT: nn.matmul_grad_b
// GELU-NEXT: %[[AR:.+]] = nn.gelu %[[H]] {nn.op_id = 3 : i64, nn.recompute, nn.role = "B"}
// GELU-NEXT: nn.matmul_grad_w %[[AR]], %{{.+}} into @head[0]
// GELU-NOT: %[[A]]{{[,: ]}}
// GELU: return
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @head : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x8xf32>
    %head = nn.param @head : tensor<8x16xf32>
    %h = nn.matmul %x, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %a = nn.gelu %h : tensor<2x4x8xf32>
    %l = nn.matmul %a, %head : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}
