//===- Trainer.cpp - the training loop of the reference executor ----------===//

#include "compiler/reference/Trainer.h"

#include "dialects/nn/NNModelAttrs.h"
#include "compiler/passes/Passes.h"
#include "dialects/kernel/KernelOps.h"
#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"
#include "pipert/DataLoader.h"
#include "pipert/ExactSum.h"
#include "pipert/LrSchedule.h"
#include "pipert/Metrics.h"
#include "pipert/StopSignal.h"
#include "pipert/Safetensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Format.h"

#include "kernels/cpu/Matmul.h"

#include <chrono>
#include <omp.h>

using namespace mlir;
using namespace pipec;
using namespace pipec::reference;

namespace {
/// What every run needs before its first step: parameters, tokens, batches.
template <typename T> struct Setup {
  ParameterStore<T> params;
  pipert::TokenFile data;
  pipert::Batcher batcher;
  TrainConfig train;
  int64_t batch = 0, seq = 0;
};
} // namespace

void pipec::reference::setThreadCount(int threads) {
  // OpenBLAS's bits depend on its thread count, the kernels' do not
  // (docs/NUMERICS.md): BLAS stays at one thread whatever --threads says.
  pipert::cpu::setBlasThreadCount(1);
  omp_set_num_threads(threads);
}

/// The [B, T] shape of @forward's `tokens` argument.
static bool batchShape(func::FuncOp forward, int64_t &batch, int64_t &seq,
                       llvm::raw_ostream &errs) {
  for (unsigned i = 0; i < forward.getNumArguments(); ++i) {
    auto name = forward.getArgAttrOfType<StringAttr>(i, "nn.name");
    auto type = dyn_cast<RankedTensorType>(forward.getArgument(i).getType());
    if (name && name.getValue() == "tokens" && type && type.getRank() == 2 &&
        type.hasStaticShape()) {
      batch = type.getShape()[0];
      seq = type.getShape()[1];
      return true;
    }
  }
  errs << "pipec reference-train: error: @forward has no [B, T] argument "
          "named 'tokens'\n";
  return false;
}

/// Checks every token against the vocabulary of @forward's first embedding,
/// so that bad data is reported once, with its position, before training.
static bool checkVocabulary(func::FuncOp forward, const pipert::TokenFile &data,
                            const std::string &path, llvm::raw_ostream &errs) {
  int64_t vocab = -1;
  forward.walk([&](nn::EmbeddingOp op) {
    if (vocab < 0)
      vocab = cast<RankedTensorType>(op.getTable().getType()).getShape()[0];
  });
  if (vocab < 0)
    return true;
  int64_t i = data.firstOutside(vocab);
  if (i >= 0) {
    errs << path << ": error: token " << data[i] << " at position " << i
         << " is outside the model's vocabulary of " << vocab << "\n";
    return false;
  }
  return true;
}

template <typename T>
static bool prepare(ModuleOp module, const std::string &dataPath,
                    int64_t microbatches, const std::string &initPath,
                    Setup<T> &setup, llvm::raw_ostream &errs) {
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward) {
    errs << "pipec reference-train: error: the module has no @forward\n";
    return false;
  }
  std::optional<TrainConfig> train = getTrainConfig(module);
  if (!train) {
    errs << "pipec reference-train: error: the module has no valid nn.train "
            "section\n";
    return false;
  }
  setup.train = *train;
  if (!batchShape(forward, setup.batch, setup.seq, errs) ||
      !setup.params.declare(module, errs))
    return false;
  std::string error;
  bool ok = initPath.empty()
                ? setup.params.initialise(uint64_t(setup.train.seed), error)
                : setup.params.load(initPath, error);
  if (ok)
    ok = pipert::loadTokens(dataPath, setup.data, error) &&
         pipert::Batcher::create(setup.data, setup.batch, setup.seq,
                                 microbatches, setup.batcher, error);
  if (!ok) {
    errs << "pipec reference-train: error: " << error << "\n";
    return false;
  }
  return checkVocabulary(forward, setup.data, dataPath, errs);
}

/// --nn-lower-to-kernels over the module: the executor runs kernel calls.
static bool lowerToKernels(ModuleOp module, llvm::raw_ostream &errs) {
  // A second run (forwardLoss then train on one module) finds nothing left
  // to lower.
  PassManager pm(module.getContext());
  pm.addPass(createNNLowerToKernelsPass());
  if (failed(pm.run(module))) {
    errs << "pipec reference-train: error: the model does not lower to the "
            "cpu kernels (see above)\n";
    return false;
  }
  return true;
}

template <typename T>
bool pipec::reference::forwardLoss(ModuleOp module, const std::string &dataPath,
                                   int64_t microbatch, double &loss,
                                   llvm::raw_ostream &errs,
                                   const std::string &initPath) {
  Setup<T> setup;
  if (!prepare(module, dataPath, 1, initPath, setup, errs) ||
      !lowerToKernels(module, errs))
    return false;
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  auto exec = Executor<T>::create(forward, setup.params, {}, errs);
  if (!exec)
    return false;
  int tok = exec->argumentIndex("tokens"), tgt = exec->argumentIndex("targets");
  if (tok < 0 || tgt < 0) {
    errs << "pipec reference-train: error: @forward needs arguments named "
            "'tokens' and 'targets'\n";
    return false;
  }
  std::string error;
  if (!setup.batcher.microBatch(0, microbatch, exec->intArgument(tok),
                                exec->intArgument(tgt), error)) {
    errs << "pipec reference-train: error: " << error << "\n";
    return false;
  }
  if (!exec->run(error)) {
    errs << error << "\n";
    return false;
  }
  loss = exec->scalarResult(0);
  return true;
}

template bool pipec::reference::forwardLoss<float>(ModuleOp,
                                                   const std::string &, int64_t,
                                                   double &,
                                                   llvm::raw_ostream &,
                                                   const std::string &);
template bool pipec::reference::forwardLoss<double>(ModuleOp,
                                                    const std::string &,
                                                    int64_t, double &,
                                                    llvm::raw_ostream &,
                                                    const std::string &);

/// The parameter gradients of the optimizer step just run (the summed uses
/// each adamw call reads, before clipping), one tensor per parameter name.
template <typename T>
static bool dumpGradients(func::FuncOp optimizer, const Executor<T> &exec,
                          const ParameterStore<T> &params,
                          const std::string &path, llvm::raw_ostream &errs) {
  std::vector<pipert::Tensor> tensors;
  for (auto call : optimizer.getBody().front().getOps<kernel::CallOp>()) {
    if (call.getKernel() != "adamw")
      continue;
    std::string name = call.getStateRef(0).param;
    int idx = params.find(name);
    const auto &entry = params.entries()[idx];
    tensors.push_back(pipert::makeFloatTensor<T>(
        name, entry.logicalShape,
        ParameterStore<T>::logicalOf(entry,
                                     exec.valueBuffer(call.getInputs()[0]))
            .data()));
  }
  if (tensors.size() != params.entries().size()) {
    errs << "pipec reference-train: error: @optimizer_step updates "
         << tensors.size() << " parameters of " << params.entries().size()
         << "\n";
    return false;
  }
  std::string error;
  if (!pipert::writeSafetensors(path, tensors, {}, error)) {
    errs << "pipec reference-train: error: " << error << "\n";
    return false;
  }
  return true;
}

/// The index of the argument or result `name` of a training function.
static bool lookup(int index, StringRef fn, StringRef what, StringRef name,
                   llvm::raw_ostream &errs) {
  if (index >= 0)
    return true;
  errs << "pipec reference-train: error: @" << fn << " has no " << what
       << " named '" << name << "' (docs/AUTODIFF.md)\n";
  return false;
}

template <typename T>
bool pipec::reference::train(ModuleOp module, const TrainOptions &options,
                             llvm::raw_ostream &out, llvm::raw_ostream &errs) {
  Setup<T> setup;
  if (!prepare(module, options.dataPath, options.microbatches, options.initPath,
               setup, errs) ||
      !lowerToKernels(module, errs))
    return false;
  auto stepFn = module.lookupSymbol<func::FuncOp>("train_step");
  auto optFn = module.lookupSymbol<func::FuncOp>("optimizer_step");
  if (!stepFn || !optFn) {
    errs << "pipec reference-train: error: the module has no @train_step "
            "and @optimizer_step (run --nn-autodiff first)\n";
    return false;
  }
  auto step = Executor<T>::create(stepFn, setup.params, options.executor, errs);
  auto opt = Executor<T>::create(optFn, setup.params, {}, errs);
  if (!step || !opt)
    return false;
  int tok = step->argumentIndex("tokens"), tgt = step->argumentIndex("targets");
  int scale = step->argumentIndex("loss_scale");
  int loss = step->resultIndex("loss"), stepArg = opt->argumentIndex("step");
  int norm = opt->resultIndex("grad_norm"), lr = opt->resultIndex("lr");
  if (!lookup(tok, "train_step", "argument", "tokens", errs) ||
      !lookup(tgt, "train_step", "argument", "targets", errs) ||
      !lookup(scale, "train_step", "argument", "loss_scale", errs) ||
      !lookup(loss, "train_step", "result", "loss", errs) ||
      !lookup(stepArg, "optimizer_step", "argument", "step", errs) ||
      !lookup(norm, "optimizer_step", "result", "grad_norm", errs) ||
      !lookup(lr, "optimizer_step", "result", "lr", errs))
    return false;

  pipert::MetricsWriter metrics;
  std::string error;
  if (!options.logDir.empty() && !metrics.open(options.logDir, error)) {
    errs << "pipec reference-train: error: " << error << "\n";
    return false;
  }
  // A run that stops early closes its log and says where it is.
  auto closeLog = [&]() -> std::string {
    std::string closeError;
    if (options.logDir.empty())
      return "";
    return metrics.close(closeError)
               ? "; " + metrics.path() + " holds the steps run"
               : "; " + closeError;
  };
  const int64_t m = options.microbatches;
  for (int64_t s = 0; s < options.steps; ++s) {
    auto start = std::chrono::steady_clock::now();
    setup.params.zeroAccumulators();
    // The step's loss: the exact sum of the micro-batch losses rounded
    // once to double, divided by M (docs/TRAINING.md), as the executor's.
    pipert::ExactSum total;
    for (int64_t j = 0; j < m; ++j) {
      // SIGINT / SIGTERM: stop between micro-batches (StopSignal.h), the
      // log of the completed steps closed and complete.
      if (int sig = pipert::stopSignal()) {
        errs << "pipec reference-train: error: stopped by "
             << pipert::signalName(sig) << " after " << s << " of "
             << options.steps << " steps" << closeLog()
             << (options.savePath.empty()
                     ? std::string()
                     : "; --save " + options.savePath + " is not written")
             << "\n";
        return false;
      }
      if (!setup.batcher.microBatch(s, j, step->intArgument(tok),
                                    step->intArgument(tgt), error)) {
        errs << "pipec reference-train: error: step " << s
             << ", micro-batch " << j << ": " << error << "\n";
        return false;
      }
      step->doubleArgument(scale)[0] = 1.0 / double(m);
      if (!step->run(error)) {
        errs << "pipec reference-train: error: step " << s << ", micro-batch "
             << j << ": " << error << "\n";
        return false;
      }
      total.add(step->scalarResult(loss));
    }
    opt->int64Argument(stepArg)[0] = s;
    if (!opt->run(error)) {
      errs << "pipec reference-train: error: step " << s << ": " << error
           << "\n";
      return false;
    }
    if (s == 0 && !options.dumpGradsPath.empty() &&
        !dumpGradients(optFn, *opt, setup.params, options.dumpGradsPath, errs))
      return false;
    pipert::StepMetrics rec;
    rec.step = s;
    rec.loss = total.value() / double(m);
    rec.lr = opt->scalarResult(lr);
    rec.gradNorm = opt->scalarResult(norm);
    rec.ms = std::chrono::duration<double, std::milli>(
                 std::chrono::steady_clock::now() - start)
                 .count();
    out << llvm::format("step %5lld  loss %.9g  lr %.9g  grad_norm %.9g  "
                        "%.1f ms\n",
                        (long long)s, rec.loss, rec.lr, rec.gradNorm, rec.ms);
    out.flush();
    if (metrics.path().size() && !metrics.write(rec, error)) {
      errs << "pipec reference-train: error: " << error << "\n";
      return false;
    }
    if (std::string why = pipert::nonFiniteStep(s, rec.loss, rec.gradNorm);
        !why.empty()) {
      errs << "pipec reference-train: error: " << why << closeLog() << "\n";
      return false;
    }
  }
  if (!metrics.close(error)) {
    errs << "pipec reference-train: error: " << error << "\n";
    return false;
  }
  if (!options.savePath.empty() &&
      !setup.params.save(options.savePath, error)) {
    errs << "pipec reference-train: error: " << error << "\n";
    return false;
  }
  return true;
}

template bool pipec::reference::train<float>(ModuleOp, const TrainOptions &,
                                             llvm::raw_ostream &,
                                             llvm::raw_ostream &);
template bool pipec::reference::train<double>(ModuleOp, const TrainOptions &,
                                              llvm::raw_ostream &,
                                              llvm::raw_ostream &);
