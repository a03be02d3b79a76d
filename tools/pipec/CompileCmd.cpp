//===- CompileCmd.cpp - `pipec compile`: a model into a runnable plan -----===//
//
// Imports a model, runs the training pipeline in-process (nn-autodiff ->
// nn-fuse -> pipe-partition -> pipe-recompute -> pipe-schedule ->
// nn-lower-to-kernels -> pipe-plan-memory) with the planning options it
// shares with `pipec plan` (PlanningOptions.h), emits the target's
// sources, streams and manifest into OUT/ and compiles them into
// OUT/pipec-plan, which `pipec-run OUT/` runs (docs/EMIT.md).
//
//===----------------------------------------------------------------------===//

#include "compiler/analysis/ModelCosts.h"
#include "compiler/emit/BuildPlan.h"
#include "compiler/emit/EmitPlan.h"
#include "compiler/import/JsonImporter.h"
#include "compiler/passes/Pipeline.h"
#include "tools/pipec/PlanningOptions.h"
#include "tools/pipec/StrictFlags.h"
#include "tools/pipec/Subcommand.h"

#include "dialects/pipe/PipeOps.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <filesystem>
#include <fstream>

using namespace llvm;
using namespace pipec::tool;

static cl::SubCommand &compileCmd = compileSubcommand();

// The planning options (schedule, stages, memory cap, recomputation, ...)
// are PlanningOptions.cpp's, shared with `pipec plan`; these are
// compile's own.
static cl::opt<std::string> modelFile(cl::Positional, cl::Required,
                                      cl::desc("<MODEL.json>"),
                                      cl::sub(compileCmd));
static cl::opt<std::string> outOpt("o",
                                   cl::desc("the plan folder to write (made "
                                            "if missing; its files are "
                                            "replaced whole): sources, "
                                            "streams, manifest.json and the "
                                            "pipec-plan executable"),
                                   cl::value_desc("OUT"), cl::Required,
                                   cl::sub(compileCmd));
static cl::opt<bool> emitOnly("emit-only",
                              cl::desc("write sources, streams and manifest "
                                       "but do not build pipec-plan (the "
                                       "folder's CMakeLists.txt builds it "
                                       "elsewhere, e.g. on a GPU machine)"),
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

/// The schedule and chunks the pipeline chose, as `pipec plan` prints them.
static void printPartition(mlir::ModuleOp module, raw_ostream &os) {
  for (auto schedule : module.getOps<pipec::pipe::ScheduleOp>())
    printScheduleLine(os, schedule.getKind(), schedule.getChunksPerRank(),
                      schedule.getMicrobatches());
  int64_t c = 0;
  for (auto chunk : module.getOps<pipec::pipe::ChunkOp>()) {
    auto ids = chunk->getAttrOfType<mlir::DenseI64ArrayAttr>("pipe.op_ids");
    auto again =
        chunk->getAttrOfType<mlir::DenseI64ArrayAttr>("pipe.recompute_ops");
    printChunkLine(os, c++, chunk.getRank(), ids ? ids[0] : -1,
                   ids ? ids[1] : -1, again ? again[0] : -1,
                   again ? again[1] : -1);
  }
}

/// The file that marks a folder as pipec compile's (written before
/// anything else, so that a compile that failed half-way may be repeated
/// into its folder).
static const char kPlanMarker[] = ".pipec-plan";

/// Why `dir` cannot take a plan, or "": a plan folder holds pipec
/// compile's files alone, so it must be new, empty, or a plan folder
/// already (its manifest or marker); anything else would be written over
/// or mixed with the plan's files.
static std::string checkOutputFolder(const std::string &dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec))
    return "";
  if (!fs::is_directory(dir, ec))
    return "-o " + dir + ": exists and is not a directory";
  if (fs::exists(fs::path(dir) / "manifest.json", ec) ||
      fs::exists(fs::path(dir) / kPlanMarker, ec))
    return "";
  int64_t entries = 0;
  std::string first;
  for (const fs::directory_entry &e : fs::directory_iterator(dir, ec)) {
    if (first.empty())
      first = e.path().filename().string();
    ++entries;
  }
  if (entries == 0)
    return "";
  return "-o " + dir + ": a directory with other files in it (" +
         std::to_string(entries) + (entries == 1 ? " entry: " : " entries, e.g. ") +
         first + ") and no plan (no manifest.json): pipec compile writes "
         "a whole plan folder, over files of the same names; give a new or "
         "empty directory, or an earlier plan folder";
}

static int runCompile() {
  const char *me = "pipec compile: error: ";
  Planning request;
  if (std::string err = readPlanningOptions(request); !err.empty()) {
    errs() << me << err << "\n";
    return 1;
  }
  if (std::string err = checkOutputFolder(outOpt); !err.empty()) {
    errs() << me << err << "\n";
    return 1;
  }
  const pipec::TrainingPipelineOptions &options = request.pipeline;
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
    os << "\n-- " << describePlanning(request)
       << " debug-one-slot=" << int(debugOneSlot)
       << " debug-perturb-vjp=" << debugPerturbVjp << "\n";
  }
  // Differentiate, find the partitioner's cap that makes the exact memory
  // plan fit (as `pipec plan` does), and keep that plan; without a cap, or
  // when none fits (the memory plan then names the rank), plan for real.
  pipec::TrainingPipelineOptions flow = options;
  mlir::PassManager differentiate(&ctx);
  pipec::buildDifferentiation(differentiate, flow);
  bool ok = mlir::succeeded(differentiate.run(*module));
  if (ok) {
    mlir::OwningOpRef<mlir::ModuleOp> fitted;
    flow.partitionerCap =
        pipec::fitPartitionerCap(*module, flow, nullptr, &fitted);
    if (fitted) {
      module = std::move(fitted);
    } else {
      mlir::PassManager pm(&ctx);
      pipec::buildPartitionedFlow(pm, flow);
      ok = mlir::succeeded(pm.run(*module));
    }
  }
  if (!ok) {
    errs() << me << "the training pipeline failed on " << modelFile << "\n";
    return 1;
  }
  printPartition(*module, outs());
  printCapLine(outs(), request, flow.partitionerCap);
  if (std::error_code ec = sys::fs::create_directories(outOpt)) {
    errs() << me << "-o " << outOpt << ": " << ec.message() << "\n";
    return 1;
  }
  {
    std::ofstream marker(outOpt + "/" + kPlanMarker);
    marker << "a plan folder: pipec compile writes everything in it\n";
    if (!marker) {
      errs() << me << "-o " << outOpt << ": cannot write " << kPlanMarker
             << "\n";
      return 1;
    }
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
    if (options.zero)
      outs() << ", AdamW moments " << plan.momentBytes[r] << " bytes ("
             << plan.wholeMomentBytes[r] << " without ZeRO-1)";
    outs() << "\n";
  }
  const int32_t stages = int32_t(plan.arenaBytes.size());
  if (options.replicas > 1)
    outs() << options.replicas << " replicas: " << options.replicas * stages
           << " ranks, rank r + k*" << stages
           << " with rank r's arena; each chunk's gradients "
           << (options.zero ? "reduce-scattered (ZeRO-1: each replica updates "
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
