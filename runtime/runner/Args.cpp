//===- Args.cpp - pipec-plan's arguments, parsed strictly -----------------===//

#include "runtime/runner/Runner.h"

#include "pipert/ParseNumber.h"

#include <cmath>
#include <cstdio>
#include <string>

namespace pipecrun {

int fail(const std::string &message) {
  std::fprintf(stderr, "pipec-run: error: %s\n", message.c_str());
  return 1;
}


// What the flags can honour: a step count whose record fits in memory, a
// timeout that steady_clock::now() + timeout cannot overflow (about 115
// days), a sample the sampler's context holds, a core count OpenMP takes.
constexpr int64_t kMaxSteps = 1000000000000;
constexpr int64_t kMaxTimeoutMs = 10000000000;
constexpr int64_t kMaxSample = 100000000;
constexpr int64_t kMaxCores = 4096;
// trace.json holds every instruction of every traced step in memory.
constexpr int64_t kMaxTraceSteps = 10000;

const char *const kUsage =
    "usage: pipec-run OUT/ --data FILE --steps N [--log-dir DIR] [--init "
    "FILE.safetensors] [--save FILE.safetensors] [--save-state FILE] "
    "[--resume FILE|DIR] [--checkpoint-dir DIR [--checkpoint-every N] "
    "[--keep K]] [--plan DIR] [--shadow] "
    "[--cores N] [--trace-steps N] [--trace-kernels] [--profile] "
    "[--cuda-graphs] [--step-graph] [--sync-each-function] "
    "[--timeout-ms MS] "
    "[--quiet] "
    "[--transport local|cuda-local|mpi|nccl [--rendezvous R] "
    "[--watchdog-ms MS]] "
    "[--sample N [--prompt TEXT] [--sample-seed N] [--temperature T]] "
    "(--help explains each)\n";

bool parseArgs(int argc, char **argv, Args &a, std::string &error) {
  bool keepGiven = false, shardGiven = false, watchdogGiven = false;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&](std::string &out) {
      if (i + 1 >= argc) {
        error = k + " needs a value";
        return false;
      }
      out = argv[++i];
      return true;
    };
    // Strict: decimal, in range, no overflow (ParseNumber.h).
    auto number = [&](int64_t &out, int64_t min, int64_t max) {
      std::string v;
      return value(v) && pipert::parseInteger(k, v, min, max, out, error);
    };
    int64_t cores = 0;
    bool ok = true;
    if (k == "--plan")
      ok = value(a.plan);
    else if (k == "--data")
      ok = value(a.data);
    else if (k == "--log-dir")
      ok = value(a.logDir);
    else if (k == "--init")
      ok = value(a.init);
    else if (k == "--save")
      ok = value(a.save);
    else if (k == "--save-hf")
      ok = value(a.saveHf);
    else if (k == "--save-hf-shard-size")
    {
      ok = number(a.saveHfShardBytes, 1, int64_t(1) << 50);
      shardGiven = true;
    }
    else if (k == "--tokenizer")
      ok = value(a.tokenizer);
    else if (k == "--save-state")
      ok = value(a.saveState);
    else if (k == "--resume")
      ok = value(a.resume);
    else if (k == "--checkpoint-dir")
      ok = value(a.checkpointDir);
    else if (k == "--checkpoint-every")
      ok = number(a.checkpointEvery, 1, kMaxSteps);
    else if (k == "--keep") {
      ok = number(a.keep, 1, 1000000);
      keepGiven = true;
    }
    else if (k == "--transport") {
      ok = value(a.transport);
      if (ok && a.transport != "local" && a.transport != "cuda-local" &&
          a.transport != "mpi" && a.transport != "nccl") {
        error = "--transport must be local, cuda-local, mpi or nccl, not '" +
                a.transport + "'";
        return false;
      }
    }
    else if (k == "--rendezvous")
      ok = value(a.rendezvous);
    else if (k == "--watchdog-ms") {
      ok = number(a.watchdogMs, 100, kMaxTimeoutMs);
      watchdogGiven = true;
    }
    else if (k == "--steps")
      ok = number(a.steps, 1, kMaxSteps);
    else if (k == "--timeout-ms")
      ok = number(a.timeoutMs, 1, kMaxTimeoutMs);
    else if (k == "--sample")
      ok = number(a.sample, 1, kMaxSample);
    else if (k == "--sample-seed") {
      std::string v;
      ok = value(v) && pipert::parseUnsigned(k, v, a.sampleSeed, error);
      a.hasSampleSeed = true;
    }
    else if (k == "--prompt")
      ok = value(a.prompt);
    else if (k == "--temperature") {
      std::string v;
      ok = value(v) &&
           pipert::parseFinite(k, v, 0, 1e6, a.temperature, error);
    }
    else if (k == "--cores") {
      ok = number(cores, 0, kMaxCores);
      a.cores = int32_t(cores);
    } else if (k == "--shadow")
      a.shadow = true;
    else if (k == "--quiet")
      a.quiet = true;
    else if (k == "--trace-kernels")
      a.traceKernels = true;
    else if (k == "--profile")
      a.profile = true;
    else if (k == "--cuda-graphs")
      a.cudaGraphs = true;
    else if (k == "--step-graph")
      a.stepGraph = true;
    else if (k == "--sync-each-function")
      a.syncEachFunction = true;
    else if (k == "--trace-steps")
      ok = number(a.traceSteps, 1, kMaxTraceSteps);
    else {
      error = "unknown argument '" + k + "'";
      return false;
    }
    if (!ok)
      return false;
  }
  if (a.data.empty() || a.steps == 0) {
    error = "--data and --steps are required";
    return false;
  }
  if (a.traceKernels && a.logDir.empty() && !a.profile) {
    error = "--trace-kernels writes kernel_times.json into --log-dir DIR; "
            "give one";
    return false;
  }
  if (a.profile && a.steps < 2) {
    error = "--profile times the steps after the first; give --steps 2 or "
            "more";
    return false;
  }
  a.traceKernels = a.traceKernels || a.profile;
  if (!a.resume.empty() && !a.init.empty()) {
    error = "--resume and --init both choose the starting weights; give one";
    return false;
  }
  if ((a.checkpointEvery > 0 || keepGiven) && a.checkpointDir.empty()) {
    error = "--checkpoint-every and --keep need --checkpoint-dir";
    return false;
  }
  if ((a.transport == "mpi" || a.transport == "nccl") &&
      !a.saveState.empty()) {
    error = "--save-state needs the local transport (one process writes "
            "every rank's moments); with --transport " + a.transport +
            " use --checkpoint-dir, where each process writes its rank's part";
    return false;
  }
  if (a.syncEachFunction && a.transport == "mpi") {
    error = "--sync-each-function is an option of cuda plans, which do not "
            "run over mpi (--transport nccl is theirs)";
    return false;
  }
  if (a.stepGraph && (a.transport == "local" || a.transport == "mpi")) {
    error = "--step-graph captures the step of a GPU's ranks, whose "
            "messages the device moves: --transport cuda-local (a cuda "
            "plan's default) or nccl, not " + a.transport;
    return false;
  }
  if (a.stepGraph && (a.cudaGraphs || a.syncEachFunction || a.traceKernels ||
                      a.shadow)) {
    error = std::string("--step-graph captures the whole step, which ") +
            (a.cudaGraphs ? "--cuda-graphs (a graph per function) would "
                            "capture again"
             : a.syncEachFunction ? "--sync-each-function's waits would "
                                    "break"
             : a.traceKernels ? "--profile and --trace-kernels time call by "
                                "call"
                              : "--shadow checks instruction by instruction") +
            "; give one of them";
    return false;
  }
  if (a.cudaGraphs && a.transport == "mpi") {
    error = "--cuda-graphs is an option of cuda plans, which do not run "
            "over mpi (--transport nccl is theirs)";
    return false;
  }
  if (a.transport != "nccl" && (!a.rendezvous.empty() || watchdogGiven)) {
    error = "--rendezvous and --watchdog-ms are --transport nccl's";
    return false;
  }
  if (shardGiven && a.saveHf.empty()) {
    error = "--save-hf-shard-size shards what --save-hf writes; give "
            "--save-hf DIR";
    return false;
  }
  if (!a.saveHf.empty()) {
    if (!a.save.empty()) {
      error = "--save and --save-hf both write the parameters; --save-hf "
              "DIR writes DIR/model.safetensors";
      return false;
    }
    a.save = a.saveHf + "/model.safetensors";
  }
  if (!a.tokenizer.empty() && a.sample == 0) {
    error = "--tokenizer is what --sample N encodes and decodes with; give "
            "--sample";
    return false;
  }
  if (a.prompt.empty()) {
    error = "--prompt must not be empty";
    return false;
  }
  if ((a.transport == "mpi" || a.transport == "nccl") && a.sample > 0) {
    error = "--sample needs one process (the sampler runs every chunk in "
            "it); train with --transport " + a.transport + " --save F and "
            "sample from --init F with the plan's own transport";
    return false;
  }
  return true;
}


} // namespace pipecrun
