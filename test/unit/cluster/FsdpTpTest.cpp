//===- FsdpTpTest.cpp - the FSDP + tensor-parallel model, by hand ---------===//

#include "compiler/cluster/FsdpTp.h"

#include <gtest/gtest.h>

using namespace pipec::cluster;

namespace {

/// The hand-worked cluster of ClusterTest: 1000 TFLOP/s at 50% for GEMMs,
/// 4 TB/s at 50%, 80 GiB; NVLink 1 us a step and 400 GB/s of bus bandwidth
/// in domains of 8; the network 10 us and 50 GB/s.
Cluster cluster() {
  Cluster c;
  c.name = "hand";
  c.gpus = 1 << 20;
  c.domainGpus = 8;
  c.gpu.tensorFlops = 1000e12;
  c.gpu.vectorFlops = 50e12;
  c.gpu.hbmBytesPerSec = 4e12;
  c.gpu.memoryBytes = int64_t(80) << 30;
  c.gpu.gemmEfficiency = 0.5;
  c.gpu.attentionEfficiency = 0.25;
  c.gpu.memoryEfficiency = 0.5;
  c.nvlink.allReduce = {1e-6, 400e9, {}, "hand"};
  c.scaleOut.allReduce = {10e-6, 50e9, {}, "hand"};
  return c;
}

/// A model of 2 layers whose sequence (1024 x 1024) is all GEMM work:
/// 1e12 FLOPs a sequence, 1 GB of fp32 masters (0.5 GB bf16 copies).
ModelWork model() {
  ModelWork m;
  m.perSequence.gemmFlops = 1e12;
  m.paramBytes = 1e9;
  m.copyBytes = 5e8;
  m.layers = 2;
  m.seq = 1024;
  m.hidden = 1024;
  m.flopsPerSequence = 1e12;
  return m;
}

} // namespace

// 64 GPUs, t = 8 (f = 8 groups, one domain each), 64 sequences: 8 a group.
TEST(FsdpTp, AStepWorkedByHand) {
  const Cluster c = cluster();
  const ModelWork m = model();
  FsdpTpResult r = fsdpTpStep(c, m, 64, 8, 64);
  ASSERT_TRUE(r.fits) << r.why;
  EXPECT_EQ(r.fsdp, 8);
  EXPECT_EQ(r.sequencesPerGroup, 8);
  // 8 sequences' 8e12 FLOPs over 8 GPUs at 500 TFLOP/s.
  EXPECT_NEAR(r.compute, 2e-3, 1e-12);
  // 4 x 2 layers x an all-reduce of 8 x 1024 x 1024 x 2 bytes in one domain
  // of 8: 6 steps of 1 us and 2 x 7/8 x 16 MiB / 400 GB/s.
  const double act = 8.0 * 1024 * 1024 * 2;
  EXPECT_NEAR(r.tensorParallel, 8 * (6e-6 + 1.75 * act / 400e9), 1e-12);
  // FSDP over 8 GPUs of 8 domains (one each): all-gathers of 0.5e9 / 8
  // bytes (3 steps of 10 us, 7/8 of it over 50 GB/s) twice, and a
  // reduce-scatter of 1e9 / 8.
  const double ag = 3 * 10e-6 + 7.0 / 8 * 0.5e9 / 8 / 50e9;
  const double rs = 3 * 10e-6 + 7.0 / 8 * 1e9 / 8 / 50e9;
  EXPECT_NEAR(r.fsdpComm, 2 * ag + rs, 1e-12);
  // AdamW on a 64th: 9 x 1e9 / 64 + 5e8 / 64 bytes at 2 TB/s, 3 launches
  // (no launch overhead in this cluster).
  EXPECT_NEAR(r.optimizer, (9e9 + 5e8) / 64 / 2e12, 1e-12);
  const double step = std::max(r.compute + r.tensorParallel, r.fsdpComm) +
                      r.fsdpComm / 2 + r.optimizer;
  EXPECT_NEAR(r.stepTime, step, 1e-12);
  EXPECT_NEAR(r.mfu, 64e12 / (step * 64 * 1000e12), 1e-12);
  EXPECT_FALSE(r.recompute);
  // 70 sequences: 8 a group, 64 in the step, the same step.
  FsdpTpResult q = fsdpTpStep(c, m, 64, 8, 70);
  EXPECT_EQ(q.sequencesPerGroup, 8);
  EXPECT_EQ(q.sequences, 64);
  EXPECT_EQ(q.stepTime, r.stepTime);
}

TEST(FsdpTp, TooFewSequencesOrTooLittleMemoryDoNotFit) {
  const Cluster c = cluster();
  ModelWork m = model();
  FsdpTpResult r = fsdpTpStep(c, m, 64, 8, 4);
  EXPECT_FALSE(r.fits);
  EXPECT_EQ(r.why, "fewer sequences (4) than tensor-parallel groups (8)");
  EXPECT_FALSE(fsdpTpStep(c, m, 64, 3, 64).fits);
  // 4,000 layers of activations do not fit 80 GiB without recomputation
  // (8 sequences x 1 MiB x 34 bytes / 8 = 35.7 MB a layer), 100,000 not
  // even with it.
  m.layers = 4000;
  r = fsdpTpStep(c, m, 64, 8, 64);
  ASSERT_TRUE(r.fits) << r.why;
  EXPECT_TRUE(r.recompute);
  EXPECT_NEAR(r.compute, 2e-3 * 4 / 3, 1e-12);
  m.layers = 100000;
  EXPECT_FALSE(fsdpTpStep(c, m, 64, 8, 64).fits);
}

// The best degree has the most sequences a second of all it tried: with
// 1,500 sequences on 1,024 GPUs, t = 1 runs 1 a group (1,024 in the step),
// t = 2 runs 2 (1,024), t = 4 runs 5 (1,280), t = 8 runs 11 (1,408).
TEST(FsdpTp, BestDegreeHasTheMostSequencesASecond) {
  const Cluster c = cluster();
  const ModelWork m = model();
  FsdpTpResult best = bestFsdpTp(c, m, 1024, 1500);
  ASSERT_TRUE(best.fits);
  for (int32_t t : {1, 2, 4, 8}) {
    FsdpTpResult r = fsdpTpStep(c, m, 1024, t, 1500);
    ASSERT_TRUE(r.fits);
    EXPECT_LE(r.sequences / r.stepTime, best.sequences / best.stepTime)
        << "t = " << t;
  }
  EXPECT_EQ(fsdpTpStep(c, m, 1024, 8, 1500).sequences, 1408);
  EXPECT_FALSE(bestFsdpTp(c, m, 1024, 100).fits);
}
