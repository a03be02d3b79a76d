//===- Parameters.cpp - a model's parameters for the reference executor ---===//

#include "compiler/reference/Parameters.h"

#include "dialects/nn/NNOps.h"
#include "pipert/Init.h"
#include "pipert/LogicalShape.h"
#include "pipert/Safetensors.h"

#include "llvm/Support/Format.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <unistd.h>

using namespace pipec::reference;

/// "[2, 3]" for messages.
static std::string shapeText(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

template <typename T>
bool ParameterStore<T>::declare(mlir::ModuleOp module,
                                llvm::raw_ostream &errs) {
  params.clear();
  index.clear();
  // The executor holds every parameter with its AdamW moments and at
  // least one gradient accumulator in this process: a model that cannot
  // fit is refused here, before an allocation would fail (the compiler's
  // operator new aborts, LLVM's handler) or the kernel's OOM killer ends
  // the run.
  int64_t elements = 0;
  for (auto p : module.getOps<nn::ParameterOp>())
    if (p.getTensorType().hasStaticShape())
      elements += p.getTensorType().getNumElements(); // <= 2^40 each
  const long pages = sysconf(_SC_PHYS_PAGES), pageBytes = sysconf(_SC_PAGESIZE);
  const double needed = 4.0 * double(elements) * double(sizeof(T));
  if (pages > 0 && pageBytes > 0 &&
      needed > double(pages) * double(pageBytes)) {
    errs << "reference executor: the model's " << elements
         << " parameters need at least " << llvm::format("%.4g", needed)
         << " bytes (values, AdamW moments and gradients in "
         << (sizeof(T) == 8 ? "f64" : "f32") << ") but this machine has "
         << llvm::format("%.4g", double(pages) * double(pageBytes))
         << " bytes of memory; the reference executor holds the whole model "
            "in one process (pipec compile splits it into stages)\n";
    return false;
  }
  for (auto p : module.getOps<nn::ParameterOp>()) {
    mlir::RankedTensorType type = p.getTensorType();
    if (!type.hasStaticShape()) {
      p.emitError("reference executor: parameter shape must be static");
      return false;
    }
    Entry e;
    e.name = p.getSymName().str();
    e.shape.assign(type.getShape().begin(), type.getShape().end());
    if (std::optional<llvm::ArrayRef<int64_t>> logical = p.getLogicalShape())
      e.logicalShape.assign(logical->begin(), logical->end());
    else
      e.logicalShape = e.shape;
    e.init = p.getInit().str();
    e.std = p.getStd().convertToDouble();
    e.values.assign(type.getNumElements(), T(0));
    e.m.assign(e.values.size(), T(0));
    e.v.assign(e.values.size(), T(0));
    index[e.name] = static_cast<int>(params.size());
    params.push_back(std::move(e));
  }
  if (params.empty()) {
    errs << "reference executor: the model declares no parameters\n";
    return false;
  }
  return true;
}

template <typename T>
bool ParameterStore<T>::initialise(uint64_t seed, std::string &error) {
  for (Entry &e : params) {
    std::vector<T> logical(size_t(pipert::elementsOf(e.logicalShape)));
    if (!pipert::initParameter(logical.data(), 0,
                               static_cast<int64_t>(logical.size()), seed,
                               e.name, e.init, e.std)) {
      error = "parameter '" + e.name + "': unknown init '" + e.init + "'";
      return false;
    }
    pipert::scatterLogical(logical.data(), e.logicalShape, e.values.data(),
                           e.shape);
  }
  return true;
}

template <typename T>
std::vector<T> ParameterStore<T>::logicalOf(const Entry &e, const T *padded) {
  std::vector<T> logical(size_t(pipert::elementsOf(e.logicalShape)));
  pipert::gatherLogical(padded, e.shape, logical.data(), e.logicalShape);
  return logical;
}

template <typename T>
bool ParameterStore<T>::load(const std::string &path, std::string &error) {
  pipert::SafetensorsFile file;
  if (!pipert::readCheckpoint(path, file, error))
    return false;
  std::set<std::string> names;
  for (const pipert::Tensor &t : file.tensors) {
    names.insert(t.name);
    if (find(t.name) < 0) {
      error =
          path + ": tensor '" + t.name + "' is not a parameter of the model";
      return false;
    }
  }
  for (Entry &e : params) {
    const pipert::Tensor *t = file.find(e.name);
    if (!t) {
      error = path + ": parameter '" + e.name + "' is missing";
      return false;
    }
    if (t->shape != e.logicalShape) {
      error = path + ": '" + e.name + "' has shape " + shapeText(t->shape) +
              ", the model declares " + shapeText(e.logicalShape);
      return false;
    }
    std::vector<T> values;
    if (!pipert::readFloatTensor(*t, values, error)) {
      error = path + ": " + error;
      return false;
    }
    if (!pipert::checkFinite(path, e.name, values, error))
      return false;
    pipert::scatterLogical(values.data(), e.logicalShape, e.values.data(),
                           e.shape);
  }
  return true;
}

template <typename T>
bool ParameterStore<T>::save(const std::string &path,
                             std::string &error) const {
  std::vector<pipert::Tensor> tensors;
  for (const Entry &e : params)
    tensors.push_back(pipert::makeFloatTensor<T>(
        e.name, e.logicalShape, logicalOf(e, e.values.data()).data()));
  return pipert::writeSafetensors(path, tensors, {}, error);
}

template <typename T> T *ParameterStore<T>::accumulator(int idx, int64_t use) {
  Entry &e = params[idx];
  if (static_cast<int64_t>(e.uses.size()) <= use)
    e.uses.resize(use + 1);
  if (e.uses[use].empty())
    e.uses[use].assign(e.values.size(), T(0));
  return e.uses[use].data();
}

template <typename T> void ParameterStore<T>::zeroAccumulators() {
  for (Entry &e : params)
    for (std::vector<T> &acc : e.uses)
      std::fill(acc.begin(), acc.end(), T(0));
}

template <typename T> int ParameterStore<T>::find(llvm::StringRef name) const {
  auto it = index.find(name);
  return it == index.end() ? -1 : it->second;
}

template class pipec::reference::ParameterStore<float>;
template class pipec::reference::ParameterStore<double>;
