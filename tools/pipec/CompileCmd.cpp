//===- CompileCmd.cpp - `pipec compile`: a model into a runnable plan -----===//
//
// Imports a model, runs the training pipeline in-process (nn-autodiff ->
// nn-fuse -> pipe-partition -> pipe-schedule -> nn-lower-to-kernels ->
// pipe-plan-memory), emits the cpu
// target's sources, streams and manifest into OUT/ and compiles them into
// OUT/pipec-plan, which `pipec-run OUT/` runs (docs/EMIT.md).
//
//===----------------------------------------------------------------------===//

#include "compiler/analysis/ModelCosts.h"
#include "compiler/emit/BuildPlan.h"
#include "compiler/emit/EmitPlan.h"
#include "compiler/import/JsonImporter.h"
#include "compiler/passes/Pipeline.h"
#include "tools/pipec/StrictFlags.h"
#include "tools/pipec/Subcommand.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace pipec::tool;

static cl::SubCommand
    compileCmd("compile", "Compile a model for a pipeline schedule into a "
                          "runnable plan (sources, streams, manifest, "
                          "executable)");
static cl::opt<std::string> modelFile(cl::Positional, cl::Required,
                                      cl::desc("<MODEL.json>"),
                                      cl::sub(compileCmd));
static StrictInt<int, 1, kMaxStages> stagesOpt("stages", 1, cl::desc("pipeline ranks"), cl::sub(compileCmd));
static StrictInt<int, 0, kMaxMicrobatches> mbOpt("microbatches", 0, cl::desc("micro-batches per step (0: twice the stages)"), cl::sub(compileCmd));
static StrictInt<int, 1, kMaxReplicas> dpOpt(
    "dp", 1,
    cl::desc("data-parallel replicas of the pipeline: dp x stages ranks, "
             "replica r taking global micro-batches r*M..r*M+M-1 of each "
             "step and each chunk's gradients all-reduced over its "
             "replicas after its last W (cpu target)"),
    cl::sub(compileCmd));
static StrictInt<int, 0, 1> zeroOpt(
    "zero", 0,
    cl::desc("ZeRO stage with --dp: 1 splits the AdamW moments among the "
             "replicas of each stage (gradients reduce-scattered, each "
             "replica updating its part, the parameters all-gathered), "
             "the same bits as 0 with less optimizer memory per rank"),
    cl::sub(compileCmd));
static cl::opt<std::string>
    scheduleOpt("schedule",
                cl::desc("gpipe, 1f1b, interleaved-1f1b, zb-h1, zb-v, "
                         "dualpipe-v"),
                cl::init("1f1b"), cl::sub(compileCmd));
static StrictInt<int, 0, kMaxChunksPerRank> chunksOpt("chunks-per-rank", 0,
                              cl::desc("chunks per rank (default: the "
                                       "kind's)"), cl::sub(compileCmd));
static cl::opt<std::string> targetOpt(
    "target",
    cl::desc("cpu (C++ chunks, OpenBLAS) or cuda (bf16 storage, .cu chunks "
             "calling the cuda kernel library on one stream per rank, "
             "cuBLASLt; built with nvcc where this pipec has it, otherwise "
             "use --emit-only and build the folder with cmake)"),
    cl::init("cpu"), cl::sub(compileCmd));
static cl::opt<std::string> outOpt("o", cl::desc("output directory"),
                                   cl::value_desc("OUT"), cl::Required,
                                   cl::sub(compileCmd));
static cl::opt<bool> noFuse(
    "no-fuse",
    cl::desc("do not fuse op groups into one kernel (--nn-fuse: matmul + "
             "GELU, residual add + layernorm / rmsnorm); on the cpu target "
             "the fused kernels give the same bits, so this changes the "
             "kernel calls, not the training"),
    cl::init(false), cl::sub(compileCmd));
static cl::opt<bool> emitOnly("emit-only",
                              cl::desc("write sources, streams and manifest "
                                       "but do not compile"),
                              cl::init(false), cl::sub(compileCmd));

static cl::opt<bool> debugOneSlot(
    "debug-one-slot",
    cl::desc("(debug) put every micro-batch's data region in one slot: a "
             "wrong layout for testing the shadow-memory mode"),
    cl::init(false), cl::Hidden, cl::sub(compileCmd));
static cl::opt<std::string> debugPerturbVjp(
    "debug-perturb-vjp",
    cl::desc("(debug) multiply the B gradients of every nn.OP op by 1+1e-3 "
             "in the emitted code, as reference-train does: a wrong plan "
             "for testing comparisons"),
    cl::value_desc("OP"), cl::init(""), cl::Hidden, cl::sub(compileCmd));

static int runCompile() {
  const char *me = "pipec compile: error: ";
  if (targetOpt != "cpu" && targetOpt != "cuda") {
    errs() << me << "--target " << targetOpt << ": expected cpu or cuda\n";
    return 1;
  }
  if (stagesOpt < 1) {
    errs() << me << "--stages must be at least 1\n";
    return 1;
  }
  if (zeroOpt == 1 && dpOpt < 2) {
    errs() << me << "--zero 1 splits the optimizer state among the "
                    "data-parallel replicas: it needs --dp 2 or more\n";
    return 1;
  }
  int microbatches = mbOpt > 0 ? int(mbOpt) : 2 * stagesOpt;
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      pipec::importModelFile(ctx, modelFile, errs());
  if (!module)
    return 1;
  // The model's FLOPs as imported (`pipec stats`), for pipec-sim's MFU.
  int64_t trainFlops = 0;
  if (auto forward = module->lookupSymbol<mlir::func::FuncOp>("forward"))
    trainFlops =
        pipec::kTrainStepFlopsPerForward * pipec::forwardFlops(forward);
  // The plan's identity starts from the imported model (read once: the
  // file may be stdin) and every option that shapes the plan
  // (docs/RUNTIME.md).
  std::string identity;
  {
    raw_string_ostream os(identity);
    module->print(os);
    os << "\n-- stages=" << stagesOpt << " microbatches=" << microbatches
       << " schedule=" << scheduleOpt << " chunks-per-rank=" << chunksOpt
       << " dp=" << dpOpt << (zeroOpt ? " zero=1" : "")
       << " target=" << targetOpt
       << " fuse=" << int(!noFuse)
       << " debug-one-slot=" << int(debugOneSlot)
       << " debug-perturb-vjp=" << debugPerturbVjp << "\n";
  }
  pipec::TrainingPipelineOptions options;
  options.kind = scheduleOpt;
  options.stages = stagesOpt;
  options.microbatches = microbatches;
  options.chunksPerRank = chunksOpt;
  options.replicas = dpOpt;
  options.zero = zeroOpt;
  options.target = targetOpt;
  options.fuse = !noFuse;
  mlir::PassManager pm(&ctx);
  pipec::buildTrainingPipeline(pm, options);
  if (mlir::failed(pm.run(*module))) {
    errs() << me << "the training pipeline failed on " << modelFile << "\n";
    return 1;
  }
  if (std::error_code ec = sys::fs::create_directories(outOpt)) {
    errs() << me << "-o " << outOpt << ": " << ec.message() << "\n";
    return 1;
  }
  pipec::emit::EmittedPlan plan;
  std::string error;
  pipec::emit::EmitOptions emitOptions;
  emitOptions.debugOneSlot = debugOneSlot;
  emitOptions.debugPerturbVjp = debugPerturbVjp;
  emitOptions.identity = identity;
  emitOptions.trainFlopsPerMicrobatch = trainFlops;
  {
    // The emitter reports at the op it cannot emit: the message, then where
    // in the model the op came from (the module's own location is the
    // model file, which the message already concerns).
    mlir::ScopedDiagnosticHandler report(&ctx, [&](mlir::Diagnostic &d) {
      if (d.getSeverity() != mlir::DiagnosticSeverity::Error)
        return mlir::failure(); // remarks and warnings: the default printer
      errs() << me << d.str() << "\n";
      if (d.getLocation() != module->getLoc())
        errs() << "  at " << d.getLocation() << "\n";
      return mlir::success();
    });
    if (mlir::failed(
            pipec::emit::emitPlan(*module, outOpt, plan, emitOptions)))
      return 1;
  }
  outs() << "plan " << plan.planId << "\n";
  for (size_t r = 0; r < plan.arenaBytes.size(); ++r) {
    outs() << "rank " << r << ": arena " << plan.arenaBytes[r]
           << " bytes (memory plan; live peak " << plan.peakLiveBytes[r]
           << ")";
    if (zeroOpt)
      outs() << ", AdamW moments " << plan.momentBytes[r] << " bytes ("
             << plan.wholeMomentBytes[r] << " without ZeRO-1)";
    outs() << "\n";
  }
  if (dpOpt > 1)
    outs() << dpOpt << " replicas: " << dpOpt * stagesOpt
           << " ranks, rank r + k*" << stagesOpt
           << " with rank r's arena; each chunk's gradients "
           << (zeroOpt ? "reduce-scattered (ZeRO-1: each replica updates "
                         "its part of the AdamW moments, then the "
                         "parameters are all-gathered)"
                       : "all-reduced")
           << " in place (no buffer)\n";
  if (emitOnly)
    return 0;
  pipec::emit::BuildStats stats;
  if (!pipec::emit::buildPlan(outOpt, plan, stats, error)) {
    errs() << me << error << "\n";
    return 1;
  }
  outs() << "pipec compile: " << outOpt << "/pipec-plan: "
         << plan.chunkSources.size() << " chunks, " << stats.compiled
         << " objects compiled, " << stats.cached << " from the cache\n";
  return 0;
}

static pipec::tool::RegisterSubcommand registerCompile(compileCmd, runCompile);
