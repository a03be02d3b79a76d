//===- RankRun.cpp - training this process's rank, one rank per process ---===//
//
// What the mpi and nccl runs share once their transport exists: the
// executor's options (rank 0 reports), the steps left, checkpoints at the
// boundaries (each process writes its rank's part), the run, its end
// (a stop every process took is reported by rank 0; another failure by
// the process that had it, then `fatal` ends the job), the last
// checkpoint, --save and --save-hf gathered at rank 0, and the summary.
//
//===----------------------------------------------------------------------===//

#include "runtime/runner/Runner.h"

#include <cstdio>
#include <cstdlib>
#include <thread>

namespace pipecrun {

int trainThisRank(const Args &a, pipert::Executor &exec,
                  pipert::ChunkKernels &kernels, pipert::Transport &transport,
                  int32_t me, const pipert::TokenFile &data,
                  const std::function<void(const std::string &)> &fatal,
                  bool deferred) {
  const auto timeout = std::chrono::milliseconds(a.timeoutMs);
  pipert::RunOptions opt = runOptions(a);
  opt.transport = &transport;
  if (me != 0) {
    opt.outDir.clear();
    opt.progress = nullptr;
  }
  // --steps is the total: a resumed run trains what is left of it.
  opt.steps = stepsLeft(a, exec.stepsDone(), me == 0);
  // What the executor cannot see but every process must share: the data
  // each replica draws its micro-batches from, and the gathers at the end
  // (--save, --save-hf's shards), which are collective.
  opt.agree = {{"the data's tokens (--data)", data.size()}};
  pipert::agreeOnBits(opt.agree, "the data's fingerprint (--data; high half)",
                      "the data's fingerprint (--data; low half)",
                      data.fingerprint());
  opt.agree.insert(
      opt.agree.end(),
      {{"--save", a.save.empty() ? 0 : 1},
       {"--save-hf's shard size", a.saveHf.empty() ? 0 : a.saveHfShardBytes}});
  std::string error;
  // --save (gathered: collective) and --save-hf's config, after training
  // or with nothing left to train.
  auto writeOutputs = [&] {
    if (!a.save.empty() &&
        !saveGathered(exec, transport, me, a.save, timeout, error,
                      a.saveHf.empty() ? 0 : a.saveHfShardBytes))
      fatal(error);
    if (me == 0 && !a.saveHf.empty() && !writeHfConfig(a, error))
      fatal(error);
  };
  // Nothing left to train: the processes still compare (a process whose
  // steps differ would otherwise wait for this one until its deadline),
  // then write the outputs asked for (a checkpoint exported with --save).
  if (opt.steps <= 0) {
    int64_t wantTrace = 0;
    if (pipert::Status s = exec.agreeOrFail(me, opt, wantTrace); !s.ok())
      fatal(s.message());
    writeOutputs();
    std::fflush(stdout);
    return 0;
  }
  // --checkpoint-dir: every process writes its rank's part (collective,
  // from the monitor thread while the rank's thread holds at the boundary).
  auto checkpoint = [&](int64_t step) {
    CheckpointStats stats;
    if (!writeCheckpointGathered(exec, transport, me, a.checkpointDir, step,
                                 a.keep, timeout, stats, error))
      return pipert::Status::failure(error);
    if (me == 0 && !a.quiet)
      printCheckpoint(stats, " (rank 0's)");
    return pipert::Status::success();
  };
  armCheckpoints(a, opt, checkpoint);
  pipert::RunResult result;
  if (pipert::Status s = exec.run(kernels, opt, result);
      !s.ok() && (result.stopSignal || result.nonFiniteStep != -1)) {
    // Every process stopped of its own accord (each got the signal, or
    // each saw the same non-finite step); rank 0 reports. The processes
    // stand at different instructions with transfers in flight, so ending
    // the transport normally could wait forever: each exits with the code
    // a stopped local run has, which the launcher passes on. It ends the
    // job when the first process exits non-zero, so the others give rank
    // 0 a moment to close its metrics and report.
    if (me == 0)
      failedRun(a, s, result);
    else
      std::this_thread::sleep_for(std::chrono::seconds(2));
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(result.stopSignal ? 128 + result.stopSignal : 1);
  } else if (!s.ok()) {
    fatal(s.message());
  }
  if (finalCheckpointDue(a, exec.stepsDone()))
    if (pipert::Status s = checkpoint(exec.stepsDone()); !s.ok())
      fatal(s.message());
  writeOutputs();
  if (me == 0 && !a.quiet)
    printSummary(exec.manifest(), result, deferred);
  std::fflush(stdout);
  return 0;
}

} // namespace pipecrun
