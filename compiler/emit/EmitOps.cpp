//===- EmitOps.cpp - one nn op of @train_step as CPU loops ----------------===//
//
// Mirrors the TypeSwitch of compiler/reference/Executor.cpp and
// ExecuteGrad.cpp call for call (same kernel, same arguments, same order),
// printing the kernel's loops (EmitLoops.h) instead of calling it: bitwise
// equality with the reference executor rests on this file and on the
// printers copying the kernels.
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitOps.h"

#include "compiler/emit/EmitLoops.h"

#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>

using namespace mlir;
using namespace pipec;

static ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

static int64_t numel(Value v) {
  return cast<RankedTensorType>(v.getType()).getNumElements();
}

static int64_t lastDim(Value v) { return shapeOf(v).back(); }

std::string pipec::emit::doubleLiteral(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", x);
  return buf;
}

/// The location of an op as a C++ string literal, for kernel errors.
static std::string whereLiteral(Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << op->getLoc() << ": '" << op->getName() << "'";
  std::string quoted = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

/// The attention shape, as the reference builds it.
template <typename OpT>
static emit::loops::AttentionShape attentionShape(OpT o, Value q, Value k) {
  return {shapeOf(q)[0],
          shapeOf(q)[1],
          shapeOf(k)[1],
          int64_t(o.getHeads()),
          int64_t(o.getKvHeads()),
          shapeOf(q)[2] / int64_t(o.getHeads()),
          o.getCausal(),
          o.getScale().convertToDouble()};
}

/// outer and inner extents of a slice along `axis` of `shape`.
static void sliceExtents(ArrayRef<int64_t> shape, int64_t axis, int64_t &outer,
                         int64_t &inner) {
  outer = inner = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= shape[d];
  for (int64_t d = axis + 1; d < int64_t(shape.size()); ++d)
    inner *= shape[d];
}

bool pipec::emit::emitOpCall(Operation *op, const OpPointers &ptr,
                             std::string &out,
                             std::map<std::string, std::string> &globals,
                             std::string &error) {
  namespace L = emit::loops;
  L::Code c(out, globals);
  auto p = [&](Value v) { return ptr.value(v); };
  auto acc = [&](StringRef param, int64_t use) {
    return ptr.accumulator(param, use);
  };
  std::string where = whereLiteral(op);
  if (!isa<nn::ParamOp>(op)) {
    std::string name;
    llvm::raw_string_ostream os(name);
    os << "// " << op->getName() << " " << op->getLoc();
    c.line(name);
  }
  bool ok = llvm::TypeSwitch<Operation *, bool>(op)
      .Case([&](nn::ParamOp) { return true; })
      .Case([&](nn::EmbeddingOp o) {
        auto table = shapeOf(o.getTable());
        L::embeddingForward(c, where, p(o.getResult()), p(o.getTable()),
                            p(o.getIds()), numel(o.getIds()), table[0],
                            table[1]);
        return true;
      })
      .Case([&](nn::PositionEmbeddingOp o) {
        auto outShape = shapeOf(o.getResult());
        L::positionEmbeddingForward(c, p(o.getResult()), p(o.getTable()),
                                    outShape[0], outShape[1]);
        return true;
      })
      .Case([&](nn::MatmulOp o) {
        int64_t k = lastDim(o.getX()), n = lastDim(o.getResult());
        L::matmulForward(c, p(o.getResult()), p(o.getX()), p(o.getW()),
                         o.getBias() ? p(o.getBias()) : std::string(),
                         numel(o.getX()) / k, k, n, o.getTransposeRhs());
        return true;
      })
      .Case([&](nn::AddOp o) {
        L::binaryForward(c, '+', p(o.getResult()), p(o.getLhs()),
                         p(o.getRhs()), numel(o.getLhs()), numel(o.getRhs()));
        return true;
      })
      .Case([&](nn::MulOp o) {
        L::binaryForward(c, '*', p(o.getResult()), p(o.getLhs()),
                         p(o.getRhs()), numel(o.getLhs()), numel(o.getRhs()));
        return true;
      })
      .Case([&](nn::GeluOp o) {
        L::geluForward(c, p(o.getResult()), p(o.getInput()),
                       numel(o.getInput()));
        return true;
      })
      .Case([&](nn::SiluOp o) {
        L::siluForward(c, p(o.getResult()), p(o.getInput()),
                       numel(o.getInput()));
        return true;
      })
      .Case([&](nn::SoftmaxOp o) {
        int64_t dim = lastDim(o.getInput());
        L::softmaxForward(c, p(o.getResult()), p(o.getInput()),
                          numel(o.getInput()) / dim, dim);
        return true;
      })
      .Case([&](nn::SliceOp o) {
        auto in = shapeOf(o.getInput());
        int64_t axis = int64_t(o.getAxis()), outer, inner;
        sliceExtents(in, axis, outer, inner);
        L::sliceForward(c, p(o.getResult()), p(o.getInput()), outer, in[axis],
                        inner, int64_t(o.getOffset()), int64_t(o.getSize()));
        return true;
      })
      .Case([&](nn::ReshapeOp o) {
        L::reshapeForward(c, p(o.getResult()), p(o.getInput()),
                          numel(o.getInput()));
        return true;
      })
      .Case([&](nn::TransposeOp o) {
        std::vector<int64_t> perm;
        for (auto d : o.getPerm())
          perm.push_back(int64_t(d));
        L::transposeForward(c, p(o.getResult()), p(o.getInput()),
                            shapeOf(o.getInput()), perm);
        return true;
      })
      .Case([&](nn::RopeOp o) {
        auto in = shapeOf(o.getInput());
        int64_t heads = int64_t(o.getHeads());
        L::ropeForward(c, p(o.getResult()), p(o.getInput()), in[0], in[1],
                       heads, in[2] / heads,
                       o.getTheta().convertToDouble());
        return true;
      })
      // Forward training forms.
      .Case([&](nn::LayerNormTrainOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        L::layernormForward(c, p(o.getResult()), p(o.getMean()),
                            p(o.getRstd()), p(o.getX()), p(o.getGamma()),
                            p(o.getBeta()), rows, dim,
                            o.getEps().convertToDouble());
        return true;
      })
      .Case([&](nn::RMSNormTrainOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        L::rmsnormForward(c, p(o.getResult()), p(o.getRstd()), p(o.getX()),
                          p(o.getGamma()), rows, dim,
                          o.getEps().convertToDouble());
        return true;
      })
      .Case([&](nn::AttentionTrainOp o) {
        L::attentionForward(c, p(o.getResult()), p(o.getLse()), p(o.getQ()),
                            p(o.getK()), p(o.getV()),
                            attentionShape(o, o.getQ(), o.getK()));
        return true;
      })
      .Case([&](nn::SoftmaxCrossEntropyOp o) {
        int64_t vocab = lastDim(o.getLogits());
        int64_t rows = numel(o.getLogits()) / vocab;
        // The reference calls crossEntropyForward, then crossEntropyBackward
        // with scale = loss_scale / rows, the division in double
        // (AUTODIFF.md); printed as one pass.
        L::crossEntropyFused(c, where, p(o.getLoss()), p(o.getDlogits()),
                             p(o.getLogits()), p(o.getTargets()), rows, vocab,
                             p(o.getLossScale()) + "[0] / double(" +
                                 std::to_string(rows) + ")");
        return true;
      })
      // B ops.
      .Case([&](nn::MatmulGradBOp o) {
        int64_t n = lastDim(o.getDy()), k = lastDim(o.getDx());
        L::matmulBackwardB(c, p(o.getDx()), p(o.getDy()), p(o.getW()),
                           numel(o.getDy()) / n, k, n, o.getTransposeRhs(),
                           false);
        return true;
      })
      .Case([&](nn::LayerNormGradBOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        L::layernormBackwardB(c, p(o.getDx()), p(o.getDy()), p(o.getX()),
                              p(o.getMean()), p(o.getRstd()), p(o.getGamma()),
                              rows, dim, false);
        return true;
      })
      .Case([&](nn::RMSNormGradBOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        L::rmsnormBackwardB(c, p(o.getDx()), p(o.getDy()), p(o.getX()),
                            p(o.getRstd()), p(o.getGamma()), rows, dim,
                            false);
        return true;
      })
      .Case([&](nn::GeluGradOp o) {
        L::geluBackwardB(c, p(o.getDx()), p(o.getDy()), p(o.getX()),
                         numel(o.getX()), false);
        return true;
      })
      .Case([&](nn::SiluGradOp o) {
        L::siluBackwardB(c, p(o.getDx()), p(o.getDy()), p(o.getX()),
                         numel(o.getX()), false);
        return true;
      })
      .Case([&](nn::SoftmaxGradOp o) {
        int64_t dim = lastDim(o.getY());
        L::softmaxBackwardB(c, p(o.getDx()), p(o.getDy()), p(o.getY()),
                            numel(o.getY()) / dim, dim, false);
        return true;
      })
      .Case([&](nn::AddGradRhsOp o) {
        L::addBackwardBroadcast(c, p(o.getDrhs()), p(o.getDy()),
                                numel(o.getDy()), numel(o.getDrhs()), false);
        return true;
      })
      .Case([&](nn::MulGradLhsOp o) {
        L::mulBackwardLhs(c, p(o.getDlhs()), p(o.getDy()), p(o.getRhs()),
                          numel(o.getDy()), numel(o.getRhs()), false);
        return true;
      })
      .Case([&](nn::MulGradRhsOp o) {
        L::mulBackwardRhs(c, p(o.getDrhs()), p(o.getDy()), p(o.getLhs()),
                          numel(o.getDy()), numel(o.getDrhs()), false);
        return true;
      })
      .Case([&](nn::SliceGradOp o) {
        auto in = shapeOf(o.getDx());
        int64_t axis = int64_t(o.getAxis()), outer, inner;
        sliceExtents(in, axis, outer, inner);
        L::sliceBackwardB(c, p(o.getDx()), p(o.getDy()), outer, in[axis],
                          inner, int64_t(o.getOffset()),
                          shapeOf(o.getDy())[axis], false);
        return true;
      })
      .Case([&](nn::RopeGradOp o) {
        auto in = shapeOf(o.getDy());
        int64_t heads = int64_t(o.getHeads());
        L::ropeBackwardB(c, p(o.getDx()), p(o.getDy()), in[0], in[1], heads,
                         in[2] / heads, o.getTheta().convertToDouble(), false);
        return true;
      })
      .Case([&](nn::AttentionGradOp o) {
        L::attentionBackwardB(c, p(o.getDq()), p(o.getDk()), p(o.getDv()),
                              p(o.getDout()), p(o.getQ()), p(o.getK()),
                              p(o.getV()), p(o.getOut()), p(o.getLse()),
                              attentionShape(o, o.getQ(), o.getK()));
        return true;
      })
      .Case([&](nn::GradAddOp o) {
        // The reference: accumulateInto(y, lhs, false), then (y, rhs, true).
        L::addInto(c, p(o.getResult()), p(o.getLhs()), p(o.getRhs()),
                   numel(o.getResult()));
        return true;
      })
      // W ops: add into the accumulator of one parameter use.
      .Case([&](nn::MatmulGradWOp o) {
        int64_t k = lastDim(o.getX()), n = lastDim(o.getDy());
        std::string dbias =
            o.getBias() && o.getBiasUse()
                ? acc(*o.getBias(), int64_t(*o.getBiasUse()))
                : std::string();
        L::matmulBackwardW(c, acc(o.getWeight(), int64_t(o.getWeightUse())),
                           dbias, p(o.getX()), p(o.getDy()),
                           numel(o.getX()) / k, k, n, o.getTransposeRhs());
        return true;
      })
      .Case([&](nn::LayerNormGradWOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        L::layernormBackwardW(c, acc(o.getGamma(), int64_t(o.getGammaUse())),
                              acc(o.getBeta(), int64_t(o.getBetaUse())),
                              p(o.getDy()), p(o.getX()), p(o.getMean()),
                              p(o.getRstd()), rows, dim);
        return true;
      })
      .Case([&](nn::RMSNormGradWOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        L::rmsnormBackwardW(c, acc(o.getGamma(), int64_t(o.getGammaUse())),
                            p(o.getDy()), p(o.getX()), p(o.getRstd()), rows,
                            dim);
        return true;
      })
      .Case([&](nn::EmbeddingGradWOp o) {
        int64_t elements = ptr.paramElements(o.getTable());
        int64_t dim = lastDim(o.getDy());
        L::embeddingBackwardW(c, where,
                              acc(o.getTable(), int64_t(o.getTableUse())),
                              p(o.getDy()), p(o.getIds()), numel(o.getIds()),
                              elements / dim, dim);
        return true;
      })
      .Case([&](nn::PositionEmbeddingGradWOp o) {
        auto dy = shapeOf(o.getDy());
        L::positionEmbeddingBackwardW(
            c, acc(o.getTable(), int64_t(o.getTableUse())), p(o.getDy()),
            dy[0], dy[1]);
        return true;
      })
      .Case([&](nn::AddGradWOp o) {
        L::addBackwardBroadcast(c, acc(o.getParam(), int64_t(o.getUse())),
                                p(o.getDy()), numel(o.getDy()),
                                ptr.paramElements(o.getParam()), true);
        return true;
      })
      .Case([&](nn::MulGradWOp o) {
        L::mulBackwardRhs(c, acc(o.getParam(), int64_t(o.getUse())),
                          p(o.getDy()), p(o.getLhs()), numel(o.getDy()),
                          ptr.paramElements(o.getParam()), true);
        return true;
      })
      .Case([&](nn::AccumulateGradOp o) {
        L::accumulateInto(c, acc(o.getParam(), int64_t(o.getUse())),
                          p(o.getGrad()), numel(o.getGrad()), true);
        return true;
      })
      .Default([&](Operation *) { return false; });
  if (!ok) {
    llvm::raw_string_ostream e(error);
    e << op->getLoc() << ": error: the cpu target cannot compile '"
      << op->getName() << "'";
  }
  return ok;
}

void pipec::emit::emitPerturbation(ArrayRef<Value> values,
                                   const OpPointers &ptr, std::string &out) {
  std::map<std::string, std::string> globals;
  emit::loops::Code c(out, globals);
  for (Value v : values) {
    auto type = cast<RankedTensorType>(v.getType());
    if (!type.getElementType().isF32())
      continue;
    // The reference's `x *= T(1 + 1e-3)`.
    c.line("// --debug-perturb-vjp: times 1 + 1e-3");
    c.line("for (int64_t i = 0; i < " + std::to_string(numel(v)) + "; ++i)");
    c.line("  " + ptr.value(v) + "[i] *= " +
           emit::loops::floatLiteral(float(1 + 1e-3)) + ";");
  }
}
