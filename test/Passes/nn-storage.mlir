// RUN: pipec-opt %s --split-input-file --nn-storage=type=bf16 | FileCheck %s
// RUN: pipec-opt %s --split-input-file --nn-storage=type=bf16 --nn-autodiff --nn-lower-to-kernels | FileCheck %s --check-prefix=KERNELS
// RUN: pipec-opt %s --split-input-file --nn-storage | FileCheck %s --check-prefix=F32
// RUN: pipec-opt %s --split-input-file --nn-storage=type=bf16 --nn-autodiff --nn-lower-to-kernels=target=cuda | FileCheck %s --check-prefix=CUDA

// Tests that bf16 storage retypes @forward's activations and parameter
// reads (the bf16 working copies) and keeps the loss and the parameter
// declarations fp32; that autodiff's gradients follow the activations while
// accumulators, the optimizer and the statistics the kernels keep stay fp32.
// CHECK: nn.parameter @w : tensor<8x8xf32>
// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%{{.+}}: tensor<2x4x8xbf16>, %{{.+}}: tensor<2x4xi32>) -> tensor<f32>
// CHECK: nn.param @w : tensor<8x8xbf16>
// CHECK: nn.layernorm %{{.+}}, %{{.+}}, %{{.+}} eps = {{.+}} : (tensor<2x4x8xbf16>, tensor<8xbf16>, tensor<8xbf16>) -> tensor<2x4x8xbf16>
// CHECK: nn.matmul {{.+}} -> tensor<2x4x8xbf16>
// CHECK: nn.cross_entropy {{.+}} : (tensor<2x4x8xbf16>, tensor<2x4xi32>) -> tensor<f32>

// KERNELS-LABEL: func.func @train_step
// KERNELS: kernel.call "layernorm_forward"({{.+}}) {{.+}} -> (tensor<2x4x8xbf16>, tensor<2x4xf32>, tensor<2x4xf32>)
// KERNELS: kernel.call "softmax_cross_entropy"({{.+}}) -> (tensor<f32>, tensor<2x4x8xbf16>)
// KERNELS: kernel.call "matmul_backward_b"({{.+}}) -> tensor<2x4x8xbf16>
// KERNELS: kernel.call "matmul_backward_w"({{.+}}) {{.+}} state ["acc:0:w"]
// KERNELS: kernel.call "layernorm_backward_w"({{.+}}) {{.+}} state ["acc:0:g", "acc:0:b"] {{.+}} : (tensor<2x4x8xbf16>, tensor<2x4x8xbf16>, tensor<2x4xf32>, tensor<2x4xf32>) -> ()
// KERNELS-LABEL: func.func @optimizer_step
// KERNELS: kernel.call "sum_uses"() {{.+}} -> tensor<8x8xf32>
// KERNELS: kernel.call "adamw"(%{{.+}}) {{.+}} : (tensor<8x8xf32>,

// The cuda library's extras: the classifier's per-row loss scratch and row
// stride, AdamW's bf16 working copy.
// CUDA-LABEL: func.func @forward
// CUDA: kernel.call "cross_entropy_forward"({{.+}}) ints [8, 8, 8] {{.+}} -> (tensor<f32>, tensor<8xf32>)
// CUDA-LABEL: func.func @train_step
// CUDA: kernel.call "softmax_cross_entropy"({{.+}}) ints [8, 8, 8] {{.+}} -> (tensor<f32>, tensor<2x4x8xbf16>, tensor<8xf32>)
// CUDA-LABEL: func.func @optimizer_step
// CUDA: kernel.call "adamw"({{.+}}) ints [8, 0] {{.+}} state ["value:-1:g", "m:-1:g", "v:-1:g", "copy:-1:g"]

// F32: func.func @forward(%{{.+}}: tensor<2x4x8xf32>, %{{.+}}: tensor<2x4xi32>) -> tensor<f32>
// F32-NOT: bf16
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @g : tensor<8xf32> <{init = "ones"}>
  nn.parameter @b : tensor<8xf32> <{init = "zeros"}>
  nn.parameter @w : tensor<8x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %g = nn.param @g : tensor<8xf32>
    %b = nn.param @b : tensor<8xf32>
    %w = nn.param @w : tensor<8x8xf32>
    %n = nn.layernorm %x, %g, %b eps = 1.0e-05 : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %l = nn.matmul %n, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}
