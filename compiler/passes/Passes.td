//===- Passes.td - the passes of pipec's flow -------------*- tablegen -*-===//

#ifndef PIPEC_COMPILER_PASSES
#define PIPEC_COMPILER_PASSES

include "mlir/Pass/PassBase.td"

def NNAutodiffPass : Pass<"nn-autodiff", "::mlir::ModuleOp"> {
  let summary = "Builds @train_step (forward, loss, backward split into B and W) "
                "and @optimizer_step from @forward";
  let description = [{
    Asks every op of `@forward` for its training form and its
    vector-Jacobian product through `GradOpInterface` and writes two new
    functions (docs/AUTODIFF.md has the full contract):

    * `@train_step(inputs..., %loss_scale: tensor<f64>) -> loss`: one
      micro-batch. Ops whose backward reads state get training forms that
      return it (`nn.layernorm_train` keeps mean and rstd,
      `nn.attention_train` the log-sum-exp); the loss becomes
      `nn.softmax_cross_entropy`, which also returns dlogits scaled by
      `%loss_scale / (B*T)`. The backward walks the ops in reverse and emits
      B ops (activation gradients) and W ops (adds into one accumulator per
      use of a parameter). Every op gets `nn.role` ("F", "B" or "W") and
      `nn.op_id` (the index of its `@forward` op).
    * `@optimizer_step(%step: tensor<i64>) -> (grad_norm, lr)`: the per-use
      accumulators of each parameter added in use order, the global norm over
      the parameters in declaration order, clipping, the learning-rate
      schedule and AdamW, with the values of the module's `nn.train`.

    `recompute=gelu,layernorm,attention` (or `all`) runs those ops plain in
    the forward pass and recomputes them (`nn.recompute`) right before the
    first backward op that reads their results or state.

    Before:

    ```mlir
    nn.parameter @w : tensor<64x256xf32> <{init = "normal", std = 2.0e-02 : f64}>
    func.func @forward(%x: tensor<2x8x64xf32>, %t: tensor<2x8xi32>) -> tensor<f32> {
      %w = nn.param @w : tensor<64x256xf32>
      %l = nn.matmul %x, %w : (tensor<2x8x64xf32>, tensor<64x256xf32>) -> tensor<2x8x256xf32>
      %loss = nn.cross_entropy %l, %t : (tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<f32>
      return %loss : tensor<f32>
    }
    ```

    After (besides the unchanged @forward):

    ```mlir
    func.func @train_step(%x: tensor<2x8x64xf32>, %t: tensor<2x8xi32>,
                          %scale: tensor<f64> {nn.name = "loss_scale"}) -> (tensor<f32> {nn.name = "loss"}) {
      %w = nn.param @w {nn.op_id = 0 : i64, nn.role = "F"} : tensor<64x256xf32>
      %l = nn.matmul %x, %w {nn.op_id = 1 : i64, nn.role = "F"} : ...
      %loss, %dl = nn.softmax_cross_entropy %l, %t, %scale {nn.op_id = 2 : i64, nn.role = "F"} : ...
      nn.matmul_grad_w %x, %dl into @w[0] {nn.op_id = 1 : i64, nn.role = "W"} : ...
      return %loss : tensor<f32>
    }
    func.func @optimizer_step(%step: tensor<i64> {nn.name = "step"}) -> (tensor<f64> {nn.name = "grad_norm"}, tensor<f64> {nn.name = "lr"}) {
      %g = nn.sum_uses @w uses = 1 : tensor<64x256xf32>
      %s = nn.sum_squares %g : tensor<64x256xf32>
      %n = nn.grad_norm %s
      %c = nn.clip_scale %n max_norm = 1.000000e+00
      %lr = nn.lr_schedule %step lr = ... decay = "cosine" ...
      nn.adamw @w, %g, %lr, %c, %step beta1 = ... weight_decay = 1.000000e-01 : tensor<64x256xf32>
      return %n, %lr : tensor<f64>, tensor<f64>
    }
    ```

    Fails with a diagnostic, and changes nothing, on a module it cannot
    differentiate (no `@forward`, a loss that is not `nn.cross_entropy`, a
    matmul weight that is computed, a missing `nn.train` key, ...).
  }];
  let dependentDialects = ["::pipec::nn::NNDialect", "::mlir::func::FuncDialect"];
  let options = [
    ListOption<"recompute", "recompute", "std::string",
               "ops (names without `nn.`, or `all`) recomputed in the backward "
               "pass instead of keeping their results and state">,
  ];
}

def NNStoragePass : Pass<"nn-storage", "::mlir::ModuleOp"> {
  let summary = "Gives @forward's activations the target's storage type "
                "(bf16 for the cuda target)";
  let description = [{
    Runs before `--nn-autodiff`, so that every value autodiff derives (the
    activation gradients included) inherits the storage of the value it
    differentiates (docs/NUMERICS.md). With `type=bf16` every f32 tensor of
    `@forward` (its float arguments, its op results and its `nn.param`
    reads, which become the bf16 working copies of the fp32 masters) becomes
    bf16, except 0-d tensors (the loss and other scalars stay fp32). The
    parameters' declarations stay fp32: masters, gradient accumulators and
    AdamW moments are fp32. Statistics (layernorm's mean and rstd, rmsnorm's
    rstd, attention's log-sum-exp) are typed bf16 here, as the nn ops ask
    for one element type, and become fp32 where `--nn-lower-to-kernels`
    picks their kernel. Sizes follow the types, so the partitioner's costs
    and the memory plan count bf16 activations at 2 bytes.

    `type=f32` (the default) changes nothing. Fails with a diagnostic on an
    unknown type, a module without `@forward` or with a `@train_step`
    already, a `@forward` holding float tensors other than f32 (an f64
    model, or one converted already), or an op that refuses the new types.

    ```mlir
    %w = nn.param @w : tensor<64x256xf32>
    %l = nn.matmul %x, %w : (tensor<2x8x64xf32>, tensor<64x256xf32>) -> tensor<2x8x256xf32>
    // becomes
    %w = nn.param @w : tensor<64x256xbf16>
    %l = nn.matmul %x, %w : (tensor<2x8x64xbf16>, tensor<64x256xbf16>) -> tensor<2x8x256xbf16>
    ```
  }];
  let dependentDialects = ["::pipec::nn::NNDialect", "::mlir::func::FuncDialect"];
  let options = [
    Option<"type", "type", "std::string", "\"f32\"",
           "the storage of activations and weight copies: f32 or bf16">,
  ];
}

def NNPadVocabPass : Pass<"nn-pad-vocab", "::mlir::ModuleOp"> {
  let summary = "Pads the vocabulary of the loss's logits to a multiple "
                "(128 on the cuda target) for aligned GEMMs";
  let description = [{
    Runs after `--nn-storage`, before `--nn-autodiff`. For each
    `nn.cross_entropy` whose class count V is not a multiple of `multiple`
    and whose logits are an `nn.matmul` of a parameter (the tied `[V, D]`
    embedding table read with `transpose_rhs`, or a `[D, V]` head, with an
    optional `[V]` bias), it pads that parameter's vocabulary dim to the
    multiple Vp: the declaration keeps the model's shape as
    `logical_shape`, the reads, the matmul and the logits become Vp wide,
    and the loss gets `classes = V`, so padded columns are outside the
    softmax and get a zero gradient. The padding of the parameters is zero
    and stays zero, so the loss, the gradients and the logical parameters
    are the unpadded model's (docs/NUMERICS.md). A loss it cannot pad is
    left unpadded with a warning that says why.

    ```mlir
    nn.parameter @wte : tensor<65x64xf32> <{init = "normal", std = 2.0e-02 : f64}>
    %w = nn.param @wte : tensor<65x64xf32>
    %l = nn.matmul %h, %w transpose_rhs : (tensor<2x8x64xf32>, tensor<65x64xf32>) -> tensor<2x8x65xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x8x65xf32>, tensor<2x8xi32>) -> tensor<f32>
    // becomes, with multiple=128
    nn.parameter @wte : tensor<128x64xf32> <{init = "normal", logical_shape = array<i64: 65, 64>, std = 2.0e-02 : f64}>
    %w = nn.param @wte : tensor<128x64xf32>
    %l = nn.matmul %h, %w transpose_rhs : (tensor<2x8x64xf32>, tensor<128x64xf32>) -> tensor<2x8x128xf32>
    %loss = nn.cross_entropy %l, %t {classes = 65 : i64} : (tensor<2x8x128xf32>, tensor<2x8xi32>) -> tensor<f32>
    ```
  }];
  let dependentDialects = ["::pipec::nn::NNDialect"];
  let options = [
    Option<"multiple", "multiple", "int64_t", "0",
           "pad the vocabulary to a multiple of this (0: leave it)">,
  ];
}

def NNFusePass : Pass<"nn-fuse", "::mlir::ModuleOp"> {
  let summary = "Replaces op pairs of @train_step's forward by the fused ops "
                "one kernel computes";
  let description = [{
    Runs after `--nn-autodiff`, before `--pipe-partition`. In `@forward` it
    finds adjacent compute ops (parameter reads between them allowed) that
    one fused kernel computes with the bits of the two:

    | pair | fused op |
    | --- | --- |
    | `nn.matmul` (with or without bias) then `nn.gelu` of its result | `nn.matmul_gelu` (returns the pre-activation too) |
    | a residual `nn.add` (two activations of one shape) then `nn.layernorm` of the sum | `nn.add_layernorm_train` (returns the sum too) |
    | a residual `nn.add` then `nn.rmsnorm` of the sum | `nn.add_rmsnorm_train` |

    It replaces the pair's F ops in `@train_step` by the fused op (nn.op_id
    of the first; B and W ops unchanged, reading the fused op's results) and
    marks the second op in `@forward` with `nn.fused_with_previous`, so the
    partitioner keeps the pair in one piece: every stage count and schedule
    makes the same kernel calls. Refused (left as they are): a broadcast or
    parameter add (a bias, not a residual), ops that are not adjacent, a
    norm recomputed by `recompute=` (its F form keeps no statistics), and an
    op read between the two in `@train_step`.

    Before (@train_step):

    ```mlir
    %h = nn.matmul %x, %w, %b {nn.op_id = 7 : i64, nn.role = "F"} : ...
    %g = nn.gelu %h {nn.op_id = 8 : i64, nn.role = "F"} : ...
    ```

    After:

    ```mlir
    %h, %g = nn.matmul_gelu %x, %w, %b {nn.op_id = 7 : i64, nn.role = "F"} : ...
    ```
  }];
}

def PipeSchedulePass : Pass<"pipe-schedule", "::mlir::ModuleOp"> {
  let summary = "Builds every rank's instruction stream for a pipeline schedule";
  let description = [{
    Reads the module's `pipe.chunk` ops (chunk i is the i-th in module order,
    with its declared rank and its F, B, W costs) and writes one
    `pipe.program` per rank, a `pipe.group @world` of all ranks and a
    `pipe.schedule` op with the bubble fraction and step time the abstract
    machine measured with those costs. The schedule is a generated kind
    (`kind=gpipe|1f1b|interleaved-1f1b|zb-h1|zb-v|dualpipe-v` with
    `microbatches=M` and, for interleaved-1f1b, `chunks-per-rank=V`) or a
    torch.distributed.pipelining compute-only CSV file (`csv=FILE`).

    The pipeline's ranks are the ranks the chunks are declared on (0..S-1,
    each holding at least one chunk); the kind's placement must agree with
    the declared ranks chunk by chunk (1f1b: chunk i on rank i; interleaved:
    chunk i on rank i mod S; zb-v and dualpipe-v: a V, chunk i and chunk
    2S-1-i on rank i), and so must a CSV file's (the rank whose row runs a
    stage holds it). Combinations a schedule cannot serve are refused with
    the reason (dualpipe-v with M < 2S, interleaved-1f1b with M not a
    multiple of S, more chunks than `func.func @forward` has compute ops, a
    chunk count other than S x V), and so is a schedule that is broken (a
    missing or duplicated action, a backward before its forward, a cycle
    that would deadlock), naming the ranks and instructions involved.

    Before, with `--pipe-schedule="kind=1f1b microbatches=2"`:

    ```mlir
    pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
    pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]
    ```

    After (rank 1's program left out):

    ```mlir
    pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
    pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]
    pipe.group @world ranks = [0, 1]
    pipe.schedule "1f1b" stages = 2 microbatches = 2 chunks_per_rank = 1
        bubble = 0.33333333333333331 step_time = 9.000000e+00
    pipe.program rank = 0 {
      fwd @c0 mb 0
      post send_act to 1 @c0 mb 0 req 0
      post recv_grad from 1 @c1 mb 0 req 1
      fwd @c0 mb 1
      post send_act to 1 @c0 mb 1 req 2
      wait req 0
      wait req 2
      wait req 1
      bwd_b @c0 mb 0
      post recv_grad from 1 @c1 mb 1 req 3
      bwd_w @c0 mb 0
      wait req 3
      bwd_b @c0 mb 1
      bwd_w @c0 mb 1
      all_reduce @world bucket 0
      opt_step
    }
    ```
  }];
  let dependentDialects = ["::pipec::pipe::PipeDialect"];
  let options = [
    Option<"kind", "kind", "std::string", /*default=*/"\"\"",
           "Schedule kind: gpipe, 1f1b, interleaved-1f1b, zb-h1, zb-v, "
           "dualpipe-v, or auto (the kind --pipe-partition placed the "
           "chunks for, its pipe.schedule_kind)">,
    Option<"microbatches", "microbatches", "int32_t", /*default=*/"0",
           "Micro-batches per training step (with csv: 0 takes the file's)">,
    Option<"chunksPerRank", "chunks-per-rank", "int32_t", /*default=*/"0",
           "Chunks per rank; 0 takes the kind's default (2 for "
           "interleaved-1f1b, zb-v and dualpipe-v, else 1)">,
    Option<"csv", "csv", "std::string", /*default=*/"\"\"",
           "A torch.distributed.pipelining compute-only CSV schedule to "
           "compile instead of a kind">,
    Option<"replicas", "replicas", "int32_t", /*default=*/"1",
           "Data-parallel replicas of the pipeline: the schedule of all "
           "replicas x stages ranks, with each chunk's gradient all-reduce "
           "over its replicas, is proven and timed">,
    Option<"zero", "zero", "int32_t", /*default=*/"0",
           "ZeRO stage: 1 splits the AdamW moments among the replicas "
           "(reduce-scatter of gradients, all-gather of parameters); 0 "
           "keeps them whole">,
  ];
}

def PipePartitionPass : Pass<"pipe-partition", "::mlir::ModuleOp"> {
  let summary = "Cuts @forward into pipe.chunk ops balanced per rank for a "
                "schedule's placement";
  let description = [{
    Reads `func.func @forward`, models every op's F, B and W time from the
    cost interface with the target's rates, and cuts the op sequence into
    S x V contiguous chunks (a range of `nn.op_id`s each; @train_step's F,
    B and W ops join the chunk of their op id) so that the largest per-rank
    time is least under the placement of `kind` (chunk i on rank i; looped
    for interleaved-1f1b; a V for zb-v and dualpipe-v). Among partitions
    within 2% of that optimum the one the schedule runs fastest is kept
    (docs/PARTITION.md). Writes one `pipe.chunk` per chunk with its rank and
    costs, and the attributes the memory planner and the emitter read:

    * `pipe.op_ids = array<i64: first, last>` (inclusive) and
      `pipe.layers` (repeat iterations covered, if any);
    * `pipe.sends = array<i64: op_id, result, ...>`: the values the chunk
      passes to the next chunk (made here or earlier and forwarded; inputs
      and parameters are never sent), `pipe.in_bytes`, `pipe.out_bytes`;
    * `pipe.saved_bytes` (kept until W), `pipe.saved_b_bytes` (kept until
      B), `pipe.w_grad_bytes`, `pipe.deferred_w`, `pipe.workspace_bytes`
      (kept bytes from @train_step's liveness when --nn-autodiff ran
      first, as its costs are; else from the cost interface);
    * recomputation: `pipe.recompute_ops = array<i64: first, last>` (the op
      ids whose forward B runs again), `pipe.recompute_in_bytes` (kept
      from F until B instead) and `pipe.recomputed_bytes` (rebuilt in B).
    * `pipe.params`: the parameter read by each use in the chunk.

    A parameter read on several ranks (tied embeddings) gets a
    `pipe.group @tied.NAME` of those ranks with `pipe.param = "NAME"`: its
    gradients are all-reduced among them. The module gets
    `pipe.schedule_kind`, the kind the chunks are placed for (the one
    `kind=auto` chose; `csv` for a schedule file). Run `--pipe-schedule`
    with the same kind (or `kind=auto`, which reads it) and micro-batches
    next, then `--pipe-recompute` if a chunk recomputes.
  }];
  let dependentDialects = ["::pipec::pipe::PipeDialect"];
  let options = [
    Option<"stages", "stages", "int32_t", /*default=*/"0",
           "Pipeline ranks">,
    Option<"kind", "kind", "std::string", /*default=*/"\"1f1b\"",
           "Schedule kind whose placement the partition serves, or auto "
           "(every kind, chunks per rank and recomputation tried, the "
           "fastest plan within memory-cap kept)">,
    Option<"microbatches", "microbatches", "int32_t", /*default=*/"0",
           "Micro-batches per step (0: 2 x stages, or 4 x stages for "
           "dualpipe-v); used to time candidate partitions">,
    Option<"chunksPerRank", "chunks-per-rank", "int32_t", /*default=*/"0",
           "Chunks per rank; 0 takes the kind's default">,
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "Cost-model target: cpu or cuda">,
    Option<"recompute", "recompute", "std::string", /*default=*/"\"auto\"",
           "none; full (every chunk's forward again in its B, keeping only "
           "its input); auto (under memory-cap: layer by layer on the ranks "
           "over it until they fit)">,
    Option<"memoryCap", "memory-cap", "int64_t", /*default=*/"0",
           "Bytes a rank may use: with recompute=auto ranks over it "
           "recompute layer by layer until they fit, else the pass fails "
           "naming the rank">,
    Option<"csv", "csv", "std::string", /*default=*/"\"\"",
           "A torch.distributed.pipelining compute-only CSV schedule whose "
           "placement the partition serves (instead of kind)">,
    Option<"deferLmHeadW", "defer-lm-head-w", "bool", /*default=*/"false",
           "Let the LM head's W run after its B like every other W">,
    Option<"replicas", "replicas", "int32_t", /*default=*/"1",
           "Data-parallel replicas (--pipe-schedule's): candidates are timed "
           "with their gradient collectives">,
    Option<"zero", "zero", "int32_t", /*default=*/"0",
           "ZeRO stage with replicas (--pipe-schedule's)">,
  ];
}

def PipeRecomputePass : Pass<"pipe-recompute", "::mlir::ModuleOp"> {
  let summary = "Applies the recomputation --pipe-partition chose to "
                "@train_step";
  let description = [{
    Runs after `--pipe-partition`. For every `pipe.chunk` with
    `pipe.recompute_ops = array<i64: a, b>` it copies the forward ops of
    `@train_step` with op ids `a..b` (role F; not the parameter reads, not
    the loss, whose dlogits F makes in place) in front of the chunk's first
    B or W op, tagged `nn.role = "B"` and `nn.recompute`, and makes the
    chunk's B and W ops read the copies. F still runs the ops, but nothing
    after it reads their results any more: the chunk keeps only what the
    copies read from outside the prefix (its input), and the memory plan's
    liveness shrinks accordingly. Copies nothing reads are dropped. The
    copies are the same ops on the same inputs, so the same kernels give
    the same bits (docs/NUMERICS.md).

    Before (a chunk with `pipe.op_ids = array<i64: 0, 3>` and
    `pipe.recompute_ops = array<i64: 0, 3>`):

    ```mlir
    %h = nn.matmul %x, %w {nn.op_id = 1 : i64, nn.role = "F"} : ...
    %g = nn.gelu %h {nn.op_id = 2 : i64, nn.role = "F"} : ...
    ...
    %dh = nn.gelu_grad %h, %dg {nn.op_id = 2 : i64, nn.role = "B"} : ...
    ```

    After:

    ```mlir
    %h = nn.matmul %x, %w {nn.op_id = 1 : i64, nn.role = "F"} : ...
    %g = nn.gelu %h {nn.op_id = 2 : i64, nn.role = "F"} : ...
    ...
    %h2 = nn.matmul %x, %w {nn.op_id = 1 : i64, nn.recompute, nn.role = "B"} : ...
    %dh = nn.gelu_grad %h2, %dg {nn.op_id = 2 : i64, nn.role = "B"} : ...
    ```
  }];
}

def PipePlanMemoryPass : Pass<"pipe-plan-memory", "::mlir::ModuleOp"> {
  let summary = "Plans one static arena per rank over its instruction stream";
  let description = [{
    Runs after `--pipe-partition` and `--pipe-schedule`. For each
    `pipe.program` it places every buffer the rank needs at a fixed offset
    of one arena: weights, one gradient accumulator per parameter use,
    AdamW's m and v, the workspace (all step long), and per (chunk,
    micro-batch) the kept activations (F until B, or until W when W is
    deferred), the output gradients a deferred W reads (B until W), the
    received inputs and gradients (post until use) and the messages being
    sent (until their wait). Micro-batches of one buffer share slots
    (interval colouring), slots are packed first-fit by size.

    Writes on each program `pipe.arena_bytes`, `pipe.peak_live_bytes`,
    `pipe.memory` (bytes per kind at the peak), `pipe.buffers` (one
    `#pipe.buffer<kind = .., role = .., chunk = .., slot = .., offset = ..,
    bytes = .., first = .., last = ..>` per block) and `pipe.slots` (one
    `#pipe.slots<role = .., chunk = .., slots = [..]>` per (role, chunk):
    the slot of each micro-batch). With `memory-cap=BYTES` it fails, naming the
    rank, when a rank needs more; `print` emits one remark per rank.
  }];
  let dependentDialects = ["::pipec::pipe::PipeDialect"];
  let options = [
    Option<"memoryCap", "memory-cap", "int64_t", /*default=*/"0",
           "Bytes a rank may use; 0: no cap">,
    Option<"print", "print", "bool", /*default=*/"false",
           "Emit a remark per rank with its arena and peak by kind">,
  ];
}

def NNLowerToKernelsPass : Pass<"nn-lower-to-kernels", "::mlir::ModuleOp"> {
  let summary = "Replaces every nn op of the training functions by one "
                "kernel.call of the target's kernel library";
  let description = [{
    The one place that decides which kernel runs an op (docs/KERNELS.md):
    each `nn` op of `@forward`, `@train_step` and `@optimizer_step` (not
    `nn.param`, which names storage) becomes a `kernel.call` of a kernel of
    runtime/kernels/<target>/KernelList.def with every shape and flag as a
    static integer, its real attributes, and the parameter storage it reads
    or writes (gradient accumulators of W ops, AdamW's moments) as `state`.
    Results keep their order, so uses are rewired in place; inference forms
    that keep no statistics (`nn.layernorm`, `nn.attention`) get them as
    extra results. The op's discardable attributes (`nn.op_id`, `nn.role`,
    `nn.recompute`) move to the call, `origin` names it.

    Before:

    ```mlir
    %y, %mean, %rstd = nn.layernorm_train %x, %g, %b eps = 1.0e-05
        : (tensor<2x8x32xf32>, tensor<32xf32>, tensor<32xf32>)
        -> (tensor<2x8x32xf32>, tensor<16xf32>, tensor<16xf32>)
    ```

    After:

    ```mlir
    %y, %mean, %rstd = kernel.call "layernorm_forward"(%x, %g, %b)
        ints [16, 32] reals [1.000000e-05] state [] from "nn.layernorm_train"
        : (tensor<2x8x32xf32>, tensor<32xf32>, tensor<32xf32>)
        -> (tensor<2x8x32xf32>, tensor<16xf32>, tensor<16xf32>)
    ```

    `target=cuda` chooses the same kernels with what the cuda library
    needs besides (runtime/kernels/cuda/KernelList.def): the classifier
    gets a per-row fp32 loss scratch as an extra result and the logits' row
    stride, AdamW the parameter's bf16 working copy as state `copy:-1:P`;
    statistics are fp32 whatever the storage (--nn-storage).

    An op no kernel of the target implements fails the pass, naming it.
  }];
  let dependentDialects = ["::pipec::kernel::KernelDialect"];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "The kernel library: cpu or cuda">,
    Option<"optimizer", "optimizer", "bool", /*default=*/"true",
           "Lower @optimizer_step too (false: leave it, for tests of the "
           "training step alone)">,
    Option<"attention", "attention", "std::string", /*default=*/"\"tiled\"",
           "cuda attention kernels: tiled (the tensor-core kernels where "
           "the head size allows, FlashSupport.h) or rows (the warp-per-row "
           "kernels everywhere)">,
  ];
}

#endif // PIPEC_COMPILER_PASSES
