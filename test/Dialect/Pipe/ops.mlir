// RUN: pipec-opt %s --split-input-file | pipec-opt --split-input-file | FileCheck %s
// RUN: pipec-opt %s --split-input-file --mlir-print-op-generic | pipec-opt --split-input-file | FileCheck %s

// Tests that chunks, a group, a schedule and two programs of a 2-rank
// pipeline round-trip with every instruction form.
// CHECK: pipe.chunk @c0 rank = 0 costs = [1.250000e+00, 2.500000e+00, 7.500000e-01]
// CHECK: pipe.chunk @c1 rank = 1 costs = [1.500000e+00, 3.000000e+00, 1.000000e+00]
// CHECK: pipe.group @world ranks = [0, 1]
// CHECK: pipe.schedule "1f1b" stages = 2 microbatches = 1 chunks_per_rank = 1 bubble = 3.750000e-01 step_time = 1.200000e+01
// CHECK-LABEL: pipe.program rank = 0 {
// CHECK-NEXT:   fwd @c0 mb 0
// CHECK-NEXT:   post send_act to 1 @c0 mb 0 req 0
// CHECK-NEXT:   post recv_grad from 1 @c1 mb 0 req 1
// CHECK-NEXT:   wait req 1
// CHECK-NEXT:   wait req 0
// CHECK-NEXT:   bwd_b @c0 mb 0
// CHECK-NEXT:   bwd_w @c0 mb 0
// CHECK-NEXT:   all_reduce @world bucket 0
// CHECK-NEXT:   opt_step
// CHECK-NEXT: }
// CHECK-LABEL: pipe.program rank = 1 {
// CHECK-NEXT:   post recv_act from 0 @c0 mb 0 req 0
// CHECK-NEXT:   wait req 0
// CHECK-NEXT:   fwd @c1 mb 0
// CHECK-NEXT:   bwd_b @c1 mb 0
// CHECK-NEXT:   bwd_w @c1 mb 0
// CHECK-NEXT:   post send_grad to 0 @c1 mb 0 req 1
// CHECK-NEXT:   wait req 1
// CHECK-NEXT:   all_reduce @world bucket 0
// CHECK-NEXT:   opt_step
// CHECK-NEXT: }
pipe.chunk @c0 rank = 0 costs = [1.25, 2.5, 0.75]
pipe.chunk @c1 rank = 1 costs = [1.5, 3.0, 1.0]
pipe.group @world ranks = [0, 1]
pipe.schedule "1f1b" stages = 2 microbatches = 1 chunks_per_rank = 1 bubble = 0.375 step_time = 12.0
pipe.program rank = 0 {
  fwd @c0 mb 0
  post send_act to 1 @c0 mb 0 req 0
  post recv_grad from 1 @c1 mb 0 req 1
  wait req 1
  wait req 0
  bwd_b @c0 mb 0
  bwd_w @c0 mb 0
  all_reduce @world bucket 0
  opt_step
}
pipe.program rank = 1 {
  post recv_act from 0 @c0 mb 0 req 0
  wait req 0
  fwd @c1 mb 0
  bwd_b @c1 mb 0
  bwd_w @c1 mb 0
  post send_grad to 0 @c1 mb 0 req 1
  wait req 1
  all_reduce @world bucket 0
  opt_step
}

// -----

// Tests that a chunk with a body, quoted symbol names, discardable
// attributes and an empty program round-trip.
// CHECK: pipe.chunk @"h-0" rank = 0 costs = [3.000000e+00, 3.000000e+00, 2.000000e+00] {
// CHECK-NEXT:   %[[W:.+]] = nn.param @w : tensor<4xf32>
// CHECK-NEXT:   nn.gelu %[[W]] : tensor<4xf32>
// CHECK-NEXT: }
// CHECK: pipe.chunk @"h-1" rank = 0 costs = [4.000000e+00, 5.000000e+00, 6.000000e+00]
// CHECK: pipe.group @tied ranks = [0]
// CHECK-LABEL: pipe.program rank = 0 attributes {note = "local"} {
// CHECK-NEXT:   fwd @"h-0" mb 1
// CHECK-NEXT:   fwd @"h-1" mb 1
// CHECK-NEXT:   all_reduce @tied bucket 2
// CHECK-NEXT: }
// CHECK-LABEL: pipe.program rank = 1 {
// CHECK-NEXT: }
nn.parameter @w : tensor<4xf32> <{init = "zeros"}>
pipe.chunk @"h-0" rank = 0 costs = [3.0, 3.0, 2.0] {
  %w = nn.param @w : tensor<4xf32>
  %g = nn.gelu %w : tensor<4xf32>
}
pipe.chunk @"h-1" rank = 0 costs = [4.0, 5.0, 6.0]
pipe.group @tied ranks = [0]
pipe.program rank = 0 attributes {note = "local"} {
  fwd @"h-0" mb 1
  fwd @"h-1" mb 1
  all_reduce @tied bucket 2
}
pipe.program rank = 1 {
}
