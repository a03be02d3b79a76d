//===- LrMetricsTest.cpp - LR schedule values and the metrics.jsonl lines -===//

#include "pipert/LrSchedule.h"
#include "pipert/Metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace pipert;

namespace {

TEST(LrSchedule, WarmupCosineAndHorizon) {
  LrSchedule s{1e-3, 1e-4, 10, 1000, true};
  EXPECT_DOUBLE_EQ(s.at(0), 1e-4);
  EXPECT_DOUBLE_EQ(s.at(4), 5e-4);
  EXPECT_DOUBLE_EQ(s.at(9), 1e-3);
  EXPECT_DOUBLE_EQ(s.at(10), 1e-3);
  // Half way through the decay: the mean of lr and min_lr.
  EXPECT_DOUBLE_EQ(s.at(505), 5.5e-4);
  double p = 190.0 / 990.0;
  EXPECT_DOUBLE_EQ(s.at(200), 1e-4 + 0.5 * 9e-4 * (1 + std::cos(M_PI * p)));
  EXPECT_DOUBLE_EQ(s.at(1000), 1e-4);
  EXPECT_DOUBLE_EQ(s.at(5000), 1e-4);
}

TEST(LrSchedule, ConstantAndDegenerateHorizon) {
  LrSchedule c{3e-4, 0, 2, 100, false};
  EXPECT_DOUBLE_EQ(c.at(0), 1.5e-4);
  EXPECT_DOUBLE_EQ(c.at(50), 3e-4);
  // decay_steps <= warmup: max(1, ...) keeps the division defined.
  LrSchedule d{1e-3, 2e-4, 5, 5, true};
  EXPECT_DOUBLE_EQ(d.at(5), 1e-3);
  EXPECT_DOUBLE_EQ(d.at(6), 2e-4);
  LrSchedule none{1e-3, 0, 0, 10, true};
  EXPECT_DOUBLE_EQ(none.at(0), 1e-3);
}

TEST(Metrics, NumbersRoundTripExactly) {
  for (double v : {0.1, 5.545177444479562, 1e-300, -3.25e12, 2.0 / 3.0}) {
    std::string s = formatNumber(v);
    EXPECT_EQ(std::strtod(s.c_str(), nullptr), v) << s;
  }
  EXPECT_EQ(formatNumber(NAN), "NaN");
  EXPECT_EQ(formatNumber(-INFINITY), "-Infinity");
}

TEST(Metrics, WriterCreatesDirectoryAndLines) {
  std::string dir = ::testing::TempDir() + "/pipert-metrics/a/b";
  std::remove((dir + "/metrics.jsonl").c_str()); // a previous run's
  MetricsWriter w;
  std::string error;
  ASSERT_TRUE(w.open(dir, error)) << error;
  ASSERT_TRUE(w.write({0, 5.5451774444795623, 1e-4, 0.75, 12.5}, error))
      << error;
  ASSERT_TRUE(w.write({1, 5.25, 2e-4, 1.5, 3}, error)) << error;
  // The log appears whole when it is closed, never torn (AtomicFile.h).
  EXPECT_FALSE(std::ifstream(dir + "/metrics.jsonl").good());
  ASSERT_TRUE(w.close(error)) << error;
  std::ifstream in(dir + "/metrics.jsonl");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(),
            "{\"step\": 0, \"loss\": 5.5451774444795623, \"lr\": "
            "0.0001, \"grad_norm\": 0.75, \"ms\": 12.5}\n"
            "{\"step\": 1, \"loss\": 5.25, \"lr\": 0.00020000000000000001, "
            "\"grad_norm\": 1.5, \"ms\": 3}\n");
}

TEST(Metrics, UncreatableDirectoryIsAnError) {
  std::string file = ::testing::TempDir() + "/pipert-metrics-file";
  std::ofstream(file) << "x";
  MetricsWriter w;
  std::string error;
  EXPECT_FALSE(w.open(file + "/sub", error));
  EXPECT_NE(error.find("cannot create the log directory"), std::string::npos)
      << error;
}

} // namespace
