//===- Executor.cpp - runs an nn function on the CPU kernels --------------===//

#include "compiler/reference/Executor.h"
#include "compiler/reference/PerturbVjp.h"
#include "compiler/reference/ValueInfo.h"

#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"
#include "kernels/cpu/Activation.h"
#include "kernels/cpu/Attention.h"
#include "kernels/cpu/CrossEntropy.h"
#include "kernels/cpu/Elementwise.h"
#include "kernels/cpu/Embedding.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Norm.h"
#include "kernels/cpu/Rope.h"
#include "kernels/cpu/Shape.h"
#include "kernels/cpu/Softmax.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cstring>

using namespace mlir;
using namespace pipec;
using namespace pipec::reference;
namespace cpu = pipert::cpu;

template <typename T>
std::unique_ptr<Executor<T>>
Executor<T>::create(func::FuncOp fn, ParameterStore<T> &params,
                    const ExecutorOptions &options, llvm::raw_ostream &errs) {
  std::unique_ptr<Executor<T>> e(new Executor<T>(fn, params, options));
  if (!e->plan(errs))
    return nullptr;
  return e;
}

/// Whether the executor knows how to run `op` as a forward op.
static bool isForwardOp(Operation *op) {
  return isa<nn::ParamOp, nn::EmbeddingOp, nn::PositionEmbeddingOp,
             nn::MatmulOp, nn::LayerNormOp, nn::RMSNormOp, nn::AddOp, nn::MulOp,
             nn::GeluOp, nn::SiluOp, nn::SoftmaxOp, nn::SliceOp, nn::ReshapeOp,
             nn::TransposeOp, nn::RopeOp, nn::AttentionOp, nn::CrossEntropyOp,
             func::ReturnOp>(op);
}

template <typename T> bool Executor<T>::plan(llvm::raw_ostream &errs) {
  // Allocates a buffer for `v` unless it is a parameter read in place.
  auto allocate = [&](Value v) -> bool {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type || !type.hasStaticShape()) {
      errs << "reference executor: value of type " << v.getType()
           << " is not a static tensor\n";
      return false;
    }
    Slot s;
    s.n = type.getNumElements();
    Type element = type.getElementType();
    if (element.isInteger(32)) {
      intStorage.emplace_back(s.n, 0);
      s.i = intStorage.back().data();
    } else if (element.isInteger(64)) {
      int64Storage.emplace_back(s.n, 0);
      s.l = int64Storage.back().data();
    } else if (element.isF64()) {
      doubleStorage.emplace_back(s.n, 0.0);
      s.d = doubleStorage.back().data();
    } else if (element.isF32()) {
      floatStorage.emplace_back(s.n, T(0));
      s.f = floatStorage.back().data();
    } else {
      errs << "reference executor: element type " << type.getElementType()
           << " is not supported\n";
      return false;
    }
    slots[v] = s;
    return true;
  };
  for (BlockArgument arg : fn.getArguments())
    if (!allocate(arg))
      return false;
  for (Operation &op : fn.getBody().front()) {
    // Checked while planning, so a run never meets an op it cannot execute.
    if (!isForwardOp(&op) && !isGradOp(&op)) {
      errs << where(&op)
           << ": error: the reference executor cannot run this op\n";
      return false;
    }
    if (auto p = dyn_cast<nn::ParamOp>(op)) {
      int idx = params.find(p.getName());
      if (idx < 0) {
        errs << where(&op) << ": error: unknown parameter '" << p.getName()
             << "'\n";
        return false;
      }
      auto &entry = params.entries()[idx];
      Slot s;
      s.f = entry.values.data();
      s.n = static_cast<int64_t>(entry.values.size());
      slots[p.getResult()] = s;
      continue;
    }
    for (Value r : op.getResults())
      if (!allocate(r))
        return false;
    if (isGradOp(&op) && !planGrad(&op, errs))
      return false;
    // Statistics the forward op keeps for its backward.
    if (auto ln = dyn_cast<nn::LayerNormOp>(op))
      auxiliary[&op].assign(2 * numel(ln.getX()) / lastDim(ln.getX()), T(0));
    else if (auto rms = dyn_cast<nn::RMSNormOp>(op))
      auxiliary[&op].assign(numel(rms.getX()) / lastDim(rms.getX()), T(0));
    else if (auto at = dyn_cast<nn::AttentionOp>(op))
      auxiliary[&op].assign(
          shapeOf(at.getQ())[0] * at.getHeads() * shapeOf(at.getQ())[1], T(0));
    else if (auto ret = dyn_cast<func::ReturnOp>(op))
      results.assign(ret.getOperands().begin(), ret.getOperands().end());
  }
  return planPerturbation(errs);
}

template <typename T>
bool Executor<T>::planPerturbation(llvm::raw_ostream &errs) {
  if (options.perturbVjpOp.empty())
    return true;
  std::string error;
  if (!perturbedVjpValues(fn, options.perturbVjpOp, perturbed, error)) {
    errs << "pipec reference-train: error: " << error << "\n";
    return false;
  }
  return true;
}

template <typename T> int32_t *Executor<T>::intArgument(unsigned i) {
  return slots.lookup(fn.getArgument(i)).i;
}

template <typename T> T *Executor<T>::floatArgument(unsigned i) {
  return slots.lookup(fn.getArgument(i)).f;
}

template <typename T>
int Executor<T>::argumentIndex(llvm::StringRef name) const {
  func::FuncOp fn = this->fn; // a handle; its accessors are not const
  for (unsigned i = 0; i < fn.getNumArguments(); ++i)
    if (auto attr = fn.getArgAttrOfType<StringAttr>(i, "nn.name"))
      if (attr.getValue() == name)
        return static_cast<int>(i);
  return -1;
}

template <typename T> double *Executor<T>::doubleArgument(unsigned i) {
  return slots.lookup(fn.getArgument(i)).d;
}

template <typename T> int64_t *Executor<T>::int64Argument(unsigned i) {
  return slots.lookup(fn.getArgument(i)).l;
}

template <typename T> double Executor<T>::scalarResult(unsigned i) const {
  Slot s = slots.lookup(results[i]);
  if (s.f)
    return static_cast<double>(s.f[0]);
  if (s.d)
    return s.d[0];
  if (s.l)
    return static_cast<double>(s.l[0]);
  return static_cast<double>(s.i[0]);
}

template <typename T> int Executor<T>::resultIndex(llvm::StringRef name) const {
  func::FuncOp fn = this->fn; // a handle; its accessors are not const
  for (unsigned i = 0; i < fn.getNumResults(); ++i)
    if (auto attr = fn.getResultAttrOfType<StringAttr>(i, "nn.name"))
      if (attr.getValue() == name)
        return static_cast<int>(i);
  return -1;
}

template <typename T> bool Executor<T>::run(std::string &error) {
  for (Operation &op : fn.getBody().front()) {
    if (!execute(&op, error))
      return false;
    auto it = perturbed.find(&op);
    if (it == perturbed.end())
      continue;
    for (Value v : it->second) {
      Slot s = slots.lookup(v);
      for (int64_t i = 0; s.f && i < s.n; ++i)
        s.f[i] *= T(1 + 1e-3);
    }
  }
  return true;
}

template <typename T>
bool Executor<T>::execute(Operation *op, std::string &error) {
  // Kernels that validate data report through Status.
  auto check = [&](const cpu::Status &st) {
    if (!st.ok())
      error = where(op) + ": " + st.message();
    return st.ok();
  };
  return llvm::TypeSwitch<Operation *, bool>(op)
      .Case([&](nn::ParamOp) { return true; })
      .Case([&](func::ReturnOp) { return true; })
      .Case([&](nn::EmbeddingOp o) {
        auto table = shapeOf(o.getTable());
        return check(cpu::embeddingForward<T>(
            f(o.getResult()), f(o.getTable()), ids(o.getIds()),
            numel(o.getIds()), table[0], table[1]));
      })
      .Case([&](nn::PositionEmbeddingOp o) {
        auto out = shapeOf(o.getResult());
        cpu::positionEmbeddingForward<T>(f(o.getResult()), f(o.getTable()),
                                         out[0], out[1]);
        return true;
      })
      .Case([&](nn::MatmulOp o) {
        int64_t k = lastDim(o.getX()), n = lastDim(o.getResult());
        cpu::matmulForward<T>(f(o.getResult()), f(o.getX()), f(o.getW()),
                              o.getBias() ? f(o.getBias()) : nullptr,
                              numel(o.getX()) / k, k, n, o.getTransposeRhs());
        return true;
      })
      .Case([&](nn::LayerNormOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        T *stats = aux(op);
        cpu::layernormForward<T>(f(o.getResult()), stats, stats + rows,
                                 f(o.getX()), f(o.getGamma()), f(o.getBeta()),
                                 rows, dim, o.getEps().convertToDouble());
        return true;
      })
      .Case([&](nn::RMSNormOp o) {
        int64_t dim = lastDim(o.getX()), rows = numel(o.getX()) / dim;
        cpu::rmsnormForward<T>(f(o.getResult()), aux(op), f(o.getX()),
                               f(o.getGamma()), rows, dim,
                               o.getEps().convertToDouble());
        return true;
      })
      .Case([&](nn::AddOp o) {
        cpu::addForward<T>(f(o.getResult()), f(o.getLhs()), f(o.getRhs()),
                           numel(o.getLhs()), numel(o.getRhs()));
        return true;
      })
      .Case([&](nn::MulOp o) {
        cpu::mulForward<T>(f(o.getResult()), f(o.getLhs()), f(o.getRhs()),
                           numel(o.getLhs()), numel(o.getRhs()));
        return true;
      })
      .Case([&](nn::GeluOp o) {
        cpu::geluForward<T>(f(o.getResult()), f(o.getInput()),
                            numel(o.getInput()));
        return true;
      })
      .Case([&](nn::SiluOp o) {
        cpu::siluForward<T>(f(o.getResult()), f(o.getInput()),
                            numel(o.getInput()));
        return true;
      })
      .Case([&](nn::SoftmaxOp o) {
        int64_t dim = lastDim(o.getInput());
        cpu::softmaxForward<T>(f(o.getResult()), f(o.getInput()),
                               numel(o.getInput()) / dim, dim);
        return true;
      })
      .Case([&](nn::SliceOp o) {
        auto in = shapeOf(o.getInput());
        int64_t axis = static_cast<int64_t>(o.getAxis()), outer = 1, inner = 1;
        for (int64_t d = 0; d < axis; ++d)
          outer *= in[d];
        for (int64_t d = axis + 1; d < static_cast<int64_t>(in.size()); ++d)
          inner *= in[d];
        cpu::sliceForward<T>(f(o.getResult()), f(o.getInput()), outer, in[axis],
                             inner, o.getOffset(), o.getSize());
        return true;
      })
      .Case([&](nn::ReshapeOp o) {
        cpu::reshapeForward<T>(f(o.getResult()), f(o.getInput()),
                               numel(o.getInput()));
        return true;
      })
      .Case([&](nn::TransposeOp o) {
        auto in = shapeOf(o.getInput());
        cpu::transposeForward<T>(f(o.getResult()), f(o.getInput()), in.data(),
                                 o.getPerm().data(),
                                 static_cast<int>(in.size()));
        return true;
      })
      .Case([&](nn::RopeOp o) {
        auto in = shapeOf(o.getInput());
        int64_t heads = static_cast<int64_t>(o.getHeads());
        cpu::ropeForward<T>(f(o.getResult()), f(o.getInput()), in[0], in[1],
                            heads, in[2] / heads,
                            o.getTheta().convertToDouble());
        return true;
      })
      .Case([&](nn::AttentionOp o) {
        cpu::AttentionShape s;
        auto q = shapeOf(o.getQ()), k = shapeOf(o.getK());
        s.batch = q[0];
        s.seqQ = q[1];
        s.seqKV = k[1];
        s.heads = static_cast<int64_t>(o.getHeads());
        s.kvHeads = static_cast<int64_t>(o.getKvHeads());
        s.headDim = q[2] / s.heads;
        s.causal = o.getCausal();
        s.scale = o.getScale().convertToDouble();
        cpu::attentionForward<T>(f(o.getResult()), aux(op), f(o.getQ()),
                                 f(o.getK()), f(o.getV()), s);
        return true;
      })
      .Case([&](nn::CrossEntropyOp o) {
        int64_t vocab = lastDim(o.getLogits());
        return check(cpu::crossEntropyForward<T>(
            f(o.getResult()), nullptr, f(o.getLogits()), ids(o.getTargets()),
            numel(o.getLogits()) / vocab, vocab));
      })
      .Default([&](Operation *) { return executeGrad(op, error); });
}

template class pipec::reference::Executor<float>;
template class pipec::reference::Executor<double>;
