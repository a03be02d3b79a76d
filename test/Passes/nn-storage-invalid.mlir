// RUN: pipec-opt %s --split-input-file --verify-diagnostics --nn-storage=type=bf16
// RUN: not pipec-opt %s --split-input-file --nn-storage=type=fp8 2>&1 | FileCheck %s --check-prefix=TYPE

// Tests that --nn-storage refuses what it cannot convert, saying what.
// TYPE: error: nn-storage: unknown storage type 'fp8' (f32 or bf16)

// expected-error @+1 {{nn-storage: the module has no @forward}}
module {
}

// -----

// expected-error @+1 {{nn-storage: runs before --nn-autodiff (this module has a @train_step already)}}
module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    return %x : tensor<2xf32>
  }
  func.func @train_step(%x: tensor<2xf32>) -> tensor<2xf32> {
    return %x : tensor<2xf32>
  }
}

// -----

module {
  // expected-error @+1 {{nn-storage: @forward holds 'tensor<2x3xf64>'; bf16 storage converts an f32 model}}
  func.func @forward(%x: tensor<2x3xf64>) -> tensor<2x3xf64> {
    %y = nn.gelu %x : tensor<2x3xf64>
    return %y : tensor<2x3xf64>
  }
}
