//===- EmitOps.cpp - one nn op of @train_step as a CPU kernel call --------===//
//
// Mirrors the TypeSwitch of compiler/reference/Executor.cpp and
// ExecuteGrad.cpp call for call (same kernel, same arguments, same order),
// printing C++ instead of calling: bitwise equality with the reference
// executor rests on this file.
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitOps.h"

#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"

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

/// The attention shape initialiser, as the reference builds it.
template <typename OpT>
static std::string attentionShape(OpT o, Value q, Value k) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "pipert::cpu::AttentionShape{" << shapeOf(q)[0] << ", "
     << shapeOf(q)[1] << ", " << shapeOf(k)[1] << ", " << o.getHeads() << ", "
     << o.getKvHeads() << ", " << shapeOf(q)[2] / int64_t(o.getHeads()) << ", "
     << (o.getCausal() ? "true" : "false") << ", "
     << pipec::emit::doubleLiteral(o.getScale().convertToDouble()) << "}";
  return s;
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
                             std::string &out, std::string &error) {
  llvm::raw_string_ostream os(out);
  auto p = [&](Value v) { return ptr.value(v); };
  auto b = [](bool x) { return x ? "true" : "false"; };
  auto checked = [&](const std::string &call) {
    os << "  if (pipert::cpu::Status st = " << call
       << "; !st.ok())\n    return pipert::cpu::Status::failure("
       << whereLiteral(op) << " + std::string(\": \") + st.message());\n";
  };
  bool ok = llvm::TypeSwitch<Operation *, bool>(op)
      .Case([&](nn::ParamOp) { return true; })
      .Case([&](nn::EmbeddingOp o) {
        auto table = shapeOf(o.getTable());
        std::string call;
        llvm::raw_string_ostream c(call);
        c << "pipert::cpu::embeddingForward<float>(" << p(o.getResult()) << ", "
          << p(o.getTable()) << ", " << p(o.getIds()) << ", "
          << numel(o.getIds()) << ", " << table[0] << ", " << table[1] << ")";
        checked(call);
        return true;
      })
      .Case([&](nn::PositionEmbeddingOp o) {
        auto outShape = shapeOf(o.getResult());
        os << "  pipert::cpu::positionEmbeddingForward<float>("
           << p(o.getResult()) << ", " << p(o.getTable()) << ", "
           << outShape[0] << ", " << outShape[1] << ");\n";
        return true;
      })
      .Case([&](nn::MatmulOp o) {
        int64_t k = lastDim(o.getX()), n = lastDim(o.getResult());
        os << "  pipert::cpu::matmulForward<float>(" << p(o.getResult()) << ", "
           << p(o.getX()) << ", " << p(o.getW()) << ", "
           << (o.getBias() ? p(o.getBias()) : std::string("nullptr")) << ", "
           << numel(o.getX()) / k << ", " << k << ", " << n << ", "
           << b(o.getTransposeRhs()) << ");\n";
        return true;
      })
      .Case([&](nn::AddOp o) {
        os << "  pipert::cpu::addForward<float>(" << p(o.getResult()) << ", "
           << p(o.getLhs()) << ", " << p(o.getRhs()) << ", "
           << numel(o.getLhs()) << ", " << numel(o.getRhs()) << ");\n";
        return true;
      })
      .Case([&](nn::MulOp o) {
        os << "  pipert::cpu::mulForward<float>(" << p(o.getResult()) << ", "
           << p(o.getLhs()) << ", " << p(o.getRhs()) << ", "
           << numel(o.getLhs()) << ", " << numel(o.getRhs()) << ");\n";
        return true;
      })
      .Case([&](nn::GeluOp o) {
        os << "  pipert::cpu::geluForward<float>(" << p(o.getResult()) << ", "
           << p(o.getInput()) << ", " << numel(o.getInput()) << ");\n";
        return true;
      })
      .Case([&](nn::SiluOp o) {
        os << "  pipert::cpu::siluForward<float>(" << p(o.getResult()) << ", "
           << p(o.getInput()) << ", " << numel(o.getInput()) << ");\n";
        return true;
      })
      .Case([&](nn::SoftmaxOp o) {
        int64_t dim = lastDim(o.getInput());
        os << "  pipert::cpu::softmaxForward<float>(" << p(o.getResult())
           << ", " << p(o.getInput()) << ", " << numel(o.getInput()) / dim
           << ", " << dim << ");\n";
        return true;
      })
      .Case([&](nn::SliceOp o) {
        auto in = shapeOf(o.getInput());
        int64_t axis = int64_t(o.getAxis()), outer, inner;
        sliceExtents(in, axis, outer, inner);
        os << "  pipert::cpu::sliceForward<float>(" << p(o.getResult()) << ", "
           << p(o.getInput()) << ", " << outer << ", " << in[axis] << ", "
           << inner << ", " << o.getOffset() << ", " << o.getSize() << ");\n";
        return true;
      })
      .Case([&](nn::ReshapeOp o) {
        os << "  pipert::cpu::reshapeForward<float>(" << p(o.getResult())
           << ", " << p(o.getInput()) << ", " << numel(o.getInput()) << ");\n";
        return true;
      })
      .Case([&](nn::TransposeOp o) {
        auto in = shapeOf(o.getInput());
        auto perm = o.getPerm();
        os << "  {\n    static const int64_t shape[] = {";
        for (size_t i = 0; i < in.size(); ++i)
          os << (i ? ", " : "") << in[i];
        os << "};\n    static const int64_t perm[] = {";
        for (size_t i = 0; i < perm.size(); ++i)
          os << (i ? ", " : "") << perm[i];
        os << "};\n    pipert::cpu::transposeForward<float>(" << p(o.getResult())
           << ", " << p(o.getInput()) << ", shape, perm, " << in.size()
           << ");\n  }\n";
        return true;
      })
      .Case([&](nn::RopeOp o) {
        auto in = shapeOf(o.getInput());
        int64_t heads = int64_t(o.getHeads());
        os << "  pipert::cpu::ropeForward<float>(" << p(o.getResult()) << ", "
           << p(o.getInput()) << ", " << in[0] << ", " << in[1] << ", "
           << heads << ", " << in[2] / heads << ", "
           << doubleLiteral(o.getTheta().convertToDouble()) << ");\n";
        return true;
      })
      // Forward training forms.
      .Case([&](nn::LayerNormTrainOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        os << "  pipert::cpu::layernormForward<float>(" << p(o.getResult())
           << ", " << p(o.getMean()) << ", " << p(o.getRstd()) << ", "
           << p(o.getX()) << ", " << p(o.getGamma()) << ", " << p(o.getBeta())
           << ", " << rows << ", " << dim << ", "
           << doubleLiteral(o.getEps().convertToDouble()) << ");\n";
        return true;
      })
      .Case([&](nn::RMSNormTrainOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        os << "  pipert::cpu::rmsnormForward<float>(" << p(o.getResult())
           << ", " << p(o.getRstd()) << ", " << p(o.getX()) << ", "
           << p(o.getGamma()) << ", " << rows << ", " << dim << ", "
           << doubleLiteral(o.getEps().convertToDouble()) << ");\n";
        return true;
      })
      .Case([&](nn::AttentionTrainOp o) {
        os << "  pipert::cpu::attentionForward<float>(" << p(o.getResult())
           << ", " << p(o.getLse()) << ", " << p(o.getQ()) << ", "
           << p(o.getK()) << ", " << p(o.getV()) << ", "
           << attentionShape(o, o.getQ(), o.getK()) << ");\n";
        return true;
      })
      .Case([&](nn::SoftmaxCrossEntropyOp o) {
        int64_t vocab = lastDim(o.getLogits());
        int64_t rows = numel(o.getLogits()) / vocab;
        std::string fwd, bwd;
        llvm::raw_string_ostream f(fwd), g(bwd);
        f << "pipert::cpu::crossEntropyForward<float>(" << p(o.getLoss())
          << ", nullptr, " << p(o.getLogits()) << ", " << p(o.getTargets())
          << ", " << rows << ", " << vocab << ")";
        checked(fwd);
        // AUTODIFF.md: scale = loss_scale / rows, the division in double.
        g << "pipert::cpu::crossEntropyBackward<float>(" << p(o.getDlogits())
          << ", " << p(o.getLogits()) << ", " << p(o.getTargets()) << ", "
          << rows << ", " << vocab << ", " << p(o.getLossScale())
          << "[0] / double(" << rows << "))";
        checked(bwd);
        return true;
      })
      // B ops.
      .Case([&](nn::MatmulGradBOp o) {
        int64_t n = lastDim(o.getDy()), k = lastDim(o.getDx());
        os << "  pipert::cpu::matmulBackwardB<float>(" << p(o.getDx()) << ", "
           << p(o.getDy()) << ", " << p(o.getW()) << ", " << numel(o.getDy()) / n
           << ", " << k << ", " << n << ", " << b(o.getTransposeRhs())
           << ", false);\n";
        return true;
      })
      .Case([&](nn::LayerNormGradBOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        os << "  pipert::cpu::layernormBackwardB<float>(" << p(o.getDx())
           << ", " << p(o.getDy()) << ", " << p(o.getX()) << ", "
           << p(o.getMean()) << ", " << p(o.getRstd()) << ", "
           << p(o.getGamma()) << ", " << rows << ", " << dim << ", false);\n";
        return true;
      })
      .Case([&](nn::RMSNormGradBOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        os << "  pipert::cpu::rmsnormBackwardB<float>(" << p(o.getDx()) << ", "
           << p(o.getDy()) << ", " << p(o.getX()) << ", " << p(o.getRstd())
           << ", " << p(o.getGamma()) << ", " << rows << ", " << dim
           << ", false);\n";
        return true;
      })
      .Case([&](nn::GeluGradOp o) {
        os << "  pipert::cpu::geluBackwardB<float>(" << p(o.getDx()) << ", "
           << p(o.getDy()) << ", " << p(o.getX()) << ", " << numel(o.getX())
           << ", false);\n";
        return true;
      })
      .Case([&](nn::SiluGradOp o) {
        os << "  pipert::cpu::siluBackwardB<float>(" << p(o.getDx()) << ", "
           << p(o.getDy()) << ", " << p(o.getX()) << ", " << numel(o.getX())
           << ", false);\n";
        return true;
      })
      .Case([&](nn::SoftmaxGradOp o) {
        int64_t dim = lastDim(o.getY());
        os << "  pipert::cpu::softmaxBackwardB<float>(" << p(o.getDx()) << ", "
           << p(o.getDy()) << ", " << p(o.getY()) << ", " << numel(o.getY()) / dim
           << ", " << dim << ", false);\n";
        return true;
      })
      .Case([&](nn::AddGradRhsOp o) {
        os << "  pipert::cpu::addBackwardBroadcast<float>(" << p(o.getDrhs())
           << ", " << p(o.getDy()) << ", " << numel(o.getDy()) << ", "
           << numel(o.getDrhs()) << ", false);\n";
        return true;
      })
      .Case([&](nn::MulGradLhsOp o) {
        os << "  pipert::cpu::mulBackwardLhs<float>(" << p(o.getDlhs()) << ", "
           << p(o.getDy()) << ", " << p(o.getRhs()) << ", " << numel(o.getDy())
           << ", " << numel(o.getRhs()) << ", false);\n";
        return true;
      })
      .Case([&](nn::MulGradRhsOp o) {
        os << "  pipert::cpu::mulBackwardRhs<float>(" << p(o.getDrhs()) << ", "
           << p(o.getDy()) << ", " << p(o.getLhs()) << ", " << numel(o.getDy())
           << ", " << numel(o.getDrhs()) << ", false);\n";
        return true;
      })
      .Case([&](nn::SliceGradOp o) {
        auto in = shapeOf(o.getDx());
        int64_t axis = int64_t(o.getAxis()), outer, inner;
        sliceExtents(in, axis, outer, inner);
        os << "  pipert::cpu::sliceBackwardB<float>(" << p(o.getDx()) << ", "
           << p(o.getDy()) << ", " << outer << ", " << in[axis] << ", " << inner
           << ", " << o.getOffset() << ", " << shapeOf(o.getDy())[axis]
           << ", false);\n";
        return true;
      })
      .Case([&](nn::RopeGradOp o) {
        auto in = shapeOf(o.getDy());
        int64_t heads = int64_t(o.getHeads());
        os << "  pipert::cpu::ropeBackwardB<float>(" << p(o.getDx()) << ", "
           << p(o.getDy()) << ", " << in[0] << ", " << in[1] << ", " << heads
           << ", " << in[2] / heads << ", "
           << doubleLiteral(o.getTheta().convertToDouble()) << ", false);\n";
        return true;
      })
      .Case([&](nn::AttentionGradOp o) {
        os << "  pipert::cpu::attentionBackwardB<float>(" << p(o.getDq())
           << ", " << p(o.getDk()) << ", " << p(o.getDv()) << ", "
           << p(o.getDout()) << ", " << p(o.getQ()) << ", " << p(o.getK())
           << ", " << p(o.getV()) << ", " << p(o.getOut()) << ", "
           << p(o.getLse()) << ", " << attentionShape(o, o.getQ(), o.getK())
           << ");\n";
        return true;
      })
      .Case([&](nn::GradAddOp o) {
        int64_t n = numel(o.getResult());
        os << "  pipert::cpu::accumulateInto<float>(" << p(o.getResult())
           << ", " << p(o.getLhs()) << ", " << n << ", false);\n"
           << "  pipert::cpu::accumulateInto<float>(" << p(o.getResult())
           << ", " << p(o.getRhs()) << ", " << n << ", true);\n";
        return true;
      })
      // W ops: add into the accumulator of one parameter use.
      .Case([&](nn::MatmulGradWOp o) {
        int64_t k = lastDim(o.getX()), n = lastDim(o.getDy());
        std::string dbias = o.getBias() && o.getBiasUse()
                                ? ptr.accumulator(*o.getBias(),
                                                  int64_t(*o.getBiasUse()))
                                : std::string("nullptr");
        os << "  pipert::cpu::matmulBackwardW<float>("
           << ptr.accumulator(o.getWeight(), int64_t(o.getWeightUse())) << ", "
           << dbias << ", " << p(o.getX()) << ", " << p(o.getDy()) << ", "
           << numel(o.getX()) / k << ", " << k << ", " << n << ", "
           << b(o.getTransposeRhs()) << ");\n";
        return true;
      })
      .Case([&](nn::LayerNormGradWOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        os << "  pipert::cpu::layernormBackwardW<float>("
           << ptr.accumulator(o.getGamma(), int64_t(o.getGammaUse())) << ", "
           << ptr.accumulator(o.getBeta(), int64_t(o.getBetaUse())) << ", "
           << p(o.getDy()) << ", " << p(o.getX()) << ", " << p(o.getMean())
           << ", " << p(o.getRstd()) << ", " << rows << ", " << dim << ");\n";
        return true;
      })
      .Case([&](nn::RMSNormGradWOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        os << "  pipert::cpu::rmsnormBackwardW<float>("
           << ptr.accumulator(o.getGamma(), int64_t(o.getGammaUse())) << ", "
           << p(o.getDy()) << ", " << p(o.getX()) << ", " << p(o.getRstd())
           << ", " << rows << ", " << dim << ");\n";
        return true;
      })
      .Case([&](nn::EmbeddingGradWOp o) {
        int64_t elements = ptr.paramElements(o.getTable());
        int64_t dim = lastDim(o.getDy());
        std::string call;
        llvm::raw_string_ostream c(call);
        c << "pipert::cpu::embeddingBackwardW<float>("
          << ptr.accumulator(o.getTable(), int64_t(o.getTableUse())) << ", "
          << p(o.getDy()) << ", " << p(o.getIds()) << ", " << numel(o.getIds())
          << ", " << elements / dim << ", " << dim << ")";
        checked(call);
        return true;
      })
      .Case([&](nn::PositionEmbeddingGradWOp o) {
        auto dy = shapeOf(o.getDy());
        os << "  pipert::cpu::positionEmbeddingBackwardW<float>("
           << ptr.accumulator(o.getTable(), int64_t(o.getTableUse())) << ", "
           << p(o.getDy()) << ", " << dy[0] << ", " << dy[1] << ");\n";
        return true;
      })
      .Case([&](nn::AddGradWOp o) {
        os << "  pipert::cpu::addBackwardBroadcast<float>("
           << ptr.accumulator(o.getParam(), int64_t(o.getUse())) << ", "
           << p(o.getDy()) << ", " << numel(o.getDy()) << ", "
           << ptr.paramElements(o.getParam()) << ", true);\n";
        return true;
      })
      .Case([&](nn::MulGradWOp o) {
        os << "  pipert::cpu::mulBackwardRhs<float>("
           << ptr.accumulator(o.getParam(), int64_t(o.getUse())) << ", "
           << p(o.getDy()) << ", " << p(o.getLhs()) << ", " << numel(o.getDy())
           << ", " << ptr.paramElements(o.getParam()) << ", true);\n";
        return true;
      })
      .Case([&](nn::AccumulateGradOp o) {
        os << "  pipert::cpu::accumulateInto<float>("
           << ptr.accumulator(o.getParam(), int64_t(o.getUse())) << ", "
           << p(o.getGrad()) << ", " << numel(o.getGrad()) << ", true);\n";
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
