//===- GroupTest.cpp - collectives over groups of ranks (tied weights) --===//
//
// A tied parameter held by the first and the last rank gets an allreduce
// over group {0, S-1}: every kind lowers it on exactly the members, after
// their last W and before the step-wide collective, and the result is
// validated, proven by the machine and completed on threads. Broken group
// collectives (a member missing it, a non-member posting it, another
// bucket, two groups in opposite orders) are rejected naming the ranks.
//
//===----------------------------------------------------------------------===//

#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"
#include "test/unit/schedule/TestSchedules.h"
#include "test/unit/schedule/Rendezvous.h"
#include "compiler/schedule/Validate.h"

#include <gtest/gtest.h>

#include <random>

using namespace pipec::schedule;

namespace {

constexpr std::chrono::milliseconds kTimeout{100};

/// Positions of the collectives of group g in a stream.
std::vector<size_t> collectivesOf(const std::vector<Instr> &st, int32_t g) {
  std::vector<size_t> out;
  for (size_t i = 0; i < st.size(); ++i)
    if (st[i].op == Op::AllReduce && st[i].chunk == g)
      out.push_back(i);
  return out;
}

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

TEST(ValidateGroups, TiedFirstAndLastRankForEveryKind) {
  std::mt19937 rng(20261125);
  for (Kind k : kKinds)
    for (int32_t p : {2, 4}) {
      for (bool postValidation : {false, true}) {
        SCOPED_TRACE(std::string(kindName(k)) + " p=" + std::to_string(p) +
                     (postValidation ? " post-validation" : ""));
        Schedule s = lowered(k, p, 2 * p, {{0, p - 1}}, postValidation);
        ASSERT_EQ(s.groupCount(), 2);
        EXPECT_EQ(s.groupMembers(1), (std::vector<int32_t>{0, p - 1}));
        MachineResult res;
        Costs costs = randomCosts(s.placement.chunks, rng);
        ASSERT_EQ(verifySchedule(s, costs, res), "");
        EXPECT_GT(res.stepTime, 0);
        EXPECT_EQ(runOnThreads(s, kTimeout), Verdict::Completed);
        for (int32_t r = 0; r < p; ++r) {
          const auto &st = s.streams[r];
          std::vector<size_t> tied = collectivesOf(st, 1);
          if (r != 0 && r != p - 1) {
            EXPECT_TRUE(tied.empty()) << "rank " << r;
            continue;
          }
          ASSERT_EQ(tied.size(), 1u) << "rank " << r;
          EXPECT_EQ(st[tied[0]].mb, 0);
          // After every W of the rank, before the world collective (if
          // any) and the optimizer step.
          size_t lastW = 0;
          for (size_t i = 0; i < st.size(); ++i)
            if (st[i].op == Op::BwdW)
              lastW = i;
          EXPECT_GT(tied[0], lastW) << "rank " << r;
          std::vector<size_t> world = collectivesOf(st, 0);
          if (postValidation) {
            EXPECT_TRUE(world.empty());
          } else {
            ASSERT_EQ(world.size(), 1u);
          }
          if (!world.empty()) {
            EXPECT_LT(tied[0], world[0]) << "rank " << r;
          }
          EXPECT_EQ(st.back().op, Op::OptStep);
        }
      }
    }
}

TEST(ValidateGroups, OverlappingGroupsAndRepeatedSteps) {
  std::mt19937 rng(7);
  for (Kind k : kKinds) {
    SCOPED_TRACE(kindName(k));
    Schedule s = lowered(k, 4, 8, {{0, 3}, {1, 2}, {0, 1, 3}});
    MachineResult res;
    ASSERT_EQ(verifySchedule(s, randomCosts(s.placement.chunks, rng), res),
              "");
    EXPECT_EQ(collectivesOf(s.streams[0], 3).size(), 1u);
    EXPECT_EQ(collectivesOf(s.streams[2], 3).size(), 0u);
    EXPECT_EQ(runOnThreads(s, kTimeout), Verdict::Completed);
    // Three steps back to back: the k-th collective of each group meets
    // the k-th on every member.
    Schedule three = repeatSteps(s, 3);
    MachineResult rep =
        runMachine(three, randomCosts(s.placement.chunks, rng));
    EXPECT_EQ(rep.verdict, Verdict::Completed) << rep.message;
    EXPECT_EQ(runOnThreads(three, kTimeout), Verdict::Completed);
  }
}

TEST(ValidateGroups, MissingMemberCollectiveIsRejected) {
  for (Kind k : {Kind::OneFOneB, Kind::ZBV})
    for (bool postValidation : {false, true}) {
      SCOPED_TRACE(std::string(kindName(k)) +
                   (postValidation ? " post-validation" : ""));
      Schedule s = lowered(k, 4, 8, {{0, 3}}, postValidation);
      auto &st = s.streams[3];
      st.erase(st.begin() + collectivesOf(st, 1)[0]);
      // The static check names both members and the unmatched collective.
      std::string err = validateStreams(s);
      EXPECT_TRUE(contains(err, "rank 0 #")) << err;
      EXPECT_TRUE(contains(err, "allreduce(group 1, bucket 0)")) << err;
      EXPECT_TRUE(contains(err, "group 1 (ranks 0, 3)")) << err;
      EXPECT_TRUE(contains(err, "no partner on rank 3")) << err;
      // The machine on its own finds rank 0 waiting forever for rank 3:
      // blocked in the world collective (which waits for rank 0), or, with
      // no world collective, finished without joining.
      MachineResult res =
          runMachine(s, Costs::uniform(s.placement.chunks, 1, 2, 1.5));
      EXPECT_EQ(res.verdict, Verdict::Deadlock);
      EXPECT_TRUE(contains(res.message,
                           "waits for the members of group 1 (ranks 0, 3) "
                           "that have not joined its collective #0: rank 3"))
          << res.message;
      if (postValidation) {
        EXPECT_TRUE(contains(res.message,
                             "rank 3 finished its stream after 0 collectives "
                             "of group 1 without joining it (a missing "
                             "allreduce)"))
            << res.message;
      } else {
        EXPECT_TRUE(contains(res.message, "rank 3 is blocked at #" +
                                              std::to_string(
                                                  collectivesOf(st, 0)[0]) +
                                              " allreduce(group 0, bucket 0)"))
            << res.message;
        EXPECT_TRUE(contains(res.message, "cycle: rank 0 -> rank 3 -> rank 0"))
            << res.message;
      }
      EXPECT_EQ(runOnThreads(s, kTimeout), Verdict::Deadlock);
    }
}

TEST(ValidateGroups, NonMemberCollectiveIsRejected) {
  Schedule s = lowered(Kind::OneFOneB, 4, 8, {{0, 3}});
  auto &st = s.streams[1];
  size_t at = collectivesOf(st, 0)[0];
  st.insert(st.begin() + at, Instr{Op::AllReduce, Op::AllReduce, 0, 1, 0, 0});
  std::string err = validateStreams(s);
  EXPECT_TRUE(contains(err, "rank 1 #" + std::to_string(at) +
                                " allreduce(group 1, bucket 0)"))
      << err;
  EXPECT_TRUE(contains(err, "not a member of group 1 (ranks 0, 3)")) << err;
  MachineResult res = runMachine(s, Costs::uniform(s.placement.chunks, 1, 1, 1));
  EXPECT_EQ(res.verdict, Verdict::Malformed);
  EXPECT_TRUE(contains(res.message, "rank 1 is not a member of group 1"))
      << res.message;
  EXPECT_EQ(runOnThreads(s, kTimeout), Verdict::Malformed);
  // An undefined group is rejected too.
  st[at].chunk = 5;
  EXPECT_TRUE(contains(validateStreams(s), "group must be in 0..1"));
  EXPECT_EQ(runMachine(s, Costs::uniform(s.placement.chunks, 1, 1, 1)).verdict,
            Verdict::Malformed);
}

TEST(ValidateGroups, OtherBucketIsAMismatch) {
  Schedule s = lowered(Kind::ZBH1, 4, 8, {{0, 3}});
  s.streams[3][collectivesOf(s.streams[3], 1)[0]].mb = 2;
  std::string err = validateStreams(s);
  EXPECT_TRUE(contains(err, "rank 3 #")) << err;
  EXPECT_TRUE(contains(err, "meets rank 0 #")) << err;
  EXPECT_TRUE(contains(err, "another bucket")) << err;
  MachineResult res = runMachine(s, Costs::uniform(s.placement.chunks, 1, 1, 1));
  EXPECT_EQ(res.verdict, Verdict::Mismatch) << res.message;
  EXPECT_EQ(runOnThreads(s, kTimeout), Verdict::Mismatch);
}

TEST(ValidateGroups, GroupsInOppositeOrdersDeadlock) {
  // Rank 3 joins the world collective before the tied one, rank 0 the
  // other way round: each group's sequence is fine on its own, but rank 0
  // waits in group 1 for rank 3, which waits in group 0 for rank 0.
  Schedule s = lowered(Kind::OneFOneB, 4, 8, {{0, 3}});
  auto &st = s.streams[3];
  std::swap(st[collectivesOf(st, 0)[0]], st[collectivesOf(st, 1)[0]]);
  MachineResult res;
  std::string err =
      verifySchedule(s, Costs::uniform(s.placement.chunks, 1, 1, 1), res);
  EXPECT_TRUE(contains(err, "deadlock")) << err;
  EXPECT_TRUE(contains(err, "the members of group 1 (ranks 0, 3) that have "
                            "not joined its collective #0: rank 3 is blocked"))
      << err;
  EXPECT_TRUE(contains(err, "cycle: rank 0 -> rank 3 -> rank 0")) << err;
  EXPECT_EQ(runOnThreads(s, kTimeout), Verdict::Deadlock);
}

TEST(ValidateGroups, GroupTableIsChecked) {
  Schedule s = lowered(Kind::GPipe, 4, 4, {{3, 0}});
  EXPECT_TRUE(contains(validateStreams(s), "ascending")) << validateStreams(s);
  s = lowered(Kind::GPipe, 4, 4, {{0, 7}});
  EXPECT_TRUE(contains(validateStreams(s), "names rank 7, outside 0..3"))
      << validateStreams(s);
}

} // namespace
