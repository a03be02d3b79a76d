//===- MpiRun.cpp - this process's rank under mpirun ----------------------===//

#include "runtime/runner/Runner.h"

#include "runtime/runner/PlanKernels.h"

#include "pipert/MpiTransport.h"

#include <cstdio>
#include <cstdlib>
#include <thread>

namespace pipecrun {

/// This process's rank (under mpirun) over the mpi transport. Rank 0
/// reports: progress, metrics.jsonl, trace.json, the summary, --save.
int runMpi(const Args &a) {
  using pipert::MpiSession;
  const int32_t me = MpiSession::rank();
  const auto timeout = std::chrono::milliseconds(a.timeoutMs);
  // Checks that fail on every process (the same files) are reported once,
  // by the lowest failing rank; all processes then end normally.
  auto agree = [&](const std::string &error) -> int {
    int32_t first =
        MpiSession::firstFailure(error.empty(), pipert::Clock::now() + timeout);
    if (first == -1)
      return 0;
    if (first == -2) {
      fail("rank " + std::to_string(me) + ": the other processes did not " +
           "answer within " + std::to_string(a.timeoutMs) + " ms" +
           (error.empty() ? std::string() : ": " + error));
      MpiSession::abortAll(1);
    }
    if (first == me)
      fail(error);
    return 1;
  };
  std::unique_ptr<pipert::Executor> exec;
  pipert::TokenFile data;
  pipert::Batcher batcher;
  std::string error = prepare(a, exec, data, batcher, me, MpiSession::size());
  if (error.empty() && exec) {
    PlanKernels probe(pipecPlanCode, exec->manifest(), batcher);
    if (std::string missing = probe.missingSlot(); !missing.empty())
      error = a.plan + "/manifest.json: no buffer " + missing;
  }
  // The mpi transport moves host memory; a device target's ranks run in one
  // process (cuda-local) until its NCCL transport exists (issue 20).
  if (error.empty() && pipecPlanCode.target)
    error = std::string("--transport mpi: the ") + pipecPlanCode.target->name +
            " target runs its ranks in one process (--transport local)";
  if (agree(error))
    return 1;
  const pipert::Manifest &m = exec->manifest();
  std::vector<pipert::Stream> streams;
  for (int32_t r = 0; r < m.ranks; ++r)
    streams.push_back(exec->stream(r));
  std::unique_ptr<pipert::MpiTransport> transport;
  pipert::Status created =
      pipert::MpiTransport::create(streams, m.groups, transport);
  if (agree(created.ok() ? "" : created.message()))
    return 1;
  PlanKernels kernels(pipecPlanCode, m, batcher);
  if (agree(kernels.start(*exec)))
    return 1;
  pipert::RunOptions opt = runOptions(a);
  opt.transport = transport.get();
  if (me != 0) {
    opt.outDir.clear();
    opt.progress = nullptr;
  }
  // --steps is the total: a resumed run trains what is left of it.
  opt.steps = stepsLeft(a, exec->stepsDone(), me == 0);
  if (opt.steps <= 0) {
    transport.reset();
    return 0;
  }
  // --checkpoint-dir: every process writes its rank's part (collective,
  // from the monitor thread while the rank's thread holds at the boundary).
  auto checkpoint = [&](int64_t step) {
    CheckpointStats stats;
    if (!writeCheckpointGathered(*exec, *transport, me, a.checkpointDir, step,
                                 a.keep, timeout, stats, error))
      return pipert::Status::failure(error);
    if (me == 0 && !a.quiet)
      printCheckpoint(stats, " (rank 0's)");
    return pipert::Status::success();
  };
  armCheckpoints(a, opt, checkpoint);
  pipert::RunResult result;
  if (pipert::Status s = exec->run(kernels, opt, result);
      !s.ok() && (result.stopSignal || result.nonFiniteStep != -1)) {
    // Every process stopped of its own accord (each got the signal, or
    // each saw the same non-finite step); rank 0 reports. The processes
    // stand at different instructions with transfers in flight, so
    // MPI_Finalize could wait forever: each exits with the code a stopped
    // local run has, which mpirun passes on.
    // mpirun ends the job when the first process exits non-zero, so the
    // others give rank 0 a moment to close its metrics and report.
    if (me == 0)
      failedRun(a, s, result);
    else
      std::this_thread::sleep_for(std::chrono::seconds(2));
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(result.stopSignal ? 128 + result.stopSignal : 1);
  } else if (!s.ok()) {
    // The other processes may be blocked on this one: they learnt of the
    // failure (MpiTransport::abort), get a moment to say where they stood,
    // then the job ends.
    fail(s.message());
    std::fflush(stderr);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    MpiSession::abortAll(1);
  }
  if (finalCheckpointDue(a, exec->stepsDone()))
    if (pipert::Status s = checkpoint(exec->stepsDone()); !s.ok()) {
      fail(s.message());
      std::fflush(stderr);
      MpiSession::abortAll(1);
    }
  if (!a.save.empty() &&
      !saveGathered(*exec, *transport, me, a.save, timeout, error,
                    a.saveHf.empty() ? 0 : a.saveHfShardBytes)) {
    fail(error);
    std::fflush(stderr);
    MpiSession::abortAll(1);
  }
  if (me == 0 && !a.saveHf.empty() && !writeHfConfig(a, error)) {
    fail(error);
    std::fflush(stderr);
    MpiSession::abortAll(1);
  }
  if (me == 0 && !a.quiet)
    printSummary(m, result);
  std::fflush(stdout);
  transport.reset(); // frees its communicators before MPI_Finalize
  return 0;
}

} // namespace pipecrun
