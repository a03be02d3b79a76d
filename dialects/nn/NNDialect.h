//===- NNDialect.h - the nn dialect -----------------------------*- C++ -*-===//

#ifndef PIPEC_DIALECTS_NN_NNDIALECT_H
#define PIPEC_DIALECTS_NN_NNDIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialects/nn/NNDialect.h.inc"

#endif // PIPEC_DIALECTS_NN_NNDIALECT_H
