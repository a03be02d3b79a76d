//===- PerturbVjp.h - which values --debug-perturb-vjp changes --*- C++ -*-===//
//
// `pipec reference-train --debug-perturb-vjp=OP` and `pipec compile
// --debug-perturb-vjp=OP` must perturb the same values, or the tests that
// compare a perturbed plan with the perturbed reference mean nothing; both
// ask this one function.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_ANALYSIS_PERTURBVJP_H
#define PIPEC_COMPILER_ANALYSIS_PERTURBVJP_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"

#include <string>

namespace pipec::analysis {

/// Per op of @train_step, its values to multiply by 1 + 1e-3 right after it.
using PerturbedValues =
    llvm::DenseMap<mlir::Operation *, llvm::SmallVector<mlir::Value, 4>>;

/// The results of the B ops of `trainStep` whose `nn.op_id` names an
/// `nn.OP` op of the module's @forward (not recomputed forward ops, not
/// gradient sums), and the dlogits of a fused softmax cross-entropy. Fails
/// with `error` when there is no @forward or it has no such op.
bool perturbedVjpValues(mlir::func::FuncOp trainStep, llvm::StringRef op,
                        PerturbedValues &out, std::string &error);

} // namespace pipec::analysis

#endif // PIPEC_COMPILER_ANALYSIS_PERTURBVJP_H
