//===- CommLayoutTest.cpp - the nccl transport's communicators ------------===//
//
// Every schedule kind's streams get a communicator per direction and
// channel that carries messages and one per group with collectives; each
// split round gives a rank at most one, every member of a communicator
// joins it in the same round, and the static proof accepts the streams.
// A stream whose n-th recv claims another micro-batch than its sender's
// n-th send, or a member whose collectives come in another order, is
// refused with both instructions named.
//
//===----------------------------------------------------------------------===//

#include "SyntheticModel.h"

#include "pipert/CommLayout.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace {

using pipec::schedule::Kind;
using pipec::testing::PlanOptions;
using pipec::testing::SyntheticPlan;

SyntheticPlan planOf(Kind kind, int32_t stages) {
  PlanOptions o;
  o.kind = kind;
  o.stages = stages;
  o.microbatches = 2 * stages;
  o.shape.layers = 24; // whole layers per chunk for every kind and S <= 4
  SyntheticPlan plan;
  std::string why = pipec::testing::buildPlan(o, plan);
  if (!why.empty())
    ADD_FAILURE() << why;
  return plan;
}

TEST(CommLayout, EveryKindGetsPairsPerDirectionAndChannelInDisjointRounds) {
  for (Kind kind : {Kind::GPipe, Kind::OneFOneB, Kind::Interleaved, Kind::ZBH1,
                    Kind::ZBV, Kind::DualPipeV})
    for (int32_t stages : {2, 3, 4}) {
      SCOPED_TRACE(std::string(pipec::schedule::kindName(kind)) + " S=" +
                   std::to_string(stages));
      SyntheticPlan plan = planOf(kind, stages);
      ASSERT_EQ(plan.streams.size(), size_t(stages));
      pipert::CommLayout layout;
      ASSERT_TRUE(
          pipert::planComms(plan.streams, plan.manifest.groups, layout).ok());
      pipert::Status proof = pipert::checkCommLayout(plan.streams, layout);
      ASSERT_TRUE(proof.ok()) << proof.message();
      // Exactly the (src, dst, channel) triples the streams post.
      std::set<std::tuple<int32_t, int32_t, int32_t>> posted;
      for (const pipert::Stream &s : plan.streams)
        for (const pipert::Instr &in : s.instrs) {
          if (!pipert::isPostOp(in.op))
            continue;
          bool send = in.op == pipert::Opcode::SendAct ||
                      in.op == pipert::Opcode::SendGrad;
          bool act = in.op == pipert::Opcode::SendAct ||
                     in.op == pipert::Opcode::RecvAct;
          posted.insert({send ? s.rank : in.peer, send ? in.peer : s.rank,
                         act ? 0 : 1});
        }
      size_t pairs = 0, groups = 0;
      for (const pipert::CommSpec &c : layout.comms) {
        if (c.pair) {
          ++pairs;
          EXPECT_TRUE(posted.count(
              {c.members[0], c.members[1], int32_t(c.channel)}));
        } else {
          ++groups;
        }
        // Every member joins in the communicator's round, and only there.
        for (int32_t m : c.members)
          EXPECT_EQ(layout.colorOf(m, c.round),
                    int32_t(&c - layout.comms.data()));
      }
      EXPECT_EQ(pairs, posted.size());
      EXPECT_GE(groups, 1u) << "the norm's all-reduce has a group";
      // A rank joins one communicator per round at most, by construction
      // of colorOf; every communicator of the rank is found in some round.
      for (int32_t r = 0; r < layout.ranks; ++r) {
        size_t member = 0;
        for (const pipert::CommSpec &c : layout.comms)
          member += std::count(c.members.begin(), c.members.end(), r);
        EXPECT_EQ(layout.commsOf(r).size(), member);
      }
      for (const auto &[src, dst, ch] : posted)
        EXPECT_GE(layout.pairOf(src, dst, pipert::Channel(ch)), 0);
      EXPECT_EQ(layout.pairOf(0, 0, pipert::Channel::Activation), -1);
    }
}

TEST(CommLayout, AMismatchedRecvIsRefusedNamingBothSides) {
  SyntheticPlan plan = planOf(Kind::OneFOneB, 3);
  ASSERT_EQ(plan.streams.size(), 3u);
  pipert::CommLayout layout;
  ASSERT_TRUE(
      pipert::planComms(plan.streams, plan.manifest.groups, layout).ok());
  // Rank 1's second activation recv claims micro-batch 5.
  int seen = 0;
  for (pipert::Instr &in : plan.streams[1].instrs)
    if (in.op == pipert::Opcode::RecvAct && ++seen == 2)
      in.mb = 5;
  ASSERT_EQ(seen >= 2, true);
  pipert::Status s = pipert::checkCommLayout(plan.streams, layout);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("activation messages from rank 0 to rank 1: "
                             "operation 1 differs"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("meets rank 1 #"), std::string::npos)
      << s.message();
}

TEST(CommLayout, CollectivesInAnotherOrderAreRefused) {
  SyntheticPlan plan = planOf(Kind::OneFOneB, 2);
  // A second all-reduce of group 0 on both ranks, the buckets swapped on
  // rank 1: on one communicator they would meet crosswise.
  for (pipert::Stream &s : plan.streams) {
    std::vector<pipert::Instr> reduces;
    for (const pipert::Instr &in : s.instrs)
      if (in.op == pipert::Opcode::AllReduce)
        reduces.push_back(in);
    ASSERT_FALSE(reduces.empty());
    pipert::Instr extra = reduces[0];
    extra.mb = reduces[0].mb + 100;
    if (s.rank == 1)
      s.instrs.insert(s.instrs.begin() + 0, extra);
    else
      s.instrs.push_back(extra);
  }
  pipert::CommLayout layout;
  ASSERT_TRUE(
      pipert::planComms(plan.streams, plan.manifest.groups, layout).ok());
  pipert::Status s = pipert::checkCommLayout(plan.streams, layout);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("the collectives of group"), std::string::npos)
      << s.message();
}

/// The plan with a second group of the same two ranks, whose all-reduce
/// each rank issues after (or, `crosswise` on rank 1, before) group 0's.
SyntheticPlan withTwinGroup(bool crosswise) {
  SyntheticPlan plan = planOf(Kind::OneFOneB, 2);
  const int32_t twin = int32_t(plan.manifest.groups.size());
  plan.manifest.groups.push_back(plan.manifest.groups[0]);
  for (pipert::Stream &s : plan.streams) {
    auto it = std::find_if(s.instrs.begin(), s.instrs.end(),
                           [](const pipert::Instr &in) {
                             return in.op == pipert::Opcode::AllReduce &&
                                    in.chunk == 0;
                           });
    EXPECT_NE(it, s.instrs.end());
    pipert::Instr extra = *it;
    extra.chunk = twin;
    extra.mb = 0;
    const bool before = crosswise && s.rank == 1;
    s.instrs.insert(before ? it : it + 1, extra);
  }
  return plan;
}

TEST(CommLayout, GroupsWithTheSameMembersShareOneCommunicatorInOneOrder) {
  SyntheticPlan plan = withTwinGroup(false);
  ASSERT_EQ(plan.manifest.groups[0], (std::vector<int32_t>{0, 1}));
  pipert::CommLayout layout;
  ASSERT_TRUE(
      pipert::planComms(plan.streams, plan.manifest.groups, layout).ok());
  const int32_t twin = int32_t(plan.manifest.groups.size()) - 1;
  EXPECT_EQ(layout.groupOf(0), layout.groupOf(twin));
  const pipert::CommSpec &c = layout.comms[size_t(layout.groupOf(0))];
  EXPECT_EQ(c.groups, (std::vector<int32_t>{0, twin}));
  EXPECT_EQ(pipert::groupsName(c), "groups 0+" + std::to_string(twin));
  pipert::Status proof = pipert::checkCommLayout(plan.streams, layout);
  EXPECT_TRUE(proof.ok()) << proof.message();
}

TEST(CommLayout, GroupsMetCrosswiseKeepACommunicatorEach) {
  // Rank 1 issues the twin's all-reduce before group 0's: on one
  // communicator the two would meet crosswise, so each keeps its own.
  SyntheticPlan plan = withTwinGroup(true);
  pipert::CommLayout layout;
  ASSERT_TRUE(
      pipert::planComms(plan.streams, plan.manifest.groups, layout).ok());
  const int32_t twin = int32_t(plan.manifest.groups.size()) - 1;
  EXPECT_NE(layout.groupOf(0), layout.groupOf(twin));
  pipert::Status proof = pipert::checkCommLayout(plan.streams, layout);
  EXPECT_TRUE(proof.ok()) << proof.message();
  // Forced onto one communicator, the proof refuses them, naming both.
  pipert::CommLayout merged = layout;
  merged.groupIndex[size_t(twin)] = merged.groupIndex[0];
  merged.comms[size_t(merged.groupIndex[0])].groups.push_back(twin);
  pipert::Status bad = pipert::checkCommLayout(plan.streams, merged);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("the collectives of groups 0+"),
            std::string::npos)
      << bad.message();
}

TEST(CommLayout, AStreamNamingARankOutsideThePlanIsRefused) {
  SyntheticPlan plan = planOf(Kind::OneFOneB, 2);
  for (pipert::Instr &in : plan.streams[0].instrs)
    if (pipert::isPostOp(in.op)) {
      in.peer = 7;
      break;
    }
  pipert::CommLayout layout;
  pipert::Status s =
      pipert::planComms(plan.streams, plan.manifest.groups, layout);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("a message to rank 7 of 2"), std::string::npos)
      << s.message();
}

// Tests the compiler's layout as the processes see it: each rank's view,
// made from its own stream's table and nothing else, holds exactly its
// communicators of the whole layout (their ids, rounds, members, groups),
// and finds for every message and collective of its stream the
// communicator the whole layout gives it. No other rank's stream is read.
TEST(CommLayout, EachRanksViewFromItsOwnStreamIsItsPartOfTheWhole) {
  for (Kind kind : {Kind::GPipe, Kind::Interleaved, Kind::ZBV,
                    Kind::DualPipeV})
    for (int32_t stages : {2, 3, 4}) {
      SCOPED_TRACE(std::string(pipec::schedule::kindName(kind)) + " S=" +
                   std::to_string(stages));
      SyntheticPlan plan = planOf(kind, stages);
      pipert::CommLayout whole;
      ASSERT_TRUE(
          pipert::planComms(plan.streams, plan.manifest.groups, whole).ok());
      for (const pipert::Stream &s : plan.streams) {
        pipert::CommLayout view;
        pipert::Status made =
            pipert::commViewOf(s, plan.manifest.groups, view);
        ASSERT_TRUE(made.ok()) << made.message();
        EXPECT_EQ(view.rounds, whole.rounds);
        std::vector<int32_t> ids;
        for (const pipert::CommSpec &c : view.comms)
          ids.push_back(c.id);
        ASSERT_EQ(ids, whole.commsOf(s.rank));
        for (const pipert::CommSpec &c : view.comms) {
          const pipert::CommSpec &w = whole.comms[size_t(c.id)];
          EXPECT_EQ(c.members, w.members);
          EXPECT_EQ(c.round, w.round);
          EXPECT_EQ(c.pair, w.pair);
          if (c.pair)
            EXPECT_EQ(c.channel, w.channel);
          else
            EXPECT_EQ(c.groups, w.groups);
        }
        auto idOf = [&](int32_t local) {
          return local < 0 ? -1 : view.comms[size_t(local)].id;
        };
        for (int32_t k = 0; k < whole.rounds; ++k) {
          EXPECT_EQ(idOf(view.colorOf(s.rank, k)), whole.colorOf(s.rank, k));
          EXPECT_EQ(view.colorOf((s.rank + 1) % s.ranks, k), -1);
        }
        int checked = 0;
        for (const pipert::Instr &in : s.instrs) {
          if (pipert::isPostOp(in.op)) {
            bool send = in.op == pipert::Opcode::SendAct ||
                        in.op == pipert::Opcode::SendGrad;
            pipert::Channel ch = in.op == pipert::Opcode::SendAct ||
                                         in.op == pipert::Opcode::RecvAct
                                     ? pipert::Channel::Activation
                                     : pipert::Channel::Gradient;
            int32_t src = send ? s.rank : in.peer, dst = send ? in.peer : s.rank;
            EXPECT_EQ(idOf(view.pairOf(src, dst, ch)),
                      whole.pairOf(src, dst, ch));
            ++checked;
          } else if (pipert::isCollectiveOp(in.op)) {
            EXPECT_EQ(idOf(view.groupOf(in.chunk)), whole.groupOf(in.chunk));
            ++checked;
          }
        }
        EXPECT_GT(checked, 0);
      }
    }
}

// Tests that a stream without its table (built by hand, or by a compiler
// before stream version 4) and a table whose group is not the manifest's
// are refused by the view, naming what is missing.
TEST(CommLayout, AViewNeedsTheStreamsTableAndTheManifestsGroups) {
  SyntheticPlan plan = planOf(Kind::OneFOneB, 3);
  pipert::Stream bare = plan.streams[1];
  bare.comms.clear();
  bare.commRounds = 0;
  pipert::CommLayout view;
  pipert::Status s = pipert::commViewOf(bare, plan.manifest.groups, view);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("rank 1 #"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("no communicator in the stream's table (it has "
                             "none: a stream built by hand"),
            std::string::npos)
      << s.message();
  std::vector<std::vector<int32_t>> other = plan.manifest.groups;
  other[0].back() += 10; // as many members, another one
  s = pipert::commViewOf(plan.streams[1], other, view);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("has other members than the manifest's group"),
            std::string::npos)
      << s.message();
  other = plan.manifest.groups;
  other[0].pop_back(); // fewer: refused before the table's are listed
  s = pipert::commViewOf(plan.streams[1], other, view);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("has 3 members, not those of a group"),
            std::string::npos)
      << s.message();
  // A table that lost one pair: the message that needs it is named.
  pipert::Stream lost = plan.streams[1];
  for (size_t c = 0; c < lost.comms.size(); ++c)
    if (lost.comms[c].pair) {
      lost.comms.erase(lost.comms.begin() + long(c));
      break;
    }
  s = pipert::commViewOf(lost, plan.manifest.groups, view);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("the table does not match the stream"),
            std::string::npos)
      << s.message();
  // One group or one pair carried twice: which one would be used is not
  // defined, so the table is refused.
  for (bool pair : {false, true}) {
    pipert::Stream twice = plan.streams[1];
    pipert::StreamComm copy;
    for (const pipert::StreamComm &c : twice.comms)
      if (c.pair == pair)
        copy = c;
    ASSERT_EQ(copy.memberCount(), pair ? 2 : 3);
    copy.id = twice.comms.back().id + 1;
    copy.round = twice.commRounds;
    twice.commRounds += 1;
    twice.comms.push_back(copy);
    s = pipert::commViewOf(twice, plan.manifest.groups, view);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find(pair ? "are the same pair and channel"
                                    : "is carried by two communicators"),
              std::string::npos)
        << s.message();
  }
}

} // namespace
