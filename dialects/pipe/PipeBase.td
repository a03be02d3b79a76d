//===- PipeBase.td - the pipe dialect and its op base class -*- tablegen -*-===//

#ifndef PIPEC_PIPE_BASE
#define PIPEC_PIPE_BASE

include "mlir/IR/OpBase.td"

def Pipe_Dialect : Dialect {
  let name = "pipe";
  let cppNamespace = "::pipec::pipe";
  let useDefaultAttributePrinterParser = 1;
  let summary = "Pipeline parallelism: chunks, schedules and per-rank programs";
  let description = [{
    `pipe` describes how one training step runs on a pipeline of ranks.
    A `pipe.chunk` is a stage's slice of the step (its F, B and W costs, and
    later the `nn` ops the partitioner moves into it), placed on one rank.
    A `pipe.group` names a set of ranks for collectives. After
    `--pipe-schedule`, a `pipe.schedule` op records the schedule that was
    chosen and its modelled bubble and step time, and one `pipe.program`
    per rank holds that rank's ordered instruction stream: compute
    (`fwd`, `bwd_b`, `bwd_w`), asynchronous point-to-point posts with
    explicit `wait`s, `all_reduce` and `opt_step`. Streams are compact
    tables rather than one op per instruction, because a 96-rank,
    512-micro-batch schedule holds hundreds of thousands of instructions.
  }];
}

/// Base class of every pipe op: all of them live at module level.
class Pipe_Op<string mnemonic, list<Trait> traits = []>
    : Op<Pipe_Dialect, mnemonic,
         !listconcat(traits, [HasParent<"::mlir::ModuleOp">])>;

#endif // PIPEC_PIPE_BASE
