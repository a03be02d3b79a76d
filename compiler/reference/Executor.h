//===- Executor.h - runs an nn function on the CPU kernels ------*- C++ -*-===//
//
// The reference executor interprets one `func.func` after
// --nn-lower-to-kernels call by call in program order, in float or double
// (T) whatever the IR's element type: each `kernel.call` runs the cpu kernel
// it names (KernelTable.h) with its shapes at run time. Every SSA value gets
// its own buffer, sized from its static type and allocated once when the
// function is planned, so running it again allocates nothing. Parameters,
// their accumulators and moments are read in place from a ParameterStore.
// It knows no nn op: which kernel runs an op was decided by the lowering.
//
// bf16 storage emulation (docs/NUMERICS.md): a value typed bf16 (after
// --nn-storage{type=bf16}) lives in a T buffer that holds bf16 values only:
// every call's bf16 results are rounded to nearest even right after the
// call, and a bf16 nn.param read is the fp32 master rounded into its own
// buffer at the start of every run. These are exactly the storage points
// of the cuda target's kernels, whose math between them is fp32 as here.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_REFERENCE_EXECUTOR_H
#define PIPEC_COMPILER_REFERENCE_EXECUTOR_H

#include "compiler/reference/Parameters.h"
#include "compiler/analysis/PerturbVjp.h"
#include "kernels/cpu/Status.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pipec::reference {

/// Debug switches of a run.
struct ExecutorOptions {
  /// The nn op (e.g. "layernorm") whose B gradients are multiplied by
  /// 1 + 1e-3, to prove that a comparison with another implementation can
  /// fail; empty for none.
  std::string perturbVjpOp;
};

/// One planned function, ready to run any number of times.
template <typename T> class Executor {
public:
  /// Plans `fn`: checks that every op is one it can run and allocates a
  /// buffer per value. Returns null after writing an error to `errs`.
  static std::unique_ptr<Executor> create(mlir::func::FuncOp fn,
                                          ParameterStore<T> &params,
                                          const ExecutorOptions &options,
                                          llvm::raw_ostream &errs);

  /// The buffer of integer argument `i` (token ids, targets).
  int32_t *intArgument(unsigned i);
  /// The buffer of an f32 argument `i` (T).
  T *floatArgument(unsigned i);
  /// The buffer of an f64 argument `i` (a host scalar such as loss_scale).
  double *doubleArgument(unsigned i);
  /// The buffer of an i64 argument `i` (the step).
  int64_t *int64Argument(unsigned i);
  /// The index of the argument named `name` (its `nn.name`), or -1.
  int argumentIndex(llvm::StringRef name) const;

  /// Runs the function once. On a kernel failure (an id outside the
  /// vocabulary) returns false with `error` naming the op and its location.
  bool run(std::string &error);

  /// Element 0 of result `i` after run(), as a double whatever its type.
  double scalarResult(unsigned i) const;
  /// The index of the result named `name` (its `nn.name`), or -1.
  int resultIndex(llvm::StringRef name) const;

  /// The T buffer of an f32 value of the function after run() (null for
  /// other types).
  const T *valueBuffer(mlir::Value v) const { return slots.lookup(v).f; }

private:
  /// The storage of one value, n elements: tensors of f32 run in T; f64
  /// and i64 tensors are host scalars (loss scale, norms, step) and stay
  /// double and int64 in either precision; i32 tensors are token ids.
  struct Slot {
    T *f = nullptr;
    double *d = nullptr;
    int32_t *i = nullptr;
    int64_t *l = nullptr;
    int64_t n = 0;
    /// A bf16 value: f holds bf16-representable numbers only.
    bool bf16 = false;
  };

  Executor(mlir::func::FuncOp fn, ParameterStore<T> &params,
           const ExecutorOptions &options)
      : fn(fn), params(params), options(options) {}

  bool plan(llvm::raw_ostream &errs);
  /// Resolves the pointers of one kernel.call; false after an error.
  bool planCall(mlir::Operation *op, llvm::raw_ostream &errs);
  /// Marks the calls of --debug-perturb-vjp; fails when the option names an
  /// op the model does not have.
  bool planPerturbation(llvm::raw_ostream &errs);

  /// One planned kernel.call.
  struct Call {
    mlir::Operation *op = nullptr;
    pipert::cpu::Status (*launch)(void *const *, size_t, const int64_t *,
                                  const double *) = nullptr;
    std::vector<void *> ptrs;
    /// The call's integers and reals (attribute storage, context-owned).
    llvm::ArrayRef<int64_t> ints;
    llvm::ArrayRef<double> reals;
  };

  mlir::func::FuncOp fn;
  ParameterStore<T> &params;
  ExecutorOptions options;
  llvm::DenseMap<mlir::Value, Slot> slots;
  std::vector<Call> calls;
  std::vector<std::vector<T>> floatStorage;
  std::vector<std::vector<int32_t>> intStorage;
  std::vector<std::vector<double>> doubleStorage;
  std::vector<std::vector<int64_t>> int64Storage;
  std::vector<mlir::Value> results;
  /// bf16 reads of fp32 masters: (master, copy) refreshed by every run.
  std::vector<std::pair<const T *, Slot>> paramCopies;
  /// Per call (index of `calls`), its bf16 results, rounded after it runs.
  std::vector<std::vector<Slot>> roundedResults;
  /// Ops whose float results are multiplied by 1 + 1e-3 after they run.
  analysis::PerturbedValues perturbed;
};

} // namespace pipec::reference

#endif // PIPEC_COMPILER_REFERENCE_EXECUTOR_H
