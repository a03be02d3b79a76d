//===- LocalRun.cpp - every rank as a thread of this process --------------===//

#include "runtime/runner/Runner.h"

#include "runtime/runner/PlanKernels.h"
#include "runtime/runner/Profile.h"
#include "runtime/runner/Sample.h"
#include "runtime/runner/Tokenizer.h"

#include "pipert/StopSignal.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace pipecrun {

/// Every rank as a thread of this process (the local transport; on a
/// cuda plan by default cuda-local, the device moving the messages).
int runLocal(const Args &a) {
  const PlanTarget *target = pipecPlanCode.target;
  const bool deviceQueues = target && target->createQueues;
  if (a.cudaGraphs && !(target && target->enableGraphs))
    return fail("--cuda-graphs: an option of cuda plans; this plan's ranks "
                "run on the cpu");
  if (a.stepGraph && !(target && target->enableStepGraphs))
    return fail("--step-graph: an option of cuda plans; this plan's ranks "
                "run on the cpu");
  if (a.transport == "cuda-local" && !deviceQueues)
    return fail("--transport cuda-local: the transport of a cuda plan; this "
                "plan's ranks run on the cpu (--transport local)");
  // --profile: the machine's ceilings first, while no arena holds memory.
  Ceilings ceilings;
  if (a.profile)
    if (std::string e = measureCeilings(a.cores, pipecPlanCode.rankCount,
                                        ceilings);
        !e.empty())
      return fail("--profile: " + e);
  std::unique_ptr<pipert::Executor> exec;
  pipert::TokenFile data;
  pipert::Batcher batcher;
  if (std::string e = prepare(a, exec, data, batcher, -1, 0); !e.empty())
    return fail(e);
  const pipert::Manifest &m = exec->manifest();
  PlanKernels kernels(pipecPlanCode, m, batcher);
  if (std::string missing = kernels.missingSlot(); !missing.empty())
    return fail(a.plan + "/manifest.json: no buffer " + missing);
  if (std::string e = kernels.start(*exec, a.cudaGraphs); !e.empty())
    return fail(e);
  // Destroyed before `kernels`, whose target states the queues use.
  std::unique_ptr<pipert::DeviceQueues> queues;
  if (deviceQueues && a.transport != "local") {
    char error[512] = {0};
    queues.reset(target->createQueues(kernels.targetStates(), m.ranks, error,
                                      sizeof error));
    if (!queues)
      return fail(std::string("--transport cuda-local: ") + target->name +
                  ": " + error);
    // The device orders the messages: the chunks need not wait.
    if (!a.syncEachFunction)
      kernels.deferSyncs();
    if (a.stepGraph &&
        !target->enableStepGraphs(queues.get(), nullptr, a.traceSteps,
                                  error, sizeof error))
      return fail(error);
  }
  // --steps is the total: a resumed run trains what is left of it.
  pipert::RunOptions options = runOptions(a);
  options.queues = queues.get();
  options.steps = stepsLeft(a, exec->stepsDone(), true);
  // Nothing left to train: the outputs asked for are still written (a
  // checkpoint exported with --save, --save-hf or --save-state) and
  // --sample still samples.
  const bool train = options.steps > 0;
  // --checkpoint-dir: committed checkpoints at the step boundaries every
  // --checkpoint-every steps, at a stop by a signal, and at the end.
  std::string error;
  auto checkpoint = [&](int64_t step) {
    CheckpointStats stats;
    if (!writeCheckpoint(*exec, a.checkpointDir, step, a.keep, stats, error))
      return pipert::Status::failure(error);
    if (!a.quiet)
      printCheckpoint(stats, "");
    return pipert::Status::success();
  };
  armCheckpoints(a, options, checkpoint);
  pipert::RunResult result;
  if (pipert::Status s =
          train ? exec->run(kernels, options, result) : pipert::Status::success();
      !s.ok()) {
    const int code = failedRun(a, s, result);
    // cuda-local over several GPUs: a healthy GPU's stream may still wait
    // on an event of a faulted one, and tearing the ranks' device state
    // down (cudaFree synchronizes) would then wait for ever. Nothing is
    // left to write; the driver takes the memory back at exit.
    if (queues) {
      std::fflush(stdout);
      std::fflush(stderr);
      std::_Exit(code);
    }
    return code;
  }
  if (train && finalCheckpointDue(a, exec->stepsDone()))
    if (pipert::Status s = checkpoint(exec->stepsDone()); !s.ok())
      return fail(s.message());
  if (!a.save.empty() &&
      !save(*exec, a.save, error, a.saveHf.empty() ? 0 : a.saveHfShardBytes))
    return fail(error);
  if (!a.saveHf.empty() && !writeHfConfig(a, error))
    return fail(error);
  if (!a.saveState.empty() && !saveState(*exec, a.saveState, error))
    return fail(error);
  if (train && !a.quiet)
    printSummary(m, result, kernels.deferred());
  if (train && a.profile)
    if (std::string e = reportProfile(
            profileRows(result, pipecPlanCode.kernelNames,
                        pipecPlanCode.kernelCosts),
            ceilings, result,
            a.logDir.empty() ? "" : a.logDir + "/kernel_profile.json");
        !e.empty())
      return fail("--profile: " + e);
  if (a.sample > 0) {
    pipecrun::SampleOptions so;
    so.tokens = a.sample;
    so.prompt = a.prompt;
    so.seed = a.hasSampleSeed ? a.sampleSeed : m.train.seed;
    so.temperature = a.temperature;
    so.threads = a.cores > 0 ? a.cores
                             : int32_t(std::max(
                                   1u, std::thread::hardware_concurrency()));
    pipecrun::ByteLevelBpe tokenizer;
    if (!a.tokenizer.empty()) {
      if (!pipecrun::ByteLevelBpe::load(a.tokenizer, tokenizer, error))
        return fail("--tokenizer " + error);
      if (tokenizer.size() > pipecPlanCode.vocab)
        return fail("--tokenizer " + a.tokenizer + ": " +
                    std::to_string(tokenizer.size()) +
                    " tokens, more than the model's vocabulary of " +
                    std::to_string(pipecPlanCode.vocab));
      if (!tokenizer.encode(a.prompt, so.promptIds, error))
        return fail("--prompt: " + error);
    }
    std::fflush(stdout);
    std::vector<int32_t> generated;
    if (!pipecrun::sampleTokens(pipecPlanCode, *exec, so, generated, error))
      return fail(error);
    std::printf("sample: %lld tokens after the prompt (seed %llu, "
                "temperature %g):\n%s\n",
                (long long)generated.size(), (unsigned long long)so.seed,
                so.temperature,
                pipecrun::tokensToText(generated, pipecPlanCode.vocab).c_str());
    if (!a.tokenizer.empty()) {
      std::string text;
      if (!tokenizer.decode(generated, text, error))
        return fail("--tokenizer: " + error);
      std::string prompt;
      for (size_t i = 0; i < so.promptIds.size(); ++i)
        prompt += (i ? " " : "") + std::to_string(so.promptIds[i]);
      std::printf("prompt tokens: %s\ndecoded:\n%s\n", prompt.c_str(),
                  text.c_str());
    }
    if (int sig = pipert::stopSignal()) {
      fail("sampling stopped by " + std::string(pipert::signalName(sig)) +
           " after " + std::to_string(generated.size()) + " of " +
           std::to_string(a.sample) + " tokens (the training run and --save "
           "are complete)");
      return 128 + sig;
    }
  }
  return 0;
}


} // namespace pipecrun
