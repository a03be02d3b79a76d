// RUN: pipec-opt %s --split-input-file --verify-diagnostics --pipe-partition="stages=2"

// Tests the refusals of --pipe-partition that the module itself causes,
// one case per split beside its IR (the refusals of its options and the
// memory cap: pipe-partition.mlir).

// expected-error @+1 {{--pipe-partition needs func.func @forward (the importer's output)}}
module {
  func.func @other() {
    return
  }
}

// -----

// A pipeline partitioned already.
// expected-error @+1 {{--pipe-partition: the module already has pipe.chunk ops; the pass runs once}}
module {
  pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
  pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]
}
