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
  // Processes given other plans (a stale copy on one node) would make
  // other communicators and wait on each other until --timeout-ms: the
  // plans' ids are compared first. The rest that every process must share
  // is compared before the first step (RunOptions::agree).
  switch (MpiSession::sameEverywhere(
      pipert::planIdValue(m.planId),
      pipert::Clock::now() + timeout)) {
  case 1:
    break;
  case 0:
    if (me == 0)
      fail("the processes were given different plans (rank 0's is " +
           m.planId + ", from " + a.plan +
           "): start every process with the same plan folder");
    return 1;
  default:
    fail("rank " + std::to_string(me) + ": the other processes did not " +
         "answer within " + std::to_string(a.timeoutMs) + " ms");
    MpiSession::abortAll(1);
  }
  std::unique_ptr<pipert::MpiTransport> transport;
  pipert::Status created =
      pipert::MpiTransport::create(exec->stream(me), m.groups, transport,
                                   pipert::Clock::now() + timeout);
  // Another process's failure (its rank in the status) is that process's
  // to report: the lowest failing rank prints.
  const bool elsewhere =
      !created.ok() && created.rank() >= 0 && created.rank() != me;
  if (agree(created.ok() || elsewhere ? "" : created.message()) || elsewhere)
    return 1;
  PlanKernels kernels(pipecPlanCode, m, batcher);
  if (agree(kernels.start(*exec)))
    return 1;
  // A failure the other processes may not know of: they learnt of it
  // (MpiTransport::abort), get a moment to say where they stood, then the
  // job ends.
  auto fatal = [&](const std::string &e) {
    fail(e);
    std::fflush(stderr);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    MpiSession::abortAll(1);
  };
  int code = trainThisRank(a, *exec, kernels, *transport, me, data, fatal);
  transport.reset(); // frees its communicators before MPI_Finalize
  return code;
}

} // namespace pipecrun
