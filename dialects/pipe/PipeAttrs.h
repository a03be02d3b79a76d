//===- PipeAttrs.h - the attributes of the pipe dialect ---------*- C++ -*-===//

#ifndef PIPEC_DIALECTS_PIPE_PIPEATTRS_H
#define PIPEC_DIALECTS_PIPE_PIPEATTRS_H

#include "dialects/pipe/PipeDialect.h"
#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"

#define GET_ATTRDEF_CLASSES
#include "dialects/pipe/PipeAttrs.h.inc"

#endif // PIPEC_DIALECTS_PIPE_PIPEATTRS_H
