//===- Pipeline.h - the training flow as one pass pipeline -------*- C++ -*-===//
//
// nn-storage -> nn-pad-vocab -> nn-autodiff -> nn-fuse -> pipe-partition ->
// pipe-schedule ->
// nn-lower-to-kernels -> pipe-plan-memory with
// one set of options, so `pipec compile` and tests build the same flow.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_PASSES_PIPELINE_H
#define PIPEC_COMPILER_PASSES_PIPELINE_H

#include "mlir/Pass/PassManager.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipec {

/// What the training flow needs to know.
struct TrainingPipelineOptions {
  std::string kind = "1f1b"; ///< schedule kind (docs/SCHEDULES.md)
  int32_t stages = 1;
  int32_t microbatches = 1;
  int32_t chunksPerRank = 0; ///< 0: the kind's default
  std::string target = "cpu";
  /// Ops recomputed by autodiff (docs/AUTODIFF.md), e.g. {"gelu"}.
  std::vector<std::string> autodiffRecompute;
  /// Whole-chunk recomputation chosen by the partitioner's memory model.
  bool recomputeChunks = false;
  int64_t memoryCap = 0; ///< bytes per rank; 0: no cap
  /// --nn-fuse after autodiff (pipec compile --no-fuse turns it off).
  bool fuse = true;
};

/// The storage type of activations on `target` (--nn-storage): bf16 on
/// cuda, f32 elsewhere.
std::string storageTypeOf(const std::string &target);

/// The multiple the vocabulary is padded to on `target` (--nn-pad-vocab):
/// 128 on cuda (aligned GEMM tiles), 0 (none) elsewhere.
int64_t vocabMultipleOf(const std::string &target);

/// The target's storage passes, the flow's first: --nn-storage and, where
/// the target pads, --nn-pad-vocab.
void addStoragePasses(mlir::OpPassManager &pm, const std::string &target);

/// Appends the flow's passes to a module-level pass manager.
void buildTrainingPipeline(mlir::OpPassManager &pm,
                           const TrainingPipelineOptions &options);

} // namespace pipec

#endif // PIPEC_COMPILER_PASSES_PIPELINE_H
