//===- EmitOps.cpp - one kernel.call of a chunk as a C++ call -------------===//
//
// Prints `pipert::cpu::call::NAME<float, INTS...>(pointers, ints, reals)`:
// the function the reference executor runs for the same call
// (compiler/reference/KernelTable.cpp), with every shape as a template
// argument. Which kernel runs an op was decided by --nn-lower-to-kernels;
// this file knows no op.
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitOps.h"

#include "dialects/kernel/KernelOps.h"
#include "dialects/nn/NNOps.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>

using namespace mlir;
using namespace pipec;

std::string pipec::emit::doubleLiteral(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", x);
  return buf;
}

/// A C++ string literal of `text`.
static std::string quoted(StringRef text) {
  std::string q = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      q += '\\';
    q += c;
  }
  return q + "\"";
}

/// Pointer counts of the cpu kernels (KernelList.def); -1: variadic.
static int kernelPointers(StringRef name) {
  static const llvm::StringMap<int> table = [] {
    llvm::StringMap<int> t;
#define PIPERT_CPU_KERNEL(NAME, PTRS, INTS, REALS) t[#NAME] = PTRS;
#include "runtime/kernels/cpu/KernelList.def"
    return t;
  }();
  auto it = table.find(name);
  return it == table.end() ? 0 : it->second;
}

bool pipec::emit::emitOpCall(Operation *op, const OpPointers &ptr,
                             std::string &out, std::string &error) {
  if (isa<nn::ParamOp>(op))
    return true;
  std::string loc;
  llvm::raw_string_ostream locOs(loc);
  locOs << op->getLoc();
  auto call = dyn_cast<kernel::CallOp>(op);
  if (!call) {
    error = loc + ": '" + op->getName().getStringRef().str() +
            "' is not a kernel call (run --nn-lower-to-kernels)";
    return false;
  }
  if (kernelPointers(call.getKernel()) <= 0) {
    error = loc + ": kernel '" + call.getKernel().str() +
            "' is not a cpu kernel a chunk can call";
    return false;
  }
  std::vector<std::string> args;
  for (Value r : call.getResults())
    args.push_back(ptr.value(r));
  for (unsigned i = 0; i < call.getState().size(); ++i) {
    kernel::StateRef ref = call.getStateRef(i);
    if (ref.kind != kernel::StateRef::Accumulator) {
      error = loc + ": a chunk reads no parameter state but accumulators, "
                    "not '" + ref.str() + "'";
      return false;
    }
    args.push_back(ptr.accumulator(ref.param, ref.use));
  }
  for (Value v : call.getInputs())
    args.push_back(ptr.value(v));
  std::string statics;
  for (int64_t i : call.getInts()) {
    statics += ", " + std::to_string(i);
    args.push_back(std::to_string(i));
  }
  for (double r : call.getReals())
    args.push_back(doubleLiteral(r));

  llvm::raw_string_ostream os(out);
  os << "  // " << call.getOrigin() << " " << loc << "\n"
     << "  if (pipert::cpu::Status st = pipert::cpu::call::" << call.getKernel()
     << "<float" << statics << ">(";
  for (size_t i = 0; i < args.size(); ++i)
    os << (i ? ", " : "") << args[i];
  os << "); !st.ok())\n"
     << "    return pipert::cpu::Status::failure(std::string("
     << quoted(loc + ": '" + call.getOrigin().str() + "'")
     << ") + \": \" + st.message());\n";
  return true;
}

void pipec::emit::emitPerturbation(ArrayRef<Value> values,
                                   const OpPointers &ptr, std::string &out) {
  for (Value v : values) {
    auto type = cast<RankedTensorType>(v.getType());
    if (!type.getElementType().isF32())
      continue;
    // The reference's `x *= T(1 + 1e-3)`.
    char factor[64];
    std::snprintf(factor, sizeof factor, "%af", double(float(1 + 1e-3)));
    out += "  // --debug-perturb-vjp: times 1 + 1e-3\n";
    out += "  for (int64_t i = 0; i < " +
           std::to_string(type.getNumElements()) + "; ++i)\n";
    out += "    " + ptr.value(v) + "[i] *= " + factor + ";\n";
  }
}
