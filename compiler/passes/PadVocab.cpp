//===- PadVocab.cpp - the vocabulary rounded up for aligned GEMMs ---------===//
//
// --nn-pad-vocab{multiple=128}: GPT-2's 50257 classes make the LM head's
// GEMM and the classifier's rows odd-sized, which blocks the aligned tiles
// of the GPU's GEMMs; 50304 columns do not. For every nn.cross_entropy of
// @forward whose logits are an nn.matmul of a parameter (the tied [V, D]
// embedding table with transpose_rhs, or a [D, V] head) and whose class
// count V is not a multiple, the pass pads that parameter's vocabulary dim
// (and a [V] bias) to the multiple: the declaration records the model's
// shape as `logical_shape` (initialisation and checkpoints keep to it, the
// padding is zero), the reads, the matmul and the logits take the padded
// shape, and the loss keeps `classes = V`, so the padded columns take no
// part in the softmax and get a zero gradient. The padded rows of a tied
// table are never looked up (token ids are below V), so every gradient of
// the padding is zero and AdamW keeps it at zero: the loss, the gradients
// and the parameters inside the logical shape are those of the unpadded
// model (docs/NUMERICS.md).
//
// Runs after --nn-storage, before --nn-autodiff. A loss it cannot pad (its
// logits are not such a matmul, or the parameter has other uses) is left
// as it is, with a warning: correct, only slower.
//
//===----------------------------------------------------------------------===//

#include "compiler/passes/Passes.h"

#include "dialects/nn/NNOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Verifier.h"

namespace pipec {
#define GEN_PASS_DEF_NNPADVOCABPASS
#include "compiler/passes/Passes.h.inc"
} // namespace pipec

using namespace mlir;
using namespace pipec;

namespace {

/// A parameter to pad: its declaration, the dim that holds the vocabulary
/// and its reads.
struct PaddedParam {
  nn::ParameterOp decl;
  unsigned dim = 0;
  SmallVector<nn::ParamOp> reads;
};

/// `t` with dim `d` set to `n`.
RankedTensorType withDim(Type t, unsigned d, int64_t n) {
  auto tensor = cast<RankedTensorType>(t);
  SmallVector<int64_t> shape(tensor.getShape());
  shape[d] = n;
  return tensor.clone(shape);
}

/// Every read of parameter `decl` in the module, if each one is used only
/// where `allowed` says; else why not.
std::string collectReads(ModuleOp module, nn::ParameterOp decl,
                         function_ref<bool(OpOperand &)> allowed,
                         SmallVectorImpl<nn::ParamOp> &reads) {
  std::string why;
  module.walk([&](nn::ParamOp read) {
    if (read.getName() != decl.getSymName())
      return;
    reads.push_back(read);
    for (OpOperand &use : read->getUses())
      if (!allowed(use) && why.empty())
        why = "parameter " + decl.getSymName().str() + " is also read by " +
              use.getOwner()->getName().getStringRef().str();
  });
  return why;
}

struct NNPadVocabPass : public pipec::impl::NNPadVocabPassBase<NNPadVocabPass> {
  using Base::Base;

  /// Pads the loss `ce`, or says why it cannot (nothing changed then).
  std::string pad(ModuleOp module, nn::CrossEntropyOp ce, int64_t padded) {
    Value logits = ce.getLogits();
    auto mm = logits.getDefiningOp<nn::MatmulOp>();
    if (!mm)
      return "its logits are not an nn.matmul's result";
    if (!logits.hasOneUse())
      return "its logits have other users";
    auto wRead = mm.getW().getDefiningOp<nn::ParamOp>();
    if (!wRead)
      return "the logits' weight is not a parameter read";
    auto decl = module.lookupSymbol<nn::ParameterOp>(wRead.getName());
    if (!decl || decl.getLogicalShape())
      return "the logits' weight is padded already or undeclared";
    bool transposed = mm.getTransposeRhs();
    // The weight: this matmul's rhs, or the table of an embedding, which
    // looks rows up (so its vocabulary must be dim 0: the tied [V, D]).
    PaddedParam w{decl, transposed ? 0u : 1u, {}};
    std::string why = collectReads(
        module, decl,
        [&](OpOperand &use) {
          if (use.getOwner() == mm.getOperation())
            return use.getOperandNumber() == 1;
          auto emb = dyn_cast<nn::EmbeddingOp>(use.getOwner());
          return emb && use.getOperandNumber() == 0 && transposed;
        },
        w.reads);
    if (!why.empty())
      return why;
    SmallVector<PaddedParam, 2> params{w};
    if (Value bias = mm.getBias()) {
      auto bRead = bias.getDefiningOp<nn::ParamOp>();
      auto bDecl =
          bRead ? module.lookupSymbol<nn::ParameterOp>(bRead.getName())
                : nn::ParameterOp();
      if (!bDecl || bDecl.getLogicalShape())
        return "the logits' bias is not an unpadded parameter read";
      PaddedParam b{bDecl, 0, {}};
      why = collectReads(
          module, bDecl,
          [&](OpOperand &use) {
            return use.getOwner() == mm.getOperation() &&
                   use.getOperandNumber() == 2;
          },
          b.reads);
      if (!why.empty())
        return why;
      params.push_back(b);
    }
    Builder builder(module.getContext());
    for (PaddedParam &p : params) {
      RankedTensorType declared = p.decl.getTensorType();
      p.decl.setLogicalShapeAttr(
          builder.getDenseI64ArrayAttr(declared.getShape()));
      p.decl.setTypeAttr(TypeAttr::get(withDim(declared, p.dim, padded)));
      for (nn::ParamOp read : p.reads)
        read.getResult().setType(
            withDim(read.getType(), p.dim, padded));
    }
    auto lt = cast<RankedTensorType>(logits.getType());
    int64_t classes = lt.getShape().back();
    logits.setType(withDim(lt, lt.getRank() - 1, padded));
    ce.setClassesAttr(builder.getI64IntegerAttr(classes));
    return "";
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (multiple == 0)
      return;
    if (multiple < 0) {
      module.emitError("nn-pad-vocab: multiple must be positive, got ")
          << multiple;
      return signalPassFailure();
    }
    if (module.lookupSymbol<func::FuncOp>("train_step")) {
      module.emitError("nn-pad-vocab: runs before --nn-autodiff (this "
                       "module has a @train_step already)");
      return signalPassFailure();
    }
    SmallVector<nn::CrossEntropyOp> losses;
    module.walk([&](nn::CrossEntropyOp ce) { losses.push_back(ce); });
    for (nn::CrossEntropyOp ce : losses) {
      int64_t classes = ce.classCount();
      // Padded already (classes set), or a multiple: nothing to do.
      if (ce.getClasses() || classes % multiple == 0)
        continue;
      int64_t padded = (classes + multiple - 1) / multiple * multiple;
      if (std::string why = pad(module, ce, padded); !why.empty())
        ce.emitWarning("nn-pad-vocab: the vocabulary of ")
            << classes << " stays unpadded (" << padded
            << " would align the GEMMs): " << why;
    }
    if (failed(verify(module))) {
      module.emitError("nn-pad-vocab: the padded module does not verify "
                       "(see above)");
      return signalPassFailure();
    }
  }
};

} // namespace
