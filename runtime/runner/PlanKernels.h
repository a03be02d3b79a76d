//===- PlanKernels.h - the ChunkKernels of a compiled plan ------*- C++ -*-===//
//
// What the executor calls for each compute instruction of a compiled plan:
// the generated F, B and W of the chunk (PlanCode.h) on the micro-batch's
// regions, which the manifest places ("cC.mbJ.REGION"), with the data of
// the micro-batch and the hand-over between neighbours on one rank.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_RUNNER_PLANKERNELS_H
#define PIPERT_RUNNER_PLANKERNELS_H

#include "pipert/DataLoader.h"
#include "pipert/Executor.h"
#include "pipert/PlanCode.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace pipecrun {

/// The ChunkKernels of the generated plan.
class PlanKernels : public pipert::ChunkKernels {
public:
  PlanKernels(const pipecrun::PlanCode &code, const pipert::Manifest &m,
              const pipert::Batcher &batcher)
      : code(code), batcher(batcher), microbatches(m.microbatches),
        replicas(m.replicas), pipelineRanks(m.pipelineRanks()) {
    regionBase.assign(size_t(code.chunkCount) * size_t(m.microbatches) *
                          pipert::kRegions,
                      -1);
    for (const pipert::BufferInfo &b : m.buffers) {
      int c = -1, j = -1;
      char region[16] = {0};
      if (std::sscanf(b.name.c_str(), "c%d.mb%d.%15s", &c, &j, region) != 3 ||
          c < 0 || c >= code.chunkCount || j < 0 || j >= m.microbatches)
        continue;
      for (int k = 0; k < pipert::kRegions; ++k)
        if (std::strcmp(region, pipert::regionName(k)) == 0)
          regionBase[index(c, j, k)] = b.offset;
    }
    size_t n = size_t(code.batch * code.seq);
    tokens.assign(size_t(m.ranks), std::vector<int32_t>(n));
    targets.assign(size_t(m.ranks), std::vector<int32_t>(n));
  }

  ~PlanKernels() override {
    for (void *state : states)
      if (state)
        code.target->destroyRank(state);
  }
  PlanKernels(const PlanKernels &) = delete;
  PlanKernels &operator=(const PlanKernels &) = delete;

  /// Before the first step, after the parameters are initialised or
  /// loaded: the target's state of every rank this process holds (the
  /// cuda target: device, stream, GEMMs), then each rank's begin (the
  /// working copies). "" or what failed, naming the rank.
  /// With `graphs`, each rank captures its generated functions as CUDA
  /// graphs (--cuda-graphs; PlanTarget::enableGraphs).
  /// Where the transport orders the messages on the device: every rank
  /// this process holds ends its functions without waiting for its
  /// stream (PlanTarget::deferSyncs; pipec-plan --sync-each-function
  /// keeps the waits). After start().
  void deferSyncs() {
    if (!code.target || !code.target->deferSyncs)
      return;
    for (void *s : states)
      if (s)
        code.target->deferSyncs(s);
    deferred_ = true;
  }
  /// Whether deferSyncs applied (the host's times are then launches).
  bool deferred() const { return deferred_; }

  std::string start(pipert::Executor &exec, bool graphs = false) {
    const int32_t ranks = exec.manifest().ranks;
    states.assign(size_t(ranks), nullptr);
    replaying.assign(size_t(ranks), 0);
    for (int32_t r = 0; r < ranks; ++r) {
      if (!exec.holds(r))
        continue;
      if (code.target) {
        char error[512] = {0};
        const RankCode &rc = code.ranks[r % pipelineRanks];
        void *workspace = rc.workspaceOffset >= 0
                              ? exec.arena(r) + rc.workspaceOffset
                              : nullptr;
        if (workspace &&
            rc.workspaceOffset + rc.workspaceBytes > exec.stream(r).arenaBytes)
          return "rank " + std::to_string(r) + ": the plan's workspace (" +
                 std::to_string(rc.workspaceBytes) + " bytes at " +
                 std::to_string(rc.workspaceOffset) +
                 ") ends past the rank's arena of " +
                 std::to_string(exec.stream(r).arenaBytes) + " bytes";
        states[size_t(r)] = code.target->createRank(
            r, workspace, rc.workspaceBytes, error, sizeof error);
        if (!states[size_t(r)])
          return "rank " + std::to_string(r) + ": " + code.target->name +
                 ": " + error;
        if (graphs && code.target->enableGraphs)
          code.target->enableGraphs(states[size_t(r)]);
      }
      if (code.ranks[r % pipelineRanks].begin) {
        pipert::KernelContext kc{r, states[size_t(r)]};
        pipert::cpu::Status st =
            code.ranks[r % pipelineRanks].begin(&kc, exec.arena(r));
        if (!st.ok())
          return "rank " + std::to_string(r) + ": " + st.message();
      }
    }
    return "";
  }

  /// The target's state of every rank (null for ranks of other processes
  /// and on the cpu target), as start() made them.
  void *const *targetStates() const { return states.data(); }

  /// The first region a chunk's code uses (bytes > 0) that the manifest
  /// does not place, as "cC.mbJ.REGION", or "".
  std::string missingSlot() const {
    for (int32_t c = 0; c < code.chunkCount; ++c)
      for (int32_t j = 0; j < microbatches; ++j)
        for (int k = 0; k < pipert::kRegions; ++k)
          if (code.chunks[c].regionBytes[k] > 0 &&
              regionBase[index(c, j, k)] < 0)
            return "c" + std::to_string(c) + ".mb" + std::to_string(j) + "." +
                   pipert::regionName(k);
    return "";
  }

  pipert::Status fwd(const pipert::RankContext &ctx, int32_t chunk,
                     int32_t mb) override {
    const pipecrun::ChunkCode &ch = code.chunks[chunk];
    uint8_t *R[pipert::kRegions];
    regions(ctx, chunk, mb, R);
    if (chunk > 0 && code.chunks[chunk - 1].rank == pipelineRank(ctx))
      if (pipert::Status s = neighbour(ctx.rank, R[pipert::kInAct],
                                       region(ctx, chunk - 1, mb,
                                              pipert::kOutAct),
                                       ch.inActBytes);
          !s.ok())
        return s;
    int32_t *tok = tokens[size_t(ctx.rank)].data();
    int32_t *tgt = targets[size_t(ctx.rank)].data();
    // Replica r takes the global micro-batches r * M .. r * M + M - 1 of
    // the step (docs/TRAINING.md), the batcher counting D x M per step.
    if (ch.usesData) {
      std::string error;
      if (!batcher.microBatch(ctx.step,
                              (ctx.rank / pipelineRanks) * microbatches + mb,
                              tok, tgt, error))
        return pipert::Status::failure(error, ctx.rank);
    }
    // docs/TRAINING.md: d(step loss)/d(micro-batch loss) = 1/(D M).
    pipert::KernelContext kc{ctx.rank, state(ctx.rank)};
    return convert(ch.fwd(&kc, ctx.arena, R, mb, tok, tgt,
                          1.0 / (double(microbatches) * replicas)));
  }

  pipert::Status bwdB(const pipert::RankContext &ctx, int32_t chunk,
                      int32_t mb) override {
    const pipecrun::ChunkCode &ch = code.chunks[chunk];
    uint8_t *R[pipert::kRegions];
    regions(ctx, chunk, mb, R);
    if (chunk + 1 < code.chunkCount &&
        code.chunks[chunk + 1].rank == pipelineRank(ctx))
      if (pipert::Status s = neighbour(ctx.rank, R[pipert::kInGrad],
                                       region(ctx, chunk + 1, mb,
                                              pipert::kOutGrad),
                                       ch.inGradBytes);
          !s.ok())
        return s;
    pipert::KernelContext kc{ctx.rank, state(ctx.rank)};
    return convert(ch.bwdB(&kc, ctx.arena, R));
  }

  pipert::Status bwdW(const pipert::RankContext &ctx, int32_t chunk,
                      int32_t mb) override {
    uint8_t *R[pipert::kRegions];
    regions(ctx, chunk, mb, R);
    pipert::KernelContext kc{ctx.rank, state(ctx.rank)};
    return convert(code.chunks[chunk].bwdW(&kc, ctx.arena, R));
  }

  pipert::Status prepareAllReduce(const pipert::RankContext &ctx,
                                  int32_t group, int32_t, uint8_t *data,
                                  int64_t) override {
    pipert::KernelContext kc{ctx.rank, state(ctx.rank)};
    return convert(
        code.ranks[pipelineRank(ctx)].prepare(&kc, ctx.arena, group, data));
  }

  pipert::Status optStep(const pipert::RankContext &ctx) override {
    pipert::KernelContext kc{ctx.rank, state(ctx.rank)};
    return convert(
        code.ranks[pipelineRank(ctx)].opt(&kc, ctx.arena, ctx.step));
  }

  pipert::Status beginStep(const pipert::RankContext &ctx,
                          bool &replayed) override {
    replayed = false;
    if (code.target && code.target->beginStep && state(ctx.rank)) {
      char error[512] = {0};
      if (!code.target->beginStep(state(ctx.rank), ctx.step, &replayed, error,
                                  sizeof error))
        return pipert::Status::failure(error);
    }
    if (size_t(ctx.rank) < replaying.size())
      replaying[size_t(ctx.rank)] = replayed;
    return pipert::Status::success();
  }

  pipert::Status endStep(const pipert::RankContext &ctx) override {
    if (code.target && code.target->endStep && state(ctx.rank)) {
      char error[512] = {0};
      if (!code.target->endStep(state(ctx.rank), error, sizeof error))
        return pipert::Status::failure(error);
    }
    return pipert::Status::success();
  }

  pipert::Status afterAllGather(const pipert::RankContext &ctx, int32_t,
                                int32_t) override {
    const auto gathered = code.ranks[pipelineRank(ctx)].gathered;
    if (!gathered)
      return pipert::Status::success();
    pipert::KernelContext kc{ctx.rank, state(ctx.rank)};
    return convert(gathered(&kc, ctx.arena));
  }

private:
  /// A same-rank neighbour's outgoing region into this chunk's incoming
  /// one: on the rank's stream where the target has one (ordered between
  /// the two chunks without the host waiting), else through the target's
  /// copy where the arena is a device's.
  pipert::Status neighbour(int32_t rank, uint8_t *dst, const uint8_t *src,
                           int64_t bytes) const {
    if (size_t(rank) < replaying.size() && replaying[size_t(rank)])
      return pipert::Status::success(); // the step's graph copies it
    pipert::Status s = pipert::Status::success();
    if (code.target && code.target->copyInStream && state(rank)) {
      char error[256] = {0};
      if (!code.target->copyInStream(state(rank), dst, src, bytes, error,
                                     sizeof error))
        s = pipert::Status::failure(error);
    } else {
      s = pipert::copyArenaBytes(code.target ? code.target->copy : nullptr,
                                 dst, src, bytes);
    }
    return s.ok() ? s
                  : pipert::Status::failure("the same-rank neighbour's " +
                                            std::to_string(bytes) +
                                            " bytes: " + s.message());
  }
  /// The pipeline rank whose code a rank runs (data parallelism: every
  /// replica runs replica 0's).
  int32_t pipelineRank(const pipert::RankContext &ctx) const {
    return ctx.rank % pipelineRanks;
  }
  void *state(int32_t rank) const {
    return size_t(rank) < states.size() ? states[size_t(rank)] : nullptr;
  }
  size_t index(int32_t chunk, int32_t mb, int k) const {
    return (size_t(chunk) * size_t(microbatches) + size_t(mb)) *
               pipert::kRegions +
           size_t(k);
  }
  /// Region k of (chunk, mb); an empty region (no message) gets the arena.
  uint8_t *region(const pipert::RankContext &ctx, int32_t chunk, int32_t mb,
                  int k) const {
    int64_t off = regionBase[index(chunk, mb, k)];
    return ctx.arena + (off < 0 ? 0 : off);
  }
  void regions(const pipert::RankContext &ctx, int32_t chunk, int32_t mb,
               uint8_t **R) const {
    for (int k = 0; k < pipert::kRegions; ++k)
      R[k] = region(ctx, chunk, mb, k);
  }
  static pipert::Status convert(const pipert::cpu::Status &s) {
    return s.ok() ? pipert::Status::success()
                  : pipert::Status::failure(s.message());
  }

  const pipecrun::PlanCode &code;
  const pipert::Batcher &batcher;
  int32_t microbatches, replicas, pipelineRanks;
  std::vector<int64_t> regionBase; ///< (chunk, mb, region) -> offset
  std::vector<std::vector<int32_t>> tokens, targets;
  /// Per rank, the target's state (null on the cpu target).
  std::vector<void *> states;
  /// Per rank, whether its current step is a replayed graph (written and
  /// read by the rank's thread only).
  std::vector<char> replaying;
  bool deferred_ = false;
};


} // namespace pipecrun

#endif // PIPERT_RUNNER_PLANKERNELS_H
