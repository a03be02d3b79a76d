//===- Executor.h - runs every rank's stream on its own thread -*- C++ -*-===//
//
// The executor of a compiled plan: it allocates each rank's arena once
// (64-byte aligned), initialises the parameters the manifest lists, and
// runs one thread per rank over the `local` transport (or, loaded for one
// rank, that rank over the caller's MpiTransport). Compute instructions
// call a ChunkKernels implementation (the emitted code; tests supply their
// own); communication goes through the transport with a deadline, so a
// lost message becomes an error naming the rank and instruction. Nothing
// is allocated inside the training loop. Each step's loss, learning rate,
// gradient norm, throughput and time go to metrics.jsonl; per-instruction
// times go to a Chrome trace with one track per rank.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_EXECUTOR_H
#define PIPERT_EXECUTOR_H

#include "pipert/DeviceQueues.h"
#include "pipert/Manifest.h"
#include "pipert/RunLog.h"
#include "pipert/Status.h"
#include "pipert/Stream.h"
#include "pipert/Transport.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pipert {

/// What a kernel call sees: its rank's arena and the step.
struct RankContext {
  int32_t rank = 0;
  int64_t step = 0; ///< 0-based training step
  double lr = 0;    ///< the scheduled learning rate of the step
  uint8_t *arena = nullptr;
  int64_t arenaBytes = 0;
  const Manifest *manifest = nullptr;
};

/// The compute of a plan, per chunk. Implementations are called from every
/// rank's thread at once and must touch only their rank's arena.
class ChunkKernels {
public:
  virtual ~ChunkKernels() = default;
  virtual Status fwd(const RankContext &ctx, int32_t chunk, int32_t mb) = 0;
  virtual Status bwdB(const RankContext &ctx, int32_t chunk, int32_t mb) = 0;
  virtual Status bwdW(const RankContext &ctx, int32_t chunk, int32_t mb) = 0;
  /// Fills the all-reduce operand at `data` with this rank's contribution
  /// (e.g. per-tensor squared gradient norms, zero for tensors it lacks).
  virtual Status prepareAllReduce(const RankContext &ctx, int32_t group,
                                  int32_t bucket, uint8_t *data,
                                  int64_t bytes) = 0;
  /// The optimizer step of this rank's parameters (after the all-reduce).
  virtual Status optStep(const RankContext &ctx) = 0;
  /// After ZeRO-1's all-gather `group`, `bucket` has brought every
  /// replica's updated part of the parameters: what the kernels keep
  /// beside them follows (the cuda target rounds the other replicas'
  /// parts into its bf16 working copies). Nothing by default.
  virtual Status afterAllGather(const RankContext &ctx, int32_t group,
                                int32_t bucket) {
    (void)ctx, (void)group, (void)bucket;
    return Status::success();
  }
  /// At the start of each of a rank's steps (ctx.step set). `replayed`:
  /// the step's device work, its messages and collectives included, is
  /// already captured (the cuda target's whole-step graph): the executor
  /// leaves the transport out of it and still calls the compute functions,
  /// which then only give the step's host inputs. Not by default.
  virtual Status beginStep(const RankContext &ctx, bool &replayed) {
    (void)ctx;
    replayed = false;
    return Status::success();
  }
  /// After a rank's last instruction of a step, before the executor drains
  /// it: a capture ends or a captured step is launched here.
  virtual Status endStep(const RankContext &ctx) {
    (void)ctx;
    return Status::success();
  }
};

/// Where a rank's arena lives: host memory (the default, 64-byte aligned)
/// or a device's memory (the cuda target's plans, PlanCode.h). `allocate`
/// returns zeroed memory aligned to at least 256 bytes, or null with why in
/// `error` (of `errorBytes`); `copy` is how host code reaches it (null:
/// the host reaches it directly).
struct ArenaAllocator {
  void *(*allocate)(int32_t rank, int64_t bytes, char *error,
                    int64_t errorBytes) = nullptr;
  void (*release)(void *arena) = nullptr;
  ArenaCopy copy = nullptr;
};

/// How to run.
struct RunOptions {
  int64_t steps = 1;
  /// A wait that does not complete within this becomes an error.
  std::chrono::milliseconds timeout{60000};
  /// Shadow-memory debug mode (Shadow.h).
  bool shadow = false;
  /// Cores to share among the ranks (0: all the machine has); each rank's
  /// OpenMP team gets cores / ranks threads, at least 1.
  int32_t cores = 0;
  /// OpenBLAS threads for the whole process; fixed, because GEMM results
  /// depend on it (docs/NUMERICS.md).
  int32_t blasThreads = 1;
  /// How the kernels' threads are set, when they have any (the cpu
  /// kernels: OpenBLAS once per run, OpenMP per rank thread); null: left
  /// alone (the cuda target, tests with their own kernels). The executor
  /// itself links no kernel library.
  void (*setBlasThreads)(int32_t threads) = nullptr;
  void (*setRankThreads)(int32_t threads) = nullptr;
  /// Steps recorded in the trace (from the first).
  int64_t traceSteps = 3;
  /// Times every kernel call of the steps after the first into
  /// kernel_times.json beside trace.json (KernelClock.h); needs the names
  /// of the plan's kernel instantiations (null-terminated) and every rank
  /// in this process.
  bool traceKernels = false;
  const char *const *kernelNames = nullptr;
  /// Where metrics.jsonl and trace.json go ("" writes neither).
  std::string outDir;
  /// Where progress lines go (null: none).
  std::FILE *progress = nullptr;
  /// Polled at every instruction boundary and while the monitor waits: a
  /// non-zero value (a signal number, StopSignal.h) stops every rank at its
  /// next boundary; the steps completed are reported, metrics and trace
  /// written whole. Null: never.
  int (*stopRequested)() = nullptr;
  /// A step whose loss or gradient norm is NaN or infinite stops the run
  /// after its metrics line (docs/RUNTIME.md).
  bool stopOnNonFinite = true;
  /// The transport; null runs every rank over a LocalTransport. A plan
  /// loaded for one rank (`load(dir, out, rank)`) needs one that reaches
  /// the other processes (MpiTransport); each step's metrics then meet in
  /// its reduceWorld (exact sums and maxima of a fixed size, whatever the
  /// ranks), so every process reports the same records, and the trace's
  /// events are gathered at rank 0, whose process alone writes trace.json.
  Transport *transport = nullptr;
  /// With the local transport and device arenas: a device's queues, which
  /// move the messages on the device, ordered by events (the cuda-local
  /// transport, DeviceQueues.h); null: the host moves them through the
  /// allocator's copy.
  DeviceQueues *queues = nullptr;
  /// Periodic checkpoints: after every step whose number (counted from
  /// the first step of training, resumed runs included) plus one is a
  /// multiple of `checkpointEvery`, the ranks hold at the step boundary,
  /// their transfers drained, while `checkpoint(stepsDone)` runs on the
  /// calling thread; the arenas are quiescent and reached through
  /// readArena. A failure stops the run with its message. 0: none.
  int64_t checkpointEvery = 0;
  std::function<Status(int64_t stepsDone)> checkpoint;
  /// With `checkpoint`: a stop request (a signal) ends the run at the
  /// next step boundary every rank can reach (one past the furthest step
  /// any rank has begun), where `checkpoint` runs before the run returns;
  /// a rank that does not get there within `timeout` (or a second signal)
  /// falls back to the stop at the next instruction.
  bool stopAtStepBoundary = false;
  /// A run over processes: what every process must hold equal besides
  /// what the executor itself compares (the plan, the steps, the first
  /// step, the checkpoints' schedule and the stops): (what, value) pairs,
  /// at most kAgreements in all, values above INT64_MIN. They meet in the
  /// run's first reduction, so that processes started differently fail at
  /// once, all of them naming what differs, instead of one waiting for a
  /// message the other never sends.
  std::vector<std::pair<std::string, int64_t>> agree;
};

/// Appends a 64-bit value (a hash, an id) to `values` as its two 32-bit
/// halves, named `high` and `low`: the comparison negates each value,
/// which a full 64-bit one may not survive.
void agreeOnBits(std::vector<std::pair<std::string, int64_t>> &values,
                 const std::string &high, const std::string &low,
                 uint64_t bits);

/// The most values the processes of a run compare (RunOptions::agree and
/// the executor's own); a fixed count, so that every process's first
/// reduction has the same size whatever it was started with.
constexpr int kAgreements = 16;

/// What a run measured.
struct RunResult {
  std::vector<StepRecord> steps;
  double wallS = 0;               ///< first instruction to last, all ranks
  std::vector<double> busyS;      ///< per rank: time in compute
  std::vector<double> idleShare;  ///< per rank: 1 - busy / wall
  std::vector<int64_t> highWater; ///< per rank (shadow mode only; -1 for
                                  ///< ranks of other processes)
  /// The signal that stopped the run (RunOptions::stopRequested), or 0.
  int stopSignal = 0;
  /// The step whose loss or gradient norm was not finite, -2 when another
  /// process found it first (its report names the step), or -1.
  int64_t nonFiniteStep = -1;
  /// --trace-kernels: per rank, its kernels' times over the timed steps
  /// (all but the first), and each rank's thread team.
  std::vector<KernelTimes> kernelTimes;
  int64_t timedSteps = 0;
  int32_t rankThreads = 0;
};

/// A loaded plan, its arenas and its transport.
class Executor {
public:
  ~Executor();
  /// Reads DIR/manifest.json and the streams it names. `onlyRank` >= 0
  /// allocates and initialises that rank's arena alone (one rank per
  /// process) and reads its stream alone; the others' are read only to
  /// write a trace (their events' names).
  static Status load(const std::string &dir, std::unique_ptr<Executor> &out,
                     int32_t onlyRank = -1,
                     const ArenaAllocator *allocator = nullptr);
  /// The same with DIR/manifest.json already read (and checked) as `m`.
  static Status load(const std::string &dir, Manifest m,
                     std::unique_ptr<Executor> &out, int32_t onlyRank = -1,
                     const ArenaAllocator *allocator = nullptr);
  /// Checks that the manifest and streams agree, allocates the arenas (of
  /// `onlyRank` alone when it is >= 0, whose stream alone is checked then;
  /// with `allocator` when given, else host memory) and initialises the
  /// parameters.
  static Status create(Manifest manifest, std::vector<Stream> streams,
                       std::unique_ptr<Executor> &out, int32_t onlyRank = -1,
                       const ArenaAllocator *allocator = nullptr);

  /// Runs `options.steps` training steps. On failure, the Status names the
  /// rank and instruction that failed first, followed by where every rank
  /// stood. A run stopped by a signal or a non-finite step fails too, with
  /// `result` saying which (stopSignal, nonFiniteStep) and holding the
  /// steps completed.
  Status run(ChunkKernels &kernels, const RunOptions &options,
             RunResult &result);

  const Manifest &manifest() const { return plan; }
  /// Rank's stream; empty for a rank of another process when the plan was
  /// loaded for one rank.
  const Stream &stream(int32_t rank) const { return streams[size_t(rank)]; }
  /// Rank's arena; null for a rank this process does not run. A device
  /// arena (ArenaAllocator::copy set) is reached through readArena and
  /// writeArena only.
  uint8_t *arena(int32_t rank) { return arenas[size_t(rank)].get(); }
  /// `bytes` at `offset` of rank's arena into host memory at `dst`.
  Status readArena(int32_t rank, int64_t offset, void *dst,
                   int64_t bytes) const;
  /// `bytes` of host memory at `src` into rank's arena at `offset`.
  Status writeArena(int32_t rank, int64_t offset, const void *src,
                    int64_t bytes);
  /// Whether this process runs `rank` (holds its arena).
  bool holds(int32_t rank) const { return arenas[size_t(rank)] != nullptr; }
  /// Steps already run (the next run continues the LR schedule and AdamW).
  int64_t stepsDone() const { return nextStep; }
  /// Continues a run that stopped after `steps` steps (its parameters and
  /// moments loaded): the next step is `steps`, for the learning rate, the
  /// data and AdamW's bias correction.
  void continueAfter(int64_t steps) { nextStep = steps; }

  /// A run over processes (this process holds rank `held`, the transport
  /// is opt.transport): the first reduction of run(), which compares what
  /// every process must hold equal (RunOptions::agree and the executor's
  /// own) and gives `wantTrace` the maximum over the processes; a failure
  /// names the first value that differs, the same in every process. A
  /// process with no steps left calls it instead of run(), so that one
  /// whose steps differ from the others' fails with them.
  Status agreeOrFail(int32_t held, const RunOptions &opt, int64_t &wantTrace);

private:
  /// A fingerprint of the parameter values `rank` holds (read through the
  /// arena's copy).
  Status parameterPrint(int32_t rank, uint64_t &print) const;
  /// agreeOrFail's second reduction, with D > 1 replicas: the replicas of
  /// every pipeline rank must start from the same parameters (another
  /// --init or --resume file on one node would make them train apart
  /// without a word); 4 P + 1 words, once a run.
  Status agreeOnParameters(int32_t held, const RunOptions &opt);
  struct FreeDeleter {
    void (*release)(void *) = nullptr; ///< null: std::free
    void operator()(uint8_t *p) const;
  };
  struct RankRun;

  Executor() = default;
  /// Reads the streams load left to the other processes.
  Status readAbsentStreams();

  Manifest plan;
  std::vector<Stream> streams;
  std::string dir;           ///< the plan folder load read
  std::vector<char> absent;  ///< per rank: its stream was not read
  std::vector<std::unique_ptr<uint8_t, FreeDeleter>> arenas;
  ArenaCopy copy = nullptr; ///< how host code reaches the arenas
  int64_t nextStep = 0;
};

} // namespace pipert

#endif // PIPERT_EXECUTOR_H
