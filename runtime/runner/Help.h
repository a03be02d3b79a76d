//===- Help.h - what pipec-run and pipec-plan --help print -----*- C++ -*-===//
//
// One text for both: pipec-run (tools/pipec-run) checks the plan folder and
// hands its arguments to OUT/pipec-plan (the plan runner), which parses
// them (Args.cpp); each explains every option the same way.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_RUNTIME_RUNNER_HELP_H
#define PIPEC_RUNTIME_RUNNER_HELP_H

namespace pipecrun {

inline constexpr char kRunHelp[] = R"(usage: pipec-run OUT/ --data FILE --steps N [options]

Trains with the plan `pipec compile MODEL -o OUT/` built: OUT/pipec-plan
checks the manifest, streams and data, then runs every rank (as threads
of one process, or one process per rank under mpirun), printing a line per
step. Everything is checked before the first step; outputs are written
whole or not at all.

  --data FILE           the training text; its bytes are the tokens
  --steps N             the total steps of training (a resumed run trains
                        what is left of them; with none left it still
                        writes --save, --save-hf and --save-state: an
                        export of the checkpoint)
  --log-dir DIR         writes DIR/metrics.jsonl (a line per step) and
                        DIR/trace.json (the first steps' timeline)
  --init F              starts from the parameters in safetensors file F
                        (the model's names and shapes; F32, F64, BF16 or
                        F16), a sharded checkpoint's index.json, or a
                        directory holding model.safetensors or one
  --save F              writes the trained parameters to F (safetensors)
  --save-hf DIR         writes DIR/model.safetensors and DIR/config.json, a
                        checkpoint transformers' from_pretrained loads (a
                        plan of a model from pipec import-hf; not with --save)
  --save-hf-shard-size B  above B bytes (default 5000000000, transformers'
                        5 GB) --save-hf writes shards and their
                        model.safetensors.index.json
  --save-state F        writes the training state at the end: parameters,
                        AdamW moments and the step
  --resume F|DIR        continues from a --save-state file or a committed
                        checkpoint (DIR/step-N, or a --checkpoint-dir: its
                        newest) bit for bit, under any stage count and
                        schedule; every name, shape and checksum is checked
  --checkpoint-dir DIR  writes committed checkpoints DIR/step-N (one part
                        per rank, then a COMMITTED marker): a crash at any
                        moment leaves the earlier ones loadable
  --checkpoint-every N  a checkpoint every N steps (without it: at the end
                        and when SIGINT or SIGTERM stops the run, which then
                        ends at a step boundary every rank reaches)
  --keep K              keeps the K newest checkpoints (default 3)
  --shadow              checks every arena access against the plan's
                        declared reads and writes (cpu plans)
  --cores N             the cores the ranks share (default: all)
  --trace-steps N       with --log-dir: the steps trace.json records, from
                        the first (default 3; each holds every instruction
                        of every rank)
  --trace-kernels       with --log-dir: times every kernel call of the
                        steps after the first into DIR/kernel_times.json
                        (per rank: calls and seconds per kernel
                        instantiation; pipec-sim --calibrate reads it;
                        cuda plans time each call with CUDA events; every
                        rank in this process)
  --profile             times every kernel call as --trace-kernels does
                        (--log-dir optional) and prints, after training, the
                        kernels by time: calls and ms per step, GFLOP/s and
                        GB/s, and the share of its floor (its FLOPs and
                        bytes at the ceilings this machine showed in the
                        same run: the target's GEMM, a large copy); with
                        --log-dir also DIR/kernel_profile.json
  --cuda-graphs         a cuda plan captures each of its functions (a
                        chunk's F, B or W for one micro-batch's buffers, a
                        rank's gradients and optimizer) the first time it
                        runs and replays it as one CUDA graph afterwards:
                        one launch instead of one per kernel, the same bits
                        (off by default until a GPU run has held it to the
                        uncaptured bits; --profile's timed steps run
                        uncaptured)
  --step-graph          a cuda plan captures a whole step of the process's
                        ranks (kernels, messages, collectives, optimizer)
                        as one CUDA graph, after the first step and the
                        traced ones (--trace-steps), and replays it each
                        step: one launch a step, the same bits. Under
                        cuda-local every rank must be on one GPU; under
                        nccl the rank's NCCL calls are captured and the
                        watchdog watches each launch (off by default until
                        a GPU run has held it to the uncaptured bits)
  --sync-each-function  a cuda plan's functions (a chunk's F, B, W, the
                        gradients, the optimizer) wait for the rank's
                        stream before the next instruction. By default
                        they do not where the transport orders the
                        messages and collectives on the device
                        (cuda-local's queues, nccl): the host runs ahead
                        and the stream keeps the order, and a kernel's
                        fault is reported at the end of the step. With
                        this it names the function, and the trace's busy
                        times are the kernels' (otherwise their
                        launches')
  --timeout-ms MS       a wait longer than MS is an error naming the ranks
                        (default 60000)
  --quiet               no progress lines
  --transport T         local: ranks as threads (the cpu default);
                        cuda-local: a cuda plan's default, messages copied
                        by the GPU between events; mpi: one process per rank
                        (starts mpirun -np RANKS); nccl: a cuda plan, one
                        process per GPU over NCCL (pipec-run starts RANKS
                        processes on this machine; under srun or mpirun,
                        each process is one rank: docs/NCCL.md)
  --rendezvous R        nccl: how rank 0's NCCL id reaches the others:
                        tcp:HOST:PORT (rank 0 serves it on HOST, its own
                        machine) or file:PATH (a path every machine sees);
                        default under srun: tcp on the step's first host;
                        mpirun needs one
  --watchdog-ms MS      nccl: a transfer or collective unfinished after MS
                        (default 20000) names the rank it waits on, aborts
                        the communicators and ends the process
  --nccl-layout         pipec-run only, with the plan folder alone: prints
                        the NCCL communicators a job of this plan makes
                        and proves the streams' order on them (no GPU)
  --sample N            after training, generates N tokens; with
                        --prompt TEXT, --sample-seed N, --temperature T
  --tokenizer F         with --sample: encode the prompt and decode the
                        tokens with F, a byte-level BPE tokenizer.json
                        (GPT-2's, pipec-tokenize train's)
  --plan DIR            OUT/pipec-plan only: the plan folder (default: the
                        executable's own)
  --help                this text
)";

} // namespace pipecrun

#endif // PIPEC_RUNTIME_RUNNER_HELP_H
