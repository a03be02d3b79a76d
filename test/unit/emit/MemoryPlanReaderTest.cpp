//===- MemoryPlanReaderTest.cpp - the emitter places what the plan says ---===//
//
// Runs the training pipeline on gpt-tiny and lays the plan out as the cpu
// emitter does: every rank's arena is the memory plan's, every buffer of
// the manifest is a planned block, and two buffers whose lifetimes overlap
// never share a byte. A plan that does not describe the module (a block of
// another size, a too small arena, none at all) is refused with a message.
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitLayout.h"
#include "compiler/import/JsonImporter.h"
#include "compiler/passes/Pipeline.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace pipec;

namespace {

/// gpt-tiny through the training pipeline with schedule `kind`.
OwningOpRef<ModuleOp> planned(MLIRContext &ctx, const char *kind,
                              int32_t stages, int32_t microbatches) {
  std::string err;
  llvm::raw_string_ostream es(err);
  auto module =
      importModelFile(ctx, PIPEC_MODELS_DIR "/gpt-tiny.json", es);
  EXPECT_TRUE(module) << err;
  if (!module)
    return module;
  TrainingPipelineOptions o;
  o.kind = kind;
  o.stages = stages;
  o.microbatches = microbatches;
  PassManager pm(&ctx);
  buildTrainingPipeline(pm, o);
  EXPECT_TRUE(succeeded(pm.run(*module)));
  return module;
}

pipe::ProgramOp programOf(ModuleOp module, int64_t rank) {
  for (auto p : module.getOps<pipe::ProgramOp>())
    if (p.getRank() == rank)
      return p;
  return nullptr;
}

std::string layoutError(ModuleOp module) {
  emit::PlanLayout L;
  std::string error;
  EXPECT_FALSE(emit::buildPlanLayout(module, L, error));
  return error;
}

} // namespace

TEST(MemoryPlanReader, ArenasAndBuffersAreThePlans) {
  for (const char *kind : {"1f1b", "zb-h1", "zb-v", "gpipe"}) {
    MLIRContext ctx;
    OwningOpRef<ModuleOp> module = planned(ctx, kind, 2, 4);
    ASSERT_TRUE(module);
    emit::PlanLayout L;
    std::string error;
    ASSERT_TRUE(emit::buildPlanLayout(*module, L, error)) << error;
    for (int32_t r = 0; r < 2; ++r) {
      pipe::ProgramOp prog = programOf(*module, r);
      ASSERT_TRUE(prog);
      int64_t arena =
          prog->getAttrOfType<IntegerAttr>("pipe.arena_bytes").getInt();
      EXPECT_EQ(L.ranks[size_t(r)].arenaBytes, arena) << kind;
      EXPECT_EQ(L.manifest.rankInfo[size_t(r)].arenaBytes, arena) << kind;
      // Every planned slot block is where the layout puts that slot.
      auto table = prog->getAttrOfType<DenseI64ArrayAttr>("pipe.buffers");
      ArrayRef<int64_t> t = table.asArrayRef();
      int slotBlocks = 0;
      for (size_t i = 0; i < t.size(); i += 8) {
        if (t[i + 1] < 0)
          continue;
        ++slotBlocks;
        int region = -1;
        for (int k = 0; k < emit::kRegions; ++k)
          if (layout::roleOfRegion(k) == t[i + 1])
            region = k;
        ASSERT_GE(region, 0);
        EXPECT_EQ(L.ranks[size_t(r)].slotBase.at(
                      {int32_t(t[i + 2]), region, int32_t(t[i + 3])}),
                  t[i + 4]);
        // Blocks alive at the same time are disjoint.
        for (size_t j = i + 8; j < t.size(); j += 8)
          if (t[j + 1] >= 0 && t[i + 6] <= t[j + 7] && t[j + 6] <= t[i + 7])
            EXPECT_TRUE(t[i + 4] + t[i + 5] <= t[j + 4] ||
                        t[j + 4] + t[j + 5] <= t[i + 4])
                << kind << " rank " << r;
      }
      EXPECT_GT(slotBlocks, 0);
    }
    // The manifest's per-micro-batch buffers lie in planned blocks.
    for (const pipert::BufferInfo &b : L.manifest.buffers)
      EXPECT_LE(b.offset + b.bytes,
                L.ranks[size_t(b.rank)].arenaBytes)
          << b.name;
  }
}

TEST(MemoryPlanReader, RefusesAPlanOfAnotherModule) {
  MLIRContext ctx;
  OwningOpRef<ModuleOp> module = planned(ctx, "1f1b", 2, 4);
  ASSERT_TRUE(module);
  pipe::ProgramOp prog = programOf(*module, 1);
  auto table = prog->getAttrOfType<DenseI64ArrayAttr>("pipe.buffers");
  auto arena = prog->getAttrOfType<IntegerAttr>("pipe.arena_bytes");
  Builder b(&ctx);

  // One region planned 64 bytes larger than the module's values need.
  std::vector<int64_t> t(table.asArrayRef().begin(),
                         table.asArrayRef().end());
  size_t last = t.size() - 8;
  ASSERT_GE(t[last + 1], 0) << "slot blocks follow the static ones";
  t[last + 5] += 64;
  prog->setAttr("pipe.arena_bytes", b.getI64IntegerAttr(arena.getInt() + 64));
  prog->setAttr("pipe.buffers", b.getDenseI64ArrayAttr(t));
  EXPECT_NE(layoutError(*module).find("rank 1: the plan gives chunk"),
            std::string::npos)
      << layoutError(*module);
  EXPECT_NE(layoutError(*module).find("rerun --pipe-plan-memory"),
            std::string::npos);

  // An arena smaller than its blocks.
  prog->setAttr("pipe.buffers", table);
  prog->setAttr("pipe.arena_bytes", b.getI64IntegerAttr(arena.getInt() - 64));
  EXPECT_EQ(layoutError(*module),
            "rank 1: a planned block lies outside the arena");

  // No plan at all.
  prog->setAttr("pipe.arena_bytes", arena);
  prog->removeAttr("pipe.slots");
  EXPECT_EQ(layoutError(*module), "rank 1: the pipe.program has no memory "
                                  "plan (run --pipe-plan-memory)");
}
