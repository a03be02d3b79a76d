//===- Pipeline.cpp - the training flow as one pass pipeline --------------===//

#include "compiler/passes/Pipeline.h"

#include "compiler/passes/Passes.h"

#include "dialects/pipe/PipeOps.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"

namespace pipec {

std::string storageTypeOf(const std::string &target) {
  return target == "cuda" ? "bf16" : "f32";
}

int64_t vocabMultipleOf(const std::string &target) {
  return target == "cuda" ? 128 : 0;
}

void addStoragePasses(mlir::OpPassManager &pm, const std::string &target) {
  NNStoragePassOptions storage;
  storage.type = storageTypeOf(target);
  pm.addPass(createNNStoragePass(storage));
  if (int64_t multiple = vocabMultipleOf(target)) {
    NNPadVocabPassOptions pad;
    pad.multiple = multiple;
    pm.addPass(createNNPadVocabPass(pad));
  }
}

void buildDifferentiation(mlir::OpPassManager &pm,
                          const TrainingPipelineOptions &o) {
  addStoragePasses(pm, o.target);
  NNAutodiffPassOptions autodiff;
  autodiff.recompute.assign(o.autodiffRecompute.begin(),
                            o.autodiffRecompute.end());
  pm.addPass(createNNAutodiffPass(autodiff));
  if (o.fuse)
    pm.addPass(createNNFusePass());
}

void buildTrainingPipeline(mlir::OpPassManager &pm,
                           const TrainingPipelineOptions &o) {
  buildDifferentiation(pm, o);
  buildPartitionedFlow(pm, o);
}

int64_t fitPartitionerCap(mlir::ModuleOp differentiated,
                          const TrainingPipelineOptions &o,
                          std::vector<int64_t> *exactArenas,
                          mlir::OwningOpRef<mlir::ModuleOp> *fitted) {
  std::vector<int64_t> arenas;
  if (exactArenas)
    exactArenas->clear();
  if (o.memoryCap <= 0)
    return o.memoryCap;
  // Trial plans report through their attributes; their diagnostics (a
  // partitioner out of options) are not the user's.
  mlir::ScopedDiagnosticHandler quiet(differentiated.getContext(),
                                      [](mlir::Diagnostic &) {
                                        return mlir::success();
                                      });
  // Each round lowers the cap by what the estimate missed; a few rounds
  // settle it (the estimate is within about 15% of the plan).
  const int rounds = o.recompute == "auto" ? 8 : 1;
  int64_t cap = o.memoryCap;
  for (int round = 0; round < rounds; ++round) {
    TrainingPipelineOptions trial = o;
    trial.partitionerCap = cap;
    trial.memoryCap = 0; // measured here, not checked
    mlir::OwningOpRef<mlir::ModuleOp> copy(differentiated.clone());
    mlir::PassManager pm(differentiated.getContext());
    buildPartitionedFlow(pm, trial);
    if (mlir::failed(pm.run(*copy)))
      break;
    arenas.clear();
    auto estimates =
        (*copy)->getAttrOfType<mlir::DenseI64ArrayAttr>(
            "pipe.estimated_arena_bytes");
    // The next cap: each rank over the cap must be estimated at the cap
    // less what its estimate missed.
    int64_t excess = 0, next = cap;
    for (auto program : copy->getOps<pipe::ProgramOp>())
      if (auto a = program->getAttrOfType<mlir::IntegerAttr>(
              "pipe.arena_bytes")) {
        int64_t exact = a.getInt(), rank = program.getRank();
        arenas.push_back(exact);
        if (exact <= o.memoryCap)
          continue;
        excess = std::max(excess, exact - o.memoryCap);
        int64_t missed = estimates && rank < int64_t(estimates.size())
                             ? exact - estimates[rank]
                             : exact - o.memoryCap;
        next = std::min(next, o.memoryCap - missed);
      }
    // The last plan measured, over the cap when no partitioner cap fits.
    if (exactArenas)
      *exactArenas = arenas;
    if (excess <= 0) {
      if (fitted)
        *fitted = std::move(copy);
      return cap;
    }
    if (next >= cap)
      next = cap - excess;
    if (rounds == 1 || next <= 0)
      break;
    cap = next;
  }
  return o.memoryCap;
}

void buildPartitionedFlow(mlir::OpPassManager &pm,
                          const TrainingPipelineOptions &o) {
  PipePartitionPassOptions partition;
  partition.stages = o.stages;
  partition.kind = o.csv.empty() ? o.kind : "";
  partition.csv = o.csv;
  partition.microbatches = o.microbatches;
  partition.chunksPerRank = o.chunksPerRank;
  partition.target = o.target;
  partition.recompute = o.recompute;
  partition.memoryCap = o.partitionerCap > 0 ? o.partitionerCap : o.memoryCap;
  partition.deferLmHeadW = o.deferLmHeadW;
  partition.replicas = o.replicas;
  partition.zero = o.zero;
  pm.addPass(createPipePartitionPass(partition));
  pm.addPass(createPipeRecomputePass());

  // The kind the partition placed the chunks for (auto: the one it chose).
  PipeSchedulePassOptions schedule;
  schedule.kind = o.csv.empty() ? "auto" : "";
  schedule.csv = o.csv;
  schedule.microbatches = o.microbatches;
  schedule.replicas = o.replicas;
  schedule.zero = o.zero;
  schedule.chunksPerRank = o.chunksPerRank;
  pm.addPass(createPipeSchedulePass(schedule));

  NNLowerToKernelsPassOptions kernels;
  kernels.target = o.target;
  kernels.attention = o.attention;
  pm.addPass(createNNLowerToKernelsPass(kernels));

  PipePlanMemoryPassOptions memory;
  memory.memoryCap = o.memoryCap;
  pm.addPass(createPipePlanMemoryPass(memory));
}

TrainingPipelineOptions TrainingPipelineCLOptions::toOptions() const {
  TrainingPipelineOptions o;
  o.kind = autoKind ? "auto" : schedule::kindName(kind);
  o.csv = csv;
  o.deferLmHeadW = deferLmHeadW;
  o.stages = stages;
  o.microbatches = microbatches;
  o.chunksPerRank = chunksPerRank;
  o.replicas = replicas;
  o.zero = zero;
  o.target = target == Target::Cuda ? "cuda" : "cpu";
  o.autodiffRecompute.assign(recompute.begin(), recompute.end());
  o.recompute = recomputeChunks;
  o.memoryCap = memoryCap;
  o.fuse = fuse;
  return o;
}

void registerTrainingPipeline() {
  mlir::PassPipelineRegistration<TrainingPipelineCLOptions>(
      "pipec-train",
      "The training flow of pipec compile (docs/DESIGN.md): storage, "
      "autodiff, fuse, partition, schedule, lowering to kernels, memory plan",
      [](mlir::OpPassManager &pm, const TrainingPipelineCLOptions &o) {
        buildTrainingPipeline(pm, o.toOptions());
      });
}

} // namespace pipec
