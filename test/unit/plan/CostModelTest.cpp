//===- CostModelTest.cpp - the roofline and the targets -------------------===//

#include "compiler/plan/CostModel.h"

#include <gtest/gtest.h>

using namespace pipec::plan;

TEST(CostModel, Targets) {
  Rates r;
  EXPECT_TRUE(ratesForTarget("cpu", r));
  EXPECT_EQ(r.name, "cpu");
  EXPECT_TRUE(ratesForTarget("cuda", r));
  EXPECT_GT(r.flopsPerSec, 1e12);
  EXPECT_FALSE(ratesForTarget("tpu", r));
}

TEST(CostModel, Roofline) {
  Rates r{"test", 100.0, 10.0, 0.5, 4.0, 1.0};
  // Compute bound: 1000 FLOPs / 100 = 10 s beats 20 bytes / 10 = 2 s.
  EXPECT_DOUBLE_EQ(kernelTime(r, 1000, 20), 10.5);
  // Memory bound.
  EXPECT_DOUBLE_EQ(kernelTime(r, 10, 200), 20.5);
  // A view moves nothing and costs nothing.
  EXPECT_DOUBLE_EQ(kernelTime(r, 0, 0), 0.0);
  EXPECT_DOUBLE_EQ(messageTime(r, 8), 3.0);
  EXPECT_DOUBLE_EQ(messageTime(r, 0), 0.0);
}
