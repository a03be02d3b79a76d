//===- FsdpTp.cpp - JAX's strategy at scale, as a documented model --------===//

#include "compiler/cluster/FsdpTp.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace pipec::cluster {

FsdpTpResult fsdpTpStep(const Cluster &c, const ModelWork &m, int64_t gpus,
                        int32_t tp, double sequences) {
  FsdpTpResult r;
  r.tp = tp;
  if (tp < 1 || tp > c.domainGpus || c.domainGpus % tp != 0 || gpus % tp) {
    r.why = "tensor-parallel degree " + std::to_string(tp) +
            " does not divide the domain and the GPUs";
    return r;
  }
  r.fsdp = gpus / tp;
  // Every group the same whole number of sequences, as pipec's replicas
  // get the same micro-batches: the step uses what divides evenly.
  r.sequencesPerGroup = std::floor(sequences / double(r.fsdp));
  r.sequences = r.sequencesPerGroup * double(r.fsdp);
  if (r.sequencesPerGroup < 1) {
    r.why = "fewer sequences (" + std::to_string(int64_t(sequences)) +
            ") than tensor-parallel groups (" + std::to_string(r.fsdp) + ")";
    return r;
  }
  const double n = r.sequencesPerGroup, t = tp, L = m.layers;
  // Compute: the group's sequences, every op split t ways (launches not).
  r.compute = workTime(c.gpu, m.perSequence.splitBy(n / t));
  // Memory: the state sharded over every GPU, the activations over t.
  const double params = m.paramBytes / 4; // parameters (fp32 masters)
  const double state = 16 * params / double(gpus);
  const double layerActs = double(m.seq) * double(m.hidden) * n / t;
  const double gathered = 2 * 2 * (m.copyBytes / L) / t; // two layers, bf16
  double memory = state + gathered + 34 * layerActs * L;
  if (memory > double(c.gpu.memoryBytes)) {
    memory = state + gathered + 2 * layerActs * L + 34 * layerActs;
    r.recompute = true;
    r.compute *= 4.0 / 3.0;
  }
  r.memoryBytes = memory;
  if (memory > double(c.gpu.memoryBytes)) {
    r.why = "needs " + std::to_string(int64_t(memory)) +
            " bytes a GPU even with full recomputation";
    return r;
  }
  // Tensor parallelism: four activation all-reduces a layer (two in the
  // forward, two in the backward), exposed.
  const double activation = n * double(m.seq) * double(m.hidden) * 2;
  r.tensorParallel =
      4 * L * collectiveTime(c, CollectiveKind::AllReduce, tp, tp, activation);
  // FSDP: the t-way shards of the parameters gathered twice (bf16), the
  // gradients reduce-scattered (fp32), over f GPUs; t of a domain's GPUs
  // belong to other groups, so domain / t of them share one.
  const int64_t perDomain = std::max<int64_t>(1, c.domainGpus / tp);
  r.fsdpComm = 2 * collectiveTime(c, CollectiveKind::AllGather, r.fsdp,
                                  perDomain, m.copyBytes / t) +
               collectiveTime(c, CollectiveKind::ReduceScatter, r.fsdp,
                              perDomain, m.paramBytes / t);
  r.optimizer = optimizerTime(c.gpu, m.paramBytes / double(gpus),
                              m.copyBytes / double(gpus));
  r.stepTime = std::max(r.compute + r.tensorParallel, r.fsdpComm) +
               r.fsdpComm / L + r.optimizer;
  r.mfu = m.flopsPerSequence * r.sequences /
          (r.stepTime * double(gpus) * c.gpu.tensorFlops);
  r.fits = true;
  return r;
}

std::vector<int32_t> tensorParallelDegrees(const Cluster &c) {
  std::vector<int32_t> degrees;
  for (int32_t t = 1; t <= c.domainGpus; t *= 2)
    if (c.domainGpus % t == 0)
      degrees.push_back(t);
  if (degrees.back() != c.domainGpus)
    degrees.push_back(c.domainGpus);
  return degrees;
}

FsdpTpResult bestFsdpTp(const Cluster &c, const ModelWork &m, int64_t gpus,
                        double sequences) {
  FsdpTpResult best;
  best.why = "no tensor-parallel degree fits";
  for (int32_t t : tensorParallelDegrees(c)) {
    FsdpTpResult r = fsdpTpStep(c, m, gpus, t, sequences);
    // The most sequences a second: degrees can differ in how many
    // sequences divide evenly among their groups.
    if (r.fits && (!best.fits || r.sequences / r.stepTime >
                                     best.sequences / best.stepTime))
      best = r;
    else if (!best.fits && !r.fits)
      best.why = r.why;
  }
  return best;
}

} // namespace pipec::cluster
