//===- Report.cpp - the summary, the options, the end of a stopped run ----===//

#include "runtime/runner/Runner.h"

#include "pipert/StopSignal.h"

#include <algorithm>
#include <cstdio>

namespace pipecrun {

/// Per-rank figures are listed up to this many ranks, summarised beyond.
static constexpr size_t kRanksListed = 64;

/// The summary after training (the process that reports). `deferred`: a
/// cuda plan's chunks did not wait for their streams, so the host's times
/// are launches and the idle share is not measured.
void printSummary(const pipert::Manifest &m, const pipert::RunResult &result,
                  bool deferred) {
  double tokens = 0, seconds = 0;
  for (const pipert::StepRecord &r : result.steps) {
    tokens += double(m.tokensPerMicrobatch) * m.microbatches * m.replicas;
    seconds += r.stepTimeS;
  }
  if (result.steps.empty())
    return;
  std::printf("done: %lld steps, final loss %.6f, %.0f tokens/s\n",
              (long long)result.steps.size(), result.steps.back().loss,
              seconds > 0 ? tokens / seconds : 0.0);
  // The measured counterpart of the schedule's modelled bubble.
  if (deferred) {
    std::printf("idle share per rank: not measured (the functions did not wait "
                "for their streams; --sync-each-function measures it)\n");
    return;
  }
  const std::vector<double> &idle = result.idleShare;
  if (idle.size() <= kRanksListed) {
    std::printf("idle share per rank:");
    for (double share : idle)
      std::printf(" %.3f", share);
  } else {
    // Not a number per rank: there may be 220,000.
    size_t least = 0, most = 0;
    double sum = 0;
    for (size_t r = 0; r < idle.size(); ++r) {
      least = idle[r] < idle[least] ? r : least;
      most = idle[r] > idle[most] ? r : most;
      sum += idle[r];
    }
    std::printf("idle share over %zu ranks: least %.3f (rank %zu), mean "
                "%.3f, most %.3f (rank %zu)",
                idle.size(), idle[least], least, sum / double(idle.size()),
                idle[most], most);
  }
  if (m.modeledBubble >= 0)
    std::printf(" (%s modelled bubble %.3f)", m.scheduleKind.c_str(),
                m.modeledBubble);
  std::printf("\n");
  // Executor::run failed otherwise: each rank's high-water mark is its
  // memory plan's arena, and every read saw the writer the plan names.
  if (!result.highWater.empty()) {
    std::printf("shadow memory: every access as planned; arena high-water "
                "per rank (bytes, = the memory plan's):");
    size_t listed = std::min(result.highWater.size(), kRanksListed);
    for (size_t r = 0; r < listed; ++r)
      std::printf(" %lld", (long long)result.highWater[r]);
    if (listed < result.highWater.size())
      std::printf(" ... (%zu ranks)", result.highWater.size());
    std::printf("\n");
  }
}

pipert::RunOptions runOptions(const Args &a) {
  pipert::RunOptions opt;
  opt.steps = a.steps;
  opt.shadow = a.shadow;
  opt.cores = a.cores;
  opt.timeout = std::chrono::milliseconds(a.timeoutMs);
  opt.outDir = a.logDir;
  opt.progress = a.quiet ? nullptr : stdout;
  opt.stopRequested = pipert::stopSignal;
  opt.setBlasThreads = pipecPlanCode.setBlasThreads;
  opt.setRankThreads = pipecPlanCode.setRankThreads;
  opt.traceKernels = a.traceKernels;
  opt.traceSteps = a.traceSteps;
  opt.kernelNames = pipecPlanCode.kernelNames;
  return opt;
}

int64_t stepsLeft(const Args &a, int64_t stepsDone, bool print) {
  int64_t left = a.steps - stepsDone;
  if (left <= 0 && print) {
    std::printf("resumed after step %lld of --steps %lld: nothing left to "
                "train\n",
                (long long)stepsDone, (long long)a.steps);
    std::fflush(stdout);
  }
  return left;
}

void armCheckpoints(const Args &a, pipert::RunOptions &opt,
                    std::function<pipert::Status(int64_t)> write) {
  if (a.checkpointDir.empty())
    return;
  opt.checkpointEvery = a.checkpointEvery;
  opt.checkpoint = std::move(write);
  opt.stopAtStepBoundary = true;
}

bool finalCheckpointDue(const Args &a, int64_t stepsDone) {
  return !a.checkpointDir.empty() &&
         (a.checkpointEvery == 0 || stepsDone % a.checkpointEvery != 0);
}

void printCheckpoint(const CheckpointStats &stats, const char *whose) {
  std::printf("checkpoint %s: %lld parts, %.1f MB%s in %.2f s\n",
              stats.path.c_str(), (long long)stats.parts,
              double(stats.bytes) / 1e6, whose, stats.seconds);
  std::fflush(stdout);
}

/// The message and exit code of a run that did not complete: 128 + the
/// signal for one stopped by SIGINT or SIGTERM (130, 143), else 1. --save
/// is not written: the weights of a stopped step are half updated.
int failedRun(const Args &a, const pipert::Status &s,
              const pipert::RunResult &result) {
  std::string note = a.save.empty() ? std::string()
                                    : "\n--save " + a.save +
                                          " is not written (an earlier file "
                                          "there is left as it was)";
  fail(s.message() + note);
  return result.stopSignal ? 128 + result.stopSignal : 1;
}


} // namespace pipecrun
