//===- PlanCmd.cpp - `pipec plan`: partition, schedule and memory ---------===//
//
// Imports a model, reads its @forward into pieces with modelled times
// (compiler/passes/ModelCosts), and plans the step with compiler/plan: the
// partition balanced per rank under the schedule's placement, the
// schedule's step time and bubble from the abstract machine, and every
// rank's arena. `--schedule auto` searches kinds, chunks per rank and
// recomputation for the fastest plan within --memory-cap.
//
//===----------------------------------------------------------------------===//

#include "compiler/import/JsonImporter.h"
#include "compiler/analysis/ModelCosts.h"
#include "compiler/passes/Passes.h"
#include "compiler/passes/Pipeline.h"
#include "compiler/plan/Planner.h"
#include "compiler/schedule/Csv.h"
#include "compiler/schedule/Replicate.h"
#include "compiler/schedule/Svg.h"
#include "tools/pipec/PlanningOptions.h"
#include "tools/pipec/StrictFlags.h"

#include <cmath>
#include "tools/pipec/Subcommand.h"

#include "pipert/AtomicFile.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace pipec::tool;
using namespace mlir;
using namespace pipec::plan;

static cl::SubCommand &planCmd = planSubcommand();

// The planning options are PlanningOptions.cpp's, shared with `pipec
// compile`; these are plan's own.
static cl::opt<std::string> modelFile(cl::Positional, cl::Required,
                                      cl::desc("<MODEL.json>"),
                                      cl::sub(planCmd));
static cl::opt<bool> forwardCostsOpt(
    "forward-costs",
    cl::desc("model B and W from the forward ops instead of costing the "
             "@train_step --nn-autodiff builds"),
    cl::init(false), cl::sub(planCmd));
static cl::opt<bool> jsonOpt("json", cl::desc("print one JSON object instead of the text (fields: docs/PARTITION.md)"),
                             cl::init(false), cl::sub(planCmd));
static cl::opt<std::string> svgOpt("svg",
                                   cl::desc("write the step's per-rank timeline as SVG to FILE (time axis in seconds of the cost model, scaled to ms or us)"),
                                   cl::value_desc("FILE"),
                                   cl::init(""), cl::sub(planCmd));

static int fail(const Twine &msg) {
  errs() << "pipec plan: error: " << msg << "\n";
  return 1;
}

static std::string layersText(const ChunkPlan &c) {
  if (c.firstLayer < 0)
    return "-";
  return c.firstLayer == c.lastLayer
             ? std::to_string(c.firstLayer)
             : std::to_string(c.firstLayer) + "-" + std::to_string(c.lastLayer);
}

static int runPlan() {
  if (svgOpt.getNumOccurrences() && svgOpt.empty())
    return fail("--svg needs a file name");
  Planning request;
  if (std::string err = readPlanningOptions(request); !err.empty())
    return fail(err);
  const pipec::plan::Rates &rates = request.planner.rates;

  MLIRContext ctx;
  OwningOpRef<ModuleOp> module = pipec::importModelFile(ctx, modelFile, errs());
  if (!module)
    return 1;
  auto forward = module->lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return fail(modelFile + ": the module has no @forward");
  pipec::CostOptions co;
  co.rates = rates;
  co.deferLmHeadW = request.pipeline.deferLmHeadW;
  // B and W from the ops --nn-autodiff builds, unless asked for the
  // forward-op model; a model autodiff refuses falls back to it, saying why.
  func::FuncOp trainStep;
  std::string costSource = "forward";
  if (!forwardCostsOpt) {
    std::string why;
    {
      ScopedDiagnosticHandler capture(&ctx, [&](Diagnostic &d) {
        if (d.getSeverity() == DiagnosticSeverity::Error && why.empty())
          why = d.str();
        return success();
      });
      PassManager pm(&ctx);
      // What `pipec compile` partitions: the target's storage (the cuda
      // target keeps bf16 activations, so its costs and memory count them
      // at 2 bytes, and pads the vocabulary; docs/NUMERICS.md), autodiff
      // and the fused groups.
      pipec::buildDifferentiation(pm, request.pipeline);
      if (succeeded(pm.run(*module)))
        trainStep = module->lookupSymbol<func::FuncOp>("train_step");
    }
    if (trainStep)
      costSource = "train_step";
    else
      errs() << "pipec plan: note: B and W are modelled from the forward ops: "
             << "--nn-autodiff refused the model (" << why << ")\n";
  }
  // Under a cap the partitioner's estimate of the arenas is met with
  // margin where the exact memory plan (`pipec compile`'s) needs it.
  PlanOptions o = request.planner;
  std::vector<int64_t> exact;
  if (trainStep)
    o.memoryCap = pipec::fitPartitionerCap(*module, request.pipeline, &exact);
  ModelCosts model;
  if (std::string err = pipec::buildModelCosts(forward, trainStep, co, model);
      !err.empty())
    return fail(modelFile + ": " + err);

  Plan plan;
  if (std::string err = makePlan(model, o, plan); !err.empty())
    return fail(err);
  // The cap holds for the memory plan `pipec compile` places, not only for
  // the estimate.
  for (size_t r = 0; r < exact.size(); ++r)
    if (exact[r] > request.pipeline.memoryCap)
      return fail("no plan fits the memory cap: rank " + std::to_string(r) +
                  " needs " + std::to_string(exact[r]) +
                  " bytes in the exact memory plan, over the memory cap of " +
                  std::to_string(request.pipeline.memoryCap) + " bytes" +
                  (plan.recompute ? " even with recomputation" : ""));

  const pipec::schedule::Schedule &s = plan.streams;
  // The pipeline's ranks (replica 0's): every replica is the same.
  const int32_t ranks = s.placement.ranks;
  double worst = 0;
  for (double t : plan.rankTime)
    worst = std::max(worst, t);
  const char *kind = o.csvText.empty() ? pipec::schedule::kindName(s.kind) : "csv";

  const int32_t replicas = plan.replicas;
  if (!svgOpt.empty()) {
    pipec::schedule::MachineResult spans =
        pipec::schedule::runMachine(s, plan.costs, /*recordSpans=*/true);
    // Replica 0, which every replica runs, its data-parallel collectives
    // under the plan's group numbers (D G + s, not G + s alone).
    if (replicas > 1) {
      const int32_t G = s.groupCount() - ranks;
      for (pipec::schedule::Span &sp : spans.spans)
        if (pipert::isCollectiveOp(sp.op) && sp.chunk >= G)
          sp.chunk = pipec::schedule::dataParallelGroup(sp.chunk - G,
                                                        replicas, G);
    }
    // Whole or not at all (AtomicFile.h).
    if (pipert::Status st = pipert::writeFileAtomically(
            svgOpt,
            pipec::schedule::renderSvg(
                s, spans,
                std::string(module->getName().value_or("model")) + " " +
                    kind +
                    (replicas > 1 ? ", replica 0 of " +
                                        std::to_string(replicas) +
                                        " (each runs its streams)"
                                  : std::string()),
                "s"));
        !st.ok())
      return fail("--svg: " + st.message());
  }

  if (jsonOpt) {
    json::OStream j(outs(), 2);
    j.object([&] {
      j.attribute("model", module->getName().value_or(""));
      j.attribute("schedule", kind);
      j.attribute("stages", ranks);
      if (replicas > 1) // as in the manifest: only with data parallelism
        j.attribute("replicas", replicas);
      if (o.zero == 1)
        j.attribute("zero", o.zero);
      j.attribute("microbatches", s.microbatches);
      j.attribute("chunks_per_rank", s.chunksPerRank);
      j.attribute("target", o.rates.name);
      j.attribute("cost_source", costSource);
      j.attribute("kept_from_liveness", model.exactKept);
      j.attribute("recompute", plan.recompute);
      j.attribute("pieces", int64_t(model.pieces.size()));
      j.attribute("bubble_fraction", plan.timing.bubbleFraction);
      j.attribute("step_time_s", plan.timing.stepTime);
      j.attributeArray("rank_time_s", [&] {
        for (double t : plan.rankTime)
          j.value(t);
      });
      j.attribute("max_rank_time_s", worst);
      j.attribute("balance_bound_s", plan.balanceBound);
      j.attributeArray("peak_memory_bytes", [&] {
        for (const RankMemory &m : plan.memory)
          j.value(m.arenaBytes);
      });
      if (!exact.empty())
        j.attributeArray("exact_arena_bytes", [&] {
          for (int64_t a : exact)
            j.value(a);
        });
      j.attributeArray("peak_live_bytes", [&] {
        for (const RankMemory &m : plan.memory)
          j.value(m.peakLiveBytes);
      });
      j.attributeArray("memory", [&] {
        for (const RankMemory &m : plan.memory)
          j.object([&] {
            for (int k = 0; k < kBufferKinds; ++k)
              j.attribute(bufferKindName(BufferKind(k)), m.atPeak[k]);
          });
      });
      j.attributeArray("chunks", [&] {
        for (size_t c = 0; c < plan.chunks.size(); ++c) {
          const ChunkPlan &ch = plan.chunks[c];
          j.object([&] {
            j.attribute("chunk", int64_t(c));
            j.attribute("rank", ch.rank);
            j.attributeArray("op_ids", [&] {
              j.value(ch.firstOp);
              j.value(ch.lastOp);
            });
            j.attribute("ops", ch.endPiece - ch.firstPiece);
            j.attributeArray("layers", [&] {
              if (ch.firstLayer >= 0) {
                j.value(ch.firstLayer);
                j.value(ch.lastLayer);
              }
            });
            j.attributeArray("costs_s", [&] {
              j.value(ch.f);
              j.value(ch.b);
              j.value(ch.w);
            });
            j.attribute("in_bytes", ch.memory.inBytes);
            j.attribute("out_bytes", ch.memory.outBytes);
            j.attribute("saved_bytes", ch.memory.savedBytes);
            j.attribute("saved_for_b_bytes", ch.memory.savedForBBytes);
            j.attributeArray("recompute_op_ids", [&] {
              if (ch.recomputes()) {
                j.value(ch.firstOp);
                j.value(model.pieces[ch.recomputeEnd - 1].lastOp);
              }
            });
          });
        }
      });
      j.attributeArray("tied", [&] {
        for (const auto &[name, rs] : plan.tied)
          j.object([&] {
            j.attribute("param", name);
            j.attributeArray("ranks", [&] {
              for (int32_t r : rs)
                j.value(r);
            });
          });
      });
    });
    outs() << "\n";
    return 0;
  }

  raw_ostream &os = outs();
  os << "plan " << module->getName().value_or("") << ": " << kind << ", "
     << ranks << " ranks";
  if (replicas > 1)
    os << " x " << replicas << " replicas (" << int64_t(ranks) * replicas
       << " ranks)";
  os << ", " << s.microbatches << " micro-batches, "
     << s.chunksPerRank << " chunk(s) per rank, target " << o.rates.name
     << (plan.recompute ? ", recomputation" : "") << "\n";
  // The partition as `pipec compile` prints it (PlanningOptions.h).
  printScheduleLine(os, kind, s.chunksPerRank, s.microbatches);
  for (size_t c = 0; c < plan.chunks.size(); ++c) {
    const ChunkPlan &ch = plan.chunks[c];
    printChunkLine(os, int64_t(c), ch.rank, ch.firstOp, ch.lastOp,
                   ch.recomputes() ? ch.firstOp : -1,
                   ch.recomputes() ? model.pieces[ch.recomputeEnd - 1].lastOp
                                   : -1);
  }
  printCapLine(os, request, o.memoryCap);
  os << "costs: F, B and W from " << (trainStep ? "@train_step's ops" : "the forward ops' model") << "\n";
  os << "chunks (ops of @forward by op id; costs per micro-batch, seconds):\n";
  for (size_t c = 0; c < plan.chunks.size(); ++c) {
    const ChunkPlan &ch = plan.chunks[c];
    os << format("  c%-3zu rank %-3d ops %5d-%-5d (%4d ops) layers %-7s "
                 "F %.3e B %.3e W %.3e  sends %lld B\n",
                 c, ch.rank, ch.firstOp, ch.lastOp, ch.endPiece - ch.firstPiece,
                 layersText(ch).c_str(), ch.f, ch.b, ch.w,
                 (long long)ch.memory.outBytes);
    if (ch.recomputes())
      os << "       recomputes ops " << ch.firstOp << "-"
         << model.pieces[ch.recomputeEnd - 1].lastOp << " in B\n";
  }
  os << "rank time per micro-batch (F+B+W), seconds:\n";
  for (int32_t r = 0; r < ranks; ++r)
    os << format("  rank %-3d %.4e\n", r, plan.rankTime[r]);
  os << format("largest rank time %.4e s, balance bound %.4e s (%.2f%% above)\n",
               worst, plan.balanceBound,
               100.0 * (worst / plan.balanceBound - 1));
  os << format("step time %.4e s, bubble fraction %.4f\n", plan.timing.stepTime,
               plan.timing.bubbleFraction);
  if (replicas > 1) {
    os << "data parallelism: each chunk's gradients "
       << (o.zero == 1 ? "reduce-scattered (ZeRO-1: each replica keeps and "
                         "updates a part of the AdamW moments, the "
                         "parameters all-gathered after the step)"
                       : "all-reduced")
       << " over its " << replicas
       << " replicas after its last W (in place, no buffer):\n";
    for (size_t c = 0; c < plan.chunks.size(); ++c)
      os << format("  c%-3zu %lld bytes\n", c,
                   (long long)plan.gradientBytes[c]);
  }
  os << "peak memory per rank (bytes; split by kind at the peak):\n";
  for (int32_t r = 0; r < ranks; ++r) {
    const RankMemory &m = plan.memory[r];
    os << "  rank " << r << ": " << m.arenaBytes << " (live peak "
       << m.peakLiveBytes << ")";
    for (int k = 0; k < kBufferKinds; ++k)
      os << " " << bufferKindName(BufferKind(k)) << " " << m.atPeak[k];
    os << "\n";
  }
  if (!exact.empty()) {
    os << "exact memory plan per rank (bytes, as pipec compile places "
          "them):";
    for (int64_t a : exact)
      os << " " << a;
    os << "\n";
  }
  for (const auto &[name, rs] : plan.tied) {
    os << "tied: " << name << " on ranks";
    for (int32_t r : rs)
      os << " " << r;
    os << " (gradients all-reduced among them)\n";
  }
  return 0;
}

static pipec::tool::RegisterSubcommand registerPlan(planCmd, runPlan);
