//===- EmitOps.cpp - one kernel.call of a chunk as a C++ call -------------===//
//
// Prints a call of `pipert::cpu::call::NAME<float, INTS...>(pointers, ints,
// reals)`: the function the reference executor runs for the same call
// (compiler/reference/KernelTable.cpp), with every shape as a template
// argument, through a wrapper of kernels.cpp so that each instantiation
// compiles once per plan. Which kernel runs an op was decided by
// --nn-lower-to-kernels; this file knows no op.
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitOps.h"

#include "compiler/analysis/KernelArity.h"

#include "dialects/kernel/KernelOps.h"
#include "dialects/nn/NNOps.h"
#include "pipert/Fnv.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>

using namespace mlir;
using namespace pipec;

std::string pipec::emit::doubleLiteral(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", x);
  return buf;
}

std::string pipec::emit::quoted(StringRef text) {
  std::string q = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      q += '\\';
    q += c;
  }
  return q + "\"";
}

LogicalResult pipec::emit::readCallArgs(Operation *op, const OpPointers &ptr,
                                        StringRef target, CallArgs &out) {
  llvm::raw_string_ostream locOs(out.loc);
  locOs << op->getLoc();
  out.call = dyn_cast<kernel::CallOp>(op);
  if (!out.call)
    return op->emitError("'")
           << op->getName() << "' is not a kernel call (run "
           << "--nn-lower-to-kernels=target=" << target << ")";
  out.arity = kernelArity(target, out.call.getKernel());
  if (!out.arity)
    return op->emitError("kernel '")
           << out.call.getKernel() << "' is not in the " << target
           << " library";
  for (Value r : out.call.getResults())
    out.args.push_back(ptr.value(r));
  for (unsigned i = 0; i < out.call.getState().size(); ++i) {
    kernel::StateRef ref = out.call.getStateRef(i);
    std::string p = ptr.state(ref);
    if (p.empty())
      return op->emitError("this code holds no storage for '")
             << ref.str() << "'";
    out.args.push_back(p);
  }
  for (Value v : out.call.getInputs())
    out.args.push_back(ptr.value(v));
  for (const std::string &a : out.args)
    if (a.empty())
      return op->emitError("a value of '")
             << out.call.getOrigin() << "' has no place in this code";
  out.where = quoted(out.loc + ": '" + out.call.getOrigin().str() + "'");
  return success();
}

std::string pipec::emit::kernelInstanceName(kernel::CallOp call,
                                            const std::string &key) {
  std::string shapeName;
  for (int64_t i : call.getInts())
    shapeName += (shapeName.empty() ? "" : "x") + std::to_string(i);
  char hash[16];
  std::snprintf(hash, sizeof hash, "%08llx",
                (unsigned long long)(pipert::fnv1a(key.data(), key.size()) &
                                     0xffffffffu));
  std::string name = "pipec_k_" + call.getKernel().str() +
                     (shapeName.empty() ? "" : "_" + shapeName) + "_" + hash;
  if (name.size() > 120)
    name = "pipec_k_" + call.getKernel().str() + "_" + hash;
  return name;
}

LogicalResult pipec::emit::emitOpCall(Operation *op, const OpPointers &ptr,
                                      std::string &out,
                                      KernelInstances &instances,
                                      std::set<std::string> &used) {
  if (isa<nn::ParamOp>(op))
    return success();
  CallArgs ca;
  if (failed(readCallArgs(op, ptr, "cpu", ca)))
    return failure();
  kernel::CallOp call = ca.call;
  const KernelArity *arity = ca.arity;
  const std::vector<std::string> &args = ca.args;
  const std::string &loc = ca.loc;
  const std::string &where = ca.where;

  // A variadic kernel (the optimizer's sums) takes its first pointer, then
  // the others as an array: called directly, with the array on the stack.
  if (arity->ptrs < 0) {
    std::string element = "const float *";
    if (!call.getInputs().empty() &&
        cast<RankedTensorType>(call.getInputs()[0].getType())
            .getElementType()
            .isF64())
      element = "const double *";
    llvm::raw_string_ostream os(out);
    os << "  // " << call.getOrigin() << " " << loc << "\n  {\n"
       << "    " << element << "rest[] = {";
    for (size_t i = 1; i < args.size(); ++i)
      os << (i > 1 ? ", " : "") << args[i];
    if (args.size() == 1)
      os << "nullptr";
    os << "};\n    st = pipert::cpu::call::" << call.getKernel() << "<float>("
       << args[0] << ", rest, " << args.size() - 1;
    for (int64_t i : call.getInts())
      os << ", " << i;
    for (double r : call.getReals())
      os << ", " << doubleLiteral(r);
    os << ");\n    if (!st.ok())\n      return pipert::cpu::failureAt(" << where
       << ", st);\n  }\n";
    // Called directly (its operand count varies), so not timed.
    instances.untimedCalls = true;
    return success();
  }

  // The instantiation: kernel, static integers, reals. Its wrapper is
  // named by them (a hash keeps long shape lists and reals short), so a
  // chunk's text depends on its own calls only.
  std::string statics, runtimeArgs;
  for (int64_t i : call.getInts()) {
    statics += ", " + std::to_string(i);
    runtimeArgs += ", " + std::to_string(i);
  }
  for (double r : call.getReals())
    runtimeArgs += ", " + doubleLiteral(r);
  std::string instance = "pipert::cpu::call::" + call.getKernel().str() +
                         "<float" + statics + ">";
  std::string name = kernelInstanceName(call, instance + runtimeArgs);
  // Counted once per instantiation (the state's sizes are looked up).
  if (auto [cost, fresh] = instances.costs.try_emplace(name); fresh)
    cost->second = kernelCallCost(call);
  std::string params;
  for (size_t i = 0; i < args.size(); ++i)
    params += (i ? ", void *p" : "void *p") + std::to_string(i);
  if (!instances.definitions.count(name)) {
    // false with *st set when the kernel refuses its data.
    std::string def = "bool " + name + "(pipert::cpu::Status *st, " +
                      params + ") {\n" + "  *st = " + instance + "(";
    for (size_t i = 0; i < args.size(); ++i)
      def += (i ? ", P{p" : "P{p") + std::to_string(i) + "}";
    def += runtimeArgs + ");\n  return st->ok();\n}\n";
    instances.definitions[name] = def;
    std::string decl = "bool " + name + "(pipert::cpu::Status *";
    for (size_t i = 0; i < args.size(); ++i)
      decl += ", void *";
    instances.declarations[name] = decl + ");";
  }
  used.insert(name);
  instances.calls.push_back(name);

  llvm::raw_string_ostream os(out);
  os << "  // " << call.getOrigin() << " " << loc << ": " << instance
     << "\n"
     << "  if (!" << name << "(&st";
  for (const std::string &a : args)
    os << ", " << a;
  os << "))\n"
     << "    return pipert::cpu::failureAt("
     << where << ", st);\n";
  return success();
}

std::string pipec::emit::kernelCostTable(
    const KernelInstances &instances, const std::vector<std::string> &order) {
  std::string out = "// Each one's floor, FLOPs then bytes, in the same order "
                    "(pipec-plan --profile).\n"
                    "extern const double pipecKernelCosts[] = {\n";
  for (const std::string &name : order) {
    auto it = instances.costs.find(name);
    KernelCost c = it == instances.costs.end() ? KernelCost() : it->second;
    out += "    " + doubleLiteral(c.flops) + ", " + doubleLiteral(c.bytes) +
           ",\n";
  }
  return out + "    0};\n";
}

std::string pipec::emit::emitKernelSource(const KernelInstances &instances) {
  std::string out =
      "// Every kernel instantiation of the plan, compiled once: the chunks "
      "call\n// these wrappers (generated by pipec)\n"
      "#include \"kernels/cpu/CallArgs.h\"\n"
      "#include \"kernels/cpu/Calls.h\"\n"
      "#include \"pipert/KernelClock.h\"\n\n"
      "using P = pipert::cpu::call::AnyPtr;\n\n";
  // Each wrapper times itself when its rank thread asks
  // (pipec-run --trace-kernels); its id is its place in name order.
  std::string names;
  int id = 0;
  for (const auto &[name, def] : instances.definitions) {
    const size_t body = def.find("{\n");
    out += def.substr(0, body + 2) + "  pipert::KernelScope clock(" +
           std::to_string(id++) + ");\n" + def.substr(body + 2) + "\n";
    names += "    \"" + name + "\",\n";
  }
  out += "// The wrappers' names in the order of their clock ids.\n"
         "extern const char *const pipecKernelNames[] = {\n" +
         names + "    nullptr};\n";
  out += kernelCostTable(instances, [&] {
    std::vector<std::string> order;
    for (const auto &entry : instances.definitions)
      order.push_back(entry.first);
    return order;
  }());
  return out;
}

void pipec::emit::emitPerturbation(ArrayRef<Value> values,
                                   const OpPointers &ptr, bool cuda,
                                   std::string &out) {
  for (Value v : values) {
    auto type = cast<RankedTensorType>(v.getType());
    if (cuda) {
      // On the rank's stream after the op's launch; the factor survives
      // bf16's rounding (Calls.h's kPerturbFactor).
      bool bf16 = type.getElementType().isBF16();
      if (!bf16 && !type.getElementType().isF32())
        continue;
      out += "  // --debug-perturb-vjp: times 1 + 2^-6 on the cuda target\n";
      out += "  if (pipert::cpu::Status s = pipert::cuda::call::debug_perturb("
             "C, P{" +
             ptr.value(v) + "}, " + std::to_string(type.getNumElements()) +
             (bf16 ? ", true" : ", false") + ");\n      !s.ok())\n    return s;\n";
      continue;
    }
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
