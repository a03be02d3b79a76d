//===- Runner.h - the plan runner: main() of every compiled plan -*- C++ -*-===//
//
// libpipert_runner, linked into every OUT/pipec-plan with the generated
// chunk and plan objects: it parses the arguments (Args.cpp), checks the
// plan and the inputs before the first step (Prepare.cpp), runs every rank
// as a thread (LocalRun.cpp) or this process's rank under mpirun
// (MpiRun.cpp), loads --init and writes --save (Checkpoint.cpp), reports
// (Report.cpp) and samples text (Sample.cpp). Main.cpp is main().
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_RUNNER_RUNNER_H
#define PIPERT_RUNNER_RUNNER_H

#include "pipert/DataLoader.h"
#include "pipert/Executor.h"
#include "pipert/PlanCode.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pipert {
class MpiTransport;
} // namespace pipert

namespace pipecrun {

struct Args {
  std::string plan, data, logDir, init, save;
  /// --save-hf DIR: --save to DIR/model.safetensors plus DIR/config.json,
  /// the plan's hf_config.json (docs/HUGGINGFACE.md).
  std::string saveHf;
  /// --save-hf-shard-size: shards of at most this many bytes above it
  /// (transformers 4's default max_shard_size, 5 GB).
  int64_t saveHfShardBytes = 5000000000;
  /// --tokenizer: the tokenizer.json --sample encodes the prompt and
  /// decodes its tokens with (Tokenizer.h).
  std::string tokenizer;
  /// --save-state: the training state (parameters, AdamW moments, step)
  /// at the end; --resume: continue from one (docs/RUNTIME.md).
  std::string saveState, resume;
  /// --checkpoint-dir: committed checkpoints every --checkpoint-every
  /// steps (0: at the end and at a stop only), the --keep newest kept.
  std::string checkpointDir;
  int64_t checkpointEvery = 0, keep = 3;
  int64_t steps = 0;
  bool shadow = false, quiet = false, traceKernels = false;
  /// --profile: --trace-kernels, the machine's ceilings measured first,
  /// and the table of kernels against them at the end (Profile.cpp).
  bool profile = false;
  /// --cuda-graphs: each generated function's launches captured once and
  /// replayed as one CUDA graph (cuda plans; GraphReplay.h).
  bool cudaGraphs = false;
  /// --step-graph: the whole step of every rank of the process captured
  /// once as one CUDA graph and replayed (cuda-local on one GPU;
  /// kernels/cuda/StepGraph.h).
  bool stepGraph = false;
  /// --sync-each-function: a cuda plan's functions wait for their stream
  /// even where the transport orders messages on the device (a fault is
  /// then named by its function; PlanTarget::deferSyncs).
  bool syncEachFunction = false;
  int64_t traceSteps = 3; ///< --trace-steps
  int32_t cores = 0;
  int64_t timeoutMs = 60000;
  int64_t sample = 0;          ///< tokens to generate after training
  std::string prompt = "\n";
  uint64_t sampleSeed = 0;
  bool hasSampleSeed = false;  ///< else the model's train seed
  double temperature = 1.0;
  /// local, cuda-local, mpi or nccl; "" the plan's own: cuda-local for a
  /// cuda plan (messages moved by the device), local for a cpu plan.
  std::string transport;
  /// nccl: --rendezvous (Rendezvous.h; "" the launcher's default) and
  /// --watchdog-ms.
  std::string rendezvous;
  int64_t watchdogMs = 20000;
};


/// The usage line printed with an argument error.
extern const char *const kUsage;

/// Parses pipec-plan's arguments strictly (ParseNumber.h).
bool parseArgs(int argc, char **argv, Args &a, std::string &error);

/// Prints "pipec-run: error: MESSAGE"; returns 1.
int fail(const std::string &message);

/// Loads --init into every copy of each parameter this process holds.
bool loadInit(pipert::Executor &exec, const std::string &path,
              std::string &error);
/// Writes every parameter once, all ranks in this process.
bool save(pipert::Executor &exec, const std::string &path,
          std::string &error, int64_t shardBytes = 0);
/// --save-hf's config.json: the plan folder's hf_config.json, written
/// whole (after the weights, so a folder with a config has them).
bool writeHfConfig(const Args &a, std::string &error);
/// --save-state: every parameter once with its AdamW moments, in the
/// model's shapes, and the steps run, in one safetensors file.
bool saveState(pipert::Executor &exec, const std::string &path,
               std::string &error);
/// What writeCheckpoint wrote.
struct CheckpointStats {
  std::string path;
  int64_t parts = 0, bytes = 0;
  double seconds = 0;
};
/// --checkpoint-dir: the training state after `step` steps (the arenas
/// quiescent) as a committed DIR/step-N (pipert/CheckpointDir.h), one
/// part per rank holding parameters; only the `keep` newest stay.
bool writeCheckpoint(pipert::Executor &exec, const std::string &dir,
                     int64_t step, int64_t keep, CheckpointStats &stats,
                     std::string &error);
/// --resume: a --save-state file, or a committed checkpoint (a directory
/// of them: its newest), into every copy of each parameter and its
/// moments; `step` the steps it had run. Checks every name, shape and
/// value, and a checkpoint's parts against its marker; refuses a file of
/// another model.
bool loadState(pipert::Executor &exec, const std::string &path,
               int64_t &step, std::string &error,
               std::string *from = nullptr);
/// writeCheckpoint with one rank per process (collective): rank 0 makes
/// the directory, every process writes its rank's part, rank 0 commits;
/// every process learns whether it worked.
bool writeCheckpointGathered(pipert::Executor &exec,
                             pipert::Transport &transport, int32_t me,
                             const std::string &dir, int64_t step,
                             int64_t keep, std::chrono::milliseconds timeout,
                             CheckpointStats &stats, std::string &error);
/// --save with one rank per process (collective; rank 0 writes).
bool saveGathered(pipert::Executor &exec, pipert::Transport &transport,
                  int32_t me, const std::string &path,
                  std::chrono::milliseconds timeout, std::string &error,
                  int64_t shardBytes = 0);

/// Everything a run checks before its first step; "" when all is well.
std::string prepare(const Args &a, std::unique_ptr<pipert::Executor> &exec,
                    pipert::TokenFile &data, pipert::Batcher &batcher,
                    int32_t onlyRank, int32_t processes);

/// The summary after training (the process that reports).
void printSummary(const pipert::Manifest &m, const pipert::RunResult &result,
                  bool deferred = false);
/// The executor's options for these arguments.
pipert::RunOptions runOptions(const Args &a);
/// --steps is the total: the steps a run that has done `stepsDone` has
/// left; when none, `print` says so ("nothing left to train").
int64_t stepsLeft(const Args &a, int64_t stepsDone, bool print);
/// --checkpoint-dir: `write` at the boundaries every --checkpoint-every
/// steps and at a stop by a signal (every rank at one boundary).
void armCheckpoints(const Args &a, pipert::RunOptions &opt,
                    std::function<pipert::Status(int64_t)> write);
/// Whether a completed run still owes --checkpoint-dir the checkpoint of
/// its last step (it ended off the --checkpoint-every rhythm).
bool finalCheckpointDue(const Args &a, int64_t stepsDone);
/// The line a written checkpoint prints; `whose` qualifies the bytes.
void printCheckpoint(const CheckpointStats &stats, const char *whose);
/// The message and exit code of a run that did not complete.
int failedRun(const Args &a, const pipert::Status &s,
              const pipert::RunResult &result);

/// Every rank as a thread of this process (the local transport).
int runLocal(const Args &a);
/// This process's rank under mpirun (the mpi transport).
int runMpi(const Args &a);
/// One rank per process (mpi, nccl), its transport made: trains, writes
/// the checkpoints and --save, reports on rank 0 (RankRun.cpp); `fatal`
/// prints an error the other processes may not know of and ends the job
/// (it does not return); `deferred`: the chunks did not wait for their
/// streams (printSummary). `data` is the run's (--data): its count and
/// fingerprint, with the options that drive collectives, are compared
/// with the other processes' before the first step. The exit code.
int trainThisRank(const Args &a, pipert::Executor &exec,
                  pipert::ChunkKernels &kernels, pipert::Transport &transport,
                  int32_t me, const pipert::TokenFile &data,
                  const std::function<void(const std::string &)> &fatal,
                  bool deferred = false);
/// This process's rank over the nccl transport (one process per GPU,
/// started by pipec-run, srun or mpirun; NcclRun.cpp).
int runNccl(const Args &a);

} // namespace pipecrun

#endif // PIPERT_RUNNER_RUNNER_H
