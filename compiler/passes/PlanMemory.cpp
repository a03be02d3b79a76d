//===- PlanMemory.cpp - --pipe-plan-memory: one arena per rank ------------===//
//
// Rebuilds the schedule from the pipe.program tables, plans every rank's
// arena with compiler/plan/MemoryPlan, and writes the plan on each program.
// With @train_step (the training pipeline) the buffers are exact: the
// regions of ValueLayout.h, sized by the values each chunk keeps and alive
// over the instructions that read or write them, so the emitter places
// every byte where this plan says. Without it (a bare schedule), the
// buffers are the estimates --pipe-partition wrote on the chunks.
//
//===----------------------------------------------------------------------===//

#include "compiler/passes/Passes.h"

#include "compiler/analysis/ModelCosts.h"
#include "compiler/analysis/ValueLayout.h"
#include "compiler/plan/MemoryPlan.h"
#include "compiler/schedule/Validate.h"

#include "dialects/nn/NNOps.h"
#include "dialects/pipe/PipeAttrs.h"
#include "dialects/pipe/PipeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

#include <set>

namespace pipec {
#define GEN_PASS_DEF_PIPEPLANMEMORYPASS
#include "compiler/passes/Passes.h.inc"
} // namespace pipec

using namespace mlir;
using namespace pipec;
using namespace pipec::pipe;
using namespace pipec::plan;
namespace sched = pipec::schedule;

namespace {

struct PipePlanMemoryPass
    : public pipec::impl::PipePlanMemoryPassBase<PipePlanMemoryPass> {
  using PipePlanMemoryPassBase::PipePlanMemoryPassBase;
  void runOnOperation() override;
};

/// An integer attribute of a chunk; the name of the missing one otherwise.
bool readBytes(ChunkOp chunk, StringRef name, int64_t &out) {
  auto attr = chunk->getAttrOfType<IntegerAttr>(name);
  if (!attr) {
    chunk.emitError("--pipe-plan-memory: chunk @")
        << chunk.getSymName() << " has no integer '" << name
        << "' (run --pipe-partition first)";
    return false;
  }
  out = attr.getInt();
  return true;
}

void PipePlanMemoryPass::runOnOperation() {
  ModuleOp module = getOperation();
  MLIRContext *ctx = &getContext();
  if (memoryCap < 0) {
    emitError(module.getLoc()) << "--pipe-plan-memory: memory-cap="
                               << int64_t(memoryCap)
                               << " is negative (0: no cap)";
    return signalPassFailure();
  }
  SmallVector<ChunkOp> chunks(module.getOps<ChunkOp>());
  SmallVector<ProgramOp> programs(module.getOps<ProgramOp>());
  auto scheduleOps = module.getOps<ScheduleOp>();
  if (chunks.empty() || programs.empty() || scheduleOps.empty()) {
    emitError(module.getLoc())
        << "--pipe-plan-memory needs pipe.chunk, pipe.schedule and "
           "pipe.program ops (run --pipe-partition and --pipe-schedule first)";
    return signalPassFailure();
  }
  ScheduleOp schedOp = *scheduleOps.begin();

  sched::Schedule s;
  s.microbatches = schedOp.getMicrobatches();
  s.chunksPerRank = schedOp.getChunksPerRank();
  s.placement.chunks = int32_t(chunks.size());
  s.placement.ranks = schedOp.getStages();
  llvm::StringMap<int32_t> chunkIndex;
  std::vector<ChunkMemory> cm(chunks.size());
  for (auto [i, chunk] : llvm::enumerate(chunks)) {
    chunkIndex[chunk.getSymName()] = int32_t(i);
    s.placement.rankOf.push_back(chunk.getRank());
    ChunkMemory &m = cm[i];
    if (!readBytes(chunk, "pipe.saved_bytes", m.savedBytes) ||
        !readBytes(chunk, "pipe.w_grad_bytes", m.wGradBytes) ||
        !readBytes(chunk, "pipe.in_bytes", m.inBytes) ||
        !readBytes(chunk, "pipe.out_bytes", m.outBytes) ||
        !readBytes(chunk, "pipe.workspace_bytes", m.workspaceBytes))
      return signalPassFailure();
    m.deferredW = chunk->hasAttr("pipe.deferred_w");
    // Written by --pipe-partition; absent means no recomputation.
    if (auto a = chunk->getAttrOfType<IntegerAttr>("pipe.recompute_in_bytes"))
      m.recomputeInBytes = a.getInt();
    if (auto a = chunk->getAttrOfType<IntegerAttr>("pipe.recomputed_bytes"))
      m.recomputedBytes = a.getInt();
    if (auto a = chunk->getAttrOfType<IntegerAttr>("pipe.saved_b_bytes"))
      m.savedForBBytes = a.getInt();
  }

  // Static memory from the parameters each rank's chunks read.
  // Masters (and their accumulators and moments) as declared; the working
  // copies the kernels read besides them (ModelCosts.h).
  llvm::StringMap<std::pair<int64_t, int64_t>> paramBytes;
  for (auto p : module.getOps<nn::ParameterOp>()) {
    int64_t master = 0, copy = 0;
    parameterStorage(module, p.getSymName(), master, copy);
    paramBytes[p.getSymName()] = {master, copy};
  }
  std::vector<StaticMemory> statics(s.placement.ranks);
  std::vector<std::set<std::string>> held(s.placement.ranks);
  for (ChunkOp chunk : chunks) {
    auto params = chunk->getAttrOfType<ArrayAttr>("pipe.params");
    if (!params) {
      chunk.emitError("--pipe-plan-memory: chunk @")
          << chunk.getSymName() << " has no 'pipe.params' list";
      return signalPassFailure();
    }
    int32_t r = chunk.getRank();
    for (Attribute a : params) {
      auto name = dyn_cast<StringAttr>(a);
      auto it = name ? paramBytes.find(name.getValue()) : paramBytes.end();
      if (it == paramBytes.end()) {
        chunk.emitError("--pipe-plan-memory: chunk @")
            << chunk.getSymName() << " reads " << a
            << ", which is not an nn.parameter of the module";
        return signalPassFailure();
      }
      auto [master, copy] = it->second;
      statics[r].gradients += master;
      if (held[r].insert(name.str()).second) {
        statics[r].weights += master + copy;
        statics[r].optimizer += 2 * master;
      }
    }
  }

  // Collective groups: group 0 holds every rank (the step's collective);
  // every other pipe.group (a tied parameter's) gets the next index.
  s.groups.assign(1, {});
  for (int32_t q = 0; q < s.placement.ranks; ++q)
    s.groups[0].push_back(q);
  llvm::StringMap<int32_t> groupIndex;
  for (GroupOp g : module.getOps<GroupOp>()) {
    std::vector<int32_t> ranks(g.getRanks().begin(), g.getRanks().end());
    if (ranks == s.groups[0]) {
      groupIndex[g.getSymName()] = 0;
    } else {
      groupIndex[g.getSymName()] = int32_t(s.groups.size());
      s.groups.push_back(std::move(ranks));
    }
  }

  s.streams.resize(s.placement.ranks);
  for (ProgramOp prog : programs) {
    int32_t r = prog.getRank();
    if (r < 0 || r >= s.placement.ranks) {
      prog.emitError("--pipe-plan-memory: program rank ")
          << r << " is outside the schedule's " << s.placement.ranks
          << " ranks";
      return signalPassFailure();
    }
    std::vector<sched::Instr> &stream = s.streams[r];
    stream.reserve(prog.getNumInstrs());
    // A wait repeats its post's opcode and fields in the library's form.
    llvm::DenseMap<int32_t, size_t> postOfReq;
    for (size_t i = 0; i < prog.getNumInstrs(); ++i) {
      pipe::Instr in = prog.getInstr(i);
      sched::Op op = sched::Op(int32_t(in.op));
      sched::Instr out{op, op, in.peer, -1, in.mb, in.req};
      if (isComputeOp(in.op) || isPostOp(in.op)) {
        auto it = chunkIndex.find(prog.getSymbol(in.sym).getValue());
        if (it == chunkIndex.end()) {
          prog.emitError("--pipe-plan-memory: instruction ")
              << i << " names " << prog.getSymbol(in.sym)
              << ", which is not a pipe.chunk";
          return signalPassFailure();
        }
        out.chunk = it->second;
        if (isPostOp(in.op))
          postOfReq[in.req] = stream.size();
      } else if (in.op == InstrOp::Wait) {
        auto it = postOfReq.find(in.req);
        if (it != postOfReq.end()) {
          const sched::Instr &post = stream[it->second];
          out.sub = post.op;
          out.peer = post.peer;
          out.chunk = post.chunk;
          out.mb = post.mb;
        }
      } else if (in.op == InstrOp::AllReduce) {
        auto it = groupIndex.find(prog.getSymbol(in.sym).getValue());
        if (it == groupIndex.end()) {
          prog.emitError("--pipe-plan-memory: instruction ")
              << i << " names " << prog.getSymbol(in.sym)
              << ", which is not a pipe.group";
          return signalPassFailure();
        }
        out.chunk = it->second;
      }
      stream.push_back(out);
    }
  }

  // The planner reads positions of every F, B, W and wait; streams that
  // are not a complete, well-formed schedule are refused, not planned.
  s.kind = sched::Kind::Csv;
  if (std::string why = sched::validateStreams(s); !why.empty()) {
    emitError(module.getLoc())
        << "--pipe-plan-memory: the programs are not a valid schedule: "
        << why;
    return signalPassFailure();
  }
  std::vector<RankMemory> mem;
  if (module.lookupSymbol<func::FuncOp>("train_step")) {
    layout::ValueLayout values;
    std::string why;
    if (!layout::buildValueLayout(module, s.placement.ranks, s.microbatches,
                                  values, why)) {
      emitError(module.getLoc()) << "--pipe-plan-memory: " << why;
      return signalPassFailure();
    }
    std::vector<std::vector<StaticBlock>> blocks;
    for (const layout::RankLayout &rk : values.ranks)
      blocks.push_back(rk.staticBlocks);
    mem = planBuffers(s, layout::chunkBuffers(values), blocks);
  } else {
    mem = planMemory(s, cm, statics);
  }
  OpBuilder b(ctx);
  bool over = false;
  for (ProgramOp prog : programs) {
    const RankMemory &m = mem[prog.getRank()];
    prog->setAttr("pipe.arena_bytes", b.getI64IntegerAttr(m.arenaBytes));
    prog->setAttr("pipe.peak_live_bytes", b.getI64IntegerAttr(m.peakLiveBytes));
    SmallVector<NamedAttribute> kinds;
    for (int k = 0; k < kBufferKinds; ++k)
      kinds.push_back(b.getNamedAttr(bufferKindName(BufferKind(k)),
                                     b.getI64IntegerAttr(m.atPeak[k])));
    prog->setAttr("pipe.memory", b.getDictionaryAttr(kinds));
    SmallVector<Attribute> table;
    for (const plan::Block &blk : m.blocks)
      table.push_back(pipe::BufferAttr::get(
          ctx, bufferKindName(blk.kind), plan::bufferRoleName(blk.role),
          blk.chunk, blk.slot, blk.offset, blk.bytes, blk.start, blk.end));
    prog->setAttr("pipe.buffers", b.getArrayAttr(table));
    SmallVector<Attribute> slots;
    for (size_t g = 0; g < m.slotOf.size(); ++g) {
      if (m.slotOf[g].empty())
        continue;
      slots.push_back(pipe::SlotsAttr::get(
          ctx, plan::bufferRoleName(int32_t(g / chunks.size())),
          int64_t(g % chunks.size()),
          b.getDenseI32ArrayAttr(SmallVector<int32_t>(m.slotOf[g].begin(),
                                                      m.slotOf[g].end()))));
    }
    prog->setAttr("pipe.slots", b.getArrayAttr(slots));
    if (print) {
      InFlightDiagnostic d = prog.emitRemark();
      d << "rank " << prog.getRank() << ": arena " << m.arenaBytes
        << " bytes, live peak " << m.peakLiveBytes << " at instruction "
        << m.peakPosition << ":";
      for (int k = 0; k < kBufferKinds; ++k)
        d << " " << bufferKindName(BufferKind(k)) << " " << m.atPeak[k];
    }
    if (memoryCap > 0 && m.arenaBytes > memoryCap) {
      prog.emitError("--pipe-plan-memory: rank ")
          << prog.getRank() << " needs " << m.arenaBytes
          << " bytes, over the memory cap of " << int64_t(memoryCap)
          << " bytes (live peak " << m.peakLiveBytes << " at instruction "
          << m.peakPosition << ": activations "
          << m.atPeak[int(BufferKind::Activations)] << ", weights "
          << m.atPeak[int(BufferKind::Weights)]
          << "); use fewer micro-batches in flight, more stages, or "
             "--pipe-partition with memory-cap (recomputes layers to fit) or "
             "recompute=true";
      over = true;
    }
  }
  if (over)
    signalPassFailure();
}

} // namespace
