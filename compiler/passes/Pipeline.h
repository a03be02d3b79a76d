//===- Pipeline.h - the training flow as one pass pipeline -------*- C++ -*-===//
//
// nn-storage -> nn-pad-vocab -> nn-autodiff -> nn-fuse -> pipe-partition ->
// pipe-recompute -> pipe-schedule -> nn-lower-to-kernels -> pipe-plan-memory
// with
// one set of options, so `pipec compile` and tests build the same flow.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_PASSES_PIPELINE_H
#define PIPEC_COMPILER_PASSES_PIPELINE_H

#include "compiler/schedule/Schedule.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipec {

/// What the training flow needs to know.
struct TrainingPipelineOptions {
  /// Schedule kind (docs/SCHEDULES.md), or "auto": the fastest plan that
  /// fits memoryCap, the kind chosen by --pipe-partition.
  std::string kind = "1f1b";
  /// A torch.distributed.pipelining CSV schedule file instead of kind.
  std::string csv;
  int32_t stages = 1;
  int32_t microbatches = 1;
  int32_t chunksPerRank = 0; ///< 0: the kind's default
  /// Data-parallel replicas of the pipeline (Replicate.h).
  int32_t replicas = 1;
  /// ZeRO stage (0 or 1): 1 splits the AdamW moments among the replicas.
  int32_t zero = 0;
  std::string target = "cpu";
  /// Ops recomputed by autodiff (docs/AUTODIFF.md), e.g. {"gelu"}.
  std::vector<std::string> autodiffRecompute;
  /// Recomputation chosen by the partitioner (--pipe-partition, applied by
  /// --pipe-recompute): none, full (every chunk) or auto (layer by layer on
  /// the ranks over memoryCap).
  std::string recompute = "auto";
  int64_t memoryCap = 0; ///< bytes per rank; 0: no cap
  /// The cap the partitioner plans recomputation for, when it must be
  /// tighter than memoryCap (fitPartitionerCap); 0: memoryCap.
  int64_t partitionerCap = 0;
  /// The LM head's W after its B like every other W (docs/PARTITION.md).
  bool deferLmHeadW = false;
  /// --nn-fuse after autodiff (pipec compile --no-fuse turns it off).
  bool fuse = true;
  /// The cuda attention kernels (--nn-lower-to-kernels attention=): tiled
  /// where the head size allows, or rows everywhere.
  std::string attention = "tiled";
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

/// The passes before partitioning (storage, autodiff, fuse): what
/// `pipec plan` costs, so that it plans what `pipec compile` builds.
void buildDifferentiation(mlir::OpPassManager &pm,
                          const TrainingPipelineOptions &options);

/// The passes after differentiation: partition, recompute, schedule,
/// lowering, memory plan.
void buildPartitionedFlow(mlir::OpPassManager &pm,
                          const TrainingPipelineOptions &options);

/// The partitioner chooses recomputation from an estimate of each rank's
/// arena; the exact memory plan counts more (per-use accumulators, the
/// kernels' scratch, messages alive until their wait), so a cap met by the
/// estimate can be missed by the plan. Under a cap with recompute "auto",
/// this runs the partitioned flow on copies of `differentiated` (the
/// module after buildDifferentiation) and lowers the partitioner's cap by
/// the largest excess until the exact plan fits: the cap to plan with
/// (options.memoryCap when no lowering is needed or possible; the memory
/// plan then names the rank over it). With recompute none or full, one
/// plan is made and measured, the cap left as it is.
/// `exactArenas`, when given, receives each rank's arena in the exact plan
/// of the last cap tried (the one returned when it fits; empty when there
/// is no cap or the partitioner found no plan).
/// `fitted`, when given, receives the copy whose plan fits, so that a
/// caller need not run the flow again (null when none fits).
int64_t fitPartitionerCap(mlir::ModuleOp differentiated,
                          const TrainingPipelineOptions &options,
                          std::vector<int64_t> *exactArenas = nullptr,
                          mlir::OwningOpRef<mlir::ModuleOp> *fitted = nullptr);

/// Appends the flow's passes to a module-level pass manager.
void buildTrainingPipeline(mlir::OpPassManager &pm,
                           const TrainingPipelineOptions &options);

/// The targets pipec compiles for.
enum class Target { Cpu, Cuda };

/// The flow's options as pipec-opt reads them (`--pipec-train="kind=zb-v
/// stages=4 microbatches=8 target=cuda"`): the schedule kind and the target
/// enumerated, so a wrong one is refused with the valid ones listed.
struct TrainingPipelineCLOptions
    : public mlir::PassPipelineOptions<TrainingPipelineCLOptions> {
  Option<schedule::Kind> kind{
      *this, "kind", llvm::cl::desc("the schedule (docs/SCHEDULES.md)"),
      llvm::cl::init(schedule::Kind::OneFOneB),
      llvm::cl::values(
          clEnumValN(schedule::Kind::GPipe, "gpipe", "all F, then all B"),
          clEnumValN(schedule::Kind::OneFOneB, "1f1b", "one F, one B"),
          clEnumValN(schedule::Kind::Interleaved, "interleaved-1f1b",
                     "1F1B over several chunks per rank"),
          clEnumValN(schedule::Kind::ZBH1, "zb-h1",
                     "zero bubble: B and W split, 1F1B's memory"),
          clEnumValN(schedule::Kind::ZBV, "zb-v",
                     "zero bubble over a V of two chunks per rank"),
          clEnumValN(schedule::Kind::DualPipeV, "dualpipe-v",
                     "DeepSeek's DualPipe on a V"))};
  Option<int32_t> stages{*this, "stages",
                         llvm::cl::desc("pipeline stages (ranks)"),
                         llvm::cl::init(1)};
  Option<int32_t> microbatches{*this, "microbatches",
                               llvm::cl::desc("micro-batches per step"),
                               llvm::cl::init(1)};
  Option<int32_t> replicas{*this, "replicas",
                           llvm::cl::desc("data-parallel replicas"),
                           llvm::cl::init(1)};
  Option<int32_t> zero{*this, "zero",
                       llvm::cl::desc("ZeRO stage (0 or 1; 1 needs "
                                      "replicas of at least 2)"),
                       llvm::cl::init(0)};
  Option<int32_t> chunksPerRank{
      *this, "chunks-per-rank",
      llvm::cl::desc("chunks per rank (0: the kind's default)"),
      llvm::cl::init(0)};
  Option<Target> target{
      *this, "target", llvm::cl::desc("what the kernels run on"),
      llvm::cl::init(Target::Cpu),
      llvm::cl::values(
          clEnumValN(Target::Cpu, "cpu", "fp32, the cpu kernel library"),
          clEnumValN(Target::Cuda, "cuda",
                     "bf16 storage, a padded vocabulary, the cuda kernels"))};
  ListOption<std::string> recompute{
      *this, "recompute",
      llvm::cl::desc("ops autodiff recomputes in B (e.g. gelu)")};
  Option<std::string> recomputeChunks{
      *this, "recompute-chunks",
      llvm::cl::desc("recomputation the partitioner chooses: none, full "
                     "(every chunk) or auto (layers on ranks over "
                     "memory-cap)"),
      llvm::cl::init("auto")};
  Option<std::string> csv{
      *this, "csv",
      llvm::cl::desc("a torch.distributed.pipelining CSV schedule instead "
                     "of kind")};
  Option<bool> autoKind{
      *this, "auto",
      llvm::cl::desc("the fastest kind and chunks per rank that fit "
                     "memory-cap, instead of kind"),
      llvm::cl::init(false)};
  Option<bool> deferLmHeadW{*this, "defer-lm-head-w",
                            llvm::cl::desc("the LM head's W after its B"),
                            llvm::cl::init(false)};
  Option<int64_t> memoryCap{*this, "memory-cap",
                            llvm::cl::desc("bytes per rank (0: no cap)"),
                            llvm::cl::init(0)};
  Option<bool> fuse{*this, "fuse", llvm::cl::desc("run --nn-fuse"),
                    llvm::cl::init(true)};

  /// As the flow's options.
  TrainingPipelineOptions toOptions() const;
};

/// Registers the flow as pipec-opt's `--pipec-train` pipeline.
void registerTrainingPipeline();

} // namespace pipec

#endif // PIPEC_COMPILER_PASSES_PIPELINE_H
