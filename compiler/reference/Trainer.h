//===- Trainer.h - the training loop of the reference executor --*- C++ -*-===//
//
// Runs docs/TRAINING.md on one rank: for each step, zero the accumulators,
// run @train_step once per micro-batch in ascending order (loss_scale = 1/M),
// then @optimizer_step (tied sums, global norm, clipping, LR, AdamW). The
// module must have gone through --nn-autodiff (docs/AUTODIFF.md).
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_REFERENCE_TRAINER_H
#define PIPEC_COMPILER_REFERENCE_TRAINER_H

#include "compiler/reference/Executor.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <string>

namespace pipec::reference {

/// What `pipec reference-train` asks for.
struct TrainOptions {
  std::string dataPath;
  int64_t steps = 0;
  int64_t microbatches = 1;
  /// Where metrics.jsonl goes; empty for none.
  std::string logDir;
  /// Final parameters (safetensors); empty for none.
  std::string savePath;
  /// Initial parameters (safetensors); empty for the seeded initialiser.
  std::string initPath;
  /// The gradients of step 0's loss, before clipping; empty for none.
  std::string dumpGradsPath;
  ExecutorOptions executor;
};

/// Sets the OpenMP thread count of the kernels; BLAS stays at one thread
/// (GEMM results depend on its count), so the bits do not depend on it.
void setThreadCount(int threads);

/// Trains the module in T. Progress lines go to `out`, errors to `errs`;
/// returns false after reporting an error.
template <typename T>
bool train(mlir::ModuleOp module, const TrainOptions &options,
           llvm::raw_ostream &out, llvm::raw_ostream &errs);

/// Runs @forward on micro-batch `microbatch` of step 0 of `dataPath` with
/// the seeded initial parameters (or those of `initPath` when not empty)
/// and returns its loss in `loss`: the executor's forward pass alone, for
/// tests (a fresh model's loss is close to ln(vocab)) and finite
/// differences.
template <typename T>
bool forwardLoss(mlir::ModuleOp module, const std::string &dataPath,
                 int64_t microbatch, double &loss, llvm::raw_ostream &errs,
                 const std::string &initPath = "");

} // namespace pipec::reference

#endif // PIPEC_COMPILER_REFERENCE_TRAINER_H
