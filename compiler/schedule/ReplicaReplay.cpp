//===- ReplicaReplay.cpp - D replicas replayed one at a time ---------------===//

#include "compiler/schedule/ReplicaReplay.h"

#include "compiler/schedule/Replicate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace pipec::schedule {

void Stops::add(const MachineResult &r, int64_t first, int64_t count) {
  for (int64_t q = first; q < first + count; ++q) {
    const double t = r.finish[size_t(q)];
    if (r.stopped[size_t(q)]) {
      firstStop = stopped ? std::min(firstStop, t) : t;
      lastStop = stopped ? std::max(lastStop, t) : t;
      ++stopped;
    } else {
      lastFinish = std::max(lastFinish, t);
    }
  }
}

ReplicaReplayResult replayReplicas(const Schedule &two, int64_t replicas,
                                   const Costs &costs,
                                   const std::vector<Straggler> &stragglers,
                                   const std::vector<Failure> &failures) {
  ReplicaReplayResult out;
  const int32_t S = two.placement.ranks;
  if (two.replicas != 2 || replicas < 1) {
    out.verdict = Verdict::Malformed;
    out.message = "replayReplicas takes the two-replica streams of replicate()";
    return out;
  }
  const int32_t G = (int32_t(two.groups.size()) - S) / 2;
  // Replica 0 alone: its streams, its groups, and each stage's
  // data-parallel group with itself as the only member (the others are
  // in Costs::notBefore).
  Schedule one = two;
  one.replicas = 1;
  one.streams.resize(size_t(S));
  for (int32_t s = 0; s < S; ++s)
    one.groups[size_t(dataParallelGroup(s, 2, G))] = {s};
  std::map<std::pair<int32_t, int32_t>, double> bound; // DP (group, bucket)
  std::vector<std::vector<Straggler>> slow(size_t(std::min<int64_t>(
      replicas, int64_t(1) << 24)));
  for (const Straggler &st : stragglers)
    if (st.replica >= 0 && st.replica < replicas && st.stage >= 0 &&
        st.stage < S)
      slow[size_t(st.replica)].push_back(st);
  std::map<int64_t, std::vector<Failure>> failing; // by replica
  for (const Failure &f : failures)
    if (f.replica >= 0 && f.replica < replicas && f.stage >= 0 &&
        f.stage < S)
      failing[f.replica].push_back(f);
  const double never = std::numeric_limits<double>::infinity();
  for (int round = 0; round < 64; ++round) {
    Costs c = costs;
    c.notBefore.assign(two.groups.size(), {});
    for (const auto &[key, t] : bound) {
      auto &row = c.notBefore[size_t(key.first)];
      if (row.size() <= size_t(key.second))
        row.resize(size_t(key.second) + 1, 0.0);
      row[size_t(key.second)] = t;
    }
    std::map<std::pair<int32_t, int32_t>, double> latest;
    std::map<std::pair<int32_t, int32_t>, int64_t> joined;
    out.stepTime = 0;
    out.fastestReplica = -1;
    static_cast<Stops &>(out) = Stops();
    for (int64_t k = 0; k < replicas; ++k) {
      c.jitterRankBase = k * S;
      c.rankSlowdown.clear();
      if (!slow[size_t(k)].empty()) {
        c.rankSlowdown.assign(size_t(S), 1.0);
        for (const Straggler &st : slow[size_t(k)])
          c.rankSlowdown[size_t(st.stage)] *= st.factor;
      }
      c.failAt.clear();
      if (auto f = failing.find(k); f != failing.end()) {
        c.failAt.assign(size_t(S), never);
        for (const Failure &x : f->second)
          c.failAt[size_t(x.stage)] = std::min(c.failAt[size_t(x.stage)],
                                               x.time);
      }
      MachineResult r = runMachine(one, c);
      // With failures, a replica stops where a failure or a collective
      // that never completes leaves it; anything else is the plan's fault.
      const bool expected =
          !failures.empty() &&
          (r.verdict == Verdict::Failed || r.verdict == Verdict::Deadlock);
      if (r.verdict != Verdict::Completed && !expected) {
        out.verdict = r.verdict;
        out.message = "replica " + std::to_string(k) + ": " + r.message;
        return out;
      }
      out.add(r, 0, S);
      for (const auto &stream : one.streams)
        out.instructions += int64_t(stream.size());
      for (const MachineResult::Joined &j : r.joins)
        if (j.group >= 2 * G) {
          double &t = latest[{j.group, j.bucket}];
          t = std::max(t, j.time);
          ++joined[{j.group, j.bucket}];
        }
      out.stepTime = std::max(out.stepTime, r.stepTime);
      out.fastestReplica = out.fastestReplica < 0
                               ? r.stepTime
                               : std::min(out.fastestReplica, r.stepTime);
    }
    // A collective some replica did not join never completes; nor, once
    // found so, in any later pass (its members then record no join at
    // all, which must not read as no bound).
    for (auto &[key, t] : latest)
      if (joined[key] < replicas)
        t = never;
    for (const auto &[key, t] : bound)
      if (std::isinf(t))
        latest[key] = never;
    out.rounds = round + 1;
    if (latest == bound) {
      if (!failures.empty() && out.stopped > 0) {
        out.verdict = Verdict::Failed;
        out.message = std::to_string(out.stopped) + " of " +
                      std::to_string(int64_t(S) * replicas) +
                      " ranks stopped";
      }
      return out;
    }
    bound = std::move(latest);
  }
  out.verdict = Verdict::Malformed;
  out.message = "the replicas' collectives did not settle in 64 rounds";
  return out;
}

} // namespace pipec::schedule
