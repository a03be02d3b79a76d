//===- Pipeline.cpp - the training flow as one pass pipeline --------------===//

#include "compiler/passes/Pipeline.h"

#include "compiler/passes/Passes.h"

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

void buildTrainingPipeline(mlir::OpPassManager &pm,
                           const TrainingPipelineOptions &o) {
  addStoragePasses(pm, o.target);
  NNAutodiffPassOptions autodiff;
  autodiff.recompute.assign(o.autodiffRecompute.begin(),
                            o.autodiffRecompute.end());
  pm.addPass(createNNAutodiffPass(autodiff));
  if (o.fuse)
    pm.addPass(createNNFusePass());

  PipePartitionPassOptions partition;
  partition.stages = o.stages;
  partition.kind = o.kind;
  partition.microbatches = o.microbatches;
  partition.chunksPerRank = o.chunksPerRank;
  partition.target = o.target;
  partition.recompute = o.recomputeChunks;
  partition.memoryCap = o.memoryCap;
  pm.addPass(createPipePartitionPass(partition));

  PipeSchedulePassOptions schedule;
  schedule.kind = o.kind;
  schedule.microbatches = o.microbatches;
  schedule.replicas = o.replicas;
  schedule.zero = o.zero;
  schedule.chunksPerRank = o.chunksPerRank;
  pm.addPass(createPipeSchedulePass(schedule));

  NNLowerToKernelsPassOptions kernels;
  kernels.target = o.target;
  pm.addPass(createNNLowerToKernelsPass(kernels));

  PipePlanMemoryPassOptions memory;
  memory.memoryCap = o.memoryCap;
  pm.addPass(createPipePlanMemoryPass(memory));
}

TrainingPipelineOptions TrainingPipelineCLOptions::toOptions() const {
  TrainingPipelineOptions o;
  o.kind = schedule::kindName(kind);
  o.stages = stages;
  o.microbatches = microbatches;
  o.chunksPerRank = chunksPerRank;
  o.replicas = replicas;
  o.zero = zero;
  o.target = target == Target::Cuda ? "cuda" : "cpu";
  o.autodiffRecompute.assign(recompute.begin(), recompute.end());
  o.recomputeChunks = recomputeChunks;
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
