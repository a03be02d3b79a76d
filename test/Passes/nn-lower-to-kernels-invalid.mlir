// RUN: pipec-opt %s --split-input-file --nn-lower-to-kernels=target=tpu --verify-diagnostics
// RUN: not pipec-opt %s --split-input-file --nn-lower-to-kernels 2>&1 | FileCheck %s --check-prefix=CPU

// Tests that an unknown target is refused, naming it, and that a transpose
// of more axes than the cpu kernel takes is refused at the op.
// CPU: error: nn-lower-to-kernels: the cpu transpose kernel takes at most 6 axes, this one has 7
// expected-error @+1 {{nn-lower-to-kernels: unknown target 'tpu' (cpu or cuda)}}
module {
  func.func @forward(%x: tensor<1x1x1x1x1x2x3xf32>) -> tensor<1x1x1x1x1x3x2xf32> {
    %t = nn.transpose %x perm = [0, 1, 2, 3, 4, 6, 5] : (tensor<1x1x1x1x1x2x3xf32>) -> tensor<1x1x1x1x1x3x2xf32>
    return %t : tensor<1x1x1x1x1x3x2xf32>
  }
}

// -----

// expected-error @+1 {{nn-lower-to-kernels: unknown target 'tpu' (cpu or cuda)}}
module {
  func.func @forward(%x: tensor<1x4x8xf32>) -> tensor<1x4x8xf32> {
    %r = nn.rope %x heads = 2 theta = 1.0e+04 : (tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
    return %r : tensor<1x4x8xf32>
  }
}
