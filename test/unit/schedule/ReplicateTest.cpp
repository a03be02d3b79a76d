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
