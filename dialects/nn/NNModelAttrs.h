//===- NNModelAttrs.h - the model's config and train attributes -*- C++ -*-===//
//
// Part of the nn dialect: the importer writes these module attributes and
// op locations; the passes, the reference executor and the tools read them
// from the IR (the passes know no JSON, docs/DESIGN.md). The model's
// `config` and `train` sections:
//
//   nn.config = {batch = 4 : i64, seq = 64 : i64, ...}    every entry an i64
//   nn.train  = {seed = 1337 : i64, lr = 1.0e-03 : f64,
//                warmup_steps = 10 : i64, decay = "cosine",
//                decay_steps = 1000 : i64, min_lr = ... : f64,
//                beta1, beta2, eps, weight_decay, grad_clip : f64}
//
// and the JSON path of every op in a name location, `graph[3].ops[2] (i=5)`.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_DIALECTS_NN_NNMODELATTRS_H
#define PIPEC_DIALECTS_NN_NNMODELATTRS_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>

namespace pipec {

/// The module attribute names.
constexpr llvm::StringLiteral kConfigAttrName = "nn.config";
constexpr llvm::StringLiteral kTrainAttrName = "nn.train";

/// The train section of a model (docs/MODEL_FORMAT.md).
struct TrainConfig {
  int64_t seed = 0;
  double lr = 0;
  int64_t warmupSteps = 0;
  std::string decay; ///< "cosine" or "constant"
  int64_t decaySteps = 0;
  double minLr = 0;
  double beta1 = 0, beta2 = 0, eps = 0, weightDecay = 0, gradClip = 0;
};

/// Reads `nn.train`; nullopt if it is absent or malformed.
std::optional<TrainConfig> getTrainConfig(mlir::ModuleOp module);

/// Reads one `nn.config` entry; nullopt if absent.
std::optional<int64_t> getConfigValue(mlir::ModuleOp module,
                                      llvm::StringRef name);

/// Where an op came from in the model file, parsed back from its location.
struct JsonOrigin {
  std::string path;     ///< `graph[3].ops[2]`
  std::string topLevel; ///< the top-level graph entry: `graph[3]`
  /// The iteration of the outermost repeat block, if the op is in one.
  std::optional<int64_t> iteration;
};

/// The origin of an op built by the importer; nullopt for other locations.
std::optional<JsonOrigin> getJsonOrigin(mlir::Location loc);

} // namespace pipec

#endif // PIPEC_DIALECTS_NN_NNMODELATTRS_H
