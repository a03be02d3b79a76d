//===- EmitOps.h - one nn op of @train_step as CPU loops -------*- C++ -*-===//
//
// The CPU emitter prints every op of a chunk as the kernel of
// runtime/kernels/cpu that the reference executor calls for it
// (compiler/reference/Executor.cpp, ExecuteGrad.cpp), with the same
// arguments, printed as loops with constant shapes (EmitLoops.h; GEMMs as
// cblas_sgemm calls), so a compiled plan trains to the same bits.
// Pointers are C++ expressions the caller supplies (arena base plus an
// offset); this file knows only the op -> kernel mapping.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_EMIT_EMITOPS_H
#define PIPEC_COMPILER_EMIT_EMITOPS_H

#include "compiler/reference/PerturbVjp.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace pipec::emit {

/// How the op printer names storage.
struct OpPointers {
  /// A pointer expression to the storage of `v` (float*, int32_t* or
  /// double* after the cast the caller writes).
  std::function<std::string(mlir::Value v)> value;
  /// A float* expression to the accumulator of use `use` of `param`.
  std::function<std::string(llvm::StringRef param, int64_t use)> accumulator;
  /// Elements of parameter `param`.
  std::function<int64_t(llvm::StringRef param)> paramElements;
};

/// Appends the C++ statements of `op` (an F, B or W op of @train_step) to
/// `out`, after one comment line naming the op; file-scope definitions
/// they use (constant tables) go to `globals` by name. Kernels that check
/// their data return a Status naming the op's location. Returns false with
/// `error` set for an op it cannot print.
bool emitOpCall(mlir::Operation *op, const OpPointers &ptr, std::string &out,
                std::map<std::string, std::string> &globals,
                std::string &error);

/// The values `--debug-perturb-vjp=OP` multiplies by 1 + 1e-3 right after
/// the op that computes them: the reference executor's choice
/// (compiler/reference/PerturbVjp.h).
using PerturbedValues = reference::PerturbedValues;

/// Appends `v[i] *= float(1 + 1e-3)` over every element of each f32 value.
void emitPerturbation(llvm::ArrayRef<mlir::Value> values,
                      const OpPointers &ptr, std::string &out);

/// A double as a C++ literal that reads back to the same bits.
std::string doubleLiteral(double x);

} // namespace pipec::emit

#endif // PIPEC_COMPILER_EMIT_EMITOPS_H
