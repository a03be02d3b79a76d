//===- Replicate.cpp - data-parallel replicas of a pipeline's streams ----===//

#include "compiler/schedule/Replicate.h"

#include <cstdint>

namespace pipec::schedule {

namespace {
/// The pipeline's stage streams with the data-parallel all-reduces added
/// (allreduce(dataParallelGroup(stage), bucket = chunk) after each chunk's
/// last W and the posts that follow it, as `replicate` describes).
std::vector<std::vector<Instr>>
withDataParallelReduction(const Schedule &pipeline, int32_t replicas,
                          const std::vector<uint8_t> &reduced, bool zero) {
  const int32_t S = pipeline.placement.ranks, G = pipeline.groupCount(),
                C = pipeline.placement.chunks;
  std::vector<std::vector<Instr>> out(static_cast<size_t>(S));
  for (int32_t s = 0; s < S; ++s) {
    const std::vector<Instr> &in = pipeline.streams[size_t(s)];
    // The position of each chunk's last W: its gradients are final there.
    std::vector<size_t> lastW(size_t(pipeline.placement.chunks), SIZE_MAX);
    for (size_t i = 0; i < in.size(); ++i)
      if (in[i].op == Op::BwdW)
        lastW[size_t(in[i].chunk)] = i;
    const int32_t dp = dataParallelGroup(s, replicas, G);
    const Op reduce = zero ? Op::ReduceScatter : Op::AllReduce;
    bool holdsGradients = false;
    // A chunk whose last W ran: its reduction waits for the posts right
    // after that W (the send of a B's gradient upstream is often among
    // them), so that no rank's next backward waits for this collective.
    int32_t pending = -1;
    auto flush = [&] {
      if (pending >= 0)
        out[size_t(s)].push_back({reduce, reduce, -1, dp, pending, -1});
      pending = -1;
    };
    out[size_t(s)].reserve(in.size() + lastW.size() + 2);
    for (size_t i = 0; i < in.size(); ++i) {
      if (!isPost(in[i].op))
        flush();
      out[size_t(s)].push_back(in[i]);
      // ZeRO-1: the norm's partial sums, each made by one replica, are
      // added over the replicas right after the pipeline's own group 0.
      if (zero && in[i].op == Op::AllReduce && in[i].chunk == 0)
        out[size_t(s)].push_back(
            {Op::AllReduce, Op::AllReduce, -1, dp, zeroNormBucket(C), -1});
      if (zero && in[i].op == Op::OptStep && holdsGradients)
        out[size_t(s)].push_back(
            {Op::AllGather, Op::AllGather, -1, dp, zeroWeightsBucket(C), -1});
      if (in[i].op != Op::BwdW || lastW[size_t(in[i].chunk)] != i ||
          (!reduced.empty() && !reduced[size_t(in[i].chunk)]))
        continue;
      holdsGradients = true;
      pending = in[i].chunk;
    }
    flush();
  }
  return out;
}
} // namespace

std::vector<std::vector<int32_t>>
replicateGroups(const std::vector<std::vector<int32_t>> &pipeline, int32_t S,
                int32_t replicas) {
  std::vector<std::vector<int32_t>> out;
  for (int32_t r = 0; r < replicas; ++r)
    for (const std::vector<int32_t> &group : pipeline) {
      std::vector<int32_t> members = group;
      for (int32_t &q : members)
        q += r * S;
      out.push_back(std::move(members));
    }
  for (int32_t s = 0; s < S; ++s) {
    std::vector<int32_t> members;
    for (int32_t r = 0; r < replicas; ++r)
      members.push_back(r * S + s);
    out.push_back(std::move(members));
  }
  return out;
}

Schedule replicate(const Schedule &pipeline, int32_t replicas,
                   const std::vector<uint8_t> &reduced, bool zero) {
  if (replicas <= 1)
    return pipeline;
  const int32_t S = pipeline.placement.ranks, G = pipeline.groupCount();
  Schedule out = pipeline;
  out.replicas = replicas;
  out.streams.assign(size_t(S) * size_t(replicas), {});
  std::vector<std::vector<int32_t>> groups;
  for (int32_t g = 0; g < G; ++g)
    groups.push_back(pipeline.groupMembers(g));
  out.groups = replicateGroups(groups, S, replicas);
  std::vector<std::vector<Instr>> stages =
      withDataParallelReduction(pipeline, replicas, reduced, zero);
  const int32_t dpFirst = dataParallelGroup(0, replicas, G);
  for (int32_t r = 0; r < replicas; ++r)
    for (int32_t s = 0; s < S; ++s) {
      std::vector<Instr> &stream = out.streams[size_t(r * S + s)];
      stream = stages[size_t(s)];
      for (Instr &in : stream) {
        if (in.peer >= 0)
          in.peer += r * S;
        if (pipert::isCollectiveOp(in.op) && in.chunk < dpFirst)
          in.chunk = replicaGroup(in.chunk, r, G);
      }
    }
  return out;
}

Schedule replicaZeroAlone(const Schedule &pipeline,
                          const std::vector<uint8_t> &reduced, bool zero) {
  const int32_t S = pipeline.placement.ranks, G = pipeline.groupCount();
  Schedule out = pipeline;
  out.replicas = 1;
  out.groups.clear();
  for (int32_t g = 0; g < G; ++g)
    out.groups.push_back(pipeline.groupMembers(g));
  // dataParallelGroup(s, 1, G) = G + s: the stage's collectives, alone.
  for (int32_t s = 0; s < S; ++s)
    out.groups.push_back({s});
  out.streams = withDataParallelReduction(pipeline, 1, reduced, zero);
  return out;
}

} // namespace pipec::schedule
