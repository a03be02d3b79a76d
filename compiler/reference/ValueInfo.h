//===- ValueInfo.h - which op the executor's messages name -*- C++ -*-===//
//
// Which op a message of the reference executor is about.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_REFERENCE_VALUEINFO_H
#define PIPEC_COMPILER_REFERENCE_VALUEINFO_H

#include "dialects/kernel/KernelOps.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace pipec::reference {

/// "loc: 'nn.op'" for messages; the location holds the JSON path of the op,
/// and a kernel call is named after the op it implements.
inline std::string where(mlir::Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << op->getLoc() << ": '";
  if (auto call = llvm::dyn_cast<pipec::kernel::CallOp>(op))
    os << call.getOrigin();
  else
    os << op->getName();
  os << "'";
  return s;
}

} // namespace pipec::reference

#endif // PIPEC_COMPILER_REFERENCE_VALUEINFO_H
