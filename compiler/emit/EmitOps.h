//===- EmitOps.h - one kernel.call of a chunk as a C++ call -----*- C++ -*-===//
//
// The cpu emitter prints every kernel.call of a chunk as a call of the
// function the reference executor runs for it (runtime/kernels/cpu/Calls.h)
// with the same arguments and the shapes as template arguments, so a
// compiled plan trains to the same bits. Each distinct instantiation is
// compiled once per plan, in kernels.cpp, behind a wrapper the chunks call. Pointers are C++ expressions the
// caller supplies (arena base plus an offset).
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_EMIT_EMITOPS_H
#define PIPEC_COMPILER_EMIT_EMITOPS_H

#include "compiler/analysis/KernelArity.h"
#include "compiler/analysis/KernelCosts.h"
#include "compiler/analysis/PerturbVjp.h"
#include "dialects/kernel/KernelOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace pipec::emit {

/// How the op printer names storage.
struct OpPointers {
  /// A pointer expression to the storage of `v` (float*, int32_t* or
  /// double* after the cast the caller writes).
  std::function<std::string(mlir::Value v)> value;
  /// A pointer expression to the parameter storage a call names (an
  /// accumulator, the values, a moment), or "" where the caller holds none.
  std::function<std::string(const kernel::StateRef &ref)> state;
};

/// One kernel.call as both printers read it: its location, its kernel's
/// arity in the target's library, and the pointer expressions of its
/// results, state and operands, in the call's order.
struct CallArgs {
  kernel::CallOp call;
  std::string loc;
  const KernelArity *arity = nullptr;
  std::vector<std::string> args;
  /// `loc: 'origin'` as a C++ string literal, for failure messages.
  std::string where;
};

/// Reads `op` (not nn.param) for `target` ("cpu" or "cuda"). Fails with an
/// error at the op for anything but a kernel.call of that library whose
/// storage `ptr` holds.
mlir::LogicalResult readCallArgs(mlir::Operation *op, const OpPointers &ptr,
                                 llvm::StringRef target, CallArgs &out);

/// A C++ string literal of `text`.
std::string quoted(llvm::StringRef text);

/// The distinct kernel instantiations of a plan (kernel, static integers,
/// reals): each is a wrapper function of kernels.cpp, compiled once for
/// every chunk that calls it.
struct KernelInstances {
  /// Wrapper name -> its definition.
  std::map<std::string, std::string> definitions;
  /// Wrapper name -> its declaration (what a chunk that calls it needs).
  std::map<std::string, std::string> declarations;
  /// Every call printed, in order (the emitter cuts it per chunk function
  /// for kernel_calls.json).
  std::vector<std::string> calls;
  /// Where each rank's optimizer calls start in `calls`, and where its
  /// step's (after its all-reduce preparation's) start (emitOptimizer).
  std::vector<size_t> optimizerRankStarts, optimizerStepStarts;
  /// Whether some call of the plan bypasses the wrappers (ZeRO-1's sharded
  /// AdamW, variadic sums): kernel_calls.json then lists only part of the
  /// work (pipec-sim says so).
  bool untimedCalls = false;
  /// Each instantiation's floor (compiler/analysis/KernelCosts.h), which
  /// pipec-plan --profile sets beside its measured time.
  std::map<std::string, KernelCost> costs;
  /// The cuda target's instantiations in the order they first appear (the
  /// plan's chunks, then its optimizer): their KernelClock ids.
  std::vector<std::string> cudaOrder;
  std::map<std::string, int32_t> cudaIds;
};

/// The wrapper-style name of a kernel instantiation: `pipec_k_KERNEL`, its
/// integers joined by `x`, and a hash of `key` (what tells instantiations
/// apart: the kernel, its integers and reals); the same in every plan.
std::string kernelInstanceName(kernel::CallOp call, const std::string &key);

/// Appends the call of `op` (a kernel.call of @train_step; nn.param prints
/// nothing) to `out`, after one comment line naming the op it implements
/// and its location: a call of the wrapper of its kernel instantiation,
/// which is added to `instances` and its name to `used`. A kernel that
/// checks its data returns a Status, which the chunk returns with the op's
/// location. Fails with an error at an op it cannot print.
mlir::LogicalResult emitOpCall(mlir::Operation *op, const OpPointers &ptr,
                               std::string &out, KernelInstances &instances,
                               std::set<std::string> &used);

/// The cuda form (EmitCudaOps.cpp): appends the call of `op` as
/// `pipert::cuda::call::NAME(C, P{...}, ..., ints, reals)` on the rank's
/// context C (runtime/kernels/cuda/Calls.h), its Status returned with the
/// op's location on failure. Pointers are arena expressions the caller
/// supplies; variadic kernels get a host array of them. Each call is
/// timed by a `pipert::cuda::call::KernelClock` (CUDA events, pipec-plan
/// --profile) whose id is its instantiation's place in
/// `instances.cudaOrder`.
mlir::LogicalResult emitCudaOpCall(mlir::Operation *op, const OpPointers &ptr,
                                   std::string &out,
                                   KernelInstances &instances);

/// ZeRO-1 (cuda): one replica's part of a parameter in generated code:
/// its first element and element count (expressions, a pipert::ShardRange's
/// fields) and where its moments are.
struct CudaShard {
  std::string first, count, m, v;
  int64_t elements = 0; ///< the whole parameter's
};

/// The adamw calls of one rank's optimizer step (cuda) as one call of
/// pipert::cuda::call::adamw_multi over a table of their tensors, timed as
/// one instantiation; a launch per call where they read different
/// learning rates, clip scales or steps. With `shards` (ZeRO-1, one per
/// call) each tensor is the replica's part alone.
mlir::LogicalResult emitCudaAdamWBatch(llvm::ArrayRef<kernel::CallOp> calls,
                                       const OpPointers &ptr, int rank,
                                       std::string &out,
                                       KernelInstances &instances,
                                       llvm::ArrayRef<CudaShard> shards = {});

/// A batch of `count` calls of `kernel` printed as one (cuda), its clock
/// id: the instantiation pipec_k_KERNEL_COUNT_HASH (the hash of `key`:
/// the rank and the pointers), with the floor `cost`; recorded as one call.
int32_t cudaBatchInstance(const std::string &kernel, const std::string &key,
                          int64_t count, KernelCost cost,
                          KernelInstances &instances);
/// Closes a batch's table and calls `call` (pipert::cuda::call::...) under
/// the batch's clock `id`, returning its failure named by `what`.
void emitCudaBatchCall(llvm::raw_ostream &os, int32_t id,
                       const std::string &call, const std::string &what);

/// The sum_uses calls of one rank's gradients function (cuda) as one call
/// of pipert::cuda::call::sum_uses_multi, timed as one instantiation.
mlir::LogicalResult emitCudaSumUsesBatch(llvm::ArrayRef<kernel::CallOp> calls,
                                         const OpPointers &ptr, int rank,
                                         std::string &out,
                                         KernelInstances &instances);

/// The sum_squares calls of one rank's gradients function (cuda) as one
/// call of pipert::cuda::call::sum_squares_multi, timed as one
/// instantiation.
mlir::LogicalResult emitCudaSquaresBatch(llvm::ArrayRef<kernel::CallOp> calls,
                                         const OpPointers &ptr, int rank,
                                         std::string &out,
                                         KernelInstances &instances);

/// kernels.cpp: the definitions of `instances`, each timed by a
/// pipert::KernelScope whose id is its index in name order, and that
/// order's name table `pipecKernelNames` (null-terminated: PlanCode.h)
/// and their floors `pipecKernelCosts` (FLOPs, bytes per instantiation).
std::string emitKernelSource(const KernelInstances &instances);

/// `pipecKernelCosts`: the floors of the instantiations named by `order`,
/// FLOPs then bytes each (PlanCode.h).
std::string kernelCostTable(const KernelInstances &instances,
                            const std::vector<std::string> &order);

/// The values `--debug-perturb-vjp=OP` multiplies by 1 + 1e-3 right after
/// the op that computes them: the reference executor's choice
/// (compiler/analysis/PerturbVjp.h).
using PerturbedValues = analysis::PerturbedValues;

/// Appends `v[i] *= float(1 + 1e-3)` over every element of each f32 value
/// (cpu: the perturbed reference's bits); on the cuda target a launch that
/// multiplies each bf16 or f32 value by 1 + 2^-6 (a negative control: the
/// reference's factor would round away in bf16).
void emitPerturbation(llvm::ArrayRef<mlir::Value> values,
                      const OpPointers &ptr, bool cuda, std::string &out);

/// A double as a C++ literal that reads back to the same bits.
std::string doubleLiteral(double x);

} // namespace pipec::emit

#endif // PIPEC_COMPILER_EMIT_EMITOPS_H
