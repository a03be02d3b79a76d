// RUN: pipec-opt %s --split-input-file --verify-diagnostics --pipe-schedule="kind=1f1b microbatches=2"

// Tests the refusals of --pipe-schedule that the module itself causes (one
// case per split, the error where the pass reports it); the refusals of
// its options are in pipe-schedule.mlir.

// expected-error @+1 {{--pipe-schedule needs pipe.chunk ops (a stage's slice of the step, its rank and its F, B, W costs); the module has none}}
module {
  pipe.group @world ranks = [0]
}

// -----

// expected-error @+1 {{--pipe-schedule: no pipe.chunk is declared on rank 1, but some are on rank 2; ranks must be numbered 0..2}}
module {
  pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
  pipe.chunk @c2 rank = 2 costs = [1.0, 1.0, 1.0]
}

// -----

// A rank number near the int32 limit is a gap, not an overflow.
// expected-error @+1 {{--pipe-schedule: no pipe.chunk is declared on rank 1, but some are on rank 2147483647; ranks must be numbered 0..2147483647}}
module {
  pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
  pipe.chunk @c1 rank = 2147483647 costs = [1.0, 1.0, 1.0]
}

// -----

// Two chunks need two ops of @forward to hold.
// expected-error @+1 {{--pipe-schedule: 1f1b with 2 stages x 1 chunks per rank needs 2 chunks, but the model has only 1 ops}}
module {
  func.func @forward(%x: tensor<4xf32>) -> tensor<4xf32> {
    %g = nn.gelu %x : tensor<4xf32>
    return %g : tensor<4xf32>
  }
  pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
  pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]
}
