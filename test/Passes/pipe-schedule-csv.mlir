// Tests --pipe-schedule=csv=FILE: a schedule written elsewhere (PyTorch's
// torch.distributed.pipelining CSV) imported, lowered and proved free of
// deadlock like a generated one, and every file or combination it refuses,
// with the reason (the other kinds: pipe-schedule.mlir).

// RUN: rm -rf %t && split-file %s %t

// Tests that a torch.distributed.pipelining CSV file (I and W split, an
// idle None slot) compiles like a generated kind.
// RUN: pipec-opt %t/two.mlir --pipe-schedule=csv=%S/Inputs/pipe-schedule-zb.csv | pipec-opt | FileCheck %s --check-prefix=CSV
// CSV: pipe.schedule "csv" stages = 2 microbatches = 2 chunks_per_rank = 1 bubble = 0.3333{{[0-9]+}} step_time = 9.000000e+00
// CSV-LABEL: pipe.program rank = 0 {
// CSV-NEXT:    fwd @c0 mb 0
// CSV-NEXT:    post send_act to 1 @c0 mb 0 req 0
// CSV-NEXT:    post recv_grad from 1 @c1 mb 0 req 1
// CSV-NEXT:    fwd @c0 mb 1
// CSV-NEXT:    post send_act to 1 @c0 mb 1 req 2
// CSV-NEXT:    post recv_grad from 1 @c1 mb 1 req 3
// CSV-NEXT:    wait req 0
// CSV-NEXT:    wait req 1
// CSV-NEXT:    bwd_b @c0 mb 0
// CSV-NEXT:    wait req 2
// CSV-NEXT:    wait req 3
// CSV-NEXT:    bwd_b @c0 mb 1
// CSV-NEXT:    bwd_w @c0 mb 0
// CSV-NEXT:    bwd_w @c0 mb 1
// CSV-NEXT:    all_reduce @world bucket 0
// CSV-NEXT:    opt_step
// CSV-NEXT:  }

//===----------------------------------------------------------------------===//
// CSV files: refusals and broken schedules.
//===----------------------------------------------------------------------===//

// RUN: not pipec-opt %t/two.mlir --pipe-schedule="kind=1f1b csv=%S/Inputs/pipe-schedule-zb.csv" 2>&1 | FileCheck %s --check-prefix=BOTH
// BOTH: error: --pipe-schedule: kind=1f1b and csv={{.*}}pipe-schedule-zb.csv both choose the schedule; give one of them

// RUN: not pipec-opt %t/two.mlir --pipe-schedule=csv=%t/absent.csv 2>&1 | FileCheck %s --check-prefix=NO-FILE
// NO-FILE: error: --pipe-schedule: the schedule file: cannot read '{{.*}}absent.csv': {{.+}}

// RUN: not pipec-opt %t/two.mlir --pipe-schedule="csv=%S/Inputs/pipe-schedule-zb.csv chunks-per-rank=2" 2>&1 | FileCheck %s --check-prefix=CSV-V
// CSV-V: error: --pipe-schedule: chunks-per-rank=2 but the schedule file places up to 1 chunks on a rank

// RUN: not pipec-opt %t/vshape.mlir --pipe-schedule=csv=%S/Inputs/pipe-schedule-zb.csv 2>&1 | FileCheck %s --check-prefix=CSV-COUNT
// CSV-COUNT: error: --pipe-schedule: the schedule file needs 2 chunks, but the module declares 4 pipe.chunk ops

// RUN: not pipec-opt %t/two.mlir --pipe-schedule="csv=%S/Inputs/pipe-schedule-zb.csv microbatches=3" 2>&1 | FileCheck %s --check-prefix=CSV-MB
// CSV-MB: error: --pipe-schedule: the schedule file is rejected: {{.*}}pipe-schedule-zb.csv: --microbatches 3 but the file uses micro-batches 0..1

// A cycle: rank 1 starts with micro-batch 1 while rank 0 waits for the
// gradient of micro-batch 0; the abstract machine finds both waits.
// RUN: not pipec-opt %t/two.mlir --pipe-schedule=csv=%S/Inputs/pipe-schedule-cycle.csv 2>&1 | FileCheck %s --check-prefix=CYCLE
// CYCLE: error: --pipe-schedule: the csv schedule is rejected: deadlock: no rank can proceed
// CYCLE-NEXT: rank 0 #{{[0-9]+}} wait(recv_grad from 1, chunk 1, mb 0) [req 1] waits for rank 1 to post the matching send_grad
// CYCLE-NEXT: rank 1 #{{[0-9]+}} wait(recv_act from 0, chunk 0, mb 1) [req 1] waits for rank 0 to post the matching send_act

// RUN: not pipec-opt %t/two.mlir --pipe-schedule=csv=%S/Inputs/pipe-schedule-missing.csv 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: error: --pipe-schedule: the schedule file is rejected: {{.*}}pipe-schedule-missing.csv:2: rank 1 never runs B of chunk 1 micro-batch 1

// RUN: not pipec-opt %t/two.mlir --pipe-schedule=csv=%S/Inputs/pipe-schedule-duplicate.csv 2>&1 | FileCheck %s --check-prefix=DUPLICATE
// DUPLICATE: error: --pipe-schedule: the schedule file is rejected: {{.*}}pipe-schedule-duplicate.csv:1: rank 0 step 2 (F0.0) duplicates F of chunk 0 micro-batch 0 (first at step 0)

// RUN: not pipec-opt %t/two.mlir --pipe-schedule=csv=%S/Inputs/pipe-schedule-backward-first.csv 2>&1 | FileCheck %s --check-prefix=BACKWARD
// BACKWARD: error: --pipe-schedule: the schedule file is rejected: {{.*}}pipe-schedule-backward-first.csv:2: rank 1 step 0 (B1.0) runs B of chunk 1 micro-batch 0 before its F

//--- two.mlir
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]

//--- vshape.mlir
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]
pipe.chunk @c2 rank = 1 costs = [1.0, 1.0, 1.0]
pipe.chunk @c3 rank = 0 costs = [1.0, 1.0, 1.0]
