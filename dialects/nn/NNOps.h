//===- NNOps.h - the ops of the nn dialect ----------------------*- C++ -*-===//

#ifndef PIPEC_DIALECTS_NN_NNOPS_H
#define PIPEC_DIALECTS_NN_NNOPS_H

#include "dialects/nn/NNDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/nn/NNInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialects/nn/NNOps.h.inc"

#endif // PIPEC_DIALECTS_NN_NNOPS_H
