//===- PipeOps.h - the ops of the pipe dialect ------------------*- C++ -*-===//

#ifndef PIPEC_DIALECTS_PIPE_PIPEOPS_H
#define PIPEC_DIALECTS_PIPE_PIPEOPS_H

#include "dialects/pipe/PipeDialect.h"
#include "dialects/pipe/PipeInstr.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/RegionKindInterface.h"
#include "mlir/IR/SymbolTable.h"

#include <string>

#define GET_OP_CLASSES
#include "dialects/pipe/PipeOps.h.inc"

#endif // PIPEC_DIALECTS_PIPE_PIPEOPS_H
