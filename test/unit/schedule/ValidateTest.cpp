//===- ValidateTest.cpp - broken schedules are rejected with reasons ----===//

#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"
#include "compiler/schedule/Validate.h"

#include <gtest/gtest.h>

using namespace pipec::schedule;

namespace {

static Schedule make(Kind kind, int32_t p, int32_t m) {
  ComputePlan plan;
  GenerateOptions opt{kind, p, m, 0, 0};
  EXPECT_EQ(generatePlan(opt, plan), "");
  return lowerPlan(plan);
}

static std::string verify(const Schedule &s) {
  MachineResult res;
  return verifySchedule(s, Costs::uniform(s.placement.chunks, 1, 1, 1), res);
}

static size_t find(const std::vector<Instr> &v, Op op, int32_t chunk,
                   int32_t mb) {
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i].op == op && v[i].chunk == chunk && v[i].mb == mb)
      return i;
  ADD_FAILURE() << "instruction not found";
  return 0;
}

TEST(Validate, EveryGeneratedKindVerifies) {
  for (Kind k : {Kind::GPipe, Kind::OneFOneB, Kind::Interleaved, Kind::ZBH1,
                 Kind::ZBV, Kind::DualPipeV})
    EXPECT_EQ(verify(make(k, 4, 8)), "") << kindName(k);
}

TEST(Validate, BackwardBeforeForwardNamesRankAndInstruction) {
  Schedule s = make(Kind::OneFOneB, 2, 3);
  auto &st = s.streams[1];
  size_t f = find(st, Op::Fwd, 1, 0), b = find(st, Op::BwdB, 1, 0);
  std::swap(st[f], st[b]);
  std::string err = verify(s);
  EXPECT_NE(err.find("rank 1 #" + std::to_string(f) + " bwd_b(chunk 1, mb 0)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("a backward before its forward"), std::string::npos);
}

TEST(Validate, MissingActionIsNamed) {
  Schedule s = make(Kind::ZBH1, 3, 4);
  auto &st = s.streams[2];
  st.erase(st.begin() + find(st, Op::BwdW, 2, 3));
  std::string err = verify(s);
  EXPECT_NE(err.find("rank 2 #"), std::string::npos) << err;
  EXPECT_NE(err.find("opt_step before bwd_w(chunk 2, mb 3)"), std::string::npos)
      << err;
  // Without the optimizer step the completeness check names it.
  LowerOptions noOpt;
  noOpt.optimizerStep = false;
  ComputePlan plan;
  GenerateOptions opt{Kind::ZBH1, 3, 4, 0, 0};
  ASSERT_EQ(generatePlan(opt, plan), "");
  Schedule bare = lowerPlan(plan, noOpt);
  auto &st2 = bare.streams[2];
  st2.erase(st2.begin() + find(st2, Op::BwdW, 2, 3));
  err = verify(bare);
  EXPECT_EQ(err, "rank 2 never runs bwd_w(chunk 2, mb 3) (a missing action)");
}

TEST(Validate, DuplicatedSendIsRejected) {
  Schedule s = make(Kind::OneFOneB, 2, 2);
  auto &st = s.streams[0];
  size_t i = find(st, Op::SendAct, 0, 1);
  Instr dup = st[i];
  dup.req = 1000;
  st.insert(st.begin() + i + 1, dup);
  std::string err = verify(s);
  EXPECT_NE(err.find("rank 0 #" + std::to_string(i + 1)), std::string::npos)
      << err;
  EXPECT_NE(err.find("duplicated communication"), std::string::npos) << err;
}

TEST(Validate, ChannelOrderDisagreementIsRejected) {
  Schedule s = make(Kind::GPipe, 2, 3);
  auto &st = s.streams[1];
  size_t a = find(st, Op::RecvAct, 0, 0), b = find(st, Op::RecvAct, 0, 1);
  std::swap(st[a], st[b]);
  std::string err = verify(s);
  EXPECT_NE(err.find("different orders"), std::string::npos) << err;
}

/// A dependency cycle passes every per-rank check and is caught by the
/// machine, which names both ranks, their instructions and the cycle.
TEST(Validate, DependencyCycleIsADeadlockWithItsCycle) {
  ComputePlan plan;
  plan.kind = Kind::Csv;
  plan.microbatches = 2;
  plan.placement = linearPlacement(2);
  plan.order = {
      {{Phase::F, 0, 0}, {Phase::FullBackward, 0, 0}, {Phase::F, 0, 1},
       {Phase::FullBackward, 0, 1}},
      {{Phase::F, 1, 0}, {Phase::F, 1, 1}, {Phase::FullBackward, 1, 0},
       {Phase::FullBackward, 1, 1}}};
  ASSERT_EQ(checkPlan(plan), "");
  Schedule s = lowerPlan(plan);
  EXPECT_EQ(validateStreams(s), "");
  MachineResult res = runMachine(s, Costs::uniform(2, 1, 1, 1));
  EXPECT_EQ(res.verdict, Verdict::Deadlock);
  EXPECT_NE(res.message.find("rank 0 #"), std::string::npos) << res.message;
  EXPECT_NE(res.message.find("wait(recv_grad from 1, chunk 1, mb 0)"),
            std::string::npos)
      << res.message;
  EXPECT_NE(res.message.find("wait(recv_act from 0, chunk 0, mb 1)"),
            std::string::npos)
      << res.message;
  EXPECT_NE(res.message.find("cycle: rank 0 -> rank 1 -> rank 0"),
            std::string::npos)
      << res.message;
}

TEST(Validate, PlanChecksNameTheStep) {
  ComputePlan plan;
  GenerateOptions opt{Kind::OneFOneB, 2, 2, 0, 0};
  ASSERT_EQ(generatePlan(opt, plan), "");
  plan.order[1].push_back({Phase::W, 1, 0});
  EXPECT_NE(checkPlan(plan).find("rank 1 step 4 (W1.0) duplicates W"),
            std::string::npos)
      << checkPlan(plan);
  plan.order[1].pop_back();
  plan.order[0][0].chunk = 1;
  EXPECT_NE(checkPlan(plan).find("placed on rank 1"), std::string::npos);
}

} // namespace
