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
#include "compiler/plan/MemoryPlan.h"
#include "dialects/pipe/PipeAttrs.h"

#include "mlir/IR/Diagnostics.h"
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

/// The error the layout reports at an op of `module` (the diagnostic's
/// text; the op it names is a program or the module).
std::string layoutError(ModuleOp module) {
  emit::PlanLayout L;
  std::string error;
  ScopedDiagnosticHandler capture(module.getContext(), [&](Diagnostic &d) {
    if (d.getSeverity() == DiagnosticSeverity::Error && error.empty())
      error = d.str();
    return success();
  });
  EXPECT_TRUE(failed(emit::buildPlanLayout(module, L)));
  return error;
}

} // namespace

TEST(MemoryPlanReader, ArenasAndBuffersAreThePlans) {
  for (const char *kind : {"1f1b", "zb-h1", "zb-v", "gpipe"}) {
    MLIRContext ctx;
    OwningOpRef<ModuleOp> module = planned(ctx, kind, 2, 4);
    ASSERT_TRUE(module);
    emit::PlanLayout L;
    ASSERT_TRUE(succeeded(emit::buildPlanLayout(*module, L)));
    for (int32_t r = 0; r < 2; ++r) {
      pipe::ProgramOp prog = programOf(*module, r);
      ASSERT_TRUE(prog);
      int64_t arena =
          prog->getAttrOfType<IntegerAttr>("pipe.arena_bytes").getInt();
      EXPECT_EQ(L.ranks[size_t(r)].arenaBytes, arena) << kind;
      EXPECT_EQ(L.manifest.rankInfo[size_t(r)].arenaBytes, arena) << kind;
      // Every planned slot block is where the layout puts that slot.
      SmallVector<pipe::BufferAttr> t;
      for (Attribute a : prog->getAttrOfType<ArrayAttr>("pipe.buffers"))
        t.push_back(cast<pipe::BufferAttr>(a));
      int slotBlocks = 0;
      for (size_t i = 0; i < t.size(); ++i) {
        int32_t role = -1;
        ASSERT_TRUE(plan::bufferRoleOf(t[i].getRole().str(), role));
        if (role < 0)
          continue;
        ++slotBlocks;
        int region = -1;
        for (int k = 0; k < emit::kRegions; ++k)
          if (layout::roleOfRegion(k) == role)
            region = k;
        ASSERT_GE(region, 0);
        EXPECT_EQ(L.ranks[size_t(r)].slotBase.at(
                      {int32_t(t[i].getChunk()), region,
                       int32_t(t[i].getSlot())}),
                  t[i].getOffset());
        // Blocks alive at the same time are disjoint.
        for (size_t j = i + 1; j < t.size(); ++j) {
          if (t[j].getRole() != "static" && t[i].getFirst() <= t[j].getLast() &&
              t[j].getFirst() <= t[i].getLast()) {
            EXPECT_TRUE(t[i].getOffset() + t[i].getBytes() <= t[j].getOffset() ||
                        t[j].getOffset() + t[j].getBytes() <= t[i].getOffset())
                << kind << " rank " << r;
          }
        }
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
  auto table = prog->getAttrOfType<ArrayAttr>("pipe.buffers");
  auto arena = prog->getAttrOfType<IntegerAttr>("pipe.arena_bytes");
  Builder b(&ctx);

  // One region planned 64 bytes larger than the module's values need.
  SmallVector<Attribute> t(table.begin(), table.end());
  auto last = cast<pipe::BufferAttr>(t.back());
  ASSERT_NE(last.getRole(), "static") << "slot blocks follow the static ones";
  t.back() = pipe::BufferAttr::get(&ctx, last.getKind(), last.getRole(),
                                   last.getChunk(), last.getSlot(),
                                   last.getOffset(), last.getBytes() + 64,
                                   last.getFirst(), last.getLast());
  prog->setAttr("pipe.arena_bytes", b.getI64IntegerAttr(arena.getInt() + 64));
  prog->setAttr("pipe.buffers", b.getArrayAttr(t));
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

  // A block that is not a #pipe.buffer, or of an unknown role.
  SmallVector<Attribute> odd(table.begin(), table.end());
  odd.back() = b.getI64IntegerAttr(7);
  prog->setAttr("pipe.arena_bytes", arena);
  prog->setAttr("pipe.buffers", b.getArrayAttr(odd));
  EXPECT_EQ(layoutError(*module),
            "rank 1: pipe.buffers holds something other than #pipe.buffer "
            "blocks of known roles");
  auto lastBlock = cast<pipe::BufferAttr>(table[table.size() - 1]);
  odd.back() = pipe::BufferAttr::get(
      &ctx, lastBlock.getKind(), "sideways", lastBlock.getChunk(),
      lastBlock.getSlot(), lastBlock.getOffset(), lastBlock.getBytes(),
      lastBlock.getFirst(), lastBlock.getLast());
  prog->setAttr("pipe.buffers", b.getArrayAttr(odd));
  EXPECT_EQ(layoutError(*module),
            "rank 1: pipe.buffers holds something other than #pipe.buffer "
            "blocks of known roles");
  prog->setAttr("pipe.buffers", table);

  // A micro-batch without its slot.
  auto slotTable = prog->getAttrOfType<ArrayAttr>("pipe.slots");
  SmallVector<Attribute> badSlots(slotTable.begin(), slotTable.end());
  auto first = cast<pipe::SlotsAttr>(badSlots.front());
  badSlots.front() = pipe::SlotsAttr::get(&ctx, first.getRole(),
                                          first.getChunk(),
                                          b.getDenseI32ArrayAttr({0}));
  prog->setAttr("pipe.slots", b.getArrayAttr(badSlots));
  EXPECT_EQ(layoutError(*module),
            "rank 1: pipe.slots holds something other than #pipe.slots of a "
            "known role with one slot per micro-batch");
  prog->setAttr("pipe.slots", slotTable);

  // No plan at all.
  prog->setAttr("pipe.arena_bytes", arena);
  prog->removeAttr("pipe.slots");
  EXPECT_EQ(layoutError(*module), "rank 1: the pipe.program has no memory "
                                  "plan (run --pipe-plan-memory)");
}
