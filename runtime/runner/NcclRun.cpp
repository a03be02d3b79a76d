//===- NcclRun.cpp - this process's rank over NCCL, one process per GPU ---===//
//
// Started by pipec-run --transport nccl (one machine), srun or mpirun: the
// launcher's variables say the rank, the job's size and the local rank
// (pipert/Rendezvous.h); the process takes GPU (local rank mod the GPUs
// it sees), loads only its rank's arena, makes the communicators (the
// rendezvous shares rank 0's NCCL id) and trains. Rank 0 reports, as under
// mpirun. No collective exists before the communicators do, so an error
// found while preparing is printed by every process that found it, with
// its rank, and the launcher ends the others.
//
//===----------------------------------------------------------------------===//

#include "runtime/runner/Runner.h"

#include "runtime/runner/PlanKernels.h"

#include "pipert/NcclSetup.h"
#include "pipert/Rendezvous.h"

#include <cstdio>
#include <cstdlib>
#include <thread>

namespace pipecrun {

int runNccl(const Args &a) {
  // Every communicator has its own stream beside the compute stream; with
  // fewer hardware queues than streams, a kernel can wait behind another
  // stream's NCCL kernel that waits on it. 32 is the most CUDA allows; it
  // is read when the device's context is made, so before any CUDA call.
  if (const char *preset = std::getenv("CUDA_DEVICE_MAX_CONNECTIONS");
      preset && std::atoi(preset) < 16)
    std::fprintf(stderr,
                 "pipec-run: warning: CUDA_DEVICE_MAX_CONNECTIONS=%s: the "
                 "nccl transport's streams (one per communicator) may queue "
                 "behind each other; unset it or set 32\n",
                 preset);
  setenv("CUDA_DEVICE_MAX_CONNECTIONS", "32", 0);
  pipert::LaunchEnv env;
  if (pipert::Status s = pipert::readLaunchEnv(
          [](const char *name) { return std::getenv(name); }, env);
      !s.ok())
    return fail("--transport nccl: " + s.message());
  const int32_t me = env.rank;
  auto failHere = [&](const std::string &error) {
    return fail(env.size > 1 ? "rank " + std::to_string(me) + ": " + error
                             : error);
  };
  const pipecrun::PlanTarget *target = pipecPlanCode.target;
  if (!target || !target->createNccl || !target->pinDevice)
    return me == 0 ? fail("--transport nccl: the transport of cuda plans; "
                          "this plan runs on the cpu (one process per rank: "
                          "--transport mpi)")
                   : 1;
  std::string rendezvous;
  if (pipert::Status s = pipert::chooseRendezvous(env, a.rendezvous,
                                                  rendezvous);
      !s.ok())
    return me == 0 ? fail("--transport nccl: " + s.message()) : 1;
  char why[1024] = {0};
  if (!target->pinDevice(env.localRank, why, sizeof why))
    return failHere(std::string("--transport nccl: ") + why);

  std::unique_ptr<pipert::Executor> exec;
  pipert::TokenFile data;
  pipert::Batcher batcher;
  std::string error = prepare(a, exec, data, batcher, me, env.size);
  if (error.empty() && exec) {
    PlanKernels probe(pipecPlanCode, exec->manifest(), batcher);
    if (std::string missing = probe.missingSlot(); !missing.empty())
      error = a.plan + "/manifest.json: no buffer " + missing;
  }
  // A rank's own arena, GPU or --resume part can fail where the others'
  // did not: every rank says what it found.
  if (!error.empty())
    return failHere(error);
  const pipert::Manifest &m = exec->manifest();
  PlanKernels kernels(pipecPlanCode, m, batcher);
  if (std::string e = kernels.start(*exec, a.cudaGraphs); !e.empty())
    return failHere(e);
  pipert::NcclSetup setup;
  setup.stream = &exec->stream(me);
  setup.groups = &m.groups;
  setup.env = env;
  setup.rendezvous = rendezvous;
  setup.jobKey = env.jobId;
  setup.planId = m.planId;
  setup.timeout = std::chrono::milliseconds(a.timeoutMs);
  setup.watchdog = std::chrono::milliseconds(a.watchdogMs);
  setup.verbose = !a.quiet;
  std::unique_ptr<pipert::Transport> transport(target->createNccl(
      setup, kernels.targetStates()[me], why, sizeof why));
  if (!transport)
    return failHere(std::string("--transport nccl: ") + why);
  // NCCL's calls are ordered on the device: the chunks need not wait.
  if (!a.syncEachFunction)
    kernels.deferSyncs();
  if (a.stepGraph && !target->enableStepGraphs)
    return failHere("--step-graph: an option of cuda plans");
  if (a.stepGraph &&
      !target->enableStepGraphs(nullptr, transport.get(), a.traceSteps, why,
                                sizeof why))
    return failHere(why);

  // The others may be blocked on this process: its exit closes their
  // connections (their NCCL calls fail, their watchdogs end them) and the
  // launcher ends the job.
  auto fatal = [&](const std::string &e) {
    failHere(e);
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(1);
  };
  int code = trainThisRank(a, *exec, kernels, *transport, me, data, fatal,
                           kernels.deferred());
  transport.reset(); // its communicators before the rank's device state
  return code;
}

} // namespace pipecrun
