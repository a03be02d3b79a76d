//===- ExecuteGrad.cpp - the training ops of docs/AUTODIFF.md -------------===//
//
// The ops --nn-autodiff adds: forward training forms (F), activation
// gradients (B), adds into per-use accumulators (W) and the optimizer step,
// each one call of the CPU kernel AUTODIFF.md names for it.
//
//===----------------------------------------------------------------------===//

#include "compiler/reference/Executor.h"
#include "compiler/reference/ValueInfo.h"

#include "dialects/nn/NNGradOps.h"
#include "kernels/cpu/Activation.h"
#include "kernels/cpu/AdamW.h"
#include "kernels/cpu/Attention.h"
#include "kernels/cpu/CrossEntropy.h"
#include "kernels/cpu/Elementwise.h"
#include "kernels/cpu/Embedding.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Norm.h"
#include "kernels/cpu/Rope.h"
#include "kernels/cpu/Shape.h"
#include "kernels/cpu/Softmax.h"
#include "pipert/LrSchedule.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace pipec;
using namespace pipec::reference;
namespace cpu = pipert::cpu;

/// The kernel shape of an attention op or its gradient (same attributes).
template <typename OpT>
static cpu::AttentionShape attentionShape(OpT o, Value q, Value k) {
  cpu::AttentionShape s;
  s.batch = shapeOf(q)[0];
  s.seqQ = shapeOf(q)[1];
  s.seqKV = shapeOf(k)[1];
  s.heads = static_cast<int64_t>(o.getHeads());
  s.kvHeads = static_cast<int64_t>(o.getKvHeads());
  s.headDim = shapeOf(q)[2] / s.heads;
  s.causal = o.getCausal();
  s.scale = o.getScale().convertToDouble();
  return s;
}

template <typename T> bool Executor<T>::isGradOp(Operation *op) {
  return isa<nn::LayerNormTrainOp, nn::RMSNormTrainOp, nn::AttentionTrainOp,
             nn::SoftmaxCrossEntropyOp, nn::MatmulGradBOp, nn::LayerNormGradBOp,
             nn::RMSNormGradBOp, nn::GeluGradOp, nn::SiluGradOp,
             nn::SoftmaxGradOp, nn::AddGradRhsOp, nn::MulGradLhsOp,
             nn::MulGradRhsOp, nn::SliceGradOp, nn::RopeGradOp,
             nn::AttentionGradOp, nn::GradAddOp, nn::MatmulGradWOp,
             nn::LayerNormGradWOp, nn::RMSNormGradWOp, nn::EmbeddingGradWOp,
             nn::PositionEmbeddingGradWOp, nn::AddGradWOp, nn::MulGradWOp,
             nn::AccumulateGradOp, nn::SumUsesOp, nn::SumSquaresOp,
             nn::GradNormOp, nn::ClipScaleOp, nn::LrScheduleOp, nn::AdamWOp>(
      op);
}

/// Every (parameter, use) a W or optimizer op names, so planning can check
/// the names and create the accumulators before the first run.
static SmallVector<std::pair<StringRef, int64_t>> namedUses(Operation *op) {
  SmallVector<std::pair<StringRef, int64_t>> uses;
  llvm::TypeSwitch<Operation *>(op)
      .Case([&](nn::MatmulGradWOp o) {
        uses.push_back({o.getWeight(), int64_t(o.getWeightUse())});
        if (o.getBias() && o.getBiasUse())
          uses.push_back({*o.getBias(), int64_t(*o.getBiasUse())});
      })
      .Case([&](nn::LayerNormGradWOp o) {
        uses.push_back({o.getGamma(), int64_t(o.getGammaUse())});
        uses.push_back({o.getBeta(), int64_t(o.getBetaUse())});
      })
      .Case([&](nn::RMSNormGradWOp o) {
        uses.push_back({o.getGamma(), int64_t(o.getGammaUse())});
      })
      .Case([&](nn::EmbeddingGradWOp o) {
        uses.push_back({o.getTable(), int64_t(o.getTableUse())});
      })
      .Case([&](nn::PositionEmbeddingGradWOp o) {
        uses.push_back({o.getTable(), int64_t(o.getTableUse())});
      })
      .Case<nn::AddGradWOp, nn::MulGradWOp, nn::AccumulateGradOp>([&](auto o) {
        uses.push_back({o.getParam(), int64_t(o.getUse())});
      })
      .Case([&](nn::SumUsesOp o) {
        for (int64_t u = 0; u < int64_t(o.getUses()); ++u)
          uses.push_back({o.getParam(), u});
        // uses = 0 still names a parameter, which must exist.
        if (o.getUses() == 0)
          uses.push_back({o.getParam(), -1});
      })
      .Case([&](nn::AdamWOp o) {
        uses.push_back({o.getParam(), -1});
      });
  return uses;
}

template <typename T>
bool Executor<T>::planGrad(Operation *op, llvm::raw_ostream &errs) {
  for (auto [name, use] : namedUses(op)) {
    int idx = params.find(name);
    if (idx < 0) {
      errs << where(op) << ": error: unknown parameter '" << name << "'\n";
      return false;
    }
    if (use >= 0)
      params.accumulator(idx, use);
  }
  if (auto lr = dyn_cast<nn::LrScheduleOp>(op))
    if (lr.getDecay() != "cosine" && lr.getDecay() != "constant") {
      errs << where(op) << ": error: unknown decay '" << lr.getDecay()
           << "' (cosine or constant)\n";
      return false;
    }
  return true;
}

template <typename T> T *Executor<T>::acc(StringRef name, int64_t use) {
  return params.accumulator(params.find(name), use);
}

template <typename T>
bool Executor<T>::executeGrad(Operation *op, std::string &error) {
  auto check = [&](const cpu::Status &st) {
    if (!st.ok())
      error = where(op) + ": " + st.message();
    return st.ok();
  };
  return llvm::TypeSwitch<Operation *, bool>(op)
      // Forward training forms.
      .Case([&](nn::LayerNormTrainOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        cpu::layernormForward<T>(f(o.getResult()), f(o.getMean()),
                                 f(o.getRstd()), f(o.getX()), f(o.getGamma()),
                                 f(o.getBeta()), rows, dim,
                                 o.getEps().convertToDouble());
        return true;
      })
      .Case([&](nn::RMSNormTrainOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        cpu::rmsnormForward<T>(f(o.getResult()), f(o.getRstd()), f(o.getX()),
                               f(o.getGamma()), rows, dim,
                               o.getEps().convertToDouble());
        return true;
      })
      .Case([&](nn::AttentionTrainOp o) {
        cpu::attentionForward<T>(f(o.getResult()), f(o.getLse()), f(o.getQ()),
                                 f(o.getK()), f(o.getV()),
                                 attentionShape(o, o.getQ(), o.getK()));
        return true;
      })
      .Case([&](nn::SoftmaxCrossEntropyOp o) {
        int64_t vocab = lastDim(o.getLogits());
        int64_t rows = numel(o.getLogits()) / vocab;
        // AUTODIFF.md: scale = loss_scale / rows, the division in double.
        double scale = d(o.getLossScale())[0] / double(rows);
        return check(cpu::crossEntropyForward<T>(
                   f(o.getLoss()), nullptr, f(o.getLogits()),
                   ids(o.getTargets()), rows, vocab)) &&
               check(cpu::crossEntropyBackward<T>(
                   f(o.getDlogits()), f(o.getLogits()), ids(o.getTargets()),
                   rows, vocab, scale));
      })
      // B ops.
      .Case([&](nn::MatmulGradBOp o) {
        int64_t n = lastDim(o.getDy()), k = lastDim(o.getDx());
        cpu::matmulBackwardB<T>(f(o.getDx()), f(o.getDy()), f(o.getW()),
                                numel(o.getDy()) / n, k, n, o.getTransposeRhs(),
                                false);
        return true;
      })
      .Case([&](nn::LayerNormGradBOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        cpu::layernormBackwardB<T>(f(o.getDx()), f(o.getDy()), f(o.getX()),
                                   f(o.getMean()), f(o.getRstd()),
                                   f(o.getGamma()), rows, dim, false);
        return true;
      })
      .Case([&](nn::RMSNormGradBOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        cpu::rmsnormBackwardB<T>(f(o.getDx()), f(o.getDy()), f(o.getX()),
                                 f(o.getRstd()), f(o.getGamma()), rows, dim,
                                 false);
        return true;
      })
      .Case([&](nn::GeluGradOp o) {
        cpu::geluBackwardB<T>(f(o.getDx()), f(o.getDy()), f(o.getX()),
                              numel(o.getX()), false);
        return true;
      })
      .Case([&](nn::SiluGradOp o) {
        cpu::siluBackwardB<T>(f(o.getDx()), f(o.getDy()), f(o.getX()),
                              numel(o.getX()), false);
        return true;
      })
      .Case([&](nn::SoftmaxGradOp o) {
        int64_t dim = lastDim(o.getY());
        cpu::softmaxBackwardB<T>(f(o.getDx()), f(o.getDy()), f(o.getY()),
                                 numel(o.getY()) / dim, dim, false);
        return true;
      })
      .Case([&](nn::AddGradRhsOp o) {
        cpu::addBackwardBroadcast<T>(f(o.getDrhs()), f(o.getDy()),
                                     numel(o.getDy()), numel(o.getDrhs()),
                                     false);
        return true;
      })
      .Case([&](nn::MulGradLhsOp o) {
        cpu::mulBackwardLhs<T>(f(o.getDlhs()), f(o.getDy()), f(o.getRhs()),
                               numel(o.getDy()), numel(o.getRhs()), false);
        return true;
      })
      .Case([&](nn::MulGradRhsOp o) {
        cpu::mulBackwardRhs<T>(f(o.getDrhs()), f(o.getDy()), f(o.getLhs()),
                               numel(o.getDy()), numel(o.getDrhs()), false);
        return true;
      })
      .Case([&](nn::SliceGradOp o) {
        auto in = shapeOf(o.getDx());
        int64_t axis = static_cast<int64_t>(o.getAxis()), outer = 1, inner = 1;
        for (int64_t i = 0; i < axis; ++i)
          outer *= in[i];
        for (int64_t i = axis + 1; i < static_cast<int64_t>(in.size()); ++i)
          inner *= in[i];
        cpu::sliceBackwardB<T>(f(o.getDx()), f(o.getDy()), outer, in[axis],
                               inner, o.getOffset(), shapeOf(o.getDy())[axis],
                               false);
        return true;
      })
      .Case([&](nn::RopeGradOp o) {
        auto in = shapeOf(o.getDy());
        int64_t heads = static_cast<int64_t>(o.getHeads());
        cpu::ropeBackwardB<T>(f(o.getDx()), f(o.getDy()), in[0], in[1], heads,
                              in[2] / heads, o.getTheta().convertToDouble(),
                              false);
        return true;
      })
      .Case([&](nn::AttentionGradOp o) {
        cpu::attentionBackwardB<T>(f(o.getDq()), f(o.getDk()), f(o.getDv()),
                                   f(o.getDout()), f(o.getQ()), f(o.getK()),
                                   f(o.getV()), f(o.getOut()), f(o.getLse()),
                                   attentionShape(o, o.getQ(), o.getK()));
        return true;
      })
      .Case([&](nn::GradAddOp o) {
        int64_t n = numel(o.getResult());
        cpu::accumulateInto<T>(f(o.getResult()), f(o.getLhs()), n, false);
        cpu::accumulateInto<T>(f(o.getResult()), f(o.getRhs()), n, true);
        return true;
      })
      // W ops: add into the accumulator of one parameter use.
      .Case([&](nn::MatmulGradWOp o) {
        int64_t k = lastDim(o.getX()), n = lastDim(o.getDy());
        T *dbias = o.getBias() && o.getBiasUse()
                       ? acc(*o.getBias(), int64_t(*o.getBiasUse()))
                       : nullptr;
        cpu::matmulBackwardW<T>(acc(o.getWeight(), int64_t(o.getWeightUse())),
                                dbias, f(o.getX()), f(o.getDy()),
                                numel(o.getX()) / k, k, n, o.getTransposeRhs());
        return true;
      })
      .Case([&](nn::LayerNormGradWOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        cpu::layernormBackwardW<T>(acc(o.getGamma(), int64_t(o.getGammaUse())),
                                   acc(o.getBeta(), int64_t(o.getBetaUse())),
                                   f(o.getDy()), f(o.getX()), f(o.getMean()),
                                   f(o.getRstd()), rows, dim);
        return true;
      })
      .Case([&](nn::RMSNormGradWOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        cpu::rmsnormBackwardW<T>(acc(o.getGamma(), int64_t(o.getGammaUse())),
                                 f(o.getDy()), f(o.getX()), f(o.getRstd()),
                                 rows, dim);
        return true;
      })
      .Case([&](nn::EmbeddingGradWOp o) {
        const auto &table = params.entries()[params.find(o.getTable())].shape;
        return check(cpu::embeddingBackwardW<T>(
            acc(o.getTable(), int64_t(o.getTableUse())), f(o.getDy()),
            ids(o.getIds()), numel(o.getIds()), table[0], table[1]));
      })
      .Case([&](nn::PositionEmbeddingGradWOp o) {
        auto dy = shapeOf(o.getDy());
        cpu::positionEmbeddingBackwardW<T>(
            acc(o.getTable(), int64_t(o.getTableUse())), f(o.getDy()), dy[0],
            dy[1]);
        return true;
      })
      .Case([&](nn::AddGradWOp o) {
        int64_t bn = static_cast<int64_t>(
            params.entries()[params.find(o.getParam())].values.size());
        cpu::addBackwardBroadcast<T>(acc(o.getParam(), int64_t(o.getUse())),
                                     f(o.getDy()), numel(o.getDy()), bn, true);
        return true;
      })
      .Case([&](nn::MulGradWOp o) {
        int64_t bn = static_cast<int64_t>(
            params.entries()[params.find(o.getParam())].values.size());
        cpu::mulBackwardRhs<T>(acc(o.getParam(), int64_t(o.getUse())),
                               f(o.getDy()), f(o.getLhs()), numel(o.getDy()),
                               bn, true);
        return true;
      })
      .Case([&](nn::AccumulateGradOp o) {
        cpu::accumulateInto<T>(acc(o.getParam(), int64_t(o.getUse())),
                               f(o.getGrad()), numel(o.getGrad()), true);
        return true;
      })
      // The optimizer step.
      .Case([&](nn::SumUsesOp o) {
        int64_t n = numel(o.getResult()), uses = int64_t(o.getUses());
        T *g = f(o.getResult());
        if (uses == 0)
          std::fill(g, g + n, T(0));
        for (int64_t u = 0; u < uses; ++u)
          cpu::accumulateInto<T>(g, acc(o.getParam(), u), n, u > 0);
        return true;
      })
      .Case([&](nn::SumSquaresOp o) {
        d(o.getResult())[0] =
            cpu::sumOfSquares<T>(f(o.getInput()), numel(o.getInput()));
        return true;
      })
      .Case([&](nn::GradNormOp o) {
        std::vector<double> squares;
        for (Value s : o.getSquares())
          squares.push_back(d(s)[0]);
        d(o.getResult())[0] = cpu::globalNorm(
            squares.data(), static_cast<int64_t>(squares.size()));
        return true;
      })
      .Case([&](nn::ClipScaleOp o) {
        d(o.getResult())[0] =
            cpu::clipScale(d(o.getNorm())[0], o.getMaxNorm().convertToDouble());
        return true;
      })
      .Case([&](nn::LrScheduleOp o) {
        pipert::LrSchedule s;
        s.lr = o.getLr().convertToDouble();
        s.minLr = o.getMinLr().convertToDouble();
        s.warmupSteps = static_cast<int64_t>(o.getWarmupSteps());
        s.decaySteps = static_cast<int64_t>(o.getDecaySteps());
        s.cosine = o.getDecay() == "cosine";
        d(o.getResult())[0] = s.at(slots.lookup(o.getStep()).l[0]);
        return true;
      })
      .Case([&](nn::AdamWOp o) {
        auto &e = params.entries()[params.find(o.getParam())];
        cpu::AdamWConfig c;
        c.lr = d(o.getLr())[0];
        c.beta1 = o.getBeta1().convertToDouble();
        c.beta2 = o.getBeta2().convertToDouble();
        c.eps = o.getEps().convertToDouble();
        c.weightDecay = o.getWeightDecay().convertToDouble();
        return check(cpu::adamwStep<T>(
            e.values.data(), f(o.getGrad()), e.m.data(), e.v.data(),
            static_cast<int64_t>(e.values.size()), c, c.weightDecay != 0.0,
            slots.lookup(o.getStep()).l[0] + 1, d(o.getClipScale())[0]));
      })
      .Default([&](Operation *) {
        error = where(op) + ": the reference executor cannot run this op";
        return false;
      });
}

// The members this file defines; the class itself is instantiated in
// Executor.cpp.
template bool Executor<float>::isGradOp(Operation *);
template bool Executor<double>::isGradOp(Operation *);
template bool Executor<float>::planGrad(Operation *, llvm::raw_ostream &);
template bool Executor<double>::planGrad(Operation *, llvm::raw_ostream &);
template bool Executor<float>::executeGrad(Operation *, std::string &);
template bool Executor<double>::executeGrad(Operation *, std::string &);
template float *Executor<float>::acc(StringRef, int64_t);
template double *Executor<double>::acc(StringRef, int64_t);
