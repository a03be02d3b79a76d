//===- KernelDialect.cpp - the kernel dialect -------------------*- C++ -*-===//

#include "dialects/kernel/KernelDialect.h"
#include "dialects/kernel/KernelOps.h"

using namespace mlir;
using namespace pipec::kernel;

#include "dialects/kernel/KernelDialect.cpp.inc"

void KernelDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/kernel/KernelOps.cpp.inc"
      >();
}
