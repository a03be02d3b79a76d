//===- EmitCudaOps.cpp - one kernel.call of a cuda chunk as a launch ------===//
//
// Prints a call of `pipert::cuda::call::NAME(C, pointers, ints, reals)`
// (runtime/kernels/cuda/Calls.h), the call layer that launches the cuda
// library's kernels on the rank's stream: shapes are run-time arguments of
// the launchers, so there is nothing to instantiate per plan; each call is
// timed under pipec-plan --profile by a KernelClock whose id names its
// kernel, shape and reals (kernel_calls.json, as on the cpu). Which kernel
// runs an op was decided by --nn-lower-to-kernels{target=cuda}; this file
// knows no op.
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitOps.h"

#include "compiler/analysis/KernelArity.h"

#include "dialects/kernel/KernelOps.h"
#include "dialects/nn/NNOps.h"

#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace pipec;

LogicalResult pipec::emit::emitCudaOpCall(Operation *op, const OpPointers &ptr,
                                          std::string &out,
                                          KernelInstances &instances) {
  if (isa<nn::ParamOp>(op))
    return success();
  CallArgs ca;
  if (failed(readCallArgs(op, ptr, "cuda", ca)))
    return failure();
  kernel::CallOp call = ca.call;
  const std::vector<std::string> &args = ca.args;

  llvm::raw_string_ostream os(out);
  os << "  // " << call.getOrigin() << " " << ca.loc << "\n";
  std::string callee = "pipert::cuda::call::" + call.getKernel().str();
  std::string rest;
  for (int64_t i : call.getInts())
    rest += ", " + std::to_string(i);
  for (double r : call.getReals())
    rest += ", " + doubleLiteral(r);
  // Its instantiation: kernel, integers, reals, and a variadic kernel's
  // operand count; its clock id is where it first appears in the plan.
  std::string name = kernelInstanceName(
      call, callee + rest + "/" + std::to_string(args.size()));
  auto [it, fresh] =
      instances.cudaIds.emplace(name, int32_t(instances.cudaOrder.size()));
  if (fresh) {
    instances.cudaOrder.push_back(name);
    instances.costs.emplace(name, kernelCallCost(call));
  }
  instances.calls.push_back(name);
  const std::string clock = "pipert::cuda::call::KernelClock clock(C, " +
                            std::to_string(it->second) + ");\n";
  if (ca.arity->ptrs < 0) {
    // Variadic (the optimizer's sums): the first pointer, then a host
    // array of the other device pointers and their count.
    std::string element =
        call.getKernel() == "grad_norm" ? "const double *" : "const float *";
    os << "  {\n    " << clock << "    " << element << "rest[] = {";
    for (size_t i = 1; i < args.size(); ++i)
      os << (i > 1 ? ", " : "") << "(" << element << ")(" << args[i] << ")";
    if (args.size() == 1)
      os << "nullptr";
    os << "};\n    if (pipert::cpu::Status s = " << callee << "(C, P{"
       << args[0] << "}, rest, " << args.size() - 1 << rest
       << ");\n        !s.ok())\n      return pipert::cpu::failureAt("
       << ca.where << ", s);\n  }\n";
    return success();
  }
  os << "  {\n    " << clock << "    if (pipert::cpu::Status s = " << callee
     << "(C";
  for (const std::string &a : args)
    os << ", P{" << a << "}";
  os << rest << ");\n        !s.ok())\n      return pipert::cpu::failureAt("
     << ca.where << ", s);\n  }\n";
  return success();
}
