//===- ValueInfo.h - shapes and op names for the executor's messages -*- C++ -*-===//
//
// Small helpers of the reference executor and its trainer: static shapes,
// and which op a message is about.
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

/// The static shape of a ranked tensor value.
inline llvm::ArrayRef<int64_t> shapeOf(mlir::Value v) {
  return llvm::cast<mlir::RankedTensorType>(v.getType()).getShape();
}

inline int64_t numel(mlir::Value v) {
  return llvm::cast<mlir::RankedTensorType>(v.getType()).getNumElements();
}

inline int64_t lastDim(mlir::Value v) { return shapeOf(v).back(); }

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
