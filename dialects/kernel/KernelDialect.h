//===- KernelDialect.h - the kernel dialect ---------------------*- C++ -*-===//

#ifndef PIPEC_DIALECTS_KERNEL_KERNELDIALECT_H
#define PIPEC_DIALECTS_KERNEL_KERNELDIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialects/kernel/KernelDialect.h.inc"

#endif // PIPEC_DIALECTS_KERNEL_KERNELDIALECT_H
