// RUN: pipec-opt %s --split-input-file | pipec-opt --split-input-file | FileCheck %s
// RUN: pipec-opt %s --split-input-file --mlir-print-op-generic | pipec-opt --split-input-file | FileCheck %s

// Tests that parameters, their reads and elementwise ops round-trip.
// CHECK: nn.parameter @b : tensor<64xf32> <{init = "zeros"}>
// CHECK-LABEL: func.func @elementwise
// CHECK: %[[B:.+]] = nn.param @b : tensor<64xf32>
// CHECK: %[[S:.+]] = nn.add %{{.+}}, %[[B]] : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
// CHECK: %[[G:.+]] = nn.gelu %[[S]] : tensor<2x8x64xf32>
// CHECK: nn.mul %[[G]], %[[S]]
nn.parameter @b : tensor<64xf32> <{init = "zeros"}>
func.func @elementwise(%x: tensor<2x8x64xf32>) -> tensor<2x8x64xf32> {
  %b = nn.param @b : tensor<64xf32>
  %s = nn.add %x, %b : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  %g = nn.gelu %s : tensor<2x8x64xf32>
  %m = nn.mul %g, %s : (tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  return %m : tensor<2x8x64xf32>
}
