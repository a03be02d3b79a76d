//===- CheckpointBarrierTest.cpp - checkpoints at step boundaries ---------===//
//
// RunOptions::checkpoint as the executor drives it: every rank holds at the
// boundary while the callback reads the arenas, so what it reads after k
// steps is exactly the state of a run of k steps (no rank ahead, none
// behind); a failing checkpoint fails the run with its words; a stop
// request with stopAtStepBoundary ends every rank at one boundary, which
// is checkpointed, instead of mid-step.
//
//===----------------------------------------------------------------------===//

#include "SyntheticModel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <map>
#include <memory>
#include <vector>

using namespace pipec::testing;

namespace {

/// Every parameter's bytes, in manifest order.
std::vector<uint8_t> params(const pipert::Executor &exec) {
  std::vector<uint8_t> out;
  pipert::Status s = readParameters(exec, out);
  EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

/// The parameters after `steps` steps of an uninterrupted run.
std::vector<uint8_t> paramsAfter(const SyntheticPlan &plan, int64_t steps) {
  std::vector<double> metrics;
  std::vector<uint8_t> out;
  pipert::Status s = trainForBits(plan, nullptr, nullptr, steps, metrics, out);
  EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

/// The synthetic ZB-V plan on 2 ranks, loaded, and run options whose
/// checkpoint records the weights it reads at each boundary in `seen`.
struct CheckpointedRun {
  SyntheticPlan plan;
  std::unique_ptr<pipert::Executor> exec;
  std::map<int64_t, std::vector<uint8_t>> seen;

  CheckpointedRun() {
    PlanOptions po;
    po.kind = pipec::schedule::Kind::ZBV;
    po.stages = 2;
    po.microbatches = 4;
    EXPECT_EQ(buildPlan(po, plan), "");
    pipert::Status s =
        pipert::Executor::create(plan.manifest, plan.streams, exec);
    EXPECT_TRUE(s.ok()) << s.message();
  }
  pipert::RunOptions options(int64_t steps) {
    pipert::RunOptions o;
    o.steps = steps;
    o.cores = 2;
    o.checkpoint = [this](int64_t done) {
      seen[done] = params(*exec);
      return pipert::Status::success();
    };
    return o;
  }
};

std::atomic<int> signalled{0};
int stopRequested() { return signalled.load(); }

/// The synthetic kernels, raising SIGTERM (as the signal handler would)
/// in rank 0's third optimizer step.
class SignallingKernels : public SyntheticKernels {
public:
  using SyntheticKernels::SyntheticKernels;
  pipert::Status optStep(const pipert::RankContext &ctx) override {
    if (ctx.rank == 0 && ++steps == 3)
      signalled = SIGTERM;
    return SyntheticKernels::optStep(ctx);
  }
  int steps = 0;
};

} // namespace

TEST(CheckpointBarrier, EachCheckpointSeesExactlyItsSteps) {
  CheckpointedRun run;
  auto &[plan, exec, seen] = run;
  SyntheticKernels kernels(plan);
  pipert::RunOptions o = run.options(7);
  o.checkpointEvery = 2;
  pipert::RunResult result;
  pipert::Status s = exec->run(kernels, o, result);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(seen.size(), 3u); // after 2, 4, 6: not after 7
  for (const auto &[steps, bytes] : seen)
    EXPECT_TRUE(bytes == paramsAfter(plan, steps))
        << "the checkpoint after " << steps << " steps saw other weights";
  // Counted from the training's first step: a continued run checkpoints
  // after 8 (its first step is 7).
  seen.clear();
  o.steps = 2;
  s = exec->run(kernels, o, result);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.begin()->first, 8);
}

TEST(CheckpointBarrier, AFailingCheckpointFailsTheRun) {
  CheckpointedRun run;
  SyntheticKernels kernels(run.plan);
  pipert::RunOptions o = run.options(6);
  o.checkpointEvery = 2;
  o.checkpoint = [&](int64_t steps) {
    return steps == 4 ? pipert::Status::failure("disk full at step 4")
                      : pipert::Status::success();
  };
  pipert::RunResult result;
  pipert::Status s = run.exec->run(kernels, o, result);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("disk full at step 4"), std::string::npos)
      << s.message();
  EXPECT_EQ(result.steps.size(), 4u);
}

TEST(CheckpointBarrier, AStopEndsEveryRankAtOneBoundary) {
  CheckpointedRun run;
  auto &[plan, exec, seen] = run;
  SignallingKernels kernels(plan);
  signalled = 0;
  pipert::RunOptions o = run.options(1000);
  o.stopRequested = stopRequested;
  o.stopAtStepBoundary = true;
  pipert::RunResult result;
  pipert::Status s = exec->run(kernels, o, result);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(result.stopSignal, SIGTERM);
  EXPECT_NE(s.message().find("stopped by SIGTERM"), std::string::npos)
      << s.message();
  // One checkpoint, at the boundary where every rank stopped: the weights
  // of a run of exactly that many steps, all of which were reported.
  ASSERT_EQ(seen.size(), 1u) << s.message();
  int64_t boundary = seen.begin()->first;
  EXPECT_GE(boundary, 3);
  EXPECT_EQ(int64_t(result.steps.size()), boundary);
  EXPECT_TRUE(seen.begin()->second == paramsAfter(plan, boundary));
  EXPECT_EQ(exec->stepsDone(), boundary);
}

// A stop asked before the first step: every rank ends at the first boundary
// the monitor can fix (no rank may be past it: at step 0 when no rank has
// begun), and the checkpoint the stop promises is written there, holding
// exactly the steps reported.
TEST(CheckpointBarrier, AStopAtTheStartEndsAtTheFirstBoundary) {
  CheckpointedRun run;
  auto &[plan, exec, seen] = run;
  SyntheticKernels kernels(plan);
  signalled = SIGINT;
  pipert::RunOptions o = run.options(20);
  o.stopRequested = stopRequested;
  o.stopAtStepBoundary = true;
  o.checkpointEvery = 2;
  pipert::RunResult result;
  pipert::Status s = exec->run(kernels, o, result);
  signalled = 0;
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(result.stopSignal, SIGINT);
  ASSERT_FALSE(seen.empty()) << s.message();
  int64_t boundary = seen.rbegin()->first;
  EXPECT_LE(boundary, 8) << "ranks run at most 8 steps ahead";
  EXPECT_EQ(int64_t(result.steps.size()), boundary);
  EXPECT_TRUE(seen.rbegin()->second == paramsAfter(plan, boundary));
  EXPECT_NE(s.message().find("(checkpoint written)"), std::string::npos)
      << s.message();
}
