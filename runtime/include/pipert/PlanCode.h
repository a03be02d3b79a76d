//===- PlanCode.h - what a compiled plan's generated code exports -*- C++ -*-===//
//
// The interface between the sources `pipec compile --target cpu` generates
// (chunkN.cpp, plan.cpp) and the plan runner every plan executable links
// (runtime/runner, libpipert_runner): per chunk its F, B and W functions and the slot offsets
// of the values it hands to a neighbour on the same rank; per rank the
// all-reduce contributions and the optimizer step. Arena offsets are baked
// in per chunk; where each (chunk, micro-batch) sits is data
// (manifest.json buffers "cC.mbJ.REGION").
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_PLANCODE_H
#define PIPERT_PLANCODE_H

#include "kernels/cpu/Status.h"
#include "pipert/DeviceQueues.h"
#include "pipert/NcclSetup.h"
#include "pipert/Transport.h"
#include "pipert/PlanAbi.h"

#include <cstdint>

namespace pipecrun {


/// F of a chunk: ctx its target's context, A the rank's arena, R[k] the
/// micro-batch's region k (pipert::PlanRegion, PlanAbi.h).
using ChunkFwd = pipert::cpu::Status (*)(const pipert::KernelContext *ctx,
                                         uint8_t *A, uint8_t *const *R,
                                         int32_t mb, const int32_t *tokens,
                                         const int32_t *targets,
                                         double lossScale);
/// B or W of a chunk.
using ChunkBwd = pipert::cpu::Status (*)(const pipert::KernelContext *ctx,
                                         uint8_t *A, uint8_t *const *R);

/// One chunk of the plan.
struct ChunkCode {
  ChunkFwd fwd;
  ChunkBwd bwdB, bwdW;
  int32_t rank;
  bool usesData; ///< reads tokens or targets
  /// Bytes of the received activations and gradients; a same-rank
  /// neighbour's outgoing region has the same layout and is copied over.
  int64_t inActBytes, inGradBytes;
  /// The chunk computing the loss: its logits ([batch * seq, vocab] f32)
  /// as F of (A, R) left them, for text generation; null elsewhere.
  const float *(*logits)(uint8_t *A, uint8_t *const *R);
  /// Bytes of each region per micro-batch; an empty one (a chunk that is a
  /// lone residual add keeps nothing for B) has no buffer in the manifest.
  int64_t regionBytes[pipert::kRegions];
};

/// One rank of the plan.
struct RankCode {
  /// Fills the operand of all-reduce `group` with this rank's contribution
  /// (kernel calls of @optimizer_step: a failure names the call).
  pipert::cpu::Status (*prepare)(const pipert::KernelContext *ctx, uint8_t *A,
                                 int32_t group, uint8_t *data);
  /// Clipping, learning rate and AdamW for the rank's parameters; zeroes
  /// the gradient accumulators for the next step.
  pipert::cpu::Status (*opt)(const pipert::KernelContext *ctx, uint8_t *A,
                             int64_t step);
  /// After the parameters are initialised or loaded, before the first
  /// step: the cuda target rounds the bf16 working copies from the fp32
  /// masters (docs/NUMERICS.md); null where there is nothing to do.
  pipert::cpu::Status (*begin)(const pipert::KernelContext *ctx, uint8_t *A);
  /// ZeRO-1, after the all-gather of the parameters: the cuda target
  /// rounds the parts the other replicas updated into the bf16 working
  /// copies (its own part AdamW rounded); null where there is nothing to
  /// do.
  pipert::cpu::Status (*gathered)(const pipert::KernelContext *ctx,
                                  uint8_t *A);
  /// The cuda target's workspace in the rank's arena (offset, bytes;
  /// pipert::kCudaWorkspaceBytes), which createRank gets; -1 and 0 on the
  /// cpu target.
  int64_t workspaceOffset = -1;
  int64_t workspaceBytes = 0;
};
/// What a plan needs of its target besides its code; null on the cpu
/// target (host arenas, no per-rank state).
struct PlanTarget {
  /// The state KernelContext::target carries for `rank` (the cuda target:
  /// its device, compute stream and GEMMs), after its arena is allocated:
  /// `workspace` is the rank's RankCode::workspaceBytes at
  /// RankCode::workspaceOffset in it (null and 0 where the plan has none).
  /// Null with `error` (of `errorBytes`) set when it cannot be made.
  void *(*createRank)(int32_t rank, void *workspace, int64_t workspaceBytes,
                      char *error, int64_t errorBytes);
  void (*destroyRank)(void *state);
  /// Rank's arena, zeroed, in its device's memory (cuda: cudaMalloc on
  /// the device createRank gives the rank); null with why in `error` when
  /// it cannot be allocated.
  void *(*allocateArena)(int32_t rank, int64_t bytes, char *error,
                         int64_t errorBytes);
  void (*freeArena)(void *arena);
  /// How the runtime's host code reaches arenas: `bytes` from `src` to
  /// `dst`, each in host memory or any rank's arena, done when it returns
  /// (cuda: a copy on the calling thread's stream, synchronized); false
  /// with why in `error`.
  bool (*copy)(void *dst, const void *src, int64_t bytes, char *error,
               int64_t errorBytes);
  /// The target's name for messages ("cuda").
  const char *name;
  /// The device's compute and transfer streams of the ranks whose states
  /// (createRank's) are `states[r]` (null for ranks of other processes),
  /// for the cuda-local transport (DeviceQueues.h); the caller deletes it
  /// after the run and before the states. Null with why in `error`.
  pipert::DeviceQueues *(*createQueues)(void *const *states, int32_t ranks,
                                        char *error,
                                        int64_t errorBytes) = nullptr;
  /// One process per device (--transport nccl): every rank this process
  /// makes runs on device `localRank` mod the devices it sees. Called
  /// before createRank and allocateArena; false with why in `error`.
  bool (*pinDevice)(int32_t localRank, char *error,
                    int64_t errorBytes) = nullptr;
  /// The nccl transport of this process's rank, whose state (createRank's)
  /// is `rankState` (runtime/kernels/cuda/Nccl.h); collective over the
  /// job's processes. The caller deletes it before the state. Null with
  /// why in `error`.
  pipert::Transport *(*createNccl)(const pipert::NcclSetup &setup,
                                   void *rankState, char *error,
                                   int64_t errorBytes) = nullptr;
  /// pipec-plan --cuda-graphs: the rank whose state (createRank's) is
  /// `state` captures each generated function's launches once and replays
  /// them as one graph (runtime/kernels/cuda/GraphReplay.h).
  void (*enableGraphs)(void *state) = nullptr;
  /// Where the transport orders the messages and collectives on the device
  /// (cuda-local's queues, nccl): the rank whose state is `state` ends the
  /// functions of a step without waiting for its stream
  /// (call::endFunction); the executor drains it at the end of the step.
  void (*deferSyncs)(void *state) = nullptr;
  /// `bytes` from `src` to `dst` in the arena of the rank whose state is
  /// `state`, on its compute stream, after what it launched before and
  /// before what it launches next, the host not waiting (the same-rank
  /// hand-over between chunks); false with why in `error`. Null: `copy`.
  bool (*copyInStream)(void *state, void *dst, const void *src,
                       int64_t bytes, char *error,
                       int64_t errorBytes) = nullptr;
  /// pipec-plan --step-graph: the ranks of `queues` (createQueues', every
  /// rank of the process, all on one device), or the one rank of `nccl`
  /// (createNccl's), run the first max(1, `from`) steps of the run as they
  /// are, capture the next whole step as one CUDA graph and replay it from
  /// then on (runtime/kernels/cuda/StepGraph.h); false with why in `error`.
  bool (*enableStepGraphs)(pipert::DeviceQueues *queues,
                           pipert::Transport *nccl, int64_t from,
                           char *error, int64_t errorBytes) = nullptr;
  /// At the start of a step of the rank whose state is `state`:
  /// `*replayed` when the step's graph does its device work (the functions
  /// only give their host inputs; the transport moves nothing). Null, or
  /// true without step graphs: a step as always. False with why.
  bool (*beginStep)(void *state, int64_t step, bool *replayed, char *error,
                    int64_t errorBytes) = nullptr;
  /// After the rank's last instruction of a step, before its drain: the
  /// capture ends or the graph is launched. False with why.
  bool (*endStep)(void *state, char *error, int64_t errorBytes) = nullptr;
};

/// The whole plan.
struct PlanCode {
  const ChunkCode *chunks;
  int32_t chunkCount;
  const RankCode *ranks;
  int32_t rankCount;
  int64_t batch, seq, vocab;
  /// The plan's identity and the manifest (without its id) it was compiled
  /// with: pipec-plan refuses any other manifest, and through its stream
  /// checksums any other stream (docs/RUNTIME.md).
  const char *planId;
  const char *manifest;
  /// The target's hooks; null on the cpu target.
  const PlanTarget *target;
  /// The cpu kernels' thread counts (pipert::RunOptions): OpenBLAS for the
  /// process, OpenMP for the calling rank thread; null on cuda.
  void (*setBlasThreads)(int32_t threads);
  void (*setRankThreads)(int32_t threads);
  /// The names of the plan's kernel instantiations (the cpu's kernels.cpp
  /// wrappers, the cuda calls' KernelClocks), in the order of their clock
  /// ids, null-terminated.
  const char *const *kernelNames;
  /// Each one's floor (compiler/analysis/KernelCosts.h): FLOPs, then
  /// bytes, in the same order.
  const double *kernelCosts = nullptr;
  /// pipec-plan --profile: the ceilings of the machine it runs on, measured
  /// now (kernels/cpu/Ceilings.h, kernels/cuda/Target.h): FLOP/s of the
  /// target's GEMM on `threads` threads and bytes read and written per
  /// second; false with why in `error`.
  bool (*measureCeilings)(int32_t threads, double *flopsPerSecond,
                          double *bytesPerSecond, char *error,
                          int64_t errorBytes) = nullptr;
};

} // namespace pipecrun

/// Defined by the generated plan.cpp.
extern const pipecrun::PlanCode pipecPlanCode;

#endif // PIPERT_PLANCODE_H
