// RUN: pipec-opt %s --split-input-file --verify-diagnostics

// Tests that a bias whose shape is not a trailing part of the input is refused.
func.func @add_bad_broadcast(%x: tensor<2x8x64xf32>, %b: tensor<32xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{rhs shape [32] is not a trailing part of lhs shape [2, 8, 64]}}
  %s = nn.add %x, %b : (tensor<2x8x64xf32>, tensor<32xf32>) -> tensor<2x8x64xf32>
  return %s : tensor<2x8x64xf32>
}

// -----

// Tests that reading an undeclared parameter is refused.
func.func @param_missing() -> tensor<4xf32> {
  // expected-error @+1 {{no nn.parameter named @w}}
  %w = nn.param @w : tensor<4xf32>
  return %w : tensor<4xf32>
}
