//===- ManifestWriter.cpp - manifest.json of a laid-out plan --------------===//

#include "compiler/emit/EmitLayout.h"
#include "compiler/schedule/Replicate.h"

#include "mlir/IR/BuiltinAttributes.h"

using namespace mlir;
using namespace pipec;
using namespace pipec::emit;

void pipec::emit::fillManifest(PlanLayout &L) {
  pipert::Manifest &m = L.manifest;
  m.model = L.modelName;
  m.dtype = pipert::DType::F32;
  m.microbatches = L.microbatches;
  m.tokensPerMicrobatch = L.batch * L.seq;
  m.scheduleKind = L.schedule.getKind().str();
  m.stages = L.stages;
  m.chunksPerRank = L.chunksPerRank;
  m.modeledBubble = L.schedule.getBubbleAttr().getValueAsDouble();
  for (const ChunkLayout &ch : L.chunks)
    m.chunkRank.push_back(ch.rank);
  std::vector<int32_t> all;
  for (int32_t r = 0; r < L.stages; ++r)
    all.push_back(r);
  m.groups.push_back(all);
  for (const TiedGroup &g : L.tied)
    m.groups.push_back(g.ranks);
  // Data parallelism (Replicate.h): every replica's copy of the groups,
  // prepared as replica 0's, then each stage's group over its replicas,
  // whose operand is a chunk's accumulators as they are.
  m.replicas = L.replicas;
  m.zero = L.zeroReplicas > 1 ? 1 : 0;
  m.ranks = L.stages * L.replicas;
  if (L.replicas > 1) {
    const int32_t G = int32_t(m.groups.size());
    m.groups = schedule::replicateGroups(m.groups, L.stages, L.replicas);
    for (size_t g = 0; g < m.groups.size(); ++g)
      m.groupOperand.push_back(int32_t(g) < L.replicas * G ? int32_t(g) % G
                                                           : -1);
  }
  for (int32_t q = 0; q < m.ranks; ++q) {
    const RankLayout &rk = L.ranks[size_t(q % L.stages)];
    m.rankInfo.push_back({"rank" + std::to_string(q) + ".pstream",
                          rk.arenaBytes, rk.arenaBytes});
  }
  double weightDecay = 0;
  for (size_t p = 0; p < L.params.size(); ++p) {
    const ParamLayout &pl = L.params[p];
    weightDecay = std::max(weightDecay, pl.weightDecay);
    for (int32_t r : pl.ranks) {
      const RankLayout &rk = L.ranks[size_t(r)];
      int64_t off = rk.paramOffset.at(int(p));
      pipert::ParamInfo info;
      info.name = pl.name;
      info.shape = pl.shape;
      info.logicalShape = pl.logicalShape;
      info.rank = r;
      info.offset = rk.valuesBase + off;
      info.gradOffset = rk.gradsBase + off;
      info.adamMOffset = rk.mBase + rk.momentOffset[0].at(int(p));
      info.adamVOffset = rk.vBase + rk.momentOffset[0].at(int(p));
      if (m.zero) {
        info.zeroKey = L.zeroKey[p];
        for (const std::map<int, int64_t> &at : rk.momentOffset)
          info.momentShift.push_back(at.at(int(p)) -
                                     rk.momentOffset[0].at(int(p)));
      }
      info.bytes = pl.bytes;
      info.init = pl.init;
      info.std = pl.std;
      info.decay = pl.weightDecay != 0.0;
      m.params.push_back(info);
    }
  }
  for (size_t c = 0; c < L.chunks.size(); ++c) {
    const ChunkLayout &ch = L.chunks[c];
    const RankLayout &rk = L.ranks[size_t(ch.rank)];
    for (int32_t mb = 0; mb < L.microbatches; ++mb)
      for (int32_t k = 0; k < kRegions; ++k)
        if (ch.regionBytes[k])
          m.buffers.push_back(
              {"c" + std::to_string(c) + ".mb" + std::to_string(mb) + "." +
                   pipert::regionName(k),
               ch.rank, rk.slotBase.at({int32_t(c), k, ch.slotOf[k][size_t(mb)]}),
               ch.regionBytes[k]});
    if (ch.lossValue) {
      m.loss.rank = ch.rank;
      m.loss.offset = rk.lossOffset;
      m.loss.dtype = pipert::DType::F64;
      m.loss.count = L.microbatches;
    }
  }
  for (int32_t r = 0; r < L.stages; ++r)
    if (L.ranks[size_t(r)].scratchBytes)
      m.buffers.push_back({"r" + std::to_string(r) + ".scratch", r,
                           L.ranks[size_t(r)].scratchBase,
                           L.ranks[size_t(r)].scratchBytes});
  m.gradNorm.rank = 0;
  m.gradNorm.offset = L.ranks[0].gradNormOffset;
  m.gradNorm.dtype = pipert::DType::F64;
  m.gradNorm.count = 1;
  pipert::TrainInfo &t = m.train;
  t.lr = L.lr.lr;
  t.minLr = L.lr.minLr;
  t.warmupSteps = L.lr.warmupSteps;
  t.decaySteps = L.lr.decaySteps;
  t.cosine = L.lr.cosine;
  if (!L.params.empty()) {
    t.beta1 = L.params[0].beta1;
    t.beta2 = L.params[0].beta2;
    t.eps = L.params[0].eps;
  }
  t.weightDecay = weightDecay;
  t.gradClip = L.gradClip;
  t.seed = L.seed;
}
