//===- NNGradOps.h - training, backward and optimizer ops of nn -*- C++ -*-===//

#ifndef PIPEC_DIALECTS_NN_NNGRADOPS_H
#define PIPEC_DIALECTS_NN_NNGRADOPS_H

#include "dialects/nn/NNDialect.h"
#include "dialects/nn/NNGradInterface.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace pipec::nn::OpTrait {
/// The trait of W ops: they add into a parameter use's accumulator and
/// produce nothing (role W in docs/AUTODIFF.md).
template <typename ConcreteType>
class WeightGradient
    : public mlir::OpTrait::TraitBase<ConcreteType, WeightGradient> {};
} // namespace pipec::nn::OpTrait

#define GET_OP_CLASSES
#include "dialects/nn/NNGradOps.h.inc"

#endif // PIPEC_DIALECTS_NN_NNGRADOPS_H
