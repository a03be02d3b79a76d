//===- Replicate.cpp - data-parallel replicas of a pipeline's streams ----===//

#include "compiler/schedule/Replicate.h"

#include <cstdint>

namespace pipec::schedule {

namespace {
/// The pipeline's stage streams with the data-parallel all-reduces added
/// (allreduce(dataParallelGroup(stage), bucket = chunk) after each chunk's
/// last W, as `replicate` describes).
std::vector<std::vector<Instr>>
withDataParallelReduction(const Schedule &pipeline, int32_t replicas,
                          const std::vector<uint8_t> &reduced) {
  const int32_t S = pipeline.placement.ranks, G = pipeline.groupCount();
  std::vector<std::vector<Instr>> out(static_cast<size_t>(S));
  for (int32_t s = 0; s < S; ++s) {
    const std::vector<Instr> &in = pipeline.streams[size_t(s)];
    // The position of each chunk's last W: its gradients are final there.
    std::vector<size_t> lastW(size_t(pipeline.placement.chunks), SIZE_MAX);
    for (size_t i = 0; i < in.size(); ++i)
      if (in[i].op == Op::BwdW)
        lastW[size_t(in[i].chunk)] = i;
    out[size_t(s)].reserve(in.size() + lastW.size());
    for (size_t i = 0; i < in.size(); ++i) {
      out[size_t(s)].push_back(in[i]);
      if (in[i].op != Op::BwdW || lastW[size_t(in[i].chunk)] != i ||
          (!reduced.empty() && !reduced[size_t(in[i].chunk)]))
        continue;
      out[size_t(s)].push_back({Op::AllReduce, Op::AllReduce, -1,
                                dataParallelGroup(s, replicas, G),
                                in[i].chunk, -1});
    }
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
                   const std::vector<uint8_t> &reduced) {
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
      withDataParallelReduction(pipeline, replicas, reduced);
  const int32_t dpFirst = dataParallelGroup(0, replicas, G);
  for (int32_t r = 0; r < replicas; ++r)
    for (int32_t s = 0; s < S; ++s) {
      std::vector<Instr> &stream = out.streams[size_t(r * S + s)];
      stream = stages[size_t(s)];
      for (Instr &in : stream) {
        if (in.peer >= 0)
          in.peer += r * S;
        if (in.op == Op::AllReduce && in.chunk < dpFirst)
          in.chunk = replicaGroup(in.chunk, r, G);
      }
    }
  return out;
}

} // namespace pipec::schedule
