//===- PipeDialect.cpp - the pipe dialect -----------------------*- C++ -*-===//

#include "dialects/pipe/PipeDialect.h"
#include "dialects/pipe/PipeOps.h"

using namespace mlir;
using namespace pipec::pipe;

#include "dialects/pipe/PipeDialect.cpp.inc"

void PipeDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/pipe/PipeOps.cpp.inc"
      >();
}
