//===- Executor.cpp - runs kernel calls on the CPU kernels ----------------===//

#include "compiler/reference/Executor.h"
#include "compiler/reference/KernelTable.h"
#include "compiler/analysis/PerturbVjp.h"
#include "compiler/reference/ValueInfo.h"
#include "kernels/cuda/Bf16.h"

#include "dialects/kernel/KernelOps.h"
#include "dialects/nn/NNOps.h"

#include "mlir/IR/BuiltinTypes.h"

#include <cstring>

using namespace mlir;
using namespace pipec;
using namespace pipec::reference;
namespace cpu = pipert::cpu;

/// x rounded to the nearest bf16, ties to even (through float for double:
/// bf16 storage is emulated in float runs; see ReferenceTrainCmd).
template <typename T> static void roundToBf16(T *x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    x[i] = T(pipert::bf16::toFloat(pipert::bf16::fromFloat(float(x[i]))));
}

template <typename T>
std::unique_ptr<Executor<T>>
Executor<T>::create(func::FuncOp fn, ParameterStore<T> &params,
                    const ExecutorOptions &options, llvm::raw_ostream &errs) {
  std::unique_ptr<Executor<T>> e(new Executor<T>(fn, params, options));
  if (!e->plan(errs))
    return nullptr;
  return e;
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
    } else if (element.isF32() || element.isBF16()) {
      floatStorage.emplace_back(s.n, T(0));
      s.f = floatStorage.back().data();
      s.bf16 = element.isBF16();
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
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      results.assign(ret.getOperands().begin(), ret.getOperands().end());
      continue;
    }
    if (auto p = dyn_cast<nn::ParamOp>(op)) {
      int idx = params.find(p.getName());
      if (idx < 0) {
        errs << where(&op) << ": error: unknown parameter '" << p.getName()
             << "'\n";
        return false;
      }
      auto &entry = params.entries()[idx];
      if (p.getType().getElementType().isBF16()) {
        // The bf16 working copy of the fp32 master.
        if (!allocate(p.getResult()))
          return false;
        paramCopies.emplace_back(entry.values.data(),
                                 slots.lookup(p.getResult()));
        continue;
      }
      Slot s;
      s.f = entry.values.data();
      s.n = static_cast<int64_t>(entry.values.size());
      slots[p.getResult()] = s;
      continue;
    }
    // Checked while planning, so a run never meets an op it cannot execute.
    if (!isa<kernel::CallOp>(op)) {
      errs << where(&op)
           << ": error: the reference executor runs kernel calls only "
              "(run --nn-lower-to-kernels)\n";
      return false;
    }
    for (Value r : op.getResults())
      if (!allocate(r))
        return false;
    if (!planCall(&op, errs))
      return false;
  }
  return planPerturbation(errs);
}

template <typename T>
bool Executor<T>::planPerturbation(llvm::raw_ostream &errs) {
  if (options.perturbVjpOp.empty())
    return true;
  std::string error;
  if (!analysis::perturbedVjpValues(fn, options.perturbVjpOp, perturbed,
                                    error)) {
    errs << "pipec reference-train: error: " << error << "\n";
    return false;
  }
  return true;
}

template <typename T>
bool Executor<T>::planCall(Operation *op, llvm::raw_ostream &errs) {
  auto call = cast<kernel::CallOp>(op);
  // The storage of a value as a kernel pointer, whatever its element type.
  auto pointerOf = [](const Slot &s) -> void * {
    if (s.f)
      return s.f;
    if (s.d)
      return s.d;
    if (s.i)
      return s.i;
    return s.l;
  };
  Call c;
  c.op = op;
  c.ints = call.getInts();
  c.reals = call.getReals();
  c.launch = findKernel<T>(call.getKernel());
  if (!c.launch) {
    errs << where(op) << ": error: no cpu kernel named '" << call.getKernel()
         << "'\n";
    return false;
  }
  for (Value r : call.getResults())
    c.ptrs.push_back(pointerOf(slots.lookup(r)));
  for (unsigned i = 0; i < call.getState().size(); ++i) {
    kernel::StateRef ref = call.getStateRef(i);
    int idx = params.find(ref.param);
    if (idx < 0) {
      errs << where(op) << ": error: unknown parameter '" << ref.param
           << "'\n";
      return false;
    }
    auto &e = params.entries()[size_t(idx)];
    switch (ref.kind) {
    case kernel::StateRef::Accumulator:
      c.ptrs.push_back(params.accumulator(idx, ref.use));
      break;
    case kernel::StateRef::Value:
      c.ptrs.push_back(e.values.data());
      break;
    case kernel::StateRef::FirstMoment:
      c.ptrs.push_back(e.m.data());
      break;
    case kernel::StateRef::SecondMoment:
      c.ptrs.push_back(e.v.data());
      break;
    case kernel::StateRef::Copy:
      // Working copies are the cuda target's; the reference rounds its bf16
      // parameter reads itself (nn.param of bf16).
      errs << where(op) << ": error: the reference executor keeps no "
           << "working copies ('" << ref.str() << "'): lower for the cpu\n";
      return false;
    }
  }
  for (Value v : call.getInputs())
    c.ptrs.push_back(pointerOf(slots.lookup(v)));
  calls.push_back(std::move(c));
  roundedResults.emplace_back();
  for (Value r : call.getResults())
    if (Slot s = slots.lookup(r); s.bf16)
      roundedResults.back().push_back(s);
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
  for (auto &[master, copy] : paramCopies) {
    std::copy(master, master + copy.n, copy.f);
    roundToBf16(copy.f, copy.n);
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    Call &c = calls[i];
    cpu::Status st =
        c.launch(c.ptrs.data(), c.ptrs.size(), c.ints.data(), c.reals.data());
    if (!st.ok()) {
      error = where(c.op) + ": " + st.message();
      return false;
    }
    for (const Slot &s : roundedResults[i])
      roundToBf16(s.f, s.n);
    auto it = perturbed.find(c.op);
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

template class pipec::reference::Executor<float>;
template class pipec::reference::Executor<double>;
