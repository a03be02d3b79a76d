//===- ReplicaReplayTest.cpp - replicas one at a time = all at once -------===//
//
// replayReplicas (ReplicaReplay.h) runs D replicas one at a time, the
// data-parallel collectives bounded by the other replicas' latest joins,
// until those stop moving. Its step must be the abstract machine's over
// the full D-replica streams, with jitter and stragglers, for every kind;
// without either it is the two-replica step (the symmetry mode).
//
//===----------------------------------------------------------------------===//

#include "compiler/schedule/ReplicaReplay.h"
#include "compiler/schedule/Replicate.h"
#include "test/unit/schedule/TestSchedules.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>

using namespace pipec::schedule;

namespace {

/// `base` with every collective of `s` priced: group 0 (the norm) 0.05,
/// the data-parallel group of stage t at 0.3 + 0.1 t.
Costs withCollectives(const Schedule &s, Costs base) {
  const int32_t S = s.placement.ranks, D = s.replicas;
  const int32_t G = (int32_t(s.groups.size()) - S) / D;
  base.collective.assign(s.groups.size(), {});
  for (const auto &stream : s.streams)
    for (const Instr &in : stream)
      if (in.op == Op::AllReduce) {
        auto &row = base.collective[size_t(in.chunk)];
        if (row.size() <= size_t(in.mb))
          row.resize(size_t(in.mb) + 1, 0.0);
        row[size_t(in.mb)] =
            in.chunk >= D * G ? 0.3 + 0.1 * (in.chunk - D * G) : 0.05;
      }
  return base;
}

} // namespace

TEST(ReplicaReplay, EqualsTheFullReplayWithJitterAndStragglers) {
  std::mt19937 rng(20261206);
  for (Kind k : kKinds)
    for (int32_t p : {2, 4})
      for (int32_t d : {2, 3, 5}) {
        SCOPED_TRACE(std::string(kindName(k)) + " p=" + std::to_string(p) +
                     " d=" + std::to_string(d));
        Schedule one = lowered(k, p, 2 * p);
        Schedule full = replicate(one, d), two = replicate(one, 2);
        Costs base = randomCosts(one.placement.chunks, rng);
        base.jitterSigma = 0.2;
        base.jitterSeed = 7;
        const std::vector<Straggler> slow = {{d - 1, p - 1, 1.7}, {0, 0, 1.2}};
        Costs fullCosts = withCollectives(full, base);
        fullCosts.rankSlowdown.assign(size_t(full.ranks()), 1.0);
        for (const Straggler &st : slow)
          fullCosts.rankSlowdown[size_t(st.replica * p + st.stage)] *=
              st.factor;
        const MachineResult whole = runMachine(full, fullCosts);
        ASSERT_EQ(whole.verdict, Verdict::Completed);
        const ReplicaReplayResult r =
            replayReplicas(two, d, withCollectives(two, base), slow);
        ASSERT_EQ(r.verdict, Verdict::Completed) << r.message;
        EXPECT_NEAR(r.stepTime, whole.stepTime, 1e-9 * whole.stepTime);
        EXPECT_GE(r.rounds, 1);
        // Without jitter and stragglers every replica is the same: the
        // two-replica step.
        Costs plain = randomCosts(one.placement.chunks, rng);
        const MachineResult sym = runMachine(two, withCollectives(two, plain));
        const ReplicaReplayResult q =
            replayReplicas(two, d, withCollectives(two, plain), {});
        EXPECT_NEAR(q.stepTime, sym.stepTime, 1e-12 * sym.stepTime);
        EXPECT_EQ(q.fastestReplica, q.stepTime);
      }
}

// The jitter is deterministic, centred (mean 1 over many draws) and
// spread by sigma.
TEST(ReplicaReplay, JitterIsALogNormalOfMeanOne) {
  double sum = 0, sumLog2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double f = jitterFactor(0.1, 42, i % 1000, i / 1000);
    sum += f;
    sumLog2 += (std::log(f) + 0.005) * (std::log(f) + 0.005);
  }
  EXPECT_NEAR(sum / n, 1.0, 0.002);
  EXPECT_NEAR(std::sqrt(sumLog2 / n), 0.1, 0.002);
  EXPECT_EQ(jitterFactor(0.1, 42, 3, 4), jitterFactor(0.1, 42, 3, 4));
  EXPECT_NE(jitterFactor(0.1, 42, 3, 4), jitterFactor(0.1, 43, 3, 4));
  EXPECT_EQ(jitterFactor(0, 42, 3, 4), 1.0);
}

// A rank that fails mid-step (pipec-sim --fail): the ranks that need it
// stall, the data-parallel collectives its replica never joins stall the
// other replicas, and replica by replica the replay says exactly what the
// full machine says: who stopped, first and last, and the last rank to
// finish.
TEST(ReplicaReplay, AFailureStallsTheSameRanksAsInTheFullReplay) {
  std::mt19937 rng(7);
  for (Kind k : kKinds)
    for (int32_t p : {2, 4})
      for (int32_t d : {2, 3}) {
        SCOPED_TRACE(std::string(kindName(k)) + " p=" + std::to_string(p) +
                     " d=" + std::to_string(d));
        Schedule one = lowered(k, p, 2 * p);
        Schedule full = replicate(one, d), two = replicate(one, 2);
        Costs base = randomCosts(one.placement.chunks, rng);
        base.jitterSigma = 0.1;
        const MachineResult healthy = runMachine(full, withCollectives(full, base));
        ASSERT_EQ(healthy.verdict, Verdict::Completed);
        // Stage p-1 of the last replica fails a third into the step.
        const Failure f{d - 1, p - 1, healthy.stepTime / 3};
        Costs fullCosts = withCollectives(full, base);
        fullCosts.failAt.assign(size_t(full.ranks()),
                                std::numeric_limits<double>::infinity());
        fullCosts.failAt[size_t(f.replica * p + f.stage)] = f.time;
        const MachineResult whole = runMachine(full, fullCosts);
        ASSERT_EQ(whole.verdict, Verdict::Failed) << whole.message;
        EXPECT_EQ(whole.finish[size_t(f.replica * p + f.stage)], f.time);
        int64_t stopped = 0;
        double first = 0, last = 0, finished = 0;
        for (int32_t r = 0; r < full.ranks(); ++r) {
          const double t = whole.finish[size_t(r)];
          if (whole.stopped[size_t(r)]) {
            first = stopped ? std::min(first, t) : t;
            last = stopped ? std::max(last, t) : t;
            ++stopped;
            // (A stalled rank's time is when its endless wait began: it
            // may precede the failure, a message the failed rank would
            // have sent later.)
          } else {
            finished = std::max(finished, t);
          }
        }
        // The failed rank's own pipeline cannot finish without it.
        EXPECT_GE(stopped, 2);
        const ReplicaReplayResult r =
            replayReplicas(two, d, withCollectives(two, base), {}, {f});
        ASSERT_EQ(r.verdict, Verdict::Failed) << r.message;
        EXPECT_EQ(r.stopped, stopped);
        EXPECT_NEAR(r.firstStop, first, 1e-9 * healthy.stepTime);
        EXPECT_NEAR(r.lastStop, last, 1e-9 * healthy.stepTime);
        EXPECT_NEAR(r.lastFinish, finished, 1e-9 * healthy.stepTime);
      }
}

// A message lands only if both sides live until it does: a sender that
// fails after posting but before its message would arrive delivers
// nothing, and a collective whose member fails before it completes never
// completes.
TEST(ReplicaReplay, NothingLandsFromARankThatFailedFirst) {
  Schedule s = lowered(Kind::GPipe, 2, 4);
  Costs c = Costs::uniform(s.placement.chunks, 1.0, 1.0, 1.0);
  c.actComm = c.gradComm = 0.5;
  const MachineResult healthy = runMachine(s, c, /*recordSpans=*/true);
  ASSERT_EQ(healthy.verdict, Verdict::Completed);
  double firstSend = -1; // rank 0's first F ends, its send is posted
  for (const Span &sp : healthy.spans)
    if (sp.rank == 0 && sp.op == Op::Fwd && firstSend < 0)
      firstSend = sp.end;
  ASSERT_GT(firstSend, 0);
  // Rank 0 fails after posting, before the message would land.
  c.failAt = {firstSend + 0.25, std::numeric_limits<double>::infinity()};
  const MachineResult r = runMachine(s, c, /*recordSpans=*/true);
  ASSERT_EQ(r.verdict, Verdict::Failed) << r.message;
  for (const Span &sp : r.spans)
    EXPECT_NE(sp.rank, 1) << "rank 1 computed " << opName(sp.op)
                          << " on a message that never landed";
  EXPECT_TRUE(r.stopped[1]);
  // After it would land, rank 1 computes the first micro-batch.
  c.failAt[0] = firstSend + 0.75;
  const MachineResult later = runMachine(s, c, true);
  int rank1Spans = 0;
  for (const Span &sp : later.spans)
    rank1Spans += sp.rank == 1;
  EXPECT_GE(rank1Spans, 1);
}
