//===- ReferenceTrainTest.cpp - reference gradients against finite differences
//===//
//
// In float64 the accumulated gradient of step 0 (--dump-grads) must match
// central finite differences of the forward loss for parameters of every
// kind (tied embedding, position table, attention and MLP weights, norm
// gains, biases), with one micro-batch and with two (loss scale 1/M).
//
//===----------------------------------------------------------------------===//

#include "compiler/import/JsonImporter.h"
#include "compiler/passes/Passes.h"
#include "compiler/reference/Trainer.h"
#include "pipert/Safetensors.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

using namespace pipec;
using namespace pipec::reference;

namespace {

const std::string kData =
    PIPEC_SOURCE_DIR "/../shared/data/tinyshakespeare.txt";

class ReferenceTrain : public ::testing::Test {
protected:
  void SetUp() override {
    if (!std::ifstream(kData))
      GTEST_SKIP() << kData << " is not present";
    setThreadCount(1);
    module = importModelFile(ctx, PIPEC_SOURCE_DIR "/models/gpt-tiny.json",
                             llvm::errs());
    ASSERT_TRUE(module);
    mlir::PassManager pm(&ctx);
    pm.addPass(createNNAutodiffPass());
    ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
    ASSERT_TRUE(store.declare(*module, llvm::errs()));
    std::string error;
    ASSERT_TRUE(store.initialise(1337, error)) << error;
    dir = ::testing::TempDir() + "/pipec-reference-train-" +
          ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(store.save(dir + "-init.safetensors", error)) << error;
  }

  /// The dumped step-0 gradients of a run with M micro-batches.
  pipert::SafetensorsFile gradients(int64_t m,
                                    const std::string &perturb = "") {
    TrainOptions o;
    o.dataPath = kData;
    o.steps = 1;
    o.microbatches = m;
    o.initPath = dir + "-init.safetensors";
    o.dumpGradsPath = dir + "-grads.safetensors";
    o.executor.perturbVjpOp = perturb;
    std::string out, error;
    llvm::raw_string_ostream os(out);
    EXPECT_TRUE(train<double>(*module, o, os, llvm::errs()));
    pipert::SafetensorsFile f;
    EXPECT_TRUE(pipert::readSafetensors(o.dumpGradsPath, f, error)) << error;
    return f;
  }

  /// The mean loss of micro-batches [0, m) with element i of `name` moved
  /// by delta.
  double loss(const std::string &name, int64_t i, double delta, int64_t m) {
    auto &e = store.entries()[store.find(name)];
    double saved = e.values[i];
    e.values[i] = saved + delta;
    std::string error, path = dir + "-moved.safetensors";
    EXPECT_TRUE(store.save(path, error)) << error;
    e.values[i] = saved;
    double total = 0;
    for (int64_t j = 0; j < m; ++j) {
      double l = 0;
      EXPECT_TRUE(
          forwardLoss<double>(*module, kData, j, l, llvm::errs(), path));
      total += l;
    }
    return total / double(m);
  }

  static double element(const pipert::SafetensorsFile &f,
                        const std::string &name, int64_t i) {
    std::vector<double> v;
    std::string error;
    EXPECT_TRUE(f.find(name) &&
                pipert::readFloatTensor(*f.find(name), v, error));
    return v.empty() ? NAN : v[i];
  }

  void checkAgainstFiniteDifferences(
      int64_t m, const std::vector<std::pair<std::string, int64_t>> &at) {
    pipert::SafetensorsFile grads = gradients(m);
    ASSERT_EQ(grads.tensors.size(), store.entries().size());
    const double h = 1e-5;
    for (auto &[name, i] : at) {
      double fd = (loss(name, i, h, m) - loss(name, i, -h, m)) / (2 * h);
      double g = element(grads, name, i);
      EXPECT_NEAR(g, fd, 1e-8 + 1e-5 * std::fabs(fd))
          << name << "[" << i << "]";
      EXPECT_NE(g, 0.0) << name << "[" << i << "]";
    }
  }

  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  ParameterStore<double> store;
  std::string dir;
};

TEST_F(ReferenceTrain, GradientsMatchFiniteDifferences) {
  // wte.weight row 'e' (101) is used by the embedding and the tied head.
  checkAgainstFiniteDifferences(1, {{"wte.weight", 101 * 64 + 5},
                                    {"wte.weight", 7 * 64 + 60},
                                    {"wpe.weight", 3 * 64 + 2},
                                    {"h.0.ln_1.weight", 9},
                                    {"h.2.attn.c_attn.weight", 17 * 192 + 70},
                                    {"h.5.attn.c_proj.bias", 33},
                                    {"h.7.mlp.c_fc.weight", 40 * 256 + 200},
                                    {"h.3.mlp.c_proj.weight", 100 * 64 + 1},
                                    {"ln_f.bias", 12}});
}

TEST_F(ReferenceTrain, MicroBatchesAverage) {
  checkAgainstFiniteDifferences(2, {{"wte.weight", 101 * 64 + 5},
                                    {"h.1.ln_2.bias", 3},
                                    {"h.4.attn.c_attn.bias", 150}});
}

TEST_F(ReferenceTrain, PerturbedVjpChangesGradientsSlightly) {
  pipert::SafetensorsFile clean = gradients(1);
  pipert::SafetensorsFile bent = gradients(1, "layernorm");
  // Everything below the final layernorm is scaled at least once.
  double g = element(clean, "wpe.weight", 70),
         p = element(bent, "wpe.weight", 70);
  double rel = std::fabs(p - g) / std::fabs(g);
  EXPECT_GT(rel, 1e-4);
  EXPECT_LT(rel, 1e-1);
  // Layer 7's MLP output feeds only ln_f, so its bias gradient is ln_f's B
  // gradient summed over rows: scaled exactly once.
  double b = element(clean, "h.7.mlp.c_proj.bias", 0);
  double bp = element(bent, "h.7.mlp.c_proj.bias", 0);
  EXPECT_NEAR(bp / b, 1 + 1e-3, 1e-9);
}

} // namespace
