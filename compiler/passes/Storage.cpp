//===- Storage.cpp - the target's storage type for @forward's activations -===//
//
// --nn-storage{type=bf16}: every f32 tensor of @forward that is not a 0-d
// scalar becomes bf16 (docs/NUMERICS.md). Runs before --nn-autodiff, whose
// gradients then take the types of the values they differentiate.
//
//===----------------------------------------------------------------------===//

#include "compiler/passes/Passes.h"

#include "dialects/nn/NNOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Verifier.h"

namespace pipec {
#define GEN_PASS_DEF_NNSTORAGEPASS
#include "compiler/passes/Passes.h.inc"
} // namespace pipec

using namespace mlir;
using namespace pipec;

/// `t` with bf16 elements when it is an f32 tensor of rank >= 1, else `t`.
static Type toStorage(Type t, Type bf16) {
  auto tensor = dyn_cast<RankedTensorType>(t);
  if (!tensor || !tensor.getElementType().isF32() || tensor.getRank() == 0)
    return t;
  return tensor.clone(bf16);
}

/// The first float tensor type of rank >= 1 in `fn` that is not f32, or
/// null (an f64 or an already converted model is the caller's mistake).
static Type nonF32Float(func::FuncOp fn) {
  Type found;
  auto check = [&](Type t) {
    if (auto tensor = dyn_cast<RankedTensorType>(t))
      if (isa<FloatType>(tensor.getElementType()) &&
          !tensor.getElementType().isF32() && tensor.getRank() > 0)
        found = found ? found : t;
  };
  for (Type t : fn.getArgumentTypes())
    check(t);
  fn.walk([&](Operation *op) {
    for (Type t : op->getResultTypes())
      check(t);
  });
  return found;
}

namespace {
struct NNStoragePass : public pipec::impl::NNStoragePassBase<NNStoragePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (type == "f32")
      return;
    if (type != "bf16") {
      module.emitError("nn-storage: unknown storage type '")
          << type << "' (f32 or bf16)";
      return signalPassFailure();
    }
    auto fn = module.lookupSymbol<func::FuncOp>("forward");
    if (!fn) {
      module.emitError("nn-storage: the module has no @forward");
      return signalPassFailure();
    }
    if (module.lookupSymbol<func::FuncOp>("train_step")) {
      module.emitError("nn-storage: runs before --nn-autodiff (this module "
                       "has a @train_step already)");
      return signalPassFailure();
    }
    if (Type t = nonF32Float(fn)) {
      fn.emitError("nn-storage: @forward holds ")
          << t << "; bf16 storage converts an f32 model";
      return signalPassFailure();
    }
    Type bf16 = BFloat16Type::get(module.getContext());
    Block &body = fn.getBody().front();
    for (BlockArgument arg : body.getArguments())
      arg.setType(toStorage(arg.getType(), bf16));
    fn.walk([&](Operation *op) {
      if (isa<func::FuncOp>(op))
        return;
      for (OpResult r : op->getResults())
        r.setType(toStorage(r.getType(), bf16));
    });
    SmallVector<Type> results;
    for (Type t : fn.getResultTypes())
      results.push_back(toStorage(t, bf16));
    fn.setType(FunctionType::get(module.getContext(),
                                 body.getArgumentTypes(), results));
    // The ops check their operand and result types against each other:
    // an op that cannot hold bf16 is named here, not in a later pass.
    if (failed(verify(fn))) {
      fn.emitError("nn-storage: an op of @forward refuses bf16 storage "
                   "(see above)");
      return signalPassFailure();
    }
  }
};
} // namespace
