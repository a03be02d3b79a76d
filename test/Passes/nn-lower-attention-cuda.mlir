// Tests that --nn-lower-to-kernels{target=cuda} chooses the tiled
// tensor-core attention (runtime/kernels/cuda/FlashAttention.cuh) at
// compile time for the head sizes it is built for (64 and 128,
// runtime/kernels/cuda/FlashSupport.h), with the backward's fp32 scratch
// of batch * heads * seqQ, and keeps the warp-per-row kernels for other
// head sizes and for the cpu target.
// RUN: pipec-opt %s --split-input-file --nn-lower-to-kernels=target=cuda | FileCheck %s --check-prefix=CUDA
// RUN: pipec-opt %s --split-input-file --nn-lower-to-kernels | FileCheck %s --check-prefix=CPU --implicit-check-not=flash_
// `pipec compile --attention rows` keeps the warp-per-row kernels everywhere.
// RUN: pipec-opt %s --split-input-file --nn-lower-to-kernels="target=cuda attention=rows" | FileCheck %s --check-prefix=CPU --implicit-check-not=flash_
// RUN: not pipec-opt %s --split-input-file --nn-lower-to-kernels="target=cuda attention=fast" 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: error: nn-lower-to-kernels: unknown attention 'fast' (tiled or rows)

// Head size 64 (one head of 64 over the 64 columns): the tiled kernels.
// CUDA-LABEL: func.func @h64
// CUDA: kernel.call "flash_attention_forward"({{.+}}) ints [2, 8, 8, 1, 1, 64, 1]
// CUDA-SAME: -> (tensor<2x8x64xf32>, tensor<2x1x8xf32>)
// CUDA: kernel.call "flash_attention_backward_b"({{.+}}) ints [2, 8, 8, 1, 1, 64, 1]
// CUDA-SAME: -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<16xf32>)
// CPU-LABEL: func.func @h64
// CPU: kernel.call "attention_forward"
// CPU: kernel.call "attention_backward_b"
func.func @h64(%q: tensor<2x8x64xf32>, %dy: tensor<2x8x64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) {
  %o, %lse = nn.attention_train %q, %q, %q heads = 1 kv_heads = 1 causal scale = 0.125 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> (tensor<2x8x64xf32>, tensor<2x1x8xf32>)
  %dq, %dk, %dv = nn.attention_grad %dy, %q, %q, %q, %o, %lse heads = 1 kv_heads = 1 causal scale = 0.125 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x1x8xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>)
  return %o, %dq, %dk, %dv : tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>
}

// -----

// Head size 128 with grouped-query heads (2 query heads, 1 kv head).
// CUDA-LABEL: func.func @h128
// CUDA: kernel.call "flash_attention_forward"({{.+}}) ints [1, 4, 4, 2, 1, 128, 1]
// CUDA: kernel.call "flash_attention_backward_b"({{.+}}) ints [1, 4, 4, 2, 1, 128, 1]
// CUDA-SAME: tensor<8xf32>)
func.func @h128(%q: tensor<1x4x256xf32>, %kv: tensor<1x4x128xf32>, %dy: tensor<1x4x256xf32>) -> (tensor<1x4x256xf32>, tensor<1x4x128xf32>) {
  %o, %lse = nn.attention_train %q, %kv, %kv heads = 2 kv_heads = 1 causal scale = 0.088 : (tensor<1x4x256xf32>, tensor<1x4x128xf32>, tensor<1x4x128xf32>) -> (tensor<1x4x256xf32>, tensor<1x2x4xf32>)
  %dq, %dk, %dv = nn.attention_grad %dy, %q, %kv, %kv, %o, %lse heads = 2 kv_heads = 1 causal scale = 0.088 : (tensor<1x4x256xf32>, tensor<1x4x256xf32>, tensor<1x4x128xf32>, tensor<1x4x128xf32>, tensor<1x4x256xf32>, tensor<1x2x4xf32>) -> (tensor<1x4x256xf32>, tensor<1x4x128xf32>, tensor<1x4x128xf32>)
  return %dq, %dk : tensor<1x4x256xf32>, tensor<1x4x128xf32>
}

// -----

// Head size 16 (4 heads over 64 columns): the warp-per-row kernels.
// CUDA-LABEL: func.func @h16
// CUDA: kernel.call "attention_forward"({{.+}}) ints [2, 8, 8, 4, 4, 16, 1]
// CUDA: kernel.call "attention_backward_b"({{.+}}) ints [2, 8, 8, 4, 4, 16, 1]
func.func @h16(%q: tensor<2x8x64xf32>, %dy: tensor<2x8x64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>) {
  %o, %lse = nn.attention_train %q, %q, %q heads = 4 kv_heads = 4 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> (tensor<2x8x64xf32>, tensor<2x4x8xf32>)
  %dq, %dk, %dv = nn.attention_grad %dy, %q, %q, %q, %o, %lse heads = 4 kv_heads = 4 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x4x8xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>)
  return %o, %dq : tensor<2x8x64xf32>, tensor<2x8x64xf32>
}
