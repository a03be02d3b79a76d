//===- ImporterTest.cpp - importModel and NNModelAttrs through their API --===//

#include "compiler/import/JsonImporter.h"
#include "dialects/nn/NNModelAttrs.h"
#include "dialects/nn/NNOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <gtest/gtest.h>

#include <string>

using namespace mlir;

namespace {

/// A model with one repeat block of three iterations and non-default train
/// values, so that every getter has something to find.
const char *kModel = R"({"name": "api",
 "config": {"batch": 3, "seq": 5, "d": 6, "vocab": 7},
 "train": {"seed": 42, "lr": 0.0025, "warmup_steps": 11, "decay": "cosine", "decay_steps": 900, "min_lr": 0.0001, "beta1": 0.85, "beta2": 0.975, "eps": 1e-7, "weight_decay": 0.05, "grad_clip": 0.5},
 "inputs": {"tokens": {"shape": ["batch", "seq"], "dtype": "i32"}, "targets": {"shape": ["batch", "seq"], "dtype": "i32"}},
 "params": {"wte": {"shape": ["vocab", "d"], "init": "normal", "std": 0.02}},
 "graph": [
  {"op": "embedding", "inputs": ["wte", "tokens"], "output": "x"},
  {"repeat": 3, "index": "i", "carry": "x", "ops": [{"op": "gelu", "inputs": ["x"], "output": "y"}], "yield": "y"},
  {"op": "matmul", "inputs": ["x", "wte"], "output": "logits", "transpose_rhs": true},
  {"op": "cross_entropy", "inputs": ["logits", "targets"], "output": "loss"}
 ],
 "loss": "loss"})";

TEST(Importer, ReadsTrainAndConfigBack) {
  MLIRContext ctx;
  std::string errors;
  llvm::raw_string_ostream os(errors);
  OwningOpRef<ModuleOp> module =
      pipec::importModel(ctx, kModel, "api.json", os);
  ASSERT_TRUE(module) << errors;
  EXPECT_TRUE(errors.empty());

  std::optional<pipec::TrainConfig> t = pipec::getTrainConfig(*module);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->seed, 42);
  EXPECT_DOUBLE_EQ(t->lr, 0.0025);
  EXPECT_EQ(t->warmupSteps, 11);
  EXPECT_EQ(t->decay, "cosine");
  EXPECT_EQ(t->decaySteps, 900);
  EXPECT_DOUBLE_EQ(t->minLr, 0.0001);
  EXPECT_DOUBLE_EQ(t->beta1, 0.85);
  EXPECT_DOUBLE_EQ(t->beta2, 0.975);
  EXPECT_DOUBLE_EQ(t->eps, 1e-7);
  EXPECT_DOUBLE_EQ(t->weightDecay, 0.05);
  EXPECT_DOUBLE_EQ(t->gradClip, 0.5);

  EXPECT_EQ(pipec::getConfigValue(*module, "batch"), 3);
  EXPECT_EQ(pipec::getConfigValue(*module, "vocab"), 7);
  EXPECT_FALSE(pipec::getConfigValue(*module, "n_layer"));
}

TEST(Importer, OpsKnowTheirJsonOrigin) {
  MLIRContext ctx;
  std::string errors;
  llvm::raw_string_ostream os(errors);
  OwningOpRef<ModuleOp> module =
      pipec::importModel(ctx, kModel, "api.json", os);
  ASSERT_TRUE(module) << errors;
  auto forward = module->lookupSymbol<func::FuncOp>("forward");
  ASSERT_TRUE(forward);

  std::vector<int64_t> iterations;
  for (auto gelu : forward.getOps<pipec::nn::GeluOp>()) {
    std::optional<pipec::JsonOrigin> o = pipec::getJsonOrigin(gelu->getLoc());
    ASSERT_TRUE(o);
    EXPECT_EQ(o->path, "graph[1].ops[0]");
    EXPECT_EQ(o->topLevel, "graph[1]");
    ASSERT_TRUE(o->iteration);
    iterations.push_back(*o->iteration);
    auto file =
        dyn_cast<FileLineColLoc>(cast<NameLoc>(gelu->getLoc()).getChildLoc());
    ASSERT_TRUE(file);
    EXPECT_EQ(file.getFilename().getValue(), "api.json");
    EXPECT_EQ(file.getLine(), 8u);
    EXPECT_EQ(file.getColumn(), 53u);
  }
  EXPECT_EQ(iterations, (std::vector<int64_t>{0, 1, 2}));

  auto ce = *forward.getOps<pipec::nn::CrossEntropyOp>().begin();
  std::optional<pipec::JsonOrigin> o = pipec::getJsonOrigin(ce->getLoc());
  ASSERT_TRUE(o);
  EXPECT_EQ(o->path, "graph[3]");
  EXPECT_EQ(o->topLevel, "graph[3]");
  EXPECT_FALSE(o->iteration);
}

TEST(Importer, ErrorsAreOneLineAndReturnNull) {
  MLIRContext ctx;
  std::string bad = kModel;
  bad.replace(bad.find("\"gelu\""), 6, "\"gelo\"");
  std::string errors;
  llvm::raw_string_ostream os(errors);
  EXPECT_FALSE(pipec::importModel(ctx, bad, "bad.json", os));
  EXPECT_EQ(
      errors.substr(0, errors.find(" (known")),
      "bad.json:8:60: error: graph[1].ops[0].op (i=0): unknown op 'gelo'");
  EXPECT_EQ(std::count(errors.begin(), errors.end(), '\n'), 1);
}

TEST(Importer, OneContextServesManyImports) {
  // The fuzzer imports thousands of mutants in one context: nothing may
  // carry over from one import to the next.
  MLIRContext ctx;
  std::string bad = kModel;
  bad.replace(bad.find("\"repeat\": 3"), 11, "\"repeat\": 0");
  for (int round = 0; round < 20; ++round) {
    std::string errors;
    llvm::raw_string_ostream os(errors);
    OwningOpRef<ModuleOp> good = pipec::importModel(ctx, kModel, "a.json", os);
    ASSERT_TRUE(good) << errors;
    EXPECT_EQ(std::distance(good->getOps<pipec::nn::ParameterOp>().begin(),
                            good->getOps<pipec::nn::ParameterOp>().end()),
              1);
    EXPECT_FALSE(pipec::importModel(ctx, bad, "b.json", os));
    EXPECT_NE(errors.find("repeat count 0 is out of range"), std::string::npos);
  }
}

} // namespace
