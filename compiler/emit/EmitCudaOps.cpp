//===- EmitCudaOps.cpp - one kernel.call of a cuda chunk as a launch ------===//
//
// Prints a call of `pipert::cuda::call::NAME(C, pointers, ints, reals)`
// (runtime/kernels/cuda/Calls.h), the call layer that launches the cuda
// library's kernels on the rank's stream: shapes are run-time arguments of
// the launchers, so there is nothing to instantiate per plan; each call is
// timed under pipec-plan --profile by a KernelClock whose id names its
// kernel, shape and reals (kernel_calls.json, as on the cpu). Which kernel
// runs an op was decided by --nn-lower-to-kernels{target=cuda}; this file
// knows no op. A rank's AdamW calls are printed together, as one
// multi-tensor launch (emitCudaAdamWBatch).
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitOps.h"

#include "compiler/analysis/KernelArity.h"

#include "dialects/kernel/KernelOps.h"
#include "dialects/nn/NNOps.h"

#include "pipert/Fnv.h"

#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cstdio>

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

/// Every call's arguments, as emitCudaOpCall reads them.
static LogicalResult readCalls(ArrayRef<kernel::CallOp> calls,
                               const emit::OpPointers &ptr,
                               std::vector<emit::CallArgs> &read) {
  read.assign(calls.size(), {});
  for (size_t i = 0; i < calls.size(); ++i)
    if (failed(emit::readCallArgs(calls[i], ptr, "cuda", read[i])))
      return failure();
  return success();
}

int32_t pipec::emit::cudaBatchInstance(const std::string &kernel,
                                       const std::string &key, int64_t count,
                                       KernelCost cost,
                                       KernelInstances &instances) {
  char hash[16];
  std::snprintf(hash, sizeof hash, "%08llx",
                (unsigned long long)(pipert::fnv1a(key.data(), key.size()) &
                                     0xffffffffu));
  const std::string name =
      "pipec_k_" + kernel + "_" + std::to_string(count) + "_" + hash;
  auto [it, fresh] =
      instances.cudaIds.emplace(name, int32_t(instances.cudaOrder.size()));
  if (fresh) {
    instances.cudaOrder.push_back(name);
    instances.costs.emplace(name, cost);
  }
  instances.calls.push_back(name);
  return it->second;
}

/// The clock id of a batch of `read`'s calls as one instantiation (the
/// hash over the rank and every pointer), its floor the sum of theirs.
static int32_t batchInstance(const std::string &kernel, int rank,
                             const std::vector<emit::CallArgs> &read,
                             emit::KernelInstances &instances) {
  std::string key = kernel + "/" + std::to_string(rank);
  KernelCost cost;
  for (const emit::CallArgs &ca : read) {
    for (const std::string &a : ca.args)
      key += "/" + a;
    KernelCost c = kernelCallCost(ca.call);
    cost.flops += c.flops;
    cost.bytes += c.bytes;
  }
  return emit::cudaBatchInstance(kernel, key, int64_t(read.size()), cost,
                                 instances);
}

void pipec::emit::emitCudaBatchCall(llvm::raw_ostream &os, int32_t id,
                                    const std::string &call,
                                    const std::string &what) {
  os << "    };\n    pipert::cuda::call::KernelClock clock(C, " << id
     << ");\n    if (pipert::cpu::Status s = pipert::cuda::call::" << call
     << ";\n        !s.ok())\n      return pipert::cpu::failureAt("
     << emit::quoted(what) << ", s);\n  }\n";
}

LogicalResult pipec::emit::emitCudaAdamWBatch(ArrayRef<kernel::CallOp> calls,
                                              const OpPointers &ptr, int rank,
                                              std::string &out,
                                              KernelInstances &instances,
                                              ArrayRef<CudaShard> shards) {
  if (calls.empty())
    return success();
  if (!shards.empty() && shards.size() != calls.size())
    return kernel::CallOp(calls.front()).emitError("ZeRO-1: ")
           << shards.size() << " parts for " << calls.size() << " adamw calls";
  // adamw's pointers (KernelList.def): the master, the moments and the
  // working copy (its state), then the gradient, learning rate, clip
  // scale and step (its operands).
  std::vector<CallArgs> read;
  if (failed(readCalls(calls, ptr, read)))
    return failure();
  // One launch needs one learning rate, clip scale and step; the
  // optimizer's lowering makes them so, and anything else keeps a launch
  // per parameter.
  for (const CallArgs &ca : read)
    if (ca.args.size() != 8 ||
        !std::equal(ca.args.begin() + 5, ca.args.end(),
                    read[0].args.begin() + 5)) {
      // ZeRO-1's parts exist only in the table.
      if (!shards.empty())
        return kernel::CallOp(ca.call).emitError(
            "ZeRO-1 on the cuda target updates every parameter in one "
            "multi-tensor AdamW, which needs one learning rate, clip scale "
            "and step for all");
      for (kernel::CallOp call : calls)
        if (failed(emitCudaOpCall(call, ptr, out, instances)))
          return failure();
      return success();
    }
  const int32_t id = batchInstance("adamw_multi", rank, read, instances);

  llvm::raw_string_ostream os(out);
  os << "  // adamw of " << calls.size()
     << " parameters, 16 a launch (pipert::cuda::adamwMulti: the bits of "
        "one launch each)\n  {\n"
     << "    const pipert::cuda::AdamWTensor tensors[] = {\n";
  for (size_t i = 0; i < read.size(); ++i) {
    const CallArgs &ca = read[i];
    kernel::CallOp call = ca.call;
    ArrayRef<int64_t> ints = call.getInts();
    ArrayRef<double> reals = call.getReals();
    if (ints.size() != 2 || reals.size() != 4)
      return call.emitError("adamw: 2 integers and 4 reals expected");
    // As call::adamw passes them: the betas in double (AdamWTensor), eps
    // and the decay in fp32, and no decay unless asked.
    auto f32 = [](double x) { return "float(" + doubleLiteral(x) + ")"; };
    // ZeRO-1: the replica's part of the master, copy and gradient, and its
    // own moments (elementwise: each element's bits are the whole
    // update's).
    const std::string at = shards.empty() ? "" : " + " + shards[i].first;
    const std::string m = shards.empty() ? ca.args[1] : shards[i].m;
    const std::string v = shards.empty() ? ca.args[2] : shards[i].v;
    // A part is of the whole parameter: the call must update all of it.
    if (!shards.empty() && ints[0] != shards[i].elements)
      return call.emitError("ZeRO-1 shards adamw of ")
             << shards[i].elements << " elements (the parameter), not "
             << ints[0];
    const std::string n =
        shards.empty() ? std::to_string(ints[0]) : shards[i].count;
    os << "      // " << call.getOrigin() << " " << ca.loc
       << (shards.empty() ? "" : ": this replica's part (ZeRO-1)") << "\n"
       << "      {(float *)(" << ca.args[0] << ")" << at
       << ", (__nv_bfloat16 *)(" << ca.args[3] << ")" << at
       << ", (const float *)(" << ca.args[4] << ")" << at << ", (float *)("
       << m << "), (float *)(" << v << "), " << n
       << ", " << doubleLiteral(reals[0]) << ", " << doubleLiteral(reals[1])
       << ", " << f32(reals[2]) << ", " << (ints[1] ? f32(reals[3]) : "0.0f")
       << "},\n";
  }
  emitCudaBatchCall(os, id,
                "adamw_multi(C, tensors, " + std::to_string(calls.size()) +
                    ", P{" + read[0].args[5] + "}, P{" + read[0].args[6] +
                    "}, P{" + read[0].args[7] + "})",
                "rank " + std::to_string(rank) + ": adamw of " +
                    std::to_string(calls.size()) + " parameters");
  return success();
}

LogicalResult pipec::emit::emitCudaSquaresBatch(ArrayRef<kernel::CallOp> calls,
                                                const OpPointers &ptr, int rank,
                                                std::string &out,
                                                KernelInstances &instances) {
  if (calls.empty())
    return success();
  // sum_squares's pointers: its result (the norm slot), then the gradient.
  std::vector<CallArgs> read;
  if (failed(readCalls(calls, ptr, read)))
    return failure();
  for (CallArgs &ca : read)
    if (ca.args.size() != 2 || ca.call.getInts().size() != 1)
      return ca.call.emitError("sum_squares: 2 pointers and 1 integer "
                               "expected");
  const int32_t id = batchInstance("sum_squares_multi", rank, read, instances);
  llvm::raw_string_ostream os(out);
  os << "  // sum_squares of " << calls.size()
     << " gradients at once (pipert::cuda::sumSquaresMulti: the bits of "
        "one call each)\n  {\n"
     << "    const pipert::cuda::SquaresTensor tensors[] = {\n";
  for (CallArgs &ca : read)
    os << "      // " << ca.call.getOrigin() << " " << ca.loc << "\n"
       << "      {(const float *)(" << ca.args[1] << "), "
       << ca.call.getInts()[0] << ", (double *)(" << ca.args[0] << ")},\n";
  emitCudaBatchCall(os, id,
                "sum_squares_multi(C, tensors, " +
                    std::to_string(calls.size()) + ")",
                "rank " + std::to_string(rank) + ": sum_squares of " +
                    std::to_string(calls.size()) + " gradients");
  return success();
}

LogicalResult pipec::emit::emitCudaSumUsesBatch(ArrayRef<kernel::CallOp> calls,
                                                const OpPointers &ptr, int rank,
                                                std::string &out,
                                                KernelInstances &instances) {
  if (calls.empty())
    return success();
  // sum_uses's pointers: its result (the gradient), then the accumulators
  // of its uses in use order.
  std::vector<CallArgs> read;
  if (failed(readCalls(calls, ptr, read)))
    return failure();
  for (CallArgs &ca : read)
    if (ca.args.empty() || ca.call.getInts().size() != 1)
      return ca.call.emitError("sum_uses: a result and 1 integer expected");
  const int32_t id = batchInstance("sum_uses_multi", rank, read, instances);
  llvm::raw_string_ostream os(out);
  os << "  // sum_uses of " << calls.size()
     << " gradients at once (pipert::cuda::sumUsesMulti: the bits of one "
        "call each)\n  {\n    const float *const accs[] = {";
  for (const CallArgs &ca : read)
    for (size_t i = 1; i < ca.args.size(); ++i)
      os << "\n      (const float *)(" << ca.args[i] << "),";
  os << "\n      nullptr};\n    const pipert::cuda::SumUsesTensor tensors[] = "
        "{\n";
  size_t offset = 0;
  for (CallArgs &ca : read) {
    const size_t uses = ca.args.size() - 1;
    os << "      // " << ca.call.getOrigin() << " " << ca.loc << "\n"
       << "      {(float *)(" << ca.args[0] << "), accs + " << offset << ", "
       << uses << ", " << ca.call.getInts()[0] << "},\n";
    offset += uses;
  }
  emitCudaBatchCall(os, id,
                "sum_uses_multi(C, tensors, " + std::to_string(calls.size()) +
                    ")",
                "rank " + std::to_string(rank) + ": sum_uses of " +
                    std::to_string(calls.size()) + " gradients");
  return success();
}
