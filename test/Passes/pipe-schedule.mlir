// Tests --pipe-schedule: every kind on small pipelines (programs, bubble and
// step time checked against the closed forms or by hand) and every refusal
// of its options with the reason it gives. Elsewhere: the refusals the
// module causes (pipe-schedule-invalid.mlir), CSV schedules
// (pipe-schedule-csv.mlir), tied parameters (pipe-schedule-tied.mlir).

// RUN: rm -rf %t && split-file %s %t

// The figures: with F = B = W = 1, (p-1)/(m+p-1) for gpipe and 1f1b,
// (p-1)/(vm+p-1) for interleaved-1f1b, (p-1)/(3m+p-1) for zb-h1 and
// (p-1)/(6m+p-1) for dualpipe-v; the step time is the denominator times the
// cost of one micro-batch on one chunk.

// Tests that 1f1b with unequal chunk costs gives each rank its program and
// the step time worked out by hand: rank 1's F, B, W (2, 3, 1) set the pace,
// rank 0 finishes its second backward at 16, and 12 of 32 rank-units idle.
// RUN: pipec-opt %t/two-unequal.mlir --pipe-schedule="kind=1f1b microbatches=2" | pipec-opt | FileCheck %s --check-prefix=ONE
// ONE: pipe.group @world ranks = [0, 1]
// ONE: pipe.schedule "1f1b" stages = 2 microbatches = 2 chunks_per_rank = 1 bubble = 3.750000e-01 step_time = 1.600000e+01
// ONE-LABEL: pipe.program rank = 0 {
// ONE-NEXT:    fwd @c0 mb 0
// ONE-NEXT:    post send_act to 1 @c0 mb 0 req 0
// ONE-NEXT:    post recv_grad from 1 @c1 mb 0 req 1
// ONE-NEXT:    fwd @c0 mb 1
// ONE-NEXT:    post send_act to 1 @c0 mb 1 req 2
// ONE-NEXT:    wait req 0
// ONE-NEXT:    wait req 2
// ONE-NEXT:    wait req 1
// ONE-NEXT:    bwd_b @c0 mb 0
// ONE-NEXT:    post recv_grad from 1 @c1 mb 1 req 3
// ONE-NEXT:    bwd_w @c0 mb 0
// ONE-NEXT:    wait req 3
// ONE-NEXT:    bwd_b @c0 mb 1
// ONE-NEXT:    bwd_w @c0 mb 1
// ONE-NEXT:    all_reduce @world bucket 0
// ONE-NEXT:    opt_step
// ONE-NEXT:  }
// ONE-LABEL: pipe.program rank = 1 {
// ONE-NEXT:    post recv_act from 0 @c0 mb 0 req 0
// ONE-NEXT:    wait req 0
// ONE-NEXT:    fwd @c1 mb 0
// ONE-NEXT:    bwd_b @c1 mb 0
// ONE-NEXT:    post recv_act from 0 @c0 mb 1 req 1
// ONE-NEXT:    bwd_w @c1 mb 0
// ONE-NEXT:    post send_grad to 0 @c1 mb 0 req 2
// ONE-NEXT:    wait req 2
// ONE-NEXT:    wait req 1
// ONE-NEXT:    fwd @c1 mb 1
// ONE-NEXT:    bwd_b @c1 mb 1
// ONE-NEXT:    bwd_w @c1 mb 1
// ONE-NEXT:    post send_grad to 0 @c1 mb 1 req 3
// ONE-NEXT:    wait req 3
// ONE-NEXT:    all_reduce @world bucket 0
// ONE-NEXT:    opt_step
// ONE-NEXT:  }

// Tests that the programs survive bytecode (properties and tables).
// RUN: pipec-opt %t/two-unequal.mlir --pipe-schedule="kind=1f1b microbatches=2" --emit-bytecode | pipec-opt | FileCheck %s --check-prefix=BYTECODE
// BYTECODE: pipe.schedule "1f1b" stages = 2 microbatches = 2 chunks_per_rank = 1 bubble = 3.750000e-01 step_time = 1.600000e+01
// BYTECODE-LABEL: pipe.program rank = 1 {
// BYTECODE-NEXT:    post recv_act from 0 @c0 mb 0 req 0

// Tests that options take MLIR's one form, space-separated: a comma is part
// of the value, so the kind is unknown.
// RUN: not pipec-opt %t/two-unequal.mlir --pipe-schedule=kind=1f1b,microbatches=2 2>&1 | FileCheck %s --check-prefix=COMMA
// COMMA: unknown schedule kind '1f1b,microbatches=2'

// Tests that gpipe runs every forward before any backward: 1/4 bubble.
// RUN: pipec-opt %t/two.mlir --pipe-schedule="kind=gpipe microbatches=3" | pipec-opt | FileCheck %s --check-prefix=GPIPE
// GPIPE: pipe.schedule "gpipe" stages = 2 microbatches = 3 chunks_per_rank = 1 bubble = 2.500000e-01 step_time = 1.200000e+01
// GPIPE-LABEL: pipe.program rank = 1 {
// GPIPE-NEXT:    post recv_act from 0 @c0 mb 0 req 0
// GPIPE-NEXT:    post recv_act from 0 @c0 mb 1 req 1
// GPIPE-NEXT:    wait req 0
// GPIPE-NEXT:    fwd @c1 mb 0
// GPIPE-NEXT:    post recv_act from 0 @c0 mb 2 req 2
// GPIPE-NEXT:    wait req 1
// GPIPE-NEXT:    fwd @c1 mb 1
// GPIPE-NEXT:    wait req 2
// GPIPE-NEXT:    fwd @c1 mb 2
// GPIPE-NEXT:    bwd_b @c1 mb 0
// GPIPE-NEXT:    bwd_w @c1 mb 0
// GPIPE-NEXT:    post send_grad to 0 @c1 mb 0 req 3
// GPIPE-NEXT:    bwd_b @c1 mb 1
// GPIPE-NEXT:    bwd_w @c1 mb 1
// GPIPE-NEXT:    post send_grad to 0 @c1 mb 1 req 4
// GPIPE-NEXT:    bwd_b @c1 mb 2
// GPIPE-NEXT:    bwd_w @c1 mb 2
// GPIPE-NEXT:    post send_grad to 0 @c1 mb 2 req 5
// GPIPE-NEXT:    wait req 3
// GPIPE-NEXT:    wait req 4
// GPIPE-NEXT:    wait req 5
// GPIPE-NEXT:    all_reduce @world bucket 0
// GPIPE-NEXT:    opt_step
// GPIPE-NEXT:  }

// Tests that zb-h1 sends each gradient right after B and delays W: 1/7.
// RUN: pipec-opt %t/two.mlir --pipe-schedule="kind=zb-h1 microbatches=2" | pipec-opt | FileCheck %s --check-prefix=ZBH1
// ZBH1: pipe.schedule "zb-h1" stages = 2 microbatches = 2 chunks_per_rank = 1 bubble = 0.1428571{{[0-9]+}} step_time = 7.000000e+00
// ZBH1-LABEL: pipe.program rank = 1 {
// ZBH1-NEXT:    post recv_act from 0 @c0 mb 0 req 0
// ZBH1-NEXT:    wait req 0
// ZBH1-NEXT:    fwd @c1 mb 0
// ZBH1-NEXT:    post recv_act from 0 @c0 mb 1 req 1
// ZBH1-NEXT:    bwd_b @c1 mb 0
// ZBH1-NEXT:    post send_grad to 0 @c1 mb 0 req 2
// ZBH1-NEXT:    wait req 2
// ZBH1-NEXT:    wait req 1
// ZBH1-NEXT:    fwd @c1 mb 1
// ZBH1-NEXT:    bwd_b @c1 mb 1
// ZBH1-NEXT:    post send_grad to 0 @c1 mb 1 req 3
// ZBH1-NEXT:    bwd_w @c1 mb 0
// ZBH1-NEXT:    bwd_w @c1 mb 1
// ZBH1-NEXT:    wait req 3
// ZBH1-NEXT:    all_reduce @world bucket 0
// ZBH1-NEXT:    opt_step
// ZBH1-NEXT:  }

// Tests that interleaved-1f1b loops micro-batches through both chunks of a
// rank (c0, c2 on rank 0) before the backwards: 1/5 bubble.
// RUN: pipec-opt %t/looped.mlir --pipe-schedule="kind=interleaved-1f1b microbatches=2 chunks-per-rank=2" | pipec-opt | FileCheck %s --check-prefix=INTER
// INTER: pipe.schedule "interleaved-1f1b" stages = 2 microbatches = 2 chunks_per_rank = 2 bubble = 2.000000e-01 step_time = 1.500000e+01
// INTER-LABEL: pipe.program rank = 0 {
// INTER-NEXT:    fwd @c0 mb 0
// INTER-NEXT:    post send_act to 1 @c0 mb 0 req 0
// INTER-NEXT:    post recv_act from 1 @c1 mb 0 req 1
// INTER-NEXT:    fwd @c0 mb 1
// INTER-NEXT:    post send_act to 1 @c0 mb 1 req 2
// INTER-NEXT:    post recv_act from 1 @c1 mb 1 req 3
// INTER-NEXT:    wait req 0
// INTER-NEXT:    wait req 2
// INTER-NEXT:    wait req 1
// INTER-NEXT:    fwd @c2 mb 0
// INTER-NEXT:    post send_act to 1 @c2 mb 0 req 4
// INTER-NEXT:    post recv_grad from 1 @c3 mb 0 req 5
// INTER-NEXT:    wait req 4
// INTER-NEXT:    wait req 3
// INTER-NEXT:    fwd @c2 mb 1
// INTER-NEXT:    post send_act to 1 @c2 mb 1 req 6
// INTER-NEXT:    wait req 6
// INTER-NEXT:    wait req 5
// INTER-NEXT:    bwd_b @c2 mb 0
// INTER-NEXT:    post recv_grad from 1 @c3 mb 1 req 7
// INTER-NEXT:    bwd_w @c2 mb 0
// INTER-NEXT:    post send_grad to 1 @c2 mb 0 req 8
// INTER-NEXT:    wait req 8
// INTER-NEXT:    wait req 7
// INTER-NEXT:    bwd_b @c2 mb 1
// INTER-NEXT:    post recv_grad from 1 @c1 mb 0 req 9
// INTER-NEXT:    bwd_w @c2 mb 1
// INTER-NEXT:    post send_grad to 1 @c2 mb 1 req 10
// INTER-NEXT:    wait req 10
// INTER-NEXT:    wait req 9
// INTER-NEXT:    bwd_b @c0 mb 0
// INTER-NEXT:    post recv_grad from 1 @c1 mb 1 req 11
// INTER-NEXT:    bwd_w @c0 mb 0
// INTER-NEXT:    wait req 11
// INTER-NEXT:    bwd_b @c0 mb 1
// INTER-NEXT:    bwd_w @c0 mb 1
// INTER-NEXT:    all_reduce @world bucket 0
// INTER-NEXT:    opt_step
// INTER-NEXT:  }

// Tests that zb-v runs the V (c0 and c3 on rank 0): the turn at c3 needs no
// transfer, and B sends its gradient before W runs.
// RUN: pipec-opt %t/vshape.mlir --pipe-schedule="kind=zb-v microbatches=2" | pipec-opt | FileCheck %s --check-prefix=ZBV
// ZBV: pipe.schedule "zb-v" stages = 2 microbatches = 2 chunks_per_rank = 2 bubble = 0.1428571{{[0-9]+}} step_time = 1.400000e+01
// ZBV-LABEL: pipe.program rank = 0 {
// ZBV-NEXT:    fwd @c0 mb 0
// ZBV-NEXT:    post send_act to 1 @c0 mb 0 req 0
// ZBV-NEXT:    post recv_act from 1 @c2 mb 0 req 1
// ZBV-NEXT:    fwd @c0 mb 1
// ZBV-NEXT:    post send_act to 1 @c0 mb 1 req 2
// ZBV-NEXT:    wait req 0
// ZBV-NEXT:    wait req 2
// ZBV-NEXT:    wait req 1
// ZBV-NEXT:    fwd @c3 mb 0
// ZBV-NEXT:    bwd_b @c3 mb 0
// ZBV-NEXT:    post send_grad to 1 @c3 mb 0 req 3
// ZBV-NEXT:    post recv_act from 1 @c2 mb 1 req 4
// ZBV-NEXT:    bwd_w @c3 mb 0
// ZBV-NEXT:    wait req 3
// ZBV-NEXT:    wait req 4
// ZBV-NEXT:    fwd @c3 mb 1
// ZBV-NEXT:    bwd_b @c3 mb 1
// ZBV-NEXT:    post send_grad to 1 @c3 mb 1 req 5
// ZBV-NEXT:    post recv_grad from 1 @c1 mb 0 req 6
// ZBV-NEXT:    bwd_w @c3 mb 1
// ZBV-NEXT:    wait req 6
// ZBV-NEXT:    bwd_b @c0 mb 0
// ZBV-NEXT:    post recv_grad from 1 @c1 mb 1 req 7
// ZBV-NEXT:    bwd_w @c0 mb 0
// ZBV-NEXT:    wait req 5
// ZBV-NEXT:    wait req 7
// ZBV-NEXT:    bwd_b @c0 mb 1
// ZBV-NEXT:    bwd_w @c0 mb 1
// ZBV-NEXT:    all_reduce @world bucket 0
// ZBV-NEXT:    opt_step
// ZBV-NEXT:  }

// Tests that dualpipe-v with M = 2S pairs forwards and backwards of the two
// chunks: 1/25 bubble.
// RUN: pipec-opt %t/vshape.mlir --pipe-schedule="kind=dualpipe-v microbatches=4" | pipec-opt | FileCheck %s --check-prefix=DUAL
// DUAL: pipe.schedule "dualpipe-v" stages = 2 microbatches = 4 chunks_per_rank = 2 bubble = 4.000000e-02 step_time = 2.500000e+01
// DUAL-LABEL: pipe.program rank = 0 {
// DUAL:         fwd @c0 mb 2
// DUAL-NOT:     bwd_b
// DUAL:         fwd @c3 mb 0
// DUAL-NEXT:    bwd_b @c3 mb 0
// DUAL-NEXT:    post send_grad to 1 @c3 mb 0 req {{[0-9]+}}
// DUAL:         fwd @c0 mb 3
// DUAL:         bwd_w @c0 mb 3
// DUAL-NEXT:    all_reduce @world bucket 0
// DUAL-NEXT:    opt_step

// Tests that the emitted group is renamed when @world is taken.
// RUN: pipec-opt %t/world-taken.mlir --pipe-schedule="kind=1f1b microbatches=1" | pipec-opt | FileCheck %s --check-prefix=RENAME
// RENAME: pipe.group @world ranks = [0]
// RENAME: pipe.group @[[W:world_[0-9]+]] ranks = [0, 1]
// RENAME: all_reduce @[[W]] bucket 0

// Tests the budget of the issue: 96 stages x 512 micro-batches of 1f1b are
// generated, proven, replayed and written as programs in under 10 s.
// RUN: %python %S/Inputs/pipe-schedule-scale.py pipec-opt %t/scale | FileCheck %s --check-prefix=SCALE
// SCALE: 96 x 512 1f1b: 96 programs, {{[0-9]+}} instructions, bubble 0.156507, step time 2428
// SCALE: pipec-opt --pipe-schedule took {{[0-9.]+}} s

//===----------------------------------------------------------------------===//
// Refusals: combinations a schedule cannot serve.
//===----------------------------------------------------------------------===//

// RUN: not pipec-opt %t/vshape.mlir --pipe-schedule="kind=dualpipe-v microbatches=3" 2>&1 | FileCheck %s --check-prefix=DUAL-FEW
// DUAL-FEW: error: --pipe-schedule: dualpipe-v needs at least 2 x stages = 4 micro-batches to fill both directions of the V; got 3

// RUN: not pipec-opt %t/looped.mlir --pipe-schedule="kind=interleaved-1f1b microbatches=3" 2>&1 | FileCheck %s --check-prefix=INTER-MOD
// INTER-MOD: error: --pipe-schedule: interleaved-1f1b needs the micro-batch count to be a multiple of the stage count: 3 micro-batches over 2 stages leaves 1

// RUN: not pipec-opt %t/two.mlir --pipe-schedule="kind=interleaved-1f1b microbatches=4" 2>&1 | FileCheck %s --check-prefix=TOO-FEW
// TOO-FEW: error: --pipe-schedule: interleaved-1f1b with 2 stages x 2 chunks per rank needs 4 chunks, but the module declares 2 pipe.chunk ops
// TOO-FEW: note: interleaved-1f1b with 2 stages x 2 chunks per rank places chunks 0..3 on ranks [0, 1, 0, 1]

// RUN: not pipec-opt %t/looped.mlir --pipe-schedule="kind=zb-v microbatches=2" 2>&1 | FileCheck %s --check-prefix=PLACED
// PLACED: looped.mlir:3:1: error: --pipe-schedule: chunk 2 (@c2) is declared on rank 0, but zb-v with 2 stages x 2 chunks per rank places it on rank 1
// PLACED: note: zb-v with 2 stages x 2 chunks per rank places chunks 0..3 on ranks [0, 1, 1, 0]

// RUN: not pipec-opt %t/vshape.mlir --pipe-schedule="kind=zb-v microbatches=2 chunks-per-rank=3" 2>&1 | FileCheck %s --check-prefix=V-THREE
// V-THREE: error: --pipe-schedule: zb-v places exactly 2 chunks per rank in a V; got --chunks-per-rank 3

// RUN: not pipec-opt %t/two.mlir --pipe-schedule="kind=2f2b microbatches=2" 2>&1 | FileCheck %s --check-prefix=KIND
// KIND: error: --pipe-schedule: unknown schedule kind '2f2b'; expected one of gpipe, 1f1b, interleaved-1f1b, zb-h1, zb-v, dualpipe-v

// RUN: not pipec-opt %t/two.mlir --pipe-schedule=microbatches=2 2>&1 | FileCheck %s --check-prefix=NO-KIND
// NO-KIND: error: --pipe-schedule needs kind=K (one of gpipe, 1f1b, interleaved-1f1b, zb-h1, zb-v, dualpipe-v, or auto) or csv=FILE

// RUN: not pipec-opt %t/two.mlir --pipe-schedule=kind=1f1b 2>&1 | FileCheck %s --check-prefix=NO-MB
// NO-MB: error: --pipe-schedule needs microbatches=M with M >= 1, got 0

// RUN: not pipec-opt %t/two.mlir --pipe-schedule="kind=1f1b microbatches=2000000000" 2>&1 | FileCheck %s --check-prefix=TOO-BIG
// TOO-BIG: error: --pipe-schedule: 2 chunks x 2000000000 micro-batches is 4000000000 chunk steps, more than the limit of 1048576

// Tests that chunks that cost nothing give a zero step time and no bubble.
// RUN: pipec-opt %t/free.mlir --pipe-schedule="kind=1f1b microbatches=2" | pipec-opt | FileCheck %s --check-prefix=FREE
// FREE: pipe.schedule "1f1b" stages = 2 microbatches = 2 chunks_per_rank = 1 bubble = 0.000000e+00 step_time = 0.000000e+00

// RUN: pipec-opt %t/two.mlir --pipe-schedule="kind=1f1b microbatches=2" | not pipec-opt --pipe-schedule="kind=1f1b microbatches=2" 2>&1 | FileCheck %s --check-prefix=TWICE
// TWICE: error: --pipe-schedule: the module is already scheduled; the pass runs once, on pipe.chunk ops without programs

//--- two.mlir
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]

//--- two-unequal.mlir
pipe.chunk @c0 rank = 0 costs = [1.0, 2.0, 1.0]
pipe.chunk @c1 rank = 1 costs = [2.0, 3.0, 1.0]

//--- looped.mlir
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]
pipe.chunk @c2 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.chunk @c3 rank = 1 costs = [1.0, 1.0, 1.0]

//--- vshape.mlir
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]
pipe.chunk @c2 rank = 1 costs = [1.0, 1.0, 1.0]
pipe.chunk @c3 rank = 0 costs = [1.0, 1.0, 1.0]

//--- world-taken.mlir
pipe.group @world ranks = [0]
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]

//--- free.mlir
pipe.chunk @c0 rank = 0 costs = [0.0, 0.0, 0.0]
pipe.chunk @c1 rank = 1 costs = [0.0, 0.0, 0.0]
