// RUN: pipec-opt %s --split-input-file --nn-pad-vocab=multiple=128 --verify-diagnostics | FileCheck %s
// RUN: pipec-opt %s --split-input-file --nn-pad-vocab=multiple=128 --nn-autodiff --nn-lower-to-kernels=target=cuda --verify-diagnostics | FileCheck %s --check-prefix=CUDA
// RUN: pipec-opt %s --split-input-file --nn-pad-vocab 2>/dev/null | FileCheck %s --check-prefix=NONE

// Tests --nn-pad-vocab: the tied [V, D] table of a GPT (embedding and
// transposed LM head) is padded from 131 rows to 256, its declaration
// keeps the model's shape, the logits are 256 wide and the loss counts 131
// classes; autodiff carries the classes to the fused loss, and the cuda
// lowering passes 131 classes over a row stride of 256.
// CHECK-LABEL: module
// CHECK: nn.parameter @wte : tensor<256x16xf32> <{init = "normal", logical_shape = array<i64: 131, 16>, std = 2.000000e-02 : f64}>
// CHECK: nn.param @wte : tensor<256x16xf32>
// CHECK: nn.embedding %{{.+}}, %{{.+}} : (tensor<256x16xf32>, tensor<2x4xi32>) -> tensor<2x4x16xf32>
// CHECK: nn.matmul %{{.+}}, %{{.+}} transpose_rhs : (tensor<2x4x16xf32>, tensor<256x16xf32>) -> tensor<2x4x256xf32>
// CHECK: nn.cross_entropy %{{.+}}, %{{.+}} {classes = 131 : i64} : (tensor<2x4x256xf32>, tensor<2x4xi32>) -> tensor<f32>
// CUDA-LABEL: func.func @train_step
// CUDA: kernel.call "softmax_cross_entropy"({{.+}}) ints [8, 131, 256]
// CUDA: kernel.call "embedding_backward_w"
// NONE: nn.parameter @wte : tensor<131x16xf32>
// NONE-NOT: classes
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @wte : tensor<131x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%ids: tensor<2x4xi32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @wte : tensor<131x16xf32>
    %h = nn.embedding %w, %ids : (tensor<131x16xf32>, tensor<2x4xi32>) -> tensor<2x4x16xf32>
    %w2 = nn.param @wte : tensor<131x16xf32>
    %l = nn.matmul %h, %w2 transpose_rhs : (tensor<2x4x16xf32>, tensor<131x16xf32>) -> tensor<2x4x131xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x131xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// An untied [D, V] head with a [V] bias: both padded on their vocabulary
// dim (the last), the table the embedding reads left alone.
// CHECK-LABEL: module
// CHECK: nn.parameter @emb : tensor<131x16xf32>
// CHECK-NOT: logical_shape = array<i64: 131, 16>
// CHECK: nn.parameter @head : tensor<16x256xf32> <{init = "normal", logical_shape = array<i64: 16, 131>
// CHECK: nn.parameter @bias : tensor<256xf32> <{init = "zeros", logical_shape = array<i64: 131>}>
// CHECK: nn.matmul {{.+}} : (tensor<2x4x16xf32>, tensor<16x256xf32>, tensor<256xf32>) -> tensor<2x4x256xf32>
// CHECK: nn.cross_entropy {{.+}} {classes = 131 : i64}
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @emb : tensor<131x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @head : tensor<16x131xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @bias : tensor<131xf32> <{init = "zeros"}>
  func.func @forward(%ids: tensor<2x4xi32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %e = nn.param @emb : tensor<131x16xf32>
    %h = nn.embedding %e, %ids : (tensor<131x16xf32>, tensor<2x4xi32>) -> tensor<2x4x16xf32>
    %w = nn.param @head : tensor<16x131xf32>
    %b = nn.param @bias : tensor<131xf32>
    %l = nn.matmul %h, %w, %b : (tensor<2x4x16xf32>, tensor<16x131xf32>, tensor<131xf32>) -> tensor<2x4x131xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x131xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// A vocabulary that is a multiple already is left alone.
// CHECK-LABEL: module
// CHECK: nn.parameter @wte : tensor<128x16xf32> <{init = "normal", std = 2.000000e-02 : f64}>
// CHECK-NOT: classes
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @wte : tensor<128x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%ids: tensor<2x4xi32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @wte : tensor<128x16xf32>
    %h = nn.embedding %w, %ids : (tensor<128x16xf32>, tensor<2x4xi32>) -> tensor<2x4x16xf32>
    %l = nn.matmul %h, %w transpose_rhs : (tensor<2x4x16xf32>, tensor<128x16xf32>) -> tensor<2x4x128xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x128xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// A head parameter read by another op as well cannot be padded without
// changing that op: left unpadded, with a warning that says why.
// CHECK-LABEL: module
// CHECK: nn.parameter @head : tensor<16x131xf32> <{init = "normal", std = 2.000000e-02 : f64}>
// CHECK-NOT: classes
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @emb : tensor<131x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @head : tensor<16x131xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%ids: tensor<2x4xi32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %e = nn.param @emb : tensor<131x16xf32>
    %h = nn.embedding %e, %ids : (tensor<131x16xf32>, tensor<2x4xi32>) -> tensor<2x4x16xf32>
    %w = nn.param @head : tensor<16x131xf32>
    %l = nn.matmul %h, %w : (tensor<2x4x16xf32>, tensor<16x131xf32>) -> tensor<2x4x131xf32>
    %m = nn.mul %l, %l : (tensor<2x4x131xf32>, tensor<2x4x131xf32>) -> tensor<2x4x131xf32>
    // expected-warning @+1 {{nn-pad-vocab: the vocabulary of 131 stays unpadded (256 would align the GEMMs): its logits have other users}}
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x131xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}
