// Tests --pipe-partition: chunks are contiguous ranges of @forward op ids
// balanced per rank under the kind's placement, values that skip a chunk
// are forwarded, tied parameters on two ranks get their group, costs come
// from the cost interface and the CPU rates; then the full flow through
// --pipe-schedule and --pipe-plan-memory on gpt-tiny, and the refusals.

// RUN: rm -rf %t && split-file %s %t

// The model (op ids in brackets): emb [0, 1], four 32x32 matmuls [2-3],
// [4-5], [6-7], [8-9], an add of the embedding output [10] (a skip
// connection), the LM head tied to emb [11-12] and the loss [13], which
// joins the head's piece (it overwrites the logits in place): 7 pieces. With the
// CPU rates (50 GFLOP/s, 20 GB/s, 1 us per kernel) one matmul takes
// 2*64*32*32 / 50e9 + 1e-6 = 3.62144e-06 s for F, and the same for B and W.
// Per micro-batch (F+B+W, us): emb 3.65, each matmul 10.86, add 2.23,
// head 18.73 (its W runs with B), loss 3.47; total 71.54, so with 3 ranks
// the mean is 23.85 and the best largest rank is emb + 2 matmuls = 25.38.
// RUN: pipec-opt %t/skip.mlir --pipe-partition="stages=3 kind=1f1b" | FileCheck %s --check-prefix=THREE
// THREE:      pipe.chunk @c0 rank = 0 costs = [9.074880e-06, 7.242880e-06, 9.062080e-06]
// THREE-SAME: pipe.op_ids = array<i64: 0, 5>
// THREE-SAME: pipe.out_bytes = 16384
// THREE-SAME: pipe.params = ["emb", "w0", "w1"]
// THREE-SAME: pipe.sends = array<i64: 1, 0, 5, 0>
// THREE:      pipe.chunk @c1 rank = 1 costs = [9.471680e-06, 7.242880e-06, 7.242880e-06]
// THREE-SAME: pipe.in_bytes = 16384
// THREE-SAME: pipe.op_ids = array<i64: 6, 10>
// THREE-SAME: pipe.sends = array<i64: 10, 0>
// The LM head's W is not deferred: W cost 0, and no pipe.deferred_w.
// THREE:      pipe.chunk @c2 rank = 2 costs = [9.713480e-06, 1.248576e-05, 0.000000e+00]
// THREE-NOT:  pipe.deferred_w
// THREE-SAME: pipe.op_ids = array<i64: 11, 13>
// THREE-SAME: pipe.params = ["emb"]
// THREE:      pipe.group @tied.emb ranks = [0, 2] {pipe.param = "emb"}

// Four ranks: the embedding output (op 1, result 0) is sent by c0 and
// forwarded by c1 to the add in c2.
// RUN: pipec-opt %t/skip.mlir --pipe-partition="stages=4 kind=1f1b" | FileCheck %s --check-prefix=FOUR
// FOUR: pipe.chunk @c0 rank = 0 {{.*}}pipe.op_ids = array<i64: 0, 3>{{.*}}pipe.sends = array<i64: 1, 0, 3, 0>
// FOUR: pipe.chunk @c1 rank = 1 {{.*}}pipe.op_ids = array<i64: 4, 7>{{.*}}pipe.sends = array<i64: 1, 0, 7, 0>
// FOUR: pipe.chunk @c2 rank = 2 {{.*}}pipe.op_ids = array<i64: 8, 10>{{.*}}pipe.sends = array<i64: 10, 0>
// FOUR: pipe.chunk @c3 rank = 3 {{.*}}pipe.op_ids = array<i64: 11, 13>
// FOUR: pipe.group @tied.emb ranks = [0, 3]

// zb-v on two ranks: a V, chunks 0 and 3 on rank 0; both uses of emb are
// then on rank 0 and need no group. The head (18.7 us + 3.5 loss) goes
// with the embedding; rank 1 takes the middle.
// RUN: pipec-opt %t/skip.mlir --pipe-partition="stages=2 kind=zb-v" | FileCheck %s --check-prefix=ZBV
// ZBV: pipe.chunk @c0 rank = 0 {{.*}}pipe.op_ids = array<i64: 0, 3>
// ZBV: pipe.chunk @c1 rank = 1 {{.*}}pipe.op_ids = array<i64: 4, 7>
// ZBV: pipe.chunk @c2 rank = 1 {{.*}}pipe.op_ids = array<i64: 8, 10>
// ZBV: pipe.chunk @c3 rank = 0 {{.*}}pipe.op_ids = array<i64: 11, 13>
// ZBV-NOT: pipe.group

// The whole flow on gpt-tiny: chunks cover op ids 0..209 contiguously, the
// schedule accepts the placement, and every program gets its arena.
// RUN: pipec import %models/gpt-tiny.json -o %t/gpt.mlir
// RUN: pipec-opt %t/gpt.mlir --pipe-partition="stages=2 kind=zb-v microbatches=4" --pipe-schedule="kind=zb-v microbatches=4" --pipe-plan-memory | FileCheck %s --check-prefix=FLOW
// FLOW: pipe.chunk @c0 rank = 0 {{.*}}pipe.op_ids = array<i64: 0, [[#E0:]]>
// FLOW: pipe.chunk @c1 rank = 1 {{.*}}pipe.op_ids = array<i64: [[#E0+1]], [[#E1:]]>
// FLOW: pipe.chunk @c2 rank = 1 {{.*}}pipe.op_ids = array<i64: [[#E1+1]], [[#E2:]]>
// FLOW: pipe.chunk @c3 rank = 0 {{.*}}pipe.op_ids = array<i64: [[#E2+1]], 209>
// FLOW: pipe.schedule "zb-v" stages = 2 microbatches = 4 chunks_per_rank = 2
// FLOW: pipe.program rank = 0 attributes {pipe.arena_bytes = {{[0-9]+}} : i64
// FLOW: pipe.program rank = 1 attributes {pipe.arena_bytes = {{[0-9]+}} : i64

// Under a memory cap, ranks over it recompute layer by layer from the start
// of their chunks: gpt-tiny 1f1b on 2 ranks needs 16989184 bytes on rank 0
// without recomputation; with a 15 MB cap rank 0 recomputes, rank 1 (11.5
// MB) does not, and the memory plan then fits the cap.
// RUN: pipec-opt %t/gpt.mlir --pipe-partition="stages=2 kind=1f1b microbatches=4 memory-cap=15000000" --pipe-schedule="kind=1f1b microbatches=4" --pipe-plan-memory="memory-cap=15000000" | FileCheck %s --check-prefix=CAP
// CAP: pipe.chunk @c0 rank = 0 {{.*}}pipe.recompute_ops = array<i64: 0, {{[0-9]+}}>
// CAP-SAME: pipe.recomputed_bytes = {{[1-9][0-9]*}} : i64
// CAP: pipe.chunk @c1 rank = 1
// CAP-NOT: pipe.recompute_ops
// CAP-SAME: pipe.recomputed_bytes = 0 : i64
// CAP: pipe.program rank = 0 attributes {pipe.arena_bytes = {{1[0-4][0-9][0-9][0-9][0-9][0-9][0-9]}} : i64
// RUN: not pipec-opt %t/gpt.mlir --pipe-partition="stages=2 kind=1f1b microbatches=4 memory-cap=1000000" 2>&1 | FileCheck %s --check-prefix=NOFIT
// NOFIT: error: --pipe-partition: no plan fits the memory cap: rank 0 needs {{[0-9]+}} bytes, over the memory cap of 1000000 bytes even with recomputation

// Refusals, each naming what is wrong.
// RUN: not pipec-opt %t/skip.mlir --pipe-partition="stages=9 kind=1f1b" 2>&1 | FileCheck %s --check-prefix=MANY
// MANY: error: --pipe-partition: 1f1b with 9 stages x 1 chunks per rank needs 9 chunks, but the model has only 7 ops
// RUN: not pipec-opt %t/skip.mlir --pipe-partition="stages=2 kind=foo" 2>&1 | FileCheck %s --check-prefix=KIND
// KIND: error: --pipe-partition: unknown kind 'foo'; expected one of gpipe, 1f1b
// RUN: not pipec-opt %t/skip.mlir --pipe-partition="stages=2 target=tpu" 2>&1 | FileCheck %s --check-prefix=TARGET
// TARGET: error: --pipe-partition: unknown target 'tpu'; expected one of cpu, cuda
// RUN: not pipec-opt %t/skip.mlir --pipe-partition="kind=1f1b" 2>&1 | FileCheck %s --check-prefix=STAGES
// STAGES: error: --pipe-partition needs stages=S with S >= 1
// RUN: not pipec-opt %t/skip.mlir --pipe-partition="stages=2" --pipe-partition="stages=2" 2>&1 | FileCheck %s --check-prefix=TWICE
// TWICE: error: --pipe-partition: the module already has pipe.chunk ops; the pass runs once
// RUN: not pipec-opt %t/dualpipe.mlir --pipe-partition="stages=2 kind=dualpipe-v microbatches=2" 2>&1 | FileCheck %s --check-prefix=DPV
// DPV: error: --pipe-partition: dualpipe-v needs

//--- skip.mlir
module @skip {
  nn.parameter @emb : tensor<64x32xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @w0 : tensor<32x32xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @w1 : tensor<32x32xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @w2 : tensor<32x32xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @w3 : tensor<32x32xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%tok: tensor<4x16xi32>, %tgt: tensor<4x16xi32>) -> tensor<f32> {
    %0 = nn.param @emb : tensor<64x32xf32>
    %1 = nn.embedding %0, %tok : (tensor<64x32xf32>, tensor<4x16xi32>) -> tensor<4x16x32xf32>
    %2 = nn.param @w0 : tensor<32x32xf32>
    %3 = nn.matmul %1, %2 : (tensor<4x16x32xf32>, tensor<32x32xf32>) -> tensor<4x16x32xf32>
    %4 = nn.param @w1 : tensor<32x32xf32>
    %5 = nn.matmul %3, %4 : (tensor<4x16x32xf32>, tensor<32x32xf32>) -> tensor<4x16x32xf32>
    %6 = nn.param @w2 : tensor<32x32xf32>
    %7 = nn.matmul %5, %6 : (tensor<4x16x32xf32>, tensor<32x32xf32>) -> tensor<4x16x32xf32>
    %8 = nn.param @w3 : tensor<32x32xf32>
    %9 = nn.matmul %7, %8 : (tensor<4x16x32xf32>, tensor<32x32xf32>) -> tensor<4x16x32xf32>
    %10 = nn.add %9, %1 : (tensor<4x16x32xf32>, tensor<4x16x32xf32>) -> tensor<4x16x32xf32>
    %11 = nn.param @emb : tensor<64x32xf32>
    %12 = nn.matmul %10, %11 transpose_rhs : (tensor<4x16x32xf32>, tensor<64x32xf32>) -> tensor<4x16x64xf32>
    %13 = nn.cross_entropy %12, %tgt : (tensor<4x16x64xf32>, tensor<4x16xi32>) -> tensor<f32>
    return %13 : tensor<f32>
  }
}

//--- dualpipe.mlir
module @skip {
  nn.parameter @emb : tensor<64x32xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @w0 : tensor<32x32xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @w1 : tensor<32x32xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @w2 : tensor<32x32xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @w3 : tensor<32x32xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%tok: tensor<4x16xi32>, %tgt: tensor<4x16xi32>) -> tensor<f32> {
    %0 = nn.param @emb : tensor<64x32xf32>
    %1 = nn.embedding %0, %tok : (tensor<64x32xf32>, tensor<4x16xi32>) -> tensor<4x16x32xf32>
    %2 = nn.param @w0 : tensor<32x32xf32>
    %3 = nn.matmul %1, %2 : (tensor<4x16x32xf32>, tensor<32x32xf32>) -> tensor<4x16x32xf32>
    %4 = nn.param @w1 : tensor<32x32xf32>
    %5 = nn.matmul %3, %4 : (tensor<4x16x32xf32>, tensor<32x32xf32>) -> tensor<4x16x32xf32>
    %6 = nn.param @w2 : tensor<32x32xf32>
    %7 = nn.matmul %5, %6 : (tensor<4x16x32xf32>, tensor<32x32xf32>) -> tensor<4x16x32xf32>
    %8 = nn.param @w3 : tensor<32x32xf32>
    %9 = nn.matmul %7, %8 : (tensor<4x16x32xf32>, tensor<32x32xf32>) -> tensor<4x16x32xf32>
    %10 = nn.add %9, %1 : (tensor<4x16x32xf32>, tensor<4x16x32xf32>) -> tensor<4x16x32xf32>
    %11 = nn.param @emb : tensor<64x32xf32>
    %12 = nn.matmul %10, %11 transpose_rhs : (tensor<4x16x32xf32>, tensor<64x32xf32>) -> tensor<4x16x64xf32>
    %13 = nn.cross_entropy %12, %tgt : (tensor<4x16x64xf32>, tensor<4x16xi32>) -> tensor<f32>
    return %13 : tensor<f32>
  }
}
