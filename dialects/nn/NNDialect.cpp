//===- NNDialect.cpp - the nn dialect ---------------------------*- C++ -*-===//

#include "dialects/nn/NNDialect.h"
#include "dialects/nn/NNOps.h"

using namespace mlir;
using namespace pipec::nn;

#include "dialects/nn/NNDialect.cpp.inc"

void NNDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/nn/NNOps.cpp.inc"
      >();
}
