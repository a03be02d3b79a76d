//===- NNModelAttrs.cpp - the model's config and train attributes --------===//

#include "dialects/nn/NNModelAttrs.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Location.h"

using namespace mlir;
using namespace pipec;

std::optional<int64_t> pipec::getConfigValue(ModuleOp module, StringRef name) {
  auto dict = module->getAttrOfType<DictionaryAttr>(kConfigAttrName);
  if (!dict)
    return std::nullopt;
  auto v = dict.getAs<IntegerAttr>(name);
  if (!v)
    return std::nullopt;
  return v.getInt();
}

std::optional<TrainConfig> pipec::getTrainConfig(ModuleOp module) {
  auto dict = module->getAttrOfType<DictionaryAttr>(kTrainAttrName);
  if (!dict)
    return std::nullopt;
  TrainConfig t;
  bool ok = true;
  auto getInt = [&](StringRef k, int64_t &out) {
    auto a = dict.getAs<IntegerAttr>(k);
    ok = ok && a;
    if (a)
      out = a.getInt();
  };
  auto getFloat = [&](StringRef k, double &out) {
    auto a = dict.getAs<FloatAttr>(k);
    ok = ok && a;
    if (a)
      out = a.getValueAsDouble();
  };
  getInt("seed", t.seed);
  getInt("warmup_steps", t.warmupSteps);
  getInt("decay_steps", t.decaySteps);
  getFloat("lr", t.lr);
  getFloat("min_lr", t.minLr);
  getFloat("beta1", t.beta1);
  getFloat("beta2", t.beta2);
  getFloat("eps", t.eps);
  getFloat("weight_decay", t.weightDecay);
  getFloat("grad_clip", t.gradClip);
  auto decay = dict.getAs<StringAttr>("decay");
  if (!ok || !decay)
    return std::nullopt;
  t.decay = decay.str();
  return t;
}

std::optional<JsonOrigin> pipec::getJsonOrigin(Location loc) {
  auto named = dyn_cast<NameLoc>(loc);
  if (!named)
    return std::nullopt;
  // The importer writes `PATH` or `PATH (i=3, j=0)`.
  StringRef name = named.getName().getValue();
  JsonOrigin origin;
  auto [path, rest] = name.split(" (");
  origin.path = path.str();
  origin.topLevel = path.take_until([](char c) { return c == ']'; }).str();
  if (origin.topLevel.size() < path.size())
    origin.topLevel += "]";
  if (!rest.empty()) {
    StringRef first = rest.split(',').first.rtrim(')');
    int64_t it;
    if (!first.split('=').second.getAsInteger(10, it))
      origin.iteration = it;
  }
  return origin;
}
