//===- KernelOps.cpp - kernel.call and its storage references ---*- C++ -*-===//

#include "dialects/kernel/KernelOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/OpImplementation.h"

#include <cmath>

using namespace mlir;
using namespace pipec::kernel;

#define GET_OP_CLASSES
#include "dialects/kernel/KernelOps.cpp.inc"

static const char *const kKindNames[] = {"acc", "value", "m", "v", "copy"};

std::string StateRef::str() const {
  return std::string(kKindNames[kind]) + ":" + std::to_string(use) + ":" +
         param;
}

std::optional<StateRef> StateRef::parse(llvm::StringRef text) {
  auto [kind, rest] = text.split(':');
  auto [use, name] = rest.split(':');
  StateRef ref;
  const auto *it = llvm::find(kKindNames, kind);
  if (it == std::end(kKindNames) || name.empty() ||
      use.getAsInteger(10, ref.use))
    return std::nullopt;
  ref.kind = Kind(it - std::begin(kKindNames));
  // Only accumulators are per use.
  if ((ref.kind == Accumulator) != (ref.use >= 0))
    return std::nullopt;
  ref.param = name.str();
  return ref;
}

StateRef CallOp::getStateRef(unsigned i) {
  return *StateRef::parse(cast<StringAttr>(getState()[i]).getValue());
}

LogicalResult CallOp::verify() {
  if (getKernel().empty())
    return emitOpError("needs a kernel name");
  for (Attribute a : getState())
    if (!StateRef::parse(cast<StringAttr>(a).getValue()))
      return emitOpError("state entry '")
             << cast<StringAttr>(a).getValue()
             << "' is not KIND:USE:NAME with KIND acc (USE >= 0), value, m, "
                "v or copy (USE -1)";
  for (double r : getReals())
    if (std::isnan(r))
      return emitOpError("reals must not be NaN");
  for (Type t : llvm::concat<const Type>(getInputs().getTypes(),
                                         getResultTypes()))
    if (!cast<RankedTensorType>(t).hasStaticShape())
      return emitOpError("operands and results must have static shapes, got ")
             << t;
  return success();
}
