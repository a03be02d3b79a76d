// RUN: pipec-opt %s --split-input-file --verify-diagnostics --pipe-plan-memory

// Tests the refusals of --pipe-plan-memory that the module itself causes,
// one case per split beside its IR (the flow's own cases and the memory
// cap: pipe-plan-memory.mlir).

// Chunks, but no schedule or programs yet.
// expected-error @+1 {{--pipe-plan-memory needs pipe.chunk, pipe.schedule and pipe.program ops}}
module {
  nn.parameter @w0 : tensor<250xf32> <{init = "zeros"}>
  nn.parameter @w1 : tensor<125xf32> <{init = "zeros"}>
  pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0] attributes {pipe.deferred_w, pipe.in_bytes = 0 : i64, pipe.out_bytes = 7 : i64, pipe.saved_bytes = 100 : i64, pipe.w_grad_bytes = 10 : i64, pipe.workspace_bytes = 3 : i64, pipe.params = ["w0"]}
  pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0] attributes {pipe.deferred_w, pipe.in_bytes = 7 : i64, pipe.out_bytes = 0 : i64, pipe.saved_bytes = 200 : i64, pipe.w_grad_bytes = 20 : i64, pipe.workspace_bytes = 5 : i64, pipe.params = ["w1"]}
}

// -----

// Programs that are not a schedule: rank 0 steps the optimizer before its
// W has run.
// expected-error @+1 {{--pipe-plan-memory: the programs are not a valid schedule: rank 0 #4 opt_step: opt_step before bwd_w(chunk 0, mb 0)}}
module {
  nn.parameter @w0 : tensor<250xf32> <{init = "zeros"}>
  pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0] attributes {pipe.in_bytes = 0 : i64, pipe.out_bytes = 7 : i64, pipe.saved_bytes = 100 : i64, pipe.w_grad_bytes = 0 : i64, pipe.workspace_bytes = 3 : i64, pipe.params = ["w0"]}
  pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0] attributes {pipe.in_bytes = 7 : i64, pipe.out_bytes = 0 : i64, pipe.saved_bytes = 200 : i64, pipe.w_grad_bytes = 0 : i64, pipe.workspace_bytes = 5 : i64, pipe.params = ["w0"]}
  pipe.group @world ranks = [0, 1]
  pipe.schedule "1f1b" stages = 2 microbatches = 1 chunks_per_rank = 1 bubble = 0.0 step_time = 1.0
  pipe.program rank = 0 {
    fwd @c0 mb 0
    post send_act to 1 @c0 mb 0 req 0
    wait req 0
    all_reduce @world bucket 0
    opt_step
  }
  pipe.program rank = 1 {
    post recv_act from 0 @c0 mb 0 req 0
    wait req 0
    fwd @c1 mb 0
    all_reduce @world bucket 0
    opt_step
  }
}
