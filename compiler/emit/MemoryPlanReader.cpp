//===- MemoryPlanReader.cpp - slots and offsets from --pipe-plan-memory ---===//
//
// The emitter does not lay out arenas itself: --pipe-plan-memory planned
// the same regions (compiler/analysis/ValueLayout.h) and wrote on every
// pipe.program where each (chunk, region, slot) lives (pipe.buffers), which
// slot each micro-batch uses (pipe.slots) and the arena size
// (pipe.arena_bytes). This reads them back and checks that they describe
// this module's regions byte for byte, so the arena the runtime allocates
// is the plan's.
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitLayout.h"

#include "compiler/plan/MemoryPlan.h"
#include "dialects/pipe/PipeAttrs.h"

using namespace mlir;
using namespace pipec;
using namespace pipec::emit;

/// The region whose buffers have plan role `role`, or -1.
static int regionOfRole(int64_t role) {
  for (int k = 0; k < kRegions; ++k)
    if (layout::roleOfRegion(k) == role)
      return k;
  return -1;
}

/// Reads rank r's plan into the layout.
static bool readRank(PlanLayout &L, pipe::ProgramOp prog, std::string &error) {
  int32_t r = int32_t(prog.getRank());
  std::string where = "rank " + std::to_string(r) + ": ";
  auto arena = prog->getAttrOfType<IntegerAttr>("pipe.arena_bytes");
  auto table = prog->getAttrOfType<ArrayAttr>("pipe.buffers");
  auto slots = prog->getAttrOfType<ArrayAttr>("pipe.slots");
  if (!arena || !table || !slots) {
    error = where + "the pipe.program has no memory plan (run "
                    "--pipe-plan-memory)";
    return false;
  }
  RankLayout &rk = L.ranks[size_t(r)];
  rk.arenaBytes = arena.getInt();
  const int32_t M = L.microbatches, C = int32_t(L.chunks.size());
  int64_t staticBytes = 0;
  for (Attribute a : table) {
    auto blk = dyn_cast<pipe::BufferAttr>(a);
    int32_t role = -1;
    if (!blk || !plan::bufferRoleOf(blk.getRole().str(), role)) {
      error = where + "pipe.buffers holds something other than "
                      "#pipe.buffer blocks of known roles";
      return false;
    }
    int64_t c = blk.getChunk(), slot = blk.getSlot(),
            offset = blk.getOffset(), bytes = blk.getBytes();
    if (offset < 0 || bytes < 0 || offset + bytes > rk.arenaBytes) {
      error = where + "a planned block lies outside the arena";
      return false;
    }
    if (role < 0) {
      if (offset != staticBytes) {
        error = where + "the plan's static blocks are not back to back";
        return false;
      }
      staticBytes += bytes;
      continue;
    }
    int k = regionOfRole(role);
    if (k < 0 || c < 0 || c >= C || L.chunks[size_t(c)].rank != r) {
      error = where + "the plan has a " + plan::bufferRoleName(int32_t(role)) +
              " block of chunk " + std::to_string(c) +
              ", which is no region of this rank's chunks";
      return false;
    }
    ChunkLayout &ch = L.chunks[size_t(c)];
    if (bytes != ch.regionBytes[k]) {
      error = where + "the plan gives chunk " + std::to_string(c) + "'s " +
              layout::regionName(k) + " " + std::to_string(bytes) +
              " bytes, the module's values need " +
              std::to_string(ch.regionBytes[k]) +
              " (the plan is not this module's; rerun --pipe-plan-memory)";
      return false;
    }
    rk.slotBase[{int32_t(c), k, int32_t(slot)}] = offset;
    ch.slots[k] = std::max(ch.slots[k], int32_t(slot + 1));
  }
  if (staticBytes != rk.staticEnd) {
    error = where + "the plan's static blocks take " +
            std::to_string(staticBytes) + " bytes, the module's " +
            std::to_string(rk.staticEnd) +
            " (the plan is not this module's; rerun --pipe-plan-memory)";
    return false;
  }
  for (Attribute a : slots) {
    auto sl = dyn_cast<pipe::SlotsAttr>(a);
    int32_t role = -1;
    if (!sl || !plan::bufferRoleOf(sl.getRole().str(), role) ||
        sl.getSlots().size() != M) {
      error = where + "pipe.slots holds something other than #pipe.slots "
                      "of a known role with one slot per micro-batch";
      return false;
    }
    int k = regionOfRole(role);
    int64_t c = sl.getChunk();
    if (k < 0 || c < 0 || c >= C || L.chunks[size_t(c)].rank != r) {
      error = where + "pipe.slots names no region of this rank's chunks";
      return false;
    }
    ChunkLayout &ch = L.chunks[size_t(c)];
    ArrayRef<int32_t> of = sl.getSlots().asArrayRef();
    ch.slotOf[k].assign(of.begin(), of.end());
    for (int32_t j = 0; j < M; ++j)
      if (ch.slotOf[k][size_t(j)] < 0 ||
          !rk.slotBase.count({int32_t(c), k, ch.slotOf[k][size_t(j)]})) {
        error = where + "the plan gives micro-batch " + std::to_string(j) +
                " of chunk " + std::to_string(c) + "'s " +
                layout::regionName(k) + " no planned slot";
        return false;
      }
  }
  for (int32_t c = 0; c < C; ++c) {
    ChunkLayout &ch = L.chunks[size_t(c)];
    if (ch.rank != r)
      continue;
    for (int k = 0; k < kRegions; ++k)
      if (ch.regionBytes[k] && ch.slotOf[k].size() != size_t(M)) {
        error = where + "the plan has no slots for chunk " +
                std::to_string(c) + "'s " + layout::regionName(k);
        return false;
      }
    // The negative control of the shadow mode: every micro-batch's data
    // in one slot.
    if (L.debugOneSlot && ch.regionBytes[kData])
      ch.slotOf[kData].assign(size_t(M), 0);
  }
  return true;
}

LogicalResult pipec::emit::readMemoryPlan(PlanLayout &L) {
  std::vector<bool> seen(size_t(L.stages), false);
  for (pipe::ProgramOp prog : L.programs) {
    int64_t r = prog.getRank();
    if (r < 0 || r >= L.stages || seen[size_t(r)])
      return prog.emitError("pipe.program rank ")
             << r << " is outside the schedule's ranks or repeated";
    seen[size_t(r)] = true;
    std::string error;
    if (!readRank(L, prog, error))
      return prog.emitError(error);
  }
  return success();
}
