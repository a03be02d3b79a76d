//===- PipeDialect.h - the pipe dialect -------------------------*- C++ -*-===//

#ifndef PIPEC_DIALECTS_PIPE_PIPEDIALECT_H
#define PIPEC_DIALECTS_PIPE_PIPEDIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialects/pipe/PipeDialect.h.inc"

#endif // PIPEC_DIALECTS_PIPE_PIPEDIALECT_H
