//===- PerturbVjp.cpp - which values --debug-perturb-vjp changes ----------===//

#include "compiler/analysis/PerturbVjp.h"

#include "dialects/kernel/KernelOps.h"

#include "mlir/IR/BuiltinOps.h"

#include <vector>

using namespace mlir;

/// The op a kernel call implements, or the op itself.
static StringRef originOf(Operation &op) {
  if (auto call = dyn_cast<pipec::kernel::CallOp>(op))
    return call.getOrigin();
  return op.getName().getStringRef();
}

bool pipec::analysis::perturbedVjpValues(func::FuncOp trainStep,
                                          StringRef opName,
                                          PerturbedValues &out,
                                          std::string &error) {
  std::string target = "nn." + opName.str();
  auto module = trainStep->getParentOfType<ModuleOp>();
  auto forward =
      module ? module.lookupSymbol<func::FuncOp>("forward") : func::FuncOp();
  if (!forward) {
    error = "--debug-perturb-vjp needs @forward";
    return false;
  }
  // nn.op_id indexes the ops of @forward's body, the return excluded.
  std::vector<Operation *> forwardOps;
  bool found = false;
  for (Operation &op : forward.getBody().front())
    if (!isa<func::ReturnOp>(op)) {
      forwardOps.push_back(&op);
      found |= originOf(op) == target;
    }
  if (!found) {
    error = "--debug-perturb-vjp=" + opName.str() + ": the model has no '" +
            target + "' op";
    return false;
  }
  for (Operation &op : trainStep.getBody().front()) {
    auto role = op.getAttrOfType<StringAttr>("nn.role");
    auto id = op.getAttrOfType<IntegerAttr>("nn.op_id");
    if (!role || !id || id.getInt() < 0 ||
        id.getInt() >= int64_t(forwardOps.size()) ||
        originOf(*forwardOps[size_t(id.getInt())]) != target)
      continue;
    // The loss's B gradient is computed in its fused F op.
    if (originOf(op) == "nn.softmax_cross_entropy") {
      out[&op].push_back(op.getResult(1));
      continue;
    }
    // A recomputed forward op and the sum of two contributions are not the
    // op's vector-Jacobian product.
    if (role.getValue() != "B" || op.hasAttr("nn.recompute") ||
        originOf(op) == "nn.grad_add")
      continue;
    for (Value r : op.getResults())
      out[&op].push_back(r);
  }
  return true;
}
