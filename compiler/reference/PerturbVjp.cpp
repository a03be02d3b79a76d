//===- PerturbVjp.cpp - which values --debug-perturb-vjp changes ----------===//

#include "compiler/reference/PerturbVjp.h"

#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"

#include "mlir/IR/BuiltinOps.h"

#include <vector>

using namespace mlir;

bool pipec::reference::perturbedVjpValues(func::FuncOp trainStep,
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
      found |= op.getName().getStringRef() == target;
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
        forwardOps[size_t(id.getInt())]->getName().getStringRef() != target)
      continue;
    // The loss's B gradient is computed in its fused F op.
    if (auto ce = dyn_cast<nn::SoftmaxCrossEntropyOp>(op)) {
      out[&op].push_back(ce.getDlogits());
      continue;
    }
    // A recomputed forward op and the sum of two contributions are not the
    // op's vector-Jacobian product.
    if (role.getValue() != "B" || op.hasAttr("nn.recompute") ||
        isa<nn::GradAddOp>(op))
      continue;
    for (Value r : op.getResults())
      out[&op].push_back(r);
  }
  return true;
}
