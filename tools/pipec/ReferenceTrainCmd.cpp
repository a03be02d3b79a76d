//===- ReferenceTrainCmd.cpp - `pipec reference-train`: the golden model --===//
//
// Imports a model, differentiates it in-process (--nn-autodiff) and trains
// it on one rank with the reference executor (compiler/reference), in float
// or double, following docs/TRAINING.md. Every target is compared with it.
//
//===----------------------------------------------------------------------===//

#include "compiler/import/JsonImporter.h"
#include "compiler/passes/Passes.h"
#include "compiler/reference/Trainer.h"
#include "tools/pipec/StrictFlags.h"

#include "pipert/AtomicFile.h"
#include "pipert/InputFile.h"
#include "pipert/StopSignal.h"

#include "llvm/Support/FileSystem.h"
#include "tools/pipec/Subcommand.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"

using namespace llvm;
using namespace pipec::tool;

static cl::SubCommand
    trainCmd("reference-train",
             "Train a model on one rank with the reference executor (the "
             "golden model every target is compared with)");

static cl::opt<std::string> modelFile(cl::Positional, cl::Required,
                                      cl::desc("<MODEL.json>"),
                                      cl::sub(trainCmd));
static cl::opt<std::string>
    dataFile("data", cl::Required,
             cl::desc("Training data: a text file (bytes are tokens) or an "
                      "llm.c .bin token shard"),
             cl::value_desc("FILE"), cl::sub(trainCmd));
static StrictInt<int64_t, 1, 1000000000000> steps("steps", 0, cl::Required,
                              cl::desc("Optimizer steps to run"),
                              cl::sub(trainCmd));
static StrictInt<int64_t, 1, kMaxMicrobatches> microbatches("microbatches", 1,
                 cl::desc("Micro-batches accumulated per step (default 1)"),
                 cl::sub(trainCmd));
static cl::opt<bool> useF64("f64",
                            cl::desc("Run in float64 instead of float32"),
                            cl::sub(trainCmd));
static cl::opt<std::string>
    logDir("log-dir",
           cl::desc("Create DIR and write DIR/metrics.jsonl (one line per "
                    "step: step, loss, lr, grad_norm, ms)"),
           cl::value_desc("DIR"), cl::sub(trainCmd));
static cl::opt<std::string>
    saveFile("save", cl::desc("Save the final parameters (safetensors)"),
             cl::value_desc("FILE.safetensors"), cl::sub(trainCmd));
static cl::opt<std::string> initFile(
    "init",
    cl::desc("Initial parameters (safetensors with the model's names and "
             "shapes) instead of the seeded initialiser"),
    cl::value_desc("FILE.safetensors"), cl::sub(trainCmd));
static cl::opt<std::string>
    dumpGrads("dump-grads",
              cl::desc("Write the gradients of the first step's loss (before "
                       "clipping, tied uses summed), one tensor per parameter"),
              cl::value_desc("FILE.safetensors"), cl::sub(trainCmd));
static cl::opt<std::string> perturbVjp(
    "debug-perturb-vjp",
    cl::desc("Multiply the B gradients of every nn op named OP by 1 + 1e-3 "
             "(proves a comparison can fail)"),
    cl::value_desc("OP"), cl::sub(trainCmd));
static cl::opt<std::string> storage(
    "storage",
    cl::desc("Storage of activations and weight copies: f32 (default) or "
             "bf16, which emulates the cuda target: every bf16 value rounded "
             "to nearest even where that target stores it, fp32 masters, "
             "gradients, moments and statistics (docs/NUMERICS.md)"),
    cl::value_desc("f32|bf16"), cl::init("f32"), cl::sub(trainCmd));
static StrictInt<int64_t, 0, 1 << 20> padVocab(
    "pad-vocab", 0,
    cl::desc("Pad the vocabulary of the loss's logits to a multiple of N, "
             "as the cuda target does with 128 (--nn-pad-vocab): the losses "
             "and the saved parameters are the unpadded model's. 0 "
             "(default): no padding"),
    cl::value_desc("N"), cl::sub(trainCmd));
static StrictInt<int, 1, 4096> threads("threads", 1,
            cl::desc("OpenMP threads of the kernels (default 1); BLAS stays "
                     "at one thread, so the results do not depend on it"),
            cl::sub(trainCmd));

static int runReferenceTrain() {
  const char *me = "pipec reference-train: error: ";
  // Outputs are checked before the first step: a run of hours must not end
  // on a path it cannot write (AtomicFile.h writes them whole at the end).
  for (const auto &[flag, path] :
       {std::pair<const char *, std::string>{"--save", saveFile},
        {"--dump-grads", dumpGrads}}) {
    if (path.empty())
      continue;
    if (pipert::Status s = pipert::refusePlanFile(path, flag); !s.ok()) {
      errs() << me << s.message() << "\n";
      return 1;
    }
    if (sys::fs::is_directory(path)) {
      errs() << me << flag << " " << path << ": is a directory\n";
      return 1;
    }
  }
  // (A directory is a Hugging Face checkpoint's: readCheckpoint.)
  if (!initFile.empty() && !sys::fs::is_directory(initFile))
    if (pipert::Status s = pipert::checkInputFile(initFile, "--init file");
        !s.ok()) {
      errs() << me << s.message() << "\n";
      return 1;
    }
  if (storage != "f32" && storage != "bf16") {
    errs() << me << "--storage " << storage << ": expected f32 or bf16\n";
    return 1;
  }
  if (storage == "bf16" && useF64) {
    errs() << me << "--storage bf16 emulates the cuda target's fp32 "
                    "arithmetic: it does not combine with --f64\n";
    return 1;
  }
  pipert::installStopSignals("pipec reference-train");
  // Fixed before the first kernel runs: BLAS results depend on the count.
  pipec::reference::setThreadCount(threads);

  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      pipec::importModelFile(ctx, modelFile, errs());
  if (!module)
    return 1;
  mlir::PassManager pm(&ctx);
  pipec::NNStoragePassOptions storageOptions;
  storageOptions.type = storage;
  pm.addPass(pipec::createNNStoragePass(storageOptions));
  pipec::NNPadVocabPassOptions padOptions;
  padOptions.multiple = padVocab;
  pm.addPass(pipec::createNNPadVocabPass(padOptions));
  pm.addPass(pipec::createNNAutodiffPass());
  if (mlir::failed(pm.run(*module))) {
    errs() << "pipec reference-train: error: --nn-storage, --nn-pad-vocab "
              "or --nn-autodiff failed on "
           << modelFile << "\n";
    return 1;
  }

  pipec::reference::TrainOptions options;
  options.dataPath = dataFile;
  options.steps = steps;
  options.microbatches = microbatches;
  options.logDir = logDir;
  options.savePath = saveFile;
  options.initPath = initFile;
  options.dumpGradsPath = dumpGrads;
  options.executor.perturbVjpOp = perturbVjp;
  bool ok =
      useF64 ? pipec::reference::train<double>(*module, options, outs(), errs())
             : pipec::reference::train<float>(*module, options, outs(), errs());
  if (int sig = pipert::stopSignal(); !ok && sig)
    return 128 + sig; // as a shell reports a command a signal ended
  return ok ? 0 : 1;
}

static pipec::tool::RegisterSubcommand registerTrain(trainCmd,
                                                     runReferenceTrain);
