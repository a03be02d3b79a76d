// Tests that --pipe-schedule turns the module's pipe.group ops (the tied
// parameters --pipe-partition declares) into collectives of exactly their
// member ranks: `all_reduce @tied.NAME bucket 0` after the rank's last W and
// before the step's `all_reduce @world`, for 1f1b and zb-v; GPT-tiny's tied
// wte.weight on the first and last of 4 ranks, end to end; two groups in
// ascending order; and a group naming a rank outside the pipeline.

// RUN: rm -rf %t && split-file %s %t

// RUN: pipec-opt %t/four.mlir --pipe-schedule="kind=1f1b microbatches=4" | pipec-opt | FileCheck %s --check-prefix=ONE
// ONE: pipe.group @tied.wte ranks = [0, 3]
// ONE: pipe.group @world ranks = [0, 1, 2, 3]
// ONE-LABEL: pipe.program rank = 0 {
// ONE:         bwd_w @c0 mb 3
// ONE-NEXT:    all_reduce @tied.wte bucket 0
// ONE-NEXT:    all_reduce @world bucket 0
// ONE-NEXT:    opt_step
// ONE-LABEL: pipe.program rank = 1 {
// ONE-NOT:     @tied.wte
// ONE:         all_reduce @world bucket 0
// ONE-NEXT:    opt_step
// ONE-LABEL: pipe.program rank = 2 {
// ONE-NOT:     @tied.wte
// ONE:         all_reduce @world bucket 0
// ONE-NEXT:    opt_step
// ONE-LABEL: pipe.program rank = 3 {
// ONE:         bwd_w @c3 mb 3
// ONE-NOT:     {{fwd|bwd_b|bwd_w|all_reduce}}
// ONE:         all_reduce @tied.wte bucket 0
// ONE-NEXT:    all_reduce @world bucket 0
// ONE-NEXT:    opt_step

// zb-v: rank r holds chunks r and 7-r; the tied group joins after the
// rank's last W, whichever chunk it belongs to.
// RUN: pipec-opt %t/vshape.mlir --pipe-schedule="kind=zb-v microbatches=8" | pipec-opt | FileCheck %s --check-prefix=ZBV
// ZBV: pipe.group @tied.wte ranks = [0, 3]
// ZBV: pipe.schedule "zb-v" stages = 4 microbatches = 8
// ZBV-LABEL: pipe.program rank = 0 {
// ZBV:         bwd_w @c0 mb 7
// ZBV-NEXT:    all_reduce @tied.wte bucket 0
// ZBV-NEXT:    all_reduce @world bucket 0
// ZBV-NEXT:    opt_step
// ZBV-LABEL: pipe.program rank = 1 {
// ZBV-NOT:     @tied.wte
// ZBV:         all_reduce @world bucket 0
// ZBV-LABEL: pipe.program rank = 2 {
// ZBV-NOT:     @tied.wte
// ZBV:         all_reduce @world bucket 0
// ZBV-LABEL: pipe.program rank = 3 {
// ZBV:         bwd_w @c3 mb 7
// ZBV-NOT:     {{fwd|bwd_b|bwd_w|all_reduce}}
// ZBV:         all_reduce @tied.wte bucket 0
// ZBV-NEXT:    all_reduce @world bucket 0
// ZBV-NEXT:    opt_step

// The count: one tied collective per member per step, none elsewhere.
// RUN: pipec-opt %t/vshape.mlir --pipe-schedule="kind=zb-v microbatches=8" | grep -c "all_reduce @tied.wte" | FileCheck %s --check-prefix=COUNT
// COUNT: 2

// GPT-tiny end to end: the partitioner declares @tied.wte.weight on ranks 0
// and 3 (embedding and LM head), and the scheduled programs of those two
// ranks, and only those, reduce it; the memory planner accepts them.
// RUN: pipec import %models/gpt-tiny.json | pipec-opt --nn-autodiff --pipe-partition="stages=4 kind=1f1b microbatches=8" --pipe-schedule="kind=1f1b microbatches=8" --nn-lower-to-kernels -o %t/gpt.mlir
// RUN: FileCheck %s --check-prefix=GPT < %t/gpt.mlir
// RUN: pipec-opt %t/gpt.mlir --pipe-plan-memory | FileCheck %s --check-prefix=GPT
// GPT: pipe.group @tied.wte.weight ranks = [0, 3]
// GPT-LABEL: pipe.program rank = 0
// GPT:         all_reduce @tied.wte.weight bucket 0
// GPT-NEXT:    all_reduce @world bucket 0
// GPT-NEXT:    opt_step
// GPT-LABEL: pipe.program rank = 1
// GPT-NOT:     @tied
// GPT:         all_reduce @world bucket 0
// GPT-LABEL: pipe.program rank = 2
// GPT-NOT:     @tied
// GPT:         all_reduce @world bucket 0
// GPT-LABEL: pipe.program rank = 3
// GPT:         all_reduce @tied.wte.weight bucket 0
// GPT-NEXT:    all_reduce @world bucket 0
// GPT-NEXT:    opt_step

// Two groups: a rank in both joins them in the order the module declares
// them, the same on every member.
// RUN: pipec-opt %t/two-groups.mlir --pipe-schedule="kind=gpipe microbatches=2" | FileCheck %s --check-prefix=TWO
// TWO-LABEL: pipe.program rank = 0 {
// TWO:         all_reduce @tied.a bucket 0
// TWO-NEXT:    all_reduce @tied.b bucket 0
// TWO-NEXT:    all_reduce @world bucket 0
// TWO-LABEL: pipe.program rank = 1 {
// TWO-NOT:     @tied.a
// TWO:         all_reduce @tied.b bucket 0
// TWO-NEXT:    all_reduce @world bucket 0
// TWO-LABEL: pipe.program rank = 2 {
// TWO:         all_reduce @tied.a bucket 0
// TWO-NOT:     @tied.b
// TWO:         all_reduce @world bucket 0

// RUN: not pipec-opt %t/outside.mlir --pipe-schedule="kind=1f1b microbatches=2" 2>&1 | FileCheck %s --check-prefix=OUT
// OUT: error: --pipe-schedule: group @tied.wte names rank 5, but the pipeline's ranks are 0..1

//--- four.mlir
pipe.group @tied.wte ranks = [0, 3]
pipe.chunk @c0 rank = 0 costs = [1.0, 2.0, 1.5]
pipe.chunk @c1 rank = 1 costs = [1.5, 1.0, 2.0]
pipe.chunk @c2 rank = 2 costs = [2.0, 1.5, 1.0]
pipe.chunk @c3 rank = 3 costs = [1.0, 1.0, 2.5]

//--- vshape.mlir
pipe.group @tied.wte ranks = [0, 3]
pipe.chunk @c0 rank = 0 costs = [1.0, 2.0, 1.5]
pipe.chunk @c1 rank = 1 costs = [1.5, 1.0, 2.0]
pipe.chunk @c2 rank = 2 costs = [2.0, 1.5, 1.0]
pipe.chunk @c3 rank = 3 costs = [1.0, 1.0, 2.5]
pipe.chunk @c4 rank = 3 costs = [1.5, 2.0, 1.0]
pipe.chunk @c5 rank = 2 costs = [1.0, 1.5, 2.0]
pipe.chunk @c6 rank = 1 costs = [2.5, 1.0, 1.0]
pipe.chunk @c7 rank = 0 costs = [1.0, 2.5, 1.5]

//--- two-groups.mlir
pipe.group @tied.a ranks = [0, 2]
pipe.group @tied.b ranks = [0, 1]
pipe.chunk @c0 rank = 0 costs = [1.0, 2.0, 1.5]
pipe.chunk @c1 rank = 1 costs = [1.5, 1.0, 2.0]
pipe.chunk @c2 rank = 2 costs = [2.0, 1.5, 1.0]

//--- outside.mlir
pipe.group @tied.wte ranks = [0, 5]
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]
