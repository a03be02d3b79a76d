//===- PipeAttrs.td - the attributes of the pipe dialect ----*- tablegen -*-===//

#ifndef PIPEC_PIPE_ATTRS
#define PIPEC_PIPE_ATTRS

include "dialects/pipe/PipeBase.td"
include "mlir/IR/AttrTypeBase.td"

def Pipe_BufferAttr : AttrDef<Pipe_Dialect, "Buffer"> {
  let mnemonic = "buffer";
  let summary = "one planned block of a rank's arena";
  let description = [{
    `--pipe-plan-memory` writes one per block on each `pipe.program`
    (`pipe.buffers`), the emitter reads them back. `kind` is what the bytes
    hold (`weights`, `gradients`, `optimizer`, `workspace`, `activations`,
    `output_grads`, `receive`, `send`); `role` the per-micro-batch buffer it
    is (`saved`, `in_act`, ...; `static` for the blocks that live the whole
    step, whose chunk is -1); the micro-batches of one (role, chunk) share
    slots; `offset` and `bytes` place it in the arena; it is live from
    instruction `first` to `last` of the rank's stream.

    ```mlir
    #pipe.buffer<kind = "activations", role = "saved", chunk = 0, slot = 1, offset = 4103, bytes = 100, first = 3, last = 13>
    ```
  }];
  let parameters = (ins StringRefParameter<"what the bytes hold">:$kind,
                        StringRefParameter<"the buffer role">:$role,
                        "int64_t":$chunk, "int64_t":$slot, "int64_t":$offset,
                        "int64_t":$bytes, "int64_t":$first, "int64_t":$last);
  let assemblyFormat = "`<` struct(params) `>`";
}

def Pipe_SlotsAttr : AttrDef<Pipe_Dialect, "Slots"> {
  let mnemonic = "slots";
  let summary = "which slot of a (role, chunk) buffer each micro-batch uses";
  let description = [{
    `--pipe-plan-memory` writes one per (role, chunk) that has per-micro-
    batch buffers on each `pipe.program` (`pipe.slots`): micro-batch j's
    buffer is the `#pipe.buffer` of that role and chunk with slot
    `slots[j]`.

    ```mlir
    #pipe.slots<role = "saved", chunk = 0, slots = array<i32: 0, 1>>
    ```
  }];
  let parameters = (ins StringRefParameter<"the buffer role">:$role,
                        "int64_t":$chunk,
                        "::mlir::DenseI32ArrayAttr":$slots);
  let assemblyFormat = "`<` struct(params) `>`";
}

#endif // PIPEC_PIPE_ATTRS
