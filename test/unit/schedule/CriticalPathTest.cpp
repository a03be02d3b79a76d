//===- CriticalPathTest.cpp - the replay's critical path
//-------------------===//
//
// Each recorded span names the span its start waited for (Span::pred);
// followed back from the span that ends last, they are the step's critical
// path. With free communication the path is the step: its spans abut, and
// their durations add up to the step time exactly. With a message cost, the
// path's gaps are whole messages.
//
//===----------------------------------------------------------------------===//

#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"
#include "compiler/schedule/Machine.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace pipec::schedule;

namespace {

/// The path's spans, first to last (criticalPath gives their indices).
std::vector<Span> criticalSpans(const MachineResult &r) {
  std::vector<Span> path;
  for (int32_t i : criticalPath(r))
    path.push_back(r.spans[size_t(i)]);
  return path;
}

struct Case {
  Kind kind;
  int32_t stages, microbatches, chunksPerRank;
};

const Case kCases[] = {
    {Kind::GPipe, 4, 8, 0},       {Kind::OneFOneB, 4, 8, 0},
    {Kind::Interleaved, 4, 8, 2}, {Kind::ZBH1, 4, 8, 0},
    {Kind::ZBV, 4, 8, 0},         {Kind::DualPipeV, 4, 8, 0}};

MachineResult replay(const Case &c, double comm) {
  GenerateOptions opt;
  opt.kind = c.kind;
  opt.stages = c.stages;
  opt.microbatches = c.microbatches;
  opt.chunksPerRank = c.chunksPerRank;
  ComputePlan plan;
  EXPECT_EQ(generatePlan(opt, plan), "") << kindName(c.kind);
  Schedule s = lowerPlan(plan);
  // Unequal phases, so that the path is not any rank's stream alone.
  Costs costs = Costs::uniform(plan.placement.chunks, 1.0, 1.5, 0.75);
  costs.f[0] = 1.25;
  costs.actComm = costs.gradComm = comm;
  MachineResult r = runMachine(s, costs, /*recordSpans=*/true);
  EXPECT_EQ(r.verdict, Verdict::Completed) << r.message;
  return r;
}

} // namespace

TEST(CriticalPath, WithFreeMessagesItIsTheStep) {
  for (const Case &c : kCases) {
    MachineResult r = replay(c, 0);
    std::vector<Span> path = criticalSpans(r);
    ASSERT_FALSE(path.empty()) << kindName(c.kind);
    EXPECT_EQ(path.front().start, 0) << kindName(c.kind);
    EXPECT_EQ(path.back().end, r.stepTime) << kindName(c.kind);
    double sum = 0;
    bool crosses = false;
    for (size_t i = 0; i < path.size(); ++i) {
      sum += path[i].end - path[i].start;
      if (i > 0) {
        EXPECT_EQ(path[i].start, path[i - 1].end)
            << kindName(c.kind) << " span " << i;
        crosses |= path[i].rank != path[i - 1].rank;
      }
    }
    EXPECT_DOUBLE_EQ(sum, r.stepTime) << kindName(c.kind);
    EXPECT_TRUE(crosses) << kindName(c.kind) << ": a pipeline's path "
                         << "crosses ranks";
  }
}

TEST(CriticalPath, ItsGapsAreWholeMessages) {
  const double comm = 0.125;
  for (const Case &c : kCases) {
    MachineResult r = replay(c, comm);
    std::vector<Span> path = criticalSpans(r);
    ASSERT_FALSE(path.empty()) << kindName(c.kind);
    EXPECT_EQ(path.back().end, r.stepTime) << kindName(c.kind);
    EXPECT_EQ(path.front().start, 0) << kindName(c.kind);
    double sum = 0;
    int messages = 0;
    for (size_t i = 0; i < path.size(); ++i) {
      sum += path[i].end - path[i].start;
      if (i == 0)
        continue;
      const double gap = path[i].start - path[i - 1].end;
      EXPECT_GE(gap, 0) << kindName(c.kind) << " span " << i;
      const double hops = gap / comm;
      EXPECT_EQ(hops, std::round(hops)) << kindName(c.kind) << " span " << i;
      messages += int(std::round(hops));
    }
    EXPECT_GT(messages, 0) << kindName(c.kind);
    EXPECT_DOUBLE_EQ(sum + messages * comm, r.stepTime) << kindName(c.kind);
  }
}
