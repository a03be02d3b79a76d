//===- Parameters.h - a model's parameters for the reference executor -*- C++
//-*-===//
//
// One host buffer per `nn.parameter`, in declaration order (the order of the
// global norm), filled by the seeded initialiser of docs/TRAINING.md or from
// a safetensors file holding exactly the model's names and shapes.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_REFERENCE_PARAMETERS_H
#define PIPEC_COMPILER_REFERENCE_PARAMETERS_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipec::reference {

/// The parameters of a model, held in T (float or double).
template <typename T> class ParameterStore {
public:
  /// One parameter: its declaration and its values.
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    /// The model's shape (nn.parameter's logical_shape; `shape` where the
    /// parameter is not padded): what initialisation and files see.
    std::vector<int64_t> logicalShape;
    std::string init;
    double std = 0;
    std::vector<T> values;
    /// One gradient accumulator per use in @forward (docs/AUTODIFF.md),
    /// created by the executor for the uses its W ops name.
    std::vector<std::vector<T>> uses;
    /// AdamW's moments, zero at the start.
    std::vector<T> m, v;
  };

  /// Reads every `nn.parameter` of `module` and allocates its buffer
  /// (zeroed). Fails, writing to `errs`, on a non-static shape.
  bool declare(mlir::ModuleOp module, llvm::raw_ostream &errs);

  /// Fills every parameter from (seed, name, logical element index); the
  /// padding of a padded parameter is zero.
  bool initialise(uint64_t seed, std::string &error);

  /// Loads every parameter from a safetensors file (F32 or F64, converted
  /// to T); the file must hold exactly the model's names and shapes.
  bool load(const std::string &path, std::string &error);

  /// Saves every parameter in declaration order (F32 for float, F64 for
  /// double), each in its logical shape.
  bool save(const std::string &path, std::string &error) const;

  /// A tensor of parameter `e`'s padded shape (its values, a gradient) as
  /// the dense logical tensor files hold.
  static std::vector<T> logicalOf(const Entry &e, const T *padded);

  std::vector<Entry> &entries() { return params; }
  const std::vector<Entry> &entries() const { return params; }

  /// The accumulator of use `use` of parameter `idx`, created (zeroed) on
  /// first request.
  T *accumulator(int idx, int64_t use);

  /// Zeroes every accumulator (before micro-batch 0 of a step).
  void zeroAccumulators();

  /// The index of `name`, or -1.
  int find(llvm::StringRef name) const;

private:
  std::vector<Entry> params;
  llvm::StringMap<int> index;
};

} // namespace pipec::reference

#endif // PIPEC_COMPILER_REFERENCE_PARAMETERS_H
