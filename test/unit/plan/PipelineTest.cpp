//===- PipelineTest.cpp - the training flow on gpt-tiny -------------------===//
//
// Runs buildTrainingPipeline (autodiff, partition, schedule, lowering to
// kernels, memory plan)
// on the imported gpt-tiny and checks what each stage promises: chunk costs
// account for every @train_step op exactly once, chunks cover @forward's op
// ids in order, every rank's program has an arena no smaller than its live
// peak, and a memory cap below a rank's need fails the pipeline.
//
//===----------------------------------------------------------------------===//

#include "compiler/import/JsonImporter.h"
#include "compiler/passes/Passes.h"
#include "compiler/passes/Pipeline.h"
#include "compiler/plan/CostModel.h"
#include "dialects/nn/NNOps.h"
#include "dialects/pipe/PipeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

using namespace mlir;

namespace {

OwningOpRef<ModuleOp> importTiny(MLIRContext &ctx) {
  std::string err;
  llvm::raw_string_ostream es(err);
  auto module =
      pipec::importModelFile(ctx, PIPEC_MODELS_DIR "/gpt-tiny.json", es);
  EXPECT_TRUE(module) << err;
  return module;
}

} // namespace

TEST(TrainingPipeline, GptTinyZbv) {
  MLIRContext ctx;
  OwningOpRef<ModuleOp> module = importTiny(ctx);
  ASSERT_TRUE(module);
  pipec::TrainingPipelineOptions o;
  o.kind = "zb-v";
  o.stages = 2;
  o.microbatches = 4;
  // The nn ops' costs (fused as the pipeline fuses them), read before
  // --nn-lower-to-kernels replaces them.
  OwningOpRef<ModuleOp> differentiated = module->clone();
  PassManager autodiff(&ctx);
  autodiff.addPass(pipec::createNNAutodiffPass());
  autodiff.addPass(pipec::createNNFusePass());
  ASSERT_TRUE(succeeded(autodiff.run(*differentiated)));
  PassManager pm(&ctx);
  pipec::buildTrainingPipeline(pm, o);
  ASSERT_TRUE(succeeded(pm.run(*module)));

  // Every @train_step op's time lands in exactly one chunk.
  pipec::plan::Rates rates;
  ASSERT_TRUE(pipec::plan::ratesForTarget("cpu", rates));
  auto trainStep = differentiated->lookupSymbol<func::FuncOp>("train_step");
  ASSERT_TRUE(trainStep);
  double opsTotal = 0;
  trainStep.walk([&](pipec::nn::CostOpInterface cost) {
    opsTotal += pipec::plan::kernelTime(
        rates, double(cost.getFlops()),
        double(cost.getBytesRead() + cost.getBytesWritten()));
  });
  double chunkTotal = 0;
  int64_t nextOp = 0;
  int chunks = 0;
  for (auto chunk : module->getOps<pipec::pipe::ChunkOp>()) {
    for (double c : chunk.getCosts())
      chunkTotal += c;
    auto ids = chunk->getAttrOfType<DenseI64ArrayAttr>("pipe.op_ids");
    ASSERT_TRUE(ids);
    EXPECT_EQ(ids[0], nextOp) << "chunks are contiguous";
    nextOp = ids[1] + 1;
    EXPECT_EQ(chunk.getRank(), chunks < 2 ? chunks : 3 - chunks) << "a V";
    ++chunks;
  }
  EXPECT_EQ(chunks, 4);
  int64_t forwardOps = 0;
  for (Operation &op : module->lookupSymbol<func::FuncOp>("forward")
                           .getBody()
                           .front())
    if (!op.hasTrait<OpTrait::IsTerminator>())
      ++forwardOps;
  EXPECT_EQ(nextOp, forwardOps);
  EXPECT_NEAR(chunkTotal, opsTotal, 1e-9 * opsTotal);

  int programs = 0;
  for (auto prog : module->getOps<pipec::pipe::ProgramOp>()) {
    auto arena = prog->getAttrOfType<IntegerAttr>("pipe.arena_bytes");
    auto live = prog->getAttrOfType<IntegerAttr>("pipe.peak_live_bytes");
    ASSERT_TRUE(arena && live);
    EXPECT_GE(arena.getInt(), live.getInt());
    EXPECT_GT(live.getInt(), 0);
    ++programs;
  }
  EXPECT_EQ(programs, 2);
}

TEST(TrainingPipeline, MemoryCapFails) {
  MLIRContext ctx;
  OwningOpRef<ModuleOp> module = importTiny(ctx);
  ASSERT_TRUE(module);
  pipec::TrainingPipelineOptions o;
  o.kind = "1f1b";
  o.stages = 2;
  o.microbatches = 2;
  o.memoryCap = 1000;
  std::string message;
  ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
    message += d.str() + "\n";
    return success();
  });
  PassManager pm(&ctx);
  pipec::buildTrainingPipeline(pm, o);
  EXPECT_TRUE(failed(pm.run(*module)));
  EXPECT_NE(message.find("rank 0 needs"), std::string::npos) << message;
  EXPECT_NE(message.find("over the memory cap of 1000 bytes"),
            std::string::npos)
      << message;
}

/// The first compute op of @forward at or after op id `id`.
static Operation *firstComputeOp(func::FuncOp forward, int64_t id) {
  int64_t i = 0;
  for (Operation &op : forward.getBody().front()) {
    if (i++ < id || isa<pipec::nn::ParamOp>(op))
      continue;
    return &op;
  }
  return nullptr;
}

// --nn-fuse's groups are formed before partitioning: at every stage count
// the partitioner cuts between groups, never inside one (no chunk starts
// with the second op of a fused pair), so every layout makes the same
// kernel calls.
TEST(TrainingPipeline, NoCutSplitsAFusedGroup) {
  for (const char *model : {"gpt-tiny", "llama-tiny"})
    for (int stages = 2; stages <= 16; stages += (stages < 6 ? 1 : 5)) {
      MLIRContext ctx;
      std::string err;
      llvm::raw_string_ostream es(err);
      auto module = pipec::importModelFile(
          ctx, std::string(PIPEC_MODELS_DIR) + "/" + model + ".json", es);
      ASSERT_TRUE(module) << err;
      pipec::TrainingPipelineOptions o;
      o.kind = "gpipe";
      o.stages = stages;
      o.microbatches = stages;
      PassManager pm(&ctx);
      pipec::buildTrainingPipeline(pm, o);
      ASSERT_TRUE(succeeded(pm.run(*module))) << model << " S=" << stages;
      auto forward = module->lookupSymbol<func::FuncOp>("forward");
      int fused = 0;
      forward.walk([&](Operation *op) {
        fused += op->hasAttr("nn.fused_with_previous");
      });
      EXPECT_GE(fused, 4) << model << ": the blocks' pairs are fused";
      int chunks = 0;
      for (auto chunk : module->getOps<pipec::pipe::ChunkOp>()) {
        auto ids = chunk->getAttrOfType<DenseI64ArrayAttr>("pipe.op_ids");
        ASSERT_TRUE(ids);
        Operation *first = firstComputeOp(forward, ids[0]);
        ASSERT_TRUE(first);
        EXPECT_FALSE(first->hasAttr("nn.fused_with_previous"))
            << model << " S=" << stages << ": chunk " << chunks
            << " starts inside a fused group at op id " << ids[0];
        ++chunks;
      }
      EXPECT_EQ(chunks, stages);
    }
}
