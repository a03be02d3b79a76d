//===- GoodputTest.cpp - the useful fraction against a simulated run ------===//
//
// compiler/schedule/Goodput.h's closed form checked against a Monte Carlo
// run of the process it describes, its limits (no failures: tau / (tau +
// delta); delta << M: Young's and Daly's intervals), the best interval
// against its neighbours, and the refusals of pipec-sim --goodput.
//
//===----------------------------------------------------------------------===//

#include "compiler/schedule/Goodput.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace pipec::schedule {
namespace {

/// The process itself: segments of tau seconds of work then a checkpoint
/// of delta; a failure (exponential, mean M) at any time, checkpoints and
/// restarts included, costs the segment's progress and a restart of R
/// (which may fail too). Returns work over wall time.
double simulated(double m, double tau, double delta, double r,
                 int64_t segments, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> next(1.0 / m);
  double wall = 0;
  for (int64_t done = 0; done < segments;) {
    const double x = next(rng);
    if (x >= tau + delta) {
      wall += tau + delta;
      ++done;
      continue;
    }
    wall += x;
    while (true) { // restart until one completes
      const double y = next(rng);
      if (y >= r) {
        wall += r;
        break;
      }
      wall += y;
    }
  }
  return double(segments) * tau / wall;
}

FailureModel model(int64_t gpus, double perGpuHour, double delta, double r) {
  FailureModel f;
  f.gpus = gpus;
  f.failuresPerGpuHour = perGpuHour;
  f.checkpointSeconds = delta;
  f.restartSeconds = r;
  return f;
}

TEST(Goodput, MtbfIsTheGpusRateInverted) {
  // Llama 3: 419 unexpected interruptions in 54 days on 16,384 GPUs, about
  // one every 3.09 hours.
  const double rate = 419.0 / (16384.0 * 54 * 24);
  EXPECT_NEAR(jobMtbfSeconds(model(16384, rate, 0, 0)), 54.0 * 24 * 3600 / 419,
              1e-6);
  EXPECT_NEAR(jobMtbfSeconds(model(2, 0.5, 0, 0)), 3600.0, 1e-9);
}

TEST(Goodput, ClosedFormMatchesASimulatedRun) {
  // M = 1 h on 1,000 GPUs; checkpoints of 1 min, restarts of 5 min.
  const FailureModel f = model(1000, 1e-3, 60, 300);
  for (double tau : {120.0, 600.0, 1800.0, 5400.0}) {
    const double sim = simulated(3600, tau, 60, 300, 400000, 7);
    EXPECT_NEAR(usefulFraction(f, tau), sim, 0.01 * sim) << "tau " << tau;
  }
}

TEST(Goodput, NoFailuresLeavesOnlyTheCheckpoints) {
  const FailureModel f = model(1, 1e-12, 10, 600);
  EXPECT_NEAR(usefulFraction(f, 100), 100.0 / 110, 1e-6);
  EXPECT_NEAR(usefulFraction(f, 990), 0.99, 1e-6);
}

TEST(Goodput, BestIntervalIsYoungsAndDalysWhenCheckpointsAreCheap) {
  // M = 1e6 s, delta = 10 s: Young sqrt(2 delta M) = 4472 s; Daly's higher
  // order estimate sqrt(2 delta M) (1 + sqrt(delta / 2M) / 3 + delta /
  // 18M) - delta.
  const double m = 1e6, delta = 10;
  const FailureModel f = model(1, 3600 / m, delta, 120);
  const Goodput g = bestGoodput(f, 1.0);
  const double young = std::sqrt(2 * delta * m);
  const double daly =
      young * (1 + std::sqrt(delta / (2 * m)) / 3 + delta / (18 * m)) - delta;
  EXPECT_NEAR(g.youngSeconds, young, 1e-6);
  EXPECT_NEAR(g.intervalSeconds, daly, 0.005 * daly);
  EXPECT_NEAR(g.mtbfSeconds, m, 1e-6);
  EXPECT_NEAR(g.usefulFraction, usefulFraction(f, g.intervalSeconds), 1e-15);
}

TEST(Goodput, BestWholeStepsBeatTheirNeighbours) {
  // 220,000 GPUs at Llama 3's rate fail every 14 minutes.
  const FailureModel f = model(220000, 1.97e-5, 60, 600);
  for (double step : {0.7, 3.1, 13.0}) {
    const Goodput g = bestGoodput(f, step);
    ASSERT_GE(g.intervalSteps, 1);
    EXPECT_DOUBLE_EQ(g.intervalSeconds, double(g.intervalSteps) * step);
    const double u = g.usefulFraction;
    EXPECT_GT(u, 0);
    EXPECT_LT(u, 1);
    EXPECT_GE(u, usefulFraction(f, double(g.intervalSteps + 1) * step));
    if (g.intervalSteps > 1) {
      EXPECT_GE(u, usefulFraction(f, double(g.intervalSteps - 1) * step));
    }
    for (double k : {0.5, 2.0})
      EXPECT_GT(u, usefulFraction(f, k * g.intervalSeconds));
  }
}

TEST(Goodput, ARestartLongerThanFailuresKeepsNothing) {
  // M = 36 s, restarts of 10 h: e^1000 overflows; the fraction is 0.
  EXPECT_EQ(usefulFraction(model(100, 1, 60, 36000), 60), 0.0);
}

TEST(Goodput, ParsesAndRefuses) {
  FailureModel f;
  EXPECT_EQ(parseFailureModel("16384,1.97e-5,60,600", f), "");
  EXPECT_EQ(f.gpus, 16384);
  EXPECT_DOUBLE_EQ(f.failuresPerGpuHour, 1.97e-5);
  EXPECT_DOUBLE_EQ(f.checkpointSeconds, 60);
  EXPECT_DOUBLE_EQ(f.restartSeconds, 600);
  for (const char *bad :
       {"", "1,0,1,1", "1.5,1e-5,1,1", "0,1e-5,1,1", "1,1e-5,1",
        "1,1e-5,1,1,1", "a,b,c,d", "1,1e-5,-1,0", "1,1e-5,1,nan",
        "1,1e-5,,1", "1,1e999,1,1", "1,1e-5,1e10,1"}) {
    const std::string why = parseFailureModel(bad, f);
    EXPECT_NE(why.find("--goodput must be"), std::string::npos) << bad;
  }
  // A job that practically never fails: refused, not an overflow.
  EXPECT_NE(parseFailureModel("10,1e-305,60,600", f).find("less than once"),
            std::string::npos);
  EXPECT_EQ(parseFailureModel("100,1e-10,60,600", f), "");
  const Goodput g = bestGoodput(f, 1e-3);
  EXPECT_GT(g.usefulFraction, 0.9999);
  EXPECT_GE(g.intervalSteps, 1);
}

} // namespace
} // namespace pipec::schedule
