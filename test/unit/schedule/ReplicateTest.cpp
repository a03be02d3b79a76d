//===- ReplicateTest.cpp - data-parallel replicas of every kind ---------===//
//
// D replicas of a pipeline (Replicate.h) for every kind: each rank runs its
// stage's stream inside its replica, each chunk's gradients are all-reduced
// over the stage's replicas right after the chunk's last W and the posts
// after it (a send upstream must not wait for the collective) and before the
// tied and norm collectives; the result is validated, proven by the machine
// and completed on threads, also with tied groups and three steps back to
// back. A replica missing a data-parallel collective, or joining another
// bucket, is rejected by validation and by the machine and threads alike.
// Replica 0 alone (replicaZeroAlone), which the compiler proves instead of
// the D replicas, is what each replica runs, gets the plan's times, and
// mutated, the verdict of three replicas that each run the mutant.
//
//===----------------------------------------------------------------------===//

#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"
#include "compiler/schedule/Replicate.h"
#include "compiler/schedule/Svg.h"
#include "compiler/schedule/Validate.h"
#include "test/unit/schedule/TestSchedules.h"
#include "test/unit/schedule/Rendezvous.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <random>

using namespace pipec::schedule;

namespace {

constexpr std::chrono::milliseconds kTimeout{100};

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

TEST(Replicate, EveryKindIsProvenAndRunsOnThreads) {
  std::mt19937 rng(20261206);
  for (Kind k : kKinds)
    for (int32_t p : {1, 2, 4})
      for (int32_t d : {2, 3}) {
        if (p == 1 && (k == Kind::Interleaved || k == Kind::ZBV ||
                       k == Kind::DualPipeV))
          continue;
        SCOPED_TRACE(std::string(kindName(k)) + " p=" + std::to_string(p) +
                     " d=" + std::to_string(d));
        std::vector<std::vector<int32_t>> tied;
        if (p > 1 && k != Kind::ZBV && k != Kind::DualPipeV)
          tied = {{0, p - 1}};
        Schedule one = lowered(k, p, 2 * p, tied);
        Schedule s = replicate(one, d);
        const int32_t G = one.groupCount();
        ASSERT_EQ(s.ranks(), p * d);
        ASSERT_EQ(s.groupCount(), d * G + p);
        for (int32_t st = 0; st < p; ++st) {
          std::vector<int32_t> members;
          for (int32_t r = 0; r < d; ++r)
            members.push_back(r * p + st);
          EXPECT_EQ(s.groupMembers(dataParallelGroup(st, d, G)), members);
        }
        MachineResult res;
        ASSERT_EQ(verifySchedule(s, randomCosts(s.placement.chunks, rng), res),
                  "");
        EXPECT_EQ(runOnThreads(s, kTimeout), Verdict::Completed);
        Schedule three = repeatSteps(s, 3);
        EXPECT_EQ(runMachine(three, randomCosts(s.placement.chunks, rng))
                      .verdict,
                  Verdict::Completed);
        EXPECT_EQ(runOnThreads(three, kTimeout), Verdict::Completed);
        for (int32_t q = 0; q < s.ranks(); ++q) {
          const auto &st = s.streams[size_t(q)];
          const auto &base = one.streams[size_t(q % p)];
          // The stage's stream, peers moved into the replica, plus one
          // data-parallel collective per chunk right after its last W and
          // the posts after it.
          size_t j = 0, firstPipelineCollective = st.size(), lastDp = 0;
          std::vector<int32_t> reduced;
          for (size_t i = 0; i < st.size(); ++i) {
            const Instr &in = st[i];
            if (in.op == Op::AllReduce && in.chunk >= d * G) {
              EXPECT_EQ(in.chunk, dataParallelGroup(q % p, d, G));
              // After the chunk's last W and the posts right after it,
              // before the next instruction that is not a post.
              size_t w = i;
              while (w > 0 && isPost(st[w - 1].op))
                --w;
              ASSERT_GT(w, 0u);
              EXPECT_EQ(st[w - 1].op, Op::BwdW);
              EXPECT_EQ(st[w - 1].chunk, in.mb);
              if (i + 1 < st.size()) {
                EXPECT_FALSE(isPost(st[i + 1].op));
              }
              for (size_t k2 = i + 1; k2 < st.size(); ++k2)
                EXPECT_FALSE(st[k2].op == Op::BwdW && st[k2].chunk == in.mb);
              reduced.push_back(in.mb);
              lastDp = i;
              continue;
            }
            ASSERT_LT(j, base.size());
            const Instr &b = base[j++];
            EXPECT_EQ(in.op, b.op);
            EXPECT_EQ(in.mb, b.mb);
            EXPECT_EQ(in.req, b.req);
            if (in.op == Op::AllReduce) {
              EXPECT_EQ(in.chunk, replicaGroup(b.chunk, q / p, G));
              firstPipelineCollective = std::min(firstPipelineCollective, i);
            } else {
              EXPECT_EQ(in.chunk, b.chunk);
              EXPECT_EQ(in.peer, b.peer < 0 ? b.peer : b.peer + (q / p) * p);
            }
          }
          EXPECT_EQ(j, base.size());
          std::sort(reduced.begin(), reduced.end());
          EXPECT_EQ(reduced, one.placement.chunksOf(q % p));
          EXPECT_LT(lastDp, firstPipelineCollective);
        }
      }
}

TEST(Replicate, OneReplicaIsThePipeline) {
  Schedule one = lowered(Kind::OneFOneB, 2, 4, {{0, 1}});
  Schedule s = replicate(one, 1);
  EXPECT_EQ(s.replicas, 1);
  EXPECT_EQ(formatStreams(s), formatStreams(one));
  EXPECT_EQ(s.groups, one.groups);
}

TEST(Replicate, ChunksWithoutGradientsAreNotReduced) {
  Schedule one = lowered(Kind::ZBV, 2, 4);
  // Chunks 0..3 on a V: rank 0 holds 0 and 3, rank 1 holds 1 and 2.
  Schedule s = replicate(one, 2, {1, 0, 1, 0});
  int32_t G = one.groupCount();
  for (int32_t q = 0; q < 4; ++q) {
    std::vector<int32_t> buckets;
    for (const Instr &in : s.streams[size_t(q)])
      if (in.op == Op::AllReduce && in.chunk >= 2 * G)
        buckets.push_back(in.mb);
    EXPECT_EQ(buckets, q % 2 == 0 ? std::vector<int32_t>{0}
                                  : std::vector<int32_t>{2});
  }
  MachineResult res;
  std::mt19937 rng(3);
  EXPECT_EQ(verifySchedule(s, randomCosts(4, rng), res), "");
}

TEST(Replicate, AReplicaMissingItsCollectiveIsRejected) {
  std::mt19937 rng(11);
  Schedule s = replicate(lowered(Kind::OneFOneB, 2, 4, {{0, 1}}), 2);
  // Rank 3 (replica 1, stage 1) drops its data-parallel collective.
  auto &st = s.streams[3];
  for (size_t i = 0; i < st.size(); ++i)
    if (st[i].op == Op::AllReduce && st[i].chunk == s.groupCount() - 1) {
      st.erase(st.begin() + long(i));
      break;
    }
  MachineResult res;
  std::string err = verifySchedule(s, randomCosts(2, rng), res);
  EXPECT_TRUE(contains(err, "has no partner on rank 3")) << err;
  EXPECT_NE(runOnThreads(s, kTimeout), Verdict::Completed);
  MachineResult m = runMachine(s, randomCosts(2, rng));
  EXPECT_EQ(m.verdict, Verdict::Deadlock) << m.message;
}

TEST(Replicate, AnotherBucketIsRejected) {
  std::mt19937 rng(12);
  Schedule s = replicate(lowered(Kind::ZBV, 2, 4), 2);
  int32_t dp0 = dataParallelGroup(0, 2, 1);
  for (Instr &in : s.streams[2])
    if (in.op == Op::AllReduce && in.chunk == dp0) {
      in.mb = 7;
      break;
    }
  MachineResult res;
  std::string err = verifySchedule(s, randomCosts(4, rng), res);
  EXPECT_TRUE(contains(err, "bucket")) << err;
  EXPECT_EQ(runOnThreads(s, kTimeout), Verdict::Mismatch);
}

TEST(Replicate, AMessageToAnotherReplicaIsRejected) {
  std::mt19937 rng(13);
  Schedule s = replicate(lowered(Kind::OneFOneB, 2, 4), 2);
  // Replica 1's stage 0 sends its first activation to replica 0's stage 1.
  for (Instr &in : s.streams[2])
    if (in.op == Op::SendAct) {
      in.peer = 1;
      break;
    }
  MachineResult res;
  std::string err = verifySchedule(s, randomCosts(2, rng), res);
  EXPECT_TRUE(contains(err, "the message goes from rank 2 to rank 3")) << err;
}

} // namespace

namespace {

TEST(Replicate, CollectiveCostsAreTimedAndDrawn) {
  // A data-parallel bucket's cost delays its members and shows as a span.
  Schedule s = replicate(lowered(Kind::OneFOneB, 2, 4), 2);
  Costs costs = Costs::uniform(2, 1, 1, 1);
  MachineResult base = runMachine(s, costs, true);
  ASSERT_EQ(base.verdict, Verdict::Completed);
  const int32_t dp1 = dataParallelGroup(1, 2, 1);
  costs.collective.assign(size_t(s.groupCount()), {});
  costs.collective[size_t(dp1)] = {0.0, 5.0}; // chunk 1's bucket
  MachineResult slow = runMachine(s, costs, true);
  ASSERT_EQ(slow.verdict, Verdict::Completed);
  EXPECT_GT(slow.stepTime, base.stepTime);
  int drawn = 0;
  for (const Span &sp : slow.spans)
    if (sp.op == Op::AllReduce) {
      EXPECT_EQ(sp.chunk, dp1);
      EXPECT_EQ(sp.mb, 1);
      EXPECT_DOUBLE_EQ(sp.end - sp.start, 5.0);
      EXPECT_TRUE(sp.rank == 1 || sp.rank == 3) << sp.rank;
      ++drawn;
    }
  EXPECT_EQ(drawn, 2);
  EXPECT_NE(renderSvg(s, slow, "dp", "s").find("all-reduce group 3 bucket 1"),
            std::string::npos);
}

} // namespace

namespace {

/// The plan of d replicas whose every replica runs `alone`'s streams moved
/// into it (what the runtime does with replica 0's stream files):
/// peers by k S, the pipeline's groups by k G, the data-parallel group
/// G + s alone becomes d G + s.
Schedule lift(const Schedule &alone, int32_t d) {
  const int32_t S = alone.placement.ranks, G = alone.groupCount() - S;
  std::vector<std::vector<int32_t>> pipelineGroups(alone.groups.begin(),
                                                   alone.groups.begin() + G);
  Schedule out = alone;
  out.replicas = d;
  out.groups = replicateGroups(pipelineGroups, S, d);
  out.streams.assign(size_t(S) * size_t(d), {});
  for (int32_t k = 0; k < d; ++k)
    for (int32_t s = 0; s < S; ++s)
      for (Instr in : alone.streams[size_t(s)]) {
        if (in.peer >= 0)
          in.peer += k * S;
        if (pipert::isCollectiveOp(in.op))
          in.chunk = in.chunk < G ? replicaGroup(in.chunk, k, G)
                                  : dataParallelGroup(in.chunk - G, d, G);
        out.streams[size_t(k * S + s)].push_back(in);
      }
  return out;
}

TEST(Replicate, ReplicaZeroAloneIsEveryReplicaCountsProofAndTime) {
  // Replica 0 alone, its data-parallel collectives on a group of its
  // stage alone, is what every replica of replicate() runs, and the
  // machine gives the plan of any D its verdict and its times.
  std::mt19937 rng(20261207);
  for (Kind k : kKinds)
    for (int32_t p : {1, 2, 4})
      for (bool zero : {false, true}) {
        if (p == 1 && (k == Kind::Interleaved || k == Kind::ZBV ||
                       k == Kind::DualPipeV))
          continue;
        std::vector<std::vector<int32_t>> tied;
        if (p > 1 && k != Kind::ZBV && k != Kind::DualPipeV)
          tied = {{0, p - 1}};
        Schedule one = lowered(k, p, 2 * p, tied);
        const int32_t G = one.groupCount(), C = one.placement.chunks;
        Schedule alone = replicaZeroAlone(one, {}, zero);
        EXPECT_EQ(alone.replicas, 1);
        ASSERT_EQ(alone.groupCount(), G + p);
        for (int32_t s = 0; s < p; ++s)
          EXPECT_EQ(alone.groupMembers(dataParallelGroup(s, 1, G)),
                    std::vector<int32_t>{s});
        Costs base = randomCosts(C, rng);
        std::vector<std::vector<double>> dpTime(static_cast<size_t>(p));
        std::uniform_real_distribution<double> t(0.5, 3.0);
        for (auto &row : dpTime)
          for (int32_t b = 0; b <= zeroWeightsBucket(C); ++b)
            row.push_back(t(rng));
        Costs ca = base;
        ca.collective.assign(size_t(alone.groupCount()), {});
        for (int32_t s = 0; s < p; ++s)
          ca.collective[size_t(dataParallelGroup(s, 1, G))] = dpTime[size_t(s)];
        MachineResult ra;
        ASSERT_EQ(verifySchedule(alone, ca, ra), "");
        for (int32_t d : {2, 3}) {
          SCOPED_TRACE(std::string(kindName(k)) + " p=" + std::to_string(p) +
                       " d=" + std::to_string(d) +
                       (zero ? " zero" : ""));
          Schedule full = replicate(one, d, {}, zero);
          Schedule lifted = lift(alone, d);
          EXPECT_EQ(formatStreams(lifted), formatStreams(full));
          EXPECT_EQ(lifted.groups, full.groups);
          Costs cf = base;
          cf.collective.assign(size_t(full.groupCount()), {});
          for (int32_t s = 0; s < p; ++s)
            cf.collective[size_t(dataParallelGroup(s, d, G))] =
                dpTime[size_t(s)];
          MachineResult rf;
          ASSERT_EQ(verifySchedule(full, cf, rf), "");
          EXPECT_DOUBLE_EQ(rf.stepTime, ra.stepTime);
          EXPECT_NEAR(rf.bubbleFraction, ra.bubbleFraction, 1e-12);
          for (int32_t q = 0; q < full.ranks(); ++q)
            EXPECT_DOUBLE_EQ(rf.busy[size_t(q)], ra.busy[size_t(q % p)]);
        }
      }
}

TEST(Replicate, ReplicaZeroAloneDeadlocksWhereItsReplicasDo) {
  // Mutants of replica 0 alone (two communication or collective
  // instructions of a rank swapped, a wait delayed), run alone and as the
  // plan of three replicas that each run it: the same verdict every time.
  std::mt19937 rng(20261207);
  const std::vector<std::pair<Kind, int32_t>> bases = {
      {Kind::OneFOneB, 3}, {Kind::GPipe, 2}, {Kind::ZBH1, 3},
      {Kind::ZBV, 2},      {Kind::Interleaved, 2}, {Kind::DualPipeV, 2}};
  std::map<Verdict, int> counts;
  int mutants = 0;
  for (int tries = 0; mutants < 300 && tries < 20000; ++tries) {
    auto [kind, p] = bases[size_t(tries) % bases.size()];
    Schedule alone = replicaZeroAlone(lowered(kind, p, 2 * p), {}, tries % 2);
    auto &st = alone.streams[std::uniform_int_distribution<size_t>(
        0, size_t(p) - 1)(rng)];
    std::vector<size_t> comm;
    for (size_t i = 0; i < st.size(); ++i)
      if (isPost(st[i].op) || st[i].op == Op::Wait ||
          pipert::isCollectiveOp(st[i].op))
        comm.push_back(i);
    if (comm.size() < 2)
      continue;
    auto pick = [&] {
      return comm[std::uniform_int_distribution<size_t>(0, comm.size() - 1)(
          rng)];
    };
    const size_t i = pick(), j = pick();
    if (i == j)
      continue;
    if (st[i].op == Op::Wait && rng() % 2) {
      Instr w = st[i];
      st.erase(st.begin() + long(i));
      st.insert(st.begin() + long(std::max(i, j)), w);
    } else {
      std::swap(st[i], st[j]);
    }
    // Well formed: every wait after its post.
    std::map<int32_t, bool> posted;
    bool ok = true;
    for (const Instr &in : st) {
      if (isPost(in.op))
        posted[in.req] = true;
      if (in.op == Op::Wait && !posted.count(in.req))
        ok = false;
    }
    if (!ok)
      continue;
    ++mutants;
    Costs c = Costs::uniform(alone.placement.chunks, 1, 1, 1);
    const Verdict one = runMachine(alone, c).verdict;
    EXPECT_EQ(verdictName(one),
              std::string(verdictName(runMachine(lift(alone, 3), c).verdict)))
        << kindName(kind) << " mutant " << mutants;
    ++counts[one];
  }
  EXPECT_EQ(mutants, 300);
  // The mutants must reach every verdict, or the test proves little.
  EXPECT_GT(counts[Verdict::Deadlock], 5);
  EXPECT_GT(counts[Verdict::Mismatch], 10);
  EXPECT_GT(counts[Verdict::Completed], 10);
  std::printf("300 mutants: %d deadlock, %d mismatch, %d complete, alone and "
              "with 3 replicas alike\n",
              counts[Verdict::Deadlock], counts[Verdict::Mismatch],
              counts[Verdict::Completed]);
}

} // namespace
