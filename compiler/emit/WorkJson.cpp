//===- WorkJson.cpp - work.json: each chunk's work by kernel class ---------===//
//
// The plan folder's work.json (docs/SIMULATION.md, "Clusters"): per chunk
// its rank, the bytes of its gradient accumulators, its layers and the FLOPs, bytes
// and kernel count of its F, B and W by kernel class (the partitioner's
// `pipe.work`: GEMMs, attention, the rest), per rank the bytes of the
// parameters its optimizer updates. It
// is device-independent, so pipec-sim --cluster prices one plan on any
// GPU of a cluster description.
//
//===----------------------------------------------------------------------===//

#include "compiler/analysis/ModelCosts.h"
#include "compiler/emit/EmitPlan.h"

#include "dialects/pipe/PipeOps.h"

#include <nlohmann/json.hpp>

#include <set>

using namespace mlir;

namespace pipec::emit {

std::string workJson(ModuleOp module, int32_t ranks) {
  using json = nlohmann::json;
  static const char *const kPhases[3] = {"F", "B", "W"};
  json chunks = json::array();
  std::vector<std::set<std::string>> params(static_cast<size_t>(ranks));
  for (pipe::ChunkOp chunk : module.getOps<pipe::ChunkOp>()) {
    json c = {{"chunk", chunks.size()}, {"rank", chunk.getRank()}};
    // Its gradient accumulators (fp32, as the masters): what a
    // data-parallel all-reduce of the chunk carries.
    int64_t gradients = 0;
    std::set<std::string> own;
    if (auto names = chunk->getAttrOfType<ArrayAttr>("pipe.params"))
      for (Attribute a : names)
        if (own.insert(cast<StringAttr>(a).str()).second) {
          int64_t m = 0, copy = 0;
          if (parameterStorage(module, cast<StringAttr>(a).getValue(), m,
                               copy))
            gradients += m;
        }
    c["gradient_bytes"] = gradients;
    // Its repeat-block layers (a tensor-parallel replay's all-reduces are
    // per layer): 0 outside repeat blocks.
    auto layers = chunk->getAttrOfType<DenseI64ArrayAttr>("pipe.layers");
    c["layers"] = layers && layers.size() == 2 ? layers[1] - layers[0] + 1 : 0;
    auto work = chunk->getAttrOfType<DenseF64ArrayAttr>("pipe.work");
    for (int phase = 0; phase < 3; ++phase) {
      // Seven figures a phase (Partition.cpp); none without @train_step.
      auto at = [&](int i) {
        return work && work.size() == 21 ? work[phase * 7 + i] : 0.0;
      };
      c[kPhases[phase]] = {
          {"gemm_flops", at(0)},      {"gemm_bytes", at(1)},
          {"attention_flops", at(2)}, {"attention_bytes", at(3)},
          {"other_flops", at(4)},     {"other_bytes", at(5)},
          {"kernels", int64_t(at(6))}};
    }
    chunks.push_back(std::move(c));
    if (auto names = chunk->getAttrOfType<ArrayAttr>("pipe.params"))
      if (int64_t(chunk.getRank()) < ranks)
        for (Attribute a : names)
          params[chunk.getRank()].insert(cast<StringAttr>(a).str());
  }
  // A rank's optimizer reads and writes its parameters' masters, gradients
  // and moments and writes the working copies: their sizes, once per name.
  json optimizer = json::array();
  for (int32_t r = 0; r < ranks; ++r) {
    int64_t master = 0, copy = 0;
    for (const std::string &name : params[size_t(r)]) {
      int64_t m = 0, c = 0;
      if (parameterStorage(module, name, m, c)) {
        master += m;
        copy += c;
      }
    }
    optimizer.push_back(
        {{"rank", r}, {"param_bytes", master}, {"copy_bytes", copy}});
  }
  // The residual stream of one micro-batch (what tensor parallelism
  // all-reduces, pipec-sim --tp; the partition's pipe.activation_bytes).
  int64_t activation = 0;
  if (auto a = module->getAttrOfType<IntegerAttr>("pipe.activation_bytes"))
    activation = a.getInt();
  json out = {{"format", 1},
              {"activation_bytes", activation},
              {"chunks", chunks},
              {"optimizer", optimizer}};
  return out.dump(1) + "\n";
}

} // namespace pipec::emit
