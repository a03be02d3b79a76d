//===- LogicalShapeTest.cpp - padded parameters in the runtime ------------===//
//
// A parameter padded for aligned GEMMs (--nn-pad-vocab) is drawn in its
// model shape by logical index, the padding zero, whether the arena is the
// host's or a device's (through the target's copy); the manifest carries
// the logical shape and refuses one that does not fit; the scatter and
// gather helpers are each other's inverse on odd shapes.
//
//===----------------------------------------------------------------------===//

#include "SyntheticModel.h"

#include "pipert/Executor.h"
#include "pipert/Init.h"
#include "pipert/LogicalShape.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <numeric>

using namespace pipec::testing;

TEST(LogicalShape, ScatterAndGatherAreInverse) {
  for (const auto &[logical, padded] :
       std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>>{
           {{131, 5}, {256, 5}},
           {{5, 131}, {5, 256}},
           {{131}, {256}},
           {{3, 7, 2}, {4, 9, 2}},
           {{4, 4}, {4, 4}}}) {
    std::vector<float> dense(size_t(pipert::elementsOf(logical)));
    std::iota(dense.begin(), dense.end(), 1.0f);
    std::vector<float> stored(size_t(pipert::elementsOf(padded)), -1.0f);
    pipert::scatterLogical(dense.data(), logical, stored.data(), padded);
    // Every logical element at its padded index; everything else zero.
    int64_t nonzero = 0;
    for (float v : stored)
      nonzero += v != 0.0f;
    EXPECT_EQ(nonzero, int64_t(dense.size()));
    if (logical.size() >= 2 && logical[logical.size() - 2] >= 2) {
      int64_t inner = logical.back(), innerPadded = padded.back();
      EXPECT_EQ(stored[size_t(innerPadded)], dense[size_t(inner)])
          << "row 1 starts at the padded stride";
    }
    std::vector<float> back(dense.size(), 0.0f);
    pipert::gatherLogical(stored.data(), padded, back.data(), logical);
    EXPECT_EQ(back, dense);
  }
  EXPECT_TRUE(pipert::fitsIn({131, 64}, {256, 64}));
  EXPECT_FALSE(pipert::fitsIn({257, 64}, {256, 64}));
  EXPECT_FALSE(pipert::fitsIn({131}, {256, 64}));
}

TEST(LogicalShape, PaddedParameterIsDrawnLogicallyWithZeroPadding) {
  SyntheticPlan plan;
  PlanOptions po;
  po.stages = 2;
  ASSERT_EQ(buildPlan(po, plan), "");
  // The first weight, [D, D] stored, holds a [D - 3, D - 5] model tensor.
  pipert::Manifest m = plan.manifest;
  pipert::ParamInfo &w = m.params.front();
  ASSERT_EQ(w.shape.size(), 2u);
  const std::vector<int64_t> logical = {w.shape[0] - 3, w.shape[1] - 5};
  w.logicalShape = logical;
  std::vector<float> expected(size_t(pipert::elementsOf(logical)));
  ASSERT_TRUE(pipert::initParameter(expected.data(), 0,
                                    int64_t(expected.size()), m.train.seed,
                                    w.name, w.init, w.std));
  pipert::ArenaAllocator device = hostBackedDeviceArenas();
  for (bool onDevice : {false, true}) {
    std::unique_ptr<pipert::Executor> exec;
    pipert::Status st = pipert::Executor::create(
        m, plan.streams, exec, -1, onDevice ? &device : nullptr);
    ASSERT_TRUE(st.ok()) << st.message();
    std::vector<float> stored(size_t(pipert::elementsOf(w.shape)));
    ASSERT_TRUE(exec->readArena(w.rank, w.offset, stored.data(), w.bytes).ok());
    for (int64_t i = 0; i < w.shape[0]; ++i)
      for (int64_t j = 0; j < w.shape[1]; ++j) {
        float v = stored[size_t(i * w.shape[1] + j)];
        if (i < logical[0] && j < logical[1])
          ASSERT_EQ(v, expected[size_t(i * logical[1] + j)])
              << "(" << i << ", " << j << ") on " << (onDevice ? "device" : "host");
        else
          ASSERT_EQ(v, 0.0f) << "padding (" << i << ", " << j << ")";
      }
  }
}

TEST(LogicalShape, ManifestCarriesItAndRefusesOneThatDoesNotFit) {
  SyntheticPlan plan;
  PlanOptions po;
  ASSERT_EQ(buildPlan(po, plan), "");
  pipert::Manifest m = plan.manifest;
  m.params.front().logicalShape = {m.params.front().shape[0] - 1,
                                   m.params.front().shape[1]};
  std::string text = pipert::manifestToJson(m);
  pipert::Manifest back;
  pipert::Status st = pipert::parseManifest(text, "manifest.json", back);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(back.params.front().logicalShape, m.params.front().logicalShape);
  EXPECT_TRUE(back.params[1].logicalShape.empty());

  m.params.front().logicalShape = {m.params.front().shape[0] + 1,
                                   m.params.front().shape[1]};
  st = pipert::parseManifest(pipert::manifestToJson(m), "manifest.json", back);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("logical_shape"), std::string::npos)
      << st.message();
}
