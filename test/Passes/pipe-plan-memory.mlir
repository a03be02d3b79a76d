// Tests --pipe-plan-memory against peaks computed by hand: two chunks on
// two ranks under 1F1B with two micro-batches, every buffer's lifetime
// over the rank's stream, the slots micro-batches share, the packed arena
// and the memory cap.

// RUN: rm -rf %t && split-file %s %t

// Chunk c0 keeps 100 bytes per micro-batch until its W (deferred), its W
// reads a 10-byte output gradient, it sends 7 bytes; c1 keeps 200, its W
// reads 20, it receives 7 and sends a 7-byte gradient back. Rank 0 holds
// w0 (1000 bytes): weights 1000, one accumulator 1000, m and v 2000, plus a
// 3-byte workspace = 4003 static. Rank 1: 500 + 500 + 1000 + 5 = 2005.
//
// Rank 0's stream (positions 0..15):
//   F0.0 >A1:0.0 <G1:1.0 F0.1 >A1:0.1 ~>A1:0.0 ~>A1:0.1 ~<G1:1.0 B0.0
//   <G1:1.1 W0.0 ~<G1:1.1 B0.1 W0.1 AR0.0 OPT
// kept [0,10] and [3,13] (100 each), outputs until their send waits [0,5]
// and [3,6] (7 each), received gradients [2,8] and [9,12] (7, one slot),
// output gradients [8,10] and [12,13] (10, one slot). Live peak at
// position 3: 200 + 7 + 7 + 7 = 221, so 4224. Packed largest first: the
// 100s at 4003 and 4103, the 10 at 4203, the 7s at 4203 ([0,5]), 4213
// ([2,12]) and 4220 ([3,6]): the arena is 4227.
//
// Rank 1: <A0:0.0 ~<A0:0.0 F1.0 B1.0 <A0:0.1 W1.0 >G0:1.0 ~>G0:1.0
//   ~<A0:0.1 F1.1 B1.1 W1.1 >G0:1.1 ~>G0:1.1 AR0.0 OPT
// At position 4: kept 200 [2,5], output gradient 20 [3,5], the gradient
// being sent 7 [3,7], the next input 7 [4,9]: 234, so 2239; one slot per
// buffer packs to exactly that.
// RUN: pipec-opt %t/two.mlir --pipe-schedule="kind=1f1b microbatches=2" --pipe-plan-memory="print=true" -mlir-print-op-on-diagnostic=false 2>&1 | FileCheck %s --check-prefix=TWO
// TWO: remark: rank 0: arena 4227 bytes, live peak 4224 at instruction 3: weights 1000 gradients 1000 optimizer 2000 workspace 3 activations 200 output_grads 0 receive 7 send 14
// TWO: remark: rank 1: arena 2239 bytes, live peak 2239 at instruction 4: weights 500 gradients 500 optimizer 1000 workspace 5 activations 200 output_grads 20 receive 7 send 7
// The blocks: what they hold, the buffer (static ones live the whole
// step), where in the arena and from which instruction to which.
// TWO-LABEL: pipe.program rank = 0 attributes
// TWO-SAME: pipe.arena_bytes = 4227 : i64
// TWO-SAME: pipe.buffers = [#pipe.buffer<kind = "weights", role = "static", chunk = -1, slot = 0, offset = 0, bytes = 1000, first = 0, last = 15>,
// TWO-SAME: #pipe.buffer<kind = "gradients", role = "static", chunk = -1, slot = 0, offset = 1000, bytes = 1000, first = 0, last = 15>,
// TWO-SAME: #pipe.buffer<kind = "optimizer", role = "static", chunk = -1, slot = 0, offset = 2000, bytes = 2000, first = 0, last = 15>,
// TWO-SAME: #pipe.buffer<kind = "workspace", role = "static", chunk = -1, slot = 0, offset = 4000, bytes = 3, first = 0, last = 15>,
// TWO-SAME: #pipe.buffer<kind = "activations", role = "saved", chunk = 0, slot = 0, offset = 4003, bytes = 100, first = 0, last = 10>,
// TWO-SAME: #pipe.buffer<kind = "activations", role = "saved", chunk = 0, slot = 1, offset = 4103, bytes = 100, first = 3, last = 13>,
// TWO-SAME: #pipe.buffer<kind = "output_grads", role = "output_grad", chunk = 0, slot = 0, offset = 4203, bytes = 10, first = 8, last = 13>,
// TWO-SAME: #pipe.buffer<kind = "receive", role = "in_grad", chunk = 0, slot = 0, offset = 4213, bytes = 7, first = 2, last = 12>,
// TWO-SAME: #pipe.buffer<kind = "send", role = "out_act", chunk = 0, slot = 0, offset = 4203, bytes = 7, first = 0, last = 5>,
// TWO-SAME: #pipe.buffer<kind = "send", role = "out_act", chunk = 0, slot = 1, offset = 4220, bytes = 7, first = 3, last = 6>]
// TWO-SAME: pipe.memory = {activations = 200 : i64, gradients = 1000 : i64, optimizer = 2000 : i64, output_grads = 0 : i64, receive = 7 : i64, send = 14 : i64, weights = 1000 : i64, workspace = 3 : i64}
// TWO-SAME: pipe.peak_live_bytes = 4224 : i64
// The slot of each micro-batch per (role, chunk).
// TWO-SAME: pipe.slots = [#pipe.slots<role = "saved", chunk = 0, slots = [0, 1]>,
// TWO-SAME: #pipe.slots<role = "output_grad", chunk = 0, slots = [0, 0]>,
// TWO-SAME: #pipe.slots<role = "in_grad", chunk = 0, slots = [0, 0]>,
// TWO-SAME: #pipe.slots<role = "out_act", chunk = 0, slots = [0, 1]>]
// TWO-LABEL: pipe.program rank = 1 attributes
// TWO-SAME: pipe.arena_bytes = 2239 : i64

// The typed blocks read back (the emitter parses what the pass printed).
// RUN: pipec-opt %t/two.mlir --pipe-schedule="kind=1f1b microbatches=2" --pipe-plan-memory | pipec-opt | FileCheck %s --check-prefix=ROUND
// ROUND: #pipe.buffer<kind = "receive", role = "in_grad", chunk = 0, slot = 0, offset = 4213, bytes = 7, first = 2, last = 12>
// ROUND: #pipe.slots<role = "out_act", chunk = 0, slots = [0, 1]>

// The cap: rank 0 needs 4227 bytes.
// RUN: not pipec-opt %t/two.mlir --pipe-schedule="kind=1f1b microbatches=2" --pipe-plan-memory="memory-cap=4226" -mlir-print-op-on-diagnostic=false 2>&1 | FileCheck %s --check-prefix=CAP
// CAP: error: --pipe-plan-memory: rank 0 needs 4227 bytes, over the memory cap of 4226 bytes (live peak 4224 at instruction 3: activations 200, weights 1000)
// CAP-NOT: rank 1 needs
// RUN: pipec-opt %t/two.mlir --pipe-schedule="kind=1f1b microbatches=2" --pipe-plan-memory="memory-cap=4227" -o /dev/null

// GPipe runs both forwards before any backward, so rank 1 too keeps both
// micro-batches' activations at once: 400 at its peak (1F1B: 200).
// RUN: pipec-opt %t/two.mlir --pipe-schedule="kind=gpipe microbatches=2" --pipe-plan-memory="print=true" -mlir-print-op-on-diagnostic=false -o /dev/null 2>&1 | FileCheck %s --check-prefix=GPIPE
// GPIPE: remark: rank 0: arena {{[0-9]+}} bytes, live peak {{[0-9]+}} at instruction {{[0-9]+}}: {{.*}} activations 200
// GPIPE: remark: rank 1: arena {{[0-9]+}} bytes, live peak {{[0-9]+}} at instruction {{[0-9]+}}: {{.*}} activations 400

// Refusals after a schedule (those of the module alone:
// pipe-plan-memory-invalid.mlir).
// RUN: not pipec-opt %t/bare.mlir --pipe-schedule="kind=1f1b microbatches=2" --pipe-plan-memory -mlir-print-op-on-diagnostic=false 2>&1 | FileCheck %s --check-prefix=BARE
// BARE: error: --pipe-plan-memory: chunk @c0 has no integer 'pipe.saved_bytes' (run --pipe-partition first)
// RUN: not pipec-opt %t/unknown.mlir --pipe-schedule="kind=1f1b microbatches=2" --pipe-plan-memory -mlir-print-op-on-diagnostic=false 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// UNKNOWN: error: --pipe-plan-memory: chunk @c1 reads "w9", which is not an nn.parameter of the module

//--- two.mlir
module {
  nn.parameter @w0 : tensor<250xf32> <{init = "zeros"}>
  nn.parameter @w1 : tensor<125xf32> <{init = "zeros"}>
  pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0] attributes {pipe.deferred_w, pipe.in_bytes = 0 : i64, pipe.out_bytes = 7 : i64, pipe.saved_bytes = 100 : i64, pipe.w_grad_bytes = 10 : i64, pipe.workspace_bytes = 3 : i64, pipe.params = ["w0"]}
  pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0] attributes {pipe.deferred_w, pipe.in_bytes = 7 : i64, pipe.out_bytes = 0 : i64, pipe.saved_bytes = 200 : i64, pipe.w_grad_bytes = 20 : i64, pipe.workspace_bytes = 5 : i64, pipe.params = ["w1"]}
}

//--- bare.mlir
module {
  pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
  pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]
}

//--- unknown.mlir
module {
  nn.parameter @w0 : tensor<250xf32> <{init = "zeros"}>
  pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0] attributes {pipe.in_bytes = 0 : i64, pipe.out_bytes = 7 : i64, pipe.saved_bytes = 100 : i64, pipe.w_grad_bytes = 0 : i64, pipe.workspace_bytes = 3 : i64, pipe.params = ["w0"]}
  pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0] attributes {pipe.in_bytes = 7 : i64, pipe.out_bytes = 0 : i64, pipe.saved_bytes = 200 : i64, pipe.w_grad_bytes = 0 : i64, pipe.workspace_bytes = 5 : i64, pipe.params = ["w9"]}
}
