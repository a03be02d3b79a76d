//===- PipeOps.td - the ops of the pipe dialect -----------*- tablegen -*-===//

#ifndef PIPEC_PIPE_OPS
#define PIPEC_PIPE_OPS

include "dialects/pipe/PipeBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/RegionKindInterface.td"

//===----------------------------------------------------------------------===//
// Chunks and groups
//===----------------------------------------------------------------------===//

def Pipe_ChunkOp : Pipe_Op<"chunk", [Symbol, NoTerminator, NoRegionArguments]> {
  let summary = "a stage's slice of the training step, placed on one rank";
  let description = [{
    Chunks are numbered by their order in the module: the first `pipe.chunk`
    is chunk 0, the one that receives the model's input. `rank` is the rank
    that holds it and `costs` its modelled time for the forward (F), the
    gradient with respect to activations (B) and the gradient with respect
    to weights (W) of one micro-batch. The optional body will hold the `nn`
    ops the partitioner assigns to the chunk.

    ```mlir
    pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
    pipe.chunk @c1 rank = 1 costs = [1.5, 1.5, 1.0] {
      ...
    }
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, I32Prop:$rank,
                       DenseF64ArrayAttr:$costs);
  let regions = (region MaxSizedRegion<1>:$body);
  let assemblyFormat = [{
    $sym_name `rank` `=` $rank `costs` `=` $costs attr-dict-with-keyword ($body^)?
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    double getForwardCost() { return getCosts()[0]; }
    double getBackwardBCost() { return getCosts()[1]; }
    double getBackwardWCost() { return getCosts()[2]; }
  }];
}

def Pipe_GroupOp : Pipe_Op<"group", [Symbol]> {
  let summary = "a set of ranks that joins a collective";
  let description = [{
    Names the ranks of an `all_reduce`: all ranks for the global gradient
    norm, the first and last rank for tied embedding gradients, the
    replicas of a stage for data parallelism. Ranks are listed ascending.

    ```mlir
    pipe.group @world ranks = [0, 1, 2, 3]
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, DenseI32ArrayAttr:$ranks);
  let assemblyFormat = "$sym_name `ranks` `=` $ranks attr-dict";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Schedules and programs
//===----------------------------------------------------------------------===//

def Pipe_ScheduleOp : Pipe_Op<"schedule"> {
  let summary = "the schedule the programs follow, with its modelled figures";
  let description = [{
    Written by `--pipe-schedule`: the kind (`gpipe`, `1f1b`,
    `interleaved-1f1b`, `zb-h1`, `zb-v`, `dualpipe-v`, or `csv` for an
    imported file), the pipeline's rank count, the micro-batches per step,
    the chunks per rank, and what the abstract machine measured with the
    chunks' costs: the bubble fraction (idle time over ranks x step time)
    and the step time. With data parallelism, `replicas = D` (printed when
    D > 1): the programs are one pipeline's, ranks 0..stages-1; the plan
    runs D copies of it, rank `replica * stages + rank`, each chunk's
    gradients all-reduced over its replicas after its last W (the schedule
    library's Replicate.h), and the figures are those of all D x stages
    ranks with those collectives. `zero = 1` (printed when set, D > 1):
    ZeRO-1, the AdamW moments split among the replicas (reduce-scatter of
    the gradients, all-gather of the updated parameters; Replicate.h).

    ```mlir
    pipe.schedule "1f1b" stages = 4 microbatches = 8 chunks_per_rank = 1
        bubble = 2.727273e-01 step_time = 3.300000e+01
    ```
  }];
  let arguments = (ins StrAttr:$kind, I32Prop:$stages, I32Prop:$microbatches,
                       I32Prop:$chunks_per_rank, F64Attr:$bubble,
                       F64Attr:$step_time,
                       DefaultValuedProp<I32Prop, "1">:$replicas,
                       DefaultValuedProp<I32Prop, "0">:$zero);
  let assemblyFormat = [{
    $kind `stages` `=` $stages `microbatches` `=` $microbatches
    `chunks_per_rank` `=` $chunks_per_rank (`replicas` `=` $replicas^)?
    (`zero` `=` $zero^)?
    `bubble` `=` $bubble `step_time` `=` $step_time attr-dict
  }];
  let hasVerifier = 1;
}

def Pipe_ProgramOp : Pipe_Op<"program",
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "one rank's ordered instruction stream";
  let description = [{
    The instructions one rank executes in one training step, in order.
    Point-to-point communication is asynchronous: `post` starts a transfer
    and names a request id, unique within the program; `wait req N` blocks
    until request N completed. Every request is waited exactly once, after
    its post, so transfers overlap the compute between the two. Messages
    name the chunk that produced them: `recv_act from 0 @c0 mb 3` is chunk
    c0's output activation of micro-batch 3, `send_grad to 0 @c1 mb 3` the
    gradient chunk c1 computed for micro-batch 3. `all_reduce @g bucket K`
    blocks until every rank of group `@g` joined.

    ```mlir
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
    ```

    The stream is stored as a table of `kInstrFields` integers per
    instruction (opcode, peer, symbol index, micro-batch or bucket, request)
    that indexes `symbols`, the chunks and groups the program names; unused
    fields hold -1. The custom syntax above prints one instruction per line.
  }];
  let arguments = (ins I32Prop:$rank, FlatSymbolRefArrayAttr:$symbols,
                       DenseI32ArrayAttr:$table);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The number of instructions in the stream.
    size_t getNumInstrs() { return getTable().size() / kInstrFields; }
    /// Instruction `i` of the stream.
    Instr getInstr(size_t i) {
      return Instr::decode(getTable().slice(i * kInstrFields,
                                          kInstrFields));
    }
    /// The chunk or group symbol that instruction field `sym` indexes.
    ::mlir::FlatSymbolRefAttr getSymbol(int32_t sym) {
      return ::llvm::cast<::mlir::FlatSymbolRefAttr>(getSymbols()[sym]);
    }
    /// One instruction in the syntax the printer uses, for diagnostics.
    std::string formatInstr(const Instr &instr);
  }];
}

#endif // PIPEC_PIPE_OPS
