//===- ModelCosts.h - @forward as the planner's pieces -----------*- C++ -*-===//
//
// Reads `func.func @forward` into compiler/plan's ModelCosts: one piece per
// compute op (with the nn.param reads in front of it), its F, B and W time
// from the cost interface and the target's rates, the bytes it keeps, and
// the bytes every possible cut would send. Shared by --pipe-partition,
// --pipe-plan-memory and `pipec plan`.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_ANALYSIS_MODELCOSTS_H
#define PIPEC_COMPILER_ANALYSIS_MODELCOSTS_H

#include "compiler/plan/Planner.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace pipec {

/// Options of the cost reading.
struct CostOptions {
  plan::Rates rates;
  /// Let the LM head's W (the matmul whose result is the loss's logits) run
  /// after its B like every other W. Off by default: its B x T x V output
  /// gradient would then be kept from B to W.
  bool deferLmHeadW = false;
};

/// Fills `model` from `forward`. With `trainStep` (the @train_step that
/// --nn-autodiff built from it), each piece's F, B and W time is the sum
/// of the costs of @train_step's ops with that piece's `nn.op_id`s and
/// `nn.role` (recomputed ops count in B); without it they are modelled from
/// the forward op (docs/PARTITION.md). Returns an empty string, or what is
/// wrong (no compute op, an @train_step op whose id is out of range, ...).
std::string buildModelCosts(mlir::func::FuncOp forward,
                            mlir::func::FuncOp trainStep,
                            const CostOptions &options,
                            plan::ModelCosts &model);

/// Bytes of a ranked tensor value as typed (0 for anything else).
int64_t valueBytes(mlir::Value v);

/// FLOPs of one micro-batch through `forward`: the sum of its ops' cost
/// interface (what `pipec stats` prints).
int64_t forwardFlops(mlir::func::FuncOp forward);

/// A training step's FLOPs per forward FLOP, the usual convention (F, then
/// B and W each about twice F's matmul FLOPs).
constexpr int64_t kTrainStepFlopsPerForward = 3;

/// Bytes of parameter `name` of `module` as declared (the master) in
/// `master`, and of the working copy @forward's reads make when they read
/// a narrower type (bf16 storage) in `copy` (0 otherwise). False when the
/// module declares no such parameter.
bool parameterStorage(mlir::ModuleOp module, llvm::StringRef name,
                      int64_t &master, int64_t &copy);

} // namespace pipec

#endif // PIPEC_COMPILER_ANALYSIS_MODELCOSTS_H
