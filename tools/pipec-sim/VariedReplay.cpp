//===- VariedReplay.cpp - every replica replayed, with jitter and stragglers ---===//

#include "VariedReplay.h"

#include "compiler/schedule/ReplicaReplay.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <random>
#include <set>

namespace pipec::sim {

namespace sched = pipec::schedule;

std::string replayVaried(const sched::Schedule &s, const sched::Costs &costs,
                         int64_t replicas, double jitter, int64_t count,
                         double factor, uint64_t seed, VariedReplay &out,
                         const std::vector<RankFailure> &fail) {
  const int32_t S = s.placement.ranks;
  const int64_t ranks = int64_t(S) * replicas;
  for (const RankFailure &f : fail)
    if (f.rank >= ranks)
      return "--fail " + std::to_string(f.rank) + "@" +
             std::to_string(f.time) + ": the job has " +
             std::to_string(ranks) + " ranks (0 to " +
             std::to_string(ranks - 1) + ")";
  if (count > ranks)
    return "--stragglers " + std::to_string(count) + ": the job has " +
           std::to_string(ranks) + " ranks";
  if (s.replicas != replicas && s.replicas != 2)
    return "--jitter, --stragglers and --fail replay every replica: give "
           "--replicas " +
           std::to_string(s.replicas) +
           " (the plan's), or price a plan of one or two replicas";
  out = VariedReplay();
  out.replicas = replicas;
  out.stragglers = count;
  out.jitter = jitter;
  out.factor = factor;
  out.failures = int64_t(fail.size());
  std::vector<sched::Failure> failures;
  for (const RankFailure &f : fail) {
    failures.push_back({f.rank / S, int32_t(f.rank % S), f.time});
    out.firstFailure = failures.size() == 1 ? f.time
                                            : std::min(out.firstFailure, f.time);
  }
  // The stragglers: distinct ranks drawn from the seed.
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> pick(0, ranks - 1);
  std::set<int64_t> chosen;
  while (int64_t(chosen.size()) < count)
    chosen.insert(pick(rng));
  std::vector<sched::Straggler> slow;
  for (int64_t r : chosen)
    slow.push_back({r / S, int32_t(r % S), factor});
  sched::Costs c = costs;
  c.jitterSigma = jitter;
  c.jitterSeed = seed;
  const auto start = std::chrono::steady_clock::now();
  if (s.replicas == replicas) {
    // Every replica's streams are here: one machine run.
    c.rankSlowdown.assign(size_t(ranks), 1.0);
    for (const sched::Straggler &st : slow)
      c.rankSlowdown[size_t(st.replica * S + st.stage)] *= st.factor;
    if (!fail.empty()) {
      c.failAt.assign(size_t(ranks), std::numeric_limits<double>::infinity());
      for (const RankFailure &f : fail)
        c.failAt[size_t(f.rank)] = std::min(c.failAt[size_t(f.rank)], f.time);
    }
    sched::MachineResult r = sched::runMachine(s, c);
    if (r.verdict != sched::Verdict::Completed &&
        !(r.verdict == sched::Verdict::Failed && !fail.empty()))
      return "the varied replay does not complete: " + r.message;
    out.add(r, 0, ranks);
    out.stepTime = r.stepTime;
    out.fastestReplica = r.stepTime;
    for (int64_t k = 0; k < replicas; ++k) {
      double end = 0;
      for (int32_t q = 0; q < S; ++q)
        end = std::max(end, r.finish[size_t(k * S + q)]);
      out.fastestReplica = std::min(out.fastestReplica, end);
    }
    out.rounds = 1;
    for (const auto &stream : s.streams)
      out.instructions += int64_t(stream.size());
  } else {
    sched::ReplicaReplayResult r =
        sched::replayReplicas(s, replicas, c, slow, failures);
    if (r.verdict != sched::Verdict::Completed &&
        !(r.verdict == sched::Verdict::Failed && !fail.empty()))
      return "the varied replay does not complete: " + r.message;
    static_cast<sched::Stops &>(out) = r;
    out.stepTime = r.stepTime;
    out.fastestReplica = r.fastestReplica;
    out.rounds = r.rounds;
    out.instructions = r.instructions;
  }
  out.wallSeconds = std::chrono::duration<double>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  out.ran = true;
  return "";
}

} // namespace pipec::sim
