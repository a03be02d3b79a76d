//===- NNDialect.cpp - the nn dialect ---------------------------*- C++ -*-===//

#include "dialects/nn/NNDialect.h"
#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"

using namespace mlir;
using namespace pipec::nn;

#include "dialects/nn/NNDialect.cpp.inc"

void NNDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/nn/NNOps.cpp.inc"
      >();
  // The training, backward and optimizer ops --nn-autodiff builds, and the
  // gradient interface of every forward op (docs/AUTODIFF.md).
  addOperations<
#define GET_OP_LIST
#include "dialects/nn/NNGradOps.cpp.inc"
      >();
  attachGradOpInterfaceModels(*getContext());
  attachGradCostModels(*getContext());
}
