//===- Passes.h - the passes of pipec's flow --------------------*- C++ -*-===//

#ifndef PIPEC_COMPILER_PASSES_PASSES_H
#define PIPEC_COMPILER_PASSES_PASSES_H

#include "dialects/kernel/KernelDialect.h"
#include "dialects/nn/NNDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <memory>
#include <string>

namespace pipec {

#define GEN_PASS_DECL
#include "compiler/passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "compiler/passes/Passes.h.inc"

} // namespace pipec

#endif // PIPEC_COMPILER_PASSES_PASSES_H
