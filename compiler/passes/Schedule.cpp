//===- Schedule.cpp - --pipe-schedule: per-rank programs --------*- C++ -*-===//
//
// Reads the module's pipe.chunk ops, builds a compute plan (a generated
// kind or a torch.distributed.pipelining CSV file), lowers it to every
// rank's instruction stream with compiler/schedule's lowering, proves the
// streams deadlock-free in the abstract machine, and writes them back as
// pipe.program tables with a pipe.schedule op holding the modelled figures.
// The module's pipe.group ops (the tied-parameter groups --pipe-partition
// declares) become collective groups 1.. of the lowering, so each member
// rank's program gets its `all_reduce @tied.NAME bucket 0`.
// All the schedule logic lives in compiler/schedule (plain C++); this pass
// only translates between it and the IR and turns its errors into
// diagnostics.
//
//===----------------------------------------------------------------------===//

#include "compiler/passes/Passes.h"

#include "compiler/schedule/Csv.h"
#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"
#include "compiler/schedule/Replicate.h"
#include "compiler/schedule/Validate.h"
#include "dialects/nn/NNOps.h"
#include "dialects/pipe/PipeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/MemoryBuffer.h"

namespace pipec {
#define GEN_PASS_DEF_PIPESCHEDULEPASS
#include "compiler/passes/Passes.h.inc"
} // namespace pipec

using namespace mlir;
using namespace pipec;
using namespace pipec::pipe;
namespace sched = pipec::schedule;


/// The number of compute ops in `func.func @forward`, or 0 (no limit) if the
/// module has none: a schedule cannot split a model into more chunks than it
/// has ops.
static int32_t countModelOps(ModuleOp module) {
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return 0;
  int32_t n = 0;
  forward.walk([&](nn::CostOpInterface) { ++n; });
  return n;
}

namespace {
struct PipeSchedulePass
    : public pipec::impl::PipeSchedulePassBase<PipeSchedulePass> {
  using Base::Base;
  void runOnOperation() override;

private:
  /// Builds the compute plan from the options; false after a diagnostic.
  bool buildPlan(ModuleOp module, ArrayRef<ChunkOp> chunks, int32_t stages,
                 sched::ComputePlan &plan);
  /// Checks that the plan places every chunk where the module declares it.
  bool checkPlacement(ModuleOp module, ArrayRef<ChunkOp> chunks,
                      const sched::ComputePlan &plan);
  /// Reads the module's pipe.group ops as collective groups 1..; false
  /// after a diagnostic (a rank outside the pipeline).
  bool readGroups(ModuleOp module, int32_t stages, SmallVector<GroupOp> &ops,
                  std::vector<std::vector<int32_t>> &groups);
  /// Writes the world group, the schedule op and one program per rank;
  /// `tied[g - 1]` is the op of group g.
  void emitPrograms(ModuleOp module, ArrayRef<ChunkOp> chunks,
                    ArrayRef<GroupOp> tied, const sched::Schedule &schedule,
                    const sched::MachineResult &result);
};
} // namespace

bool PipeSchedulePass::buildPlan(ModuleOp module, ArrayRef<ChunkOp> chunks,
                                 int32_t stages, sched::ComputePlan &plan) {
  Location loc = module.getLoc();
  if (!csv.empty()) {
    if (!kind.empty() && kind != "csv") {
      emitError(loc) << "--pipe-schedule: kind=" << kind << " and csv=" << csv
                     << " both choose the schedule; give one of them";
      return false;
    }
    std::string text;
    if (std::string e = sched::readCsvFile(csv, text); !e.empty()) {
      emitError(loc) << "--pipe-schedule: the schedule file: " << e;
      return false;
    }
    std::string why = sched::readCsvPlan(text, csv,
                                         microbatches, plan);
    if (!why.empty()) {
      emitError(loc) << "--pipe-schedule: the schedule file is rejected: "
                     << why;
      return false;
    }
    if (chunksPerRank > 0 && chunksPerRank != plan.chunksPerRank) {
      emitError(loc) << "--pipe-schedule: chunks-per-rank="
                     << int64_t(chunksPerRank)
                     << " but the schedule file places up to "
                     << plan.chunksPerRank << " chunks on a rank";
      return false;
    }
    return true;
  }
  if (kind.empty()) {
    emitError(loc) << "--pipe-schedule needs kind=K (one of "
                   << sched::allKindNames() << ", or auto) or csv=FILE";
    return false;
  }
  // kind=auto: the kind --pipe-partition placed the chunks for (the one its
  // own kind=auto chose), with the chunks per rank its chunks make.
  std::string chosen = kind;
  int32_t perRank = chunksPerRank;
  if (kind == "auto") {
    auto attr = module->getAttrOfType<StringAttr>("pipe.schedule_kind");
    if (!attr || attr.getValue() == "csv") {
      emitError(loc) << "--pipe-schedule: kind=auto takes the kind "
                        "--pipe-partition placed the chunks for "
                        "(pipe.schedule_kind), but the module has "
                     << (attr ? "a schedule file's placement: give csv=FILE"
                              : "none");
      return false;
    }
    chosen = attr.getValue().str();
    perRank = int32_t(chunks.size()) / std::max(stages, 1);
  }
  sched::GenerateOptions options;
  if (!sched::parseKind(chosen, options.kind)) {
    emitError(loc) << "--pipe-schedule: unknown schedule kind '" << chosen
                   << "'; expected one of " << sched::allKindNames();
    return false;
  }
  if (microbatches < 1) {
    emitError(loc) << "--pipe-schedule needs microbatches=M with M >= 1, got "
                   << int64_t(microbatches);
    return false;
  }
  // The streams hold about ten instructions per chunk and micro-batch; a
  // bound keeps a mistyped count from exhausting memory (Schedule.h).
  using pipec::schedule::kMaxChunkMicrobatches;
  int64_t size = int64_t(chunks.size()) * microbatches;
  if (size > kMaxChunkMicrobatches) {
    emitError(loc) << "--pipe-schedule: " << chunks.size() << " chunks x "
                   << int64_t(microbatches) << " micro-batches is " << size
                   << " chunk steps, more than the limit of "
                   << kMaxChunkMicrobatches;
    return false;
  }
  options.stages = stages;
  options.microbatches = microbatches;
  options.chunksPerRank = perRank;
  options.modelOps = countModelOps(module);
  std::string why = sched::generatePlan(options, plan);
  if (!why.empty()) {
    emitError(loc) << "--pipe-schedule: " << why;
    return false;
  }
  return true;
}

bool PipeSchedulePass::checkPlacement(ModuleOp module, ArrayRef<ChunkOp> chunks,
                                      const sched::ComputePlan &plan) {
  const sched::Placement &pl = plan.placement;
  std::string what = plan.kind == sched::Kind::Csv
                         ? "the schedule file"
                         : std::string(sched::kindName(plan.kind)) + " with " +
                               std::to_string(pl.ranks) + " stages x " +
                               std::to_string(plan.chunksPerRank) +
                               " chunks per rank";
  auto placementNote = [&](InFlightDiagnostic &diag) {
    std::string ranks;
    for (int32_t c = 0; c < pl.chunks; ++c)
      ranks += (c ? ", " : "") + std::to_string(pl.rankOf[c]);
    diag.attachNote() << what << " places chunks 0.." << pl.chunks - 1
                      << " on ranks [" << ranks << "]";
  };
  if (pl.chunks != int32_t(chunks.size())) {
    InFlightDiagnostic diag = emitError(module.getLoc())
                              << "--pipe-schedule: " << what << " needs "
                              << pl.chunks << " chunks, but the module "
                              << "declares " << chunks.size()
                              << " pipe.chunk ops";
    placementNote(diag);
    return false;
  }
  for (auto [index, chunkRef] : llvm::enumerate(chunks)) {
    ChunkOp chunk = chunkRef;
    if (pl.rankOf[index] != chunk.getRank()) {
      InFlightDiagnostic diag =
          chunk.emitError()
          << "--pipe-schedule: chunk " << index << " ("
          << FlatSymbolRefAttr::get(chunk.getSymNameAttr())
          << ") is declared on rank " << chunk.getRank() << ", but " << what
          << " places it on rank " << pl.rankOf[index];
      placementNote(diag);
      return false;
    }
  }
  return true;
}

bool PipeSchedulePass::readGroups(ModuleOp module, int32_t stages,
                                  SmallVector<GroupOp> &ops,
                                  std::vector<std::vector<int32_t>> &groups) {
  for (GroupOp group : module.getOps<GroupOp>()) {
    std::vector<int32_t> ranks(group.getRanks().begin(),
                               group.getRanks().end());
    for (int32_t r : ranks)
      if (r < 0 || r >= stages) {
        group.emitError() << "--pipe-schedule: group "
                          << FlatSymbolRefAttr::get(group.getSymNameAttr())
                          << " names rank " << r
                          << ", but the pipeline's ranks are 0.."
                          << stages - 1;
        return false;
      }
    ops.push_back(group);
    groups.push_back(std::move(ranks));
  }
  return true;
}

void PipeSchedulePass::emitPrograms(ModuleOp module, ArrayRef<ChunkOp> chunks,
                                    ArrayRef<GroupOp> tied,
                                    const sched::Schedule &schedule,
                                    const sched::MachineResult &result) {
  MLIRContext *ctx = module.getContext();
  OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
  Location loc = module.getLoc();
  const int32_t ranks = schedule.ranks();

  // Built before the group exists, so that inserting it renames the group
  // if the module already uses the name.
  SymbolTable symbolTable(module);
  SmallVector<int32_t> allRanks = llvm::to_vector(llvm::seq<int32_t>(0, ranks));
  auto world = GroupOp::create(builder, loc, "world", allRanks);
  symbolTable.insert(world);
  // groupRefs[g]: the symbol of the library's group g.
  SmallVector<FlatSymbolRefAttr> groupRefs = {
      FlatSymbolRefAttr::get(world.getSymNameAttr())};
  for (GroupOp group : tied)
    groupRefs.push_back(FlatSymbolRefAttr::get(group.getSymNameAttr()));

  // The machine reports 0 idle time over 0 step time as NaN; a step that
  // takes no time has no bubble.
  double bubble = result.bubbleFraction;
  if (!(bubble >= 0))
    bubble = 0;
  ScheduleOp::create(builder, loc, StringRef(sched::kindName(schedule.kind)),
                     ranks, schedule.microbatches, schedule.chunksPerRank,
                     llvm::APFloat(bubble), llvm::APFloat(result.stepTime),
                     int32_t(replicas), int32_t(zero));

  for (int32_t rank = 0; rank < ranks; ++rank) {
    const auto &stream = schedule.streams[rank];
    // Global chunk index -> index in this program's symbols.
    llvm::DenseMap<int32_t, int32_t> symOf;
    SmallVector<Attribute> symbols;
    // Library group -> index in this program's symbols.
    llvm::DenseMap<int32_t, int32_t> groupSymOf;
    auto chunkSym = [&](int32_t chunk) {
      auto [it, inserted] = symOf.try_emplace(chunk, int32_t(symbols.size()));
      if (inserted)
        symbols.push_back(
            FlatSymbolRefAttr::get(ChunkOp(chunks[chunk]).getSymNameAttr()));
      return it->second;
    };
    SmallVector<int32_t> table;
    table.reserve(stream.size() * kInstrFields);
    for (const sched::Instr &in : stream) {
      Instr out{in.op}; // one numbering: the plan ABI's
      switch (in.op) {
      case sched::Op::Fwd:
      case sched::Op::BwdB:
      case sched::Op::BwdW:
        out.sym = chunkSym(in.chunk);
        out.mb = in.mb;
        break;
      case sched::Op::RecvAct:
      case sched::Op::RecvGrad:
      case sched::Op::SendAct:
      case sched::Op::SendGrad:
        out.peer = in.peer;
        out.sym = chunkSym(in.chunk);
        out.mb = in.mb;
        out.req = in.req;
        break;
      case sched::Op::Wait:
        out.req = in.req;
        break;
      case sched::Op::AllReduce:
      case sched::Op::ReduceScatter: // ZeRO-1's, which replication adds
      case sched::Op::AllGather: {   // after this pass: never seen here
        // Group 0 is @world; groups 1.. are the module's pipe.group ops.
        auto [it, inserted] =
            groupSymOf.try_emplace(in.chunk, int32_t(symbols.size()));
        if (inserted)
          symbols.push_back(groupRefs[in.chunk]);
        out.sym = it->second;
        out.mb = in.mb;
        break;
      }
      case sched::Op::OptStep:
        break;
      }
      out.encode(table);
    }
    ProgramOp::create(builder, loc, rank, ArrayAttr::get(ctx, symbols),
                      DenseI32ArrayAttr::get(ctx, table));
  }
}

void PipeSchedulePass::runOnOperation() {
  ModuleOp module = getOperation();
  if (microbatches < 0 || chunksPerRank < 0) {
    emitError(module.getLoc())
        << "--pipe-schedule: microbatches and chunks-per-rank must not be "
           "negative (0: the schedule file's or the kind's)";
    return signalPassFailure();
  }
  for (Operation &op : *module.getBody())
    if (isa<ScheduleOp, ProgramOp>(op)) {
      op.emitError("--pipe-schedule: the module is already scheduled; the "
                   "pass runs once, on pipe.chunk ops without programs");
      return signalPassFailure();
    }
  SmallVector<ChunkOp> chunks(module.getOps<ChunkOp>());
  if (chunks.empty()) {
    emitError(module.getLoc())
        << "--pipe-schedule needs pipe.chunk ops (a stage's slice of the "
           "step, its rank and its F, B, W costs); the module has none";
    return signalPassFailure();
  }
  // The pipeline's ranks are the ones the chunks are declared on; each rank
  // holds a chunk, so no rank can reach the chunk count.
  int64_t maxRank = 0;
  SmallVector<bool> used(chunks.size(), false);
  for (ChunkOp chunk : chunks) {
    maxRank = std::max<int64_t>(maxRank, chunk.getRank());
    if (chunk.getRank() < int64_t(chunks.size()))
      used[chunk.getRank()] = true;
  }
  for (int64_t r = 0; r <= maxRank; ++r)
    if (!used[r]) {
      emitError(module.getLoc())
          << "--pipe-schedule: no pipe.chunk is declared on rank " << r
          << ", but some are on rank " << maxRank
          << "; ranks must be numbered 0.." << maxRank;
      return signalPassFailure();
    }
  const int32_t stages = int32_t(maxRank + 1);

  sched::ComputePlan plan;
  if (!buildPlan(module, chunks, stages, plan) ||
      !checkPlacement(module, chunks, plan))
    return signalPassFailure();
  std::string why = sched::checkPlan(plan);
  if (!why.empty()) {
    emitError(module.getLoc())
        << "--pipe-schedule: the plan is rejected: " << why;
    return signalPassFailure();
  }

  SmallVector<GroupOp> tiedOps;
  sched::LowerOptions lowerOptions;
  if (!readGroups(module, stages, tiedOps, lowerOptions.groups))
    return signalPassFailure();
  sched::Schedule schedule = sched::lowerPlan(plan, lowerOptions);
  sched::Costs costs;
  for (ChunkOp chunk : chunks) {
    costs.f.push_back(chunk.getForwardCost());
    costs.b.push_back(chunk.getBackwardBCost());
    costs.w.push_back(chunk.getBackwardWCost());
  }
  if (replicas < 1) {
    emitError(module.getLoc())
        << "--pipe-schedule: replicas must be at least 1, got " << replicas;
    return signalPassFailure();
  }
  if (zero != 0 && (zero != 1 || replicas < 2)) {
    emitError(module.getLoc())
        << "--pipe-schedule: zero must be 0, or 1 with at least 2 replicas "
           "(ZeRO-1 splits the optimizer state among them); got zero = "
        << zero << " with " << replicas << " replicas";
    return signalPassFailure();
  }
  // With replicas, what is proven and timed is the whole plan: replica 0
  // with the data-parallel collectives, which proves every replica count
  // (Replicate.h's replicaZeroAlone: each replica runs replica 0's
  // streams); the programs stay the pipeline's.
  sched::MachineResult result;
  why = sched::verifySchedule(
      replicas > 1 ? sched::replicaZeroAlone(schedule, {}, zero == 1)
                   : schedule,
      costs, result);
  if (!why.empty()) {
    emitError(module.getLoc())
        << "--pipe-schedule: the " << sched::kindName(plan.kind)
        << " schedule" << (replicas > 1 ? " with its replicas" : "")
        << " is rejected: " << why;
    return signalPassFailure();
  }
  emitPrograms(module, chunks, tiedOps, schedule, result);
}
