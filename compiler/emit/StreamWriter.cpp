//===- StreamWriter.cpp - runtime streams from pipe.program ---------------===//
//
// The streams are the programs' instructions with their message buffers
// and the buffer uses the runtime turns into shadow-checked accesses
// (pipert/StreamBuilder.h). A compute instruction uses exactly the regions
// its phase reads and writes (ChunkLayout::reads, writes), the ones the
// memory plan kept alive for it; the shadow mode proves both agree.
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitLayout.h"
#include "compiler/schedule/Replicate.h"
#include "compiler/schedule/Validate.h"

#include "pipert/StreamBuilder.h"
#include "pipert/ZeroShard.h"

#include <algorithm>
#include <set>
#include <tuple>

using namespace mlir;
using namespace pipec;
using namespace pipec::emit;
using pipe::InstrOp;
namespace sched = pipec::schedule;


/// The program of rank r.
static pipe::ProgramOp programOf(const PlanLayout &L, int32_t r) {
  for (pipe::ProgramOp p : L.programs)
    if (int32_t(p.getRank()) == r)
      return p;
  return nullptr;
}

/// The chunk index of a chunk symbol, or -1.
static int32_t chunkIndex(const PlanLayout &L, StringRef sym) {
  for (size_t c = 0; c < L.chunks.size(); ++c)
    if (L.chunks[c].sym == sym)
      return int32_t(c);
  return -1;
}

namespace {
/// Buffer ids: static blocks, then (chunk, micro-batch, region).
enum StaticId : int64_t {
  Values = 1,
  Grads,
  AdamM,
  AdamV,
  Accs,
  Norm,
  GradNorm,
  Scratch,
  Copies,  ///< the cuda target's bf16 working copies of the parameters
  Scalars, ///< the cuda target's optimizer scalars (step, clip, lr)
  /// The cuda target's workspace (cuBLASLt's, the column sums', the sums
  /// of squares'): every function that may use it writes it before it
  /// reads, so it is declared written, never read across instructions.
  Workspace
};
constexpr int64_t kTiedId = 100, kLossId = 1000, kSlotId = 100000;
/// Parts of a micro-batch's regions (the message regions, F's and B's
/// kept values).
enum Part { InAct = kInAct, InGrad, OutAct, OutGrad, FData, BData };
} // namespace

namespace {
/// A rank's instructions with the buffers each uses, before the accesses
/// are derived from them.
struct RankInstrs {
  std::vector<pipert::Instr> instrs;
  std::vector<std::vector<pipert::BufferUse>> uses;
  /// ZeRO-1's reduce-scatters and all-gathers: parts[i] of instrs[i].
  std::vector<std::vector<pipert::Part>> parts;
};
} // namespace

/// ZeRO-1: the parts of an operand at `base` holding parameters at
/// `offsets` (parameter index -> offset from the arena start), each split
/// among the stage's replicas by pipert::zeroShard; the part of replica q
/// belongs to its rank q * S + stage.
static std::vector<pipert::Part>
zeroParts(const PlanLayout &L, int32_t stage, int64_t base,
          const std::vector<std::pair<int, int64_t>> &offsets) {
  std::vector<pipert::Part> parts;
  for (auto [p, off] : offsets) {
    const ParamLayout &pl = L.params[size_t(p)];
    const int64_t e = pl.bytes / std::max<int64_t>(pl.elements, 1);
    for (int32_t q = 0; q < L.replicas; ++q) {
      pipert::ShardRange s =
          pipert::zeroShard(pl.elements, L.zeroKey[size_t(p)], q, L.replicas);
      if (s.count > 0)
        parts.push_back({q * L.stages + stage, off - base + s.first * e,
                         s.count * e});
    }
  }
  std::sort(parts.begin(), parts.end(),
            [](const pipert::Part &a, const pipert::Part &b) {
              return a.offset < b.offset;
            });
  return parts;
}

/// Data parallelism: the pipeline's streams `stages` become replica 0's of
/// the plan of L.replicas replicas, as the schedule library replicates
/// them (Replicate.h: each chunk's accumulators all-reduced over its
/// replicas after its last W and the posts that follow it, ZeRO-1's
/// collectives). Replica 0 alone is proven by the abstract machine, which
/// proves every replica count (replicaZeroAlone); the other replicas run
/// replica 0's streams moved into them (PlanStreams.h), so the compiler
/// never holds them: its memory and time grow with the pipeline's ranks,
/// not with the replicas.
static bool replicateStages(const PlanLayout &L, std::vector<RankInstrs> &stages,
                            std::string &error) {
  const int32_t S = L.stages, D = L.replicas;
  sched::Schedule pipeline;
  pipeline.microbatches = L.microbatches;
  pipeline.chunksPerRank = L.chunksPerRank;
  pipeline.placement.ranks = S;
  pipeline.placement.chunks = int32_t(L.chunks.size());
  std::vector<int32_t> all;
  for (int32_t r = 0; r < S; ++r)
    all.push_back(r);
  pipeline.groups.push_back(all);
  for (const TiedGroup &g : L.tied)
    pipeline.groups.push_back(g.ranks);
  std::vector<uint8_t> reduced;
  for (size_t c = 0; c < L.chunks.size(); ++c) {
    const RankLayout &rk = L.ranks[size_t(L.chunks[c].rank)];
    pipeline.placement.rankOf.push_back(L.chunks[c].rank);
    reduced.push_back(rk.accRange.count(int32_t(c)) &&
                      rk.accRange.at(int32_t(c)).second > 0);
  }
  for (const RankInstrs &st : stages) {
    pipeline.streams.emplace_back();
    for (const pipert::Instr &in : st.instrs)
      pipeline.streams.back().push_back(
          {in.op, in.sub, in.peer, in.chunk, in.mb, in.req});
  }
  const bool zero = L.zeroReplicas > 1;
  sched::Schedule alone = sched::replicaZeroAlone(pipeline, reduced, zero);
  // Unit costs: the proof of deadlock freedom does not depend on them.
  sched::Costs costs;
  costs.f.assign(L.chunks.size(), 1.0);
  costs.b = costs.w = costs.f;
  sched::MachineResult result;
  if (std::string why = sched::verifySchedule(alone, costs, result);
      !why.empty()) {
    error = "the streams of " + std::to_string(D) + " replicas are "
            "rejected (replica 0, which every replica runs): " + why;
    return false;
  }
  const int32_t G = pipeline.groupCount(), C = int32_t(L.chunks.size());
  std::vector<RankInstrs> out(static_cast<size_t>(S));
  for (int32_t q = 0; q < S; ++q) {
    const RankInstrs &stage = stages[size_t(q)];
    const RankLayout &rk = L.ranks[size_t(q)];
    RankInstrs &mine = out[size_t(q)];
    size_t j = 0;
    for (const sched::Instr &in : alone.streams[size_t(q)]) {
      // The stage's data-parallel group, G + q alone, is D G + q in the
      // plan (Replicate.h's numbering).
      if (pipert::isCollectiveOp(in.op) && in.chunk >= G) {
        pipert::Instr o;
        o.op = o.sub = in.op;
        o.dtype = pipert::DType::F32;
        o.chunk = sched::dataParallelGroup(in.chunk - G, D, G);
        o.mb = in.mb;
        std::vector<pipert::Part> parts;
        if (in.mb == sched::zeroNormBucket(C)) {
          // ZeRO-1: the norm's partial sums, each from one replica.
          o.dtype = pipert::DType::F64;
          o.offset = rk.normBase;
          o.bytes = 8 * L.normSlots;
          mine.uses.push_back({{Norm, o.offset, o.bytes, false},
                               {Norm, o.offset, o.bytes, true}});
        } else if (in.mb == sched::zeroWeightsBucket(C)) {
          // ZeRO-1: each replica's updated part of every parameter.
          o.offset = rk.valuesBase;
          o.bytes = rk.paramBlockBytes;
          std::vector<std::pair<int, int64_t>> offsets;
          for (int p : rk.params)
            offsets.push_back({p, rk.valuesBase + rk.paramOffset.at(p)});
          parts = zeroParts(L, q, o.offset, offsets);
          mine.uses.push_back({{Values, o.offset, o.bytes, false},
                               {Values, o.offset, o.bytes, true}});
          // cuda: the executor's afterAllGather rounds the gathered
          // parts into the working copies.
          if (rk.copiesBytes)
            mine.uses.back().push_back(
                {Copies, rk.copiesBase, rk.copiesBytes, true});
        } else {
          // The chunk's accumulators, summed over its replicas in place
          // (ZeRO-1: each replica's own parts); to the shadow mode it
          // reads and writes them all, as W does.
          auto [first, bytes] = rk.accRange.at(in.mb);
          o.offset = rk.accBase + first;
          o.bytes = bytes;
          if (zero) {
            std::vector<std::pair<int, int64_t>> offsets;
            for (const auto &[use, off] : rk.accOffset)
              if (off >= first && off < first + bytes)
                offsets.push_back(
                    {L.paramIndex.lookup(use.first), rk.accBase + off});
            parts = zeroParts(L, q, o.offset, offsets);
          }
          mine.uses.push_back({{Accs, rk.accBase, rk.accBytes, false},
                               {Accs, rk.accBase, rk.accBytes, true}});
        }
        mine.instrs.push_back(o);
        mine.parts.push_back(std::move(parts));
        continue;
      }
      // Replica 0's: peers and the pipeline's groups keep their numbers.
      mine.instrs.push_back(stage.instrs.at(j));
      mine.uses.push_back(stage.uses.at(j));
      mine.parts.emplace_back();
      ++j;
    }
  }
  stages = std::move(out);
  return true;
}

/// The streams, or false with `error` naming the rank and instruction.
static bool writeStreams(const PlanLayout &L, std::vector<pipert::Stream> &out,
                         std::string &error) {
  int32_t M = L.microbatches, C = int32_t(L.chunks.size());
  std::vector<RankInstrs> stages;
  for (int32_t r = 0; r < L.stages; ++r) {
    const RankLayout &rk = L.ranks[size_t(r)];
    pipe::ProgramOp prog = programOf(L, r);
    auto part = [&](int32_t c, int32_t mb, Part k, bool write,
                    std::vector<pipert::BufferUse> &uses) {
      const ChunkLayout &ch = L.chunks[size_t(c)];
      int32_t region = k == FData   ? int32_t(kData)
                       : k == BData ? int32_t(kBData)
                                    : int32_t(k);
      int64_t offset = k == FData ? ch.fData.offset
                       : k == BData ? ch.bData.offset
                                    : 0;
      int64_t bytes = k == FData   ? ch.fData.bytes
                      : k == BData ? ch.bData.bytes
                                   : ch.regionBytes[region];
      if (!bytes)
        return;
      int64_t base =
          rk.slotBase.at({c, region, ch.slotOf[region][size_t(mb)]});
      uses.push_back({kSlotId + (int64_t(c) * M + mb) * 8 + k, base + offset,
                      bytes, write});
    };
    auto block = [&](int64_t id, int64_t off, int64_t bytes, bool write,
                     std::vector<pipert::BufferUse> &uses) {
      if (bytes)
        uses.push_back({id, off, bytes, write});
    };
    // The cuda workspace, written by a function that may use it (none on
    // the cpu).
    auto workspace = [&](std::vector<pipert::BufferUse> &uses) {
      if (rk.workspaceOffset >= 0)
        block(Workspace, rk.workspaceOffset, pipert::kCudaWorkspaceBytes,
              true, uses);
    };
    int64_t pb = rk.paramBlockBytes;
    std::vector<pipert::Instr> instrs;
    std::vector<std::vector<pipert::BufferUse>> uses;
    std::map<int32_t, pipert::Instr> posts;
    bool programHasTied = false, worldDone = false;
    std::set<int32_t> tiedDone;
    for (size_t i = 0; i < prog.getNumInstrs(); ++i) {
      pipe::Instr in = prog.getInstr(i);
      if (in.op == InstrOp::AllReduce &&
          prog.getSymbol(in.sym).getValue() != "world")
        programHasTied = true;
    }
    // allreduce(group g) over a tied parameter's accumulators.
    auto appendTied = [&](const TiedGroup &g) {
      pipert::Instr t;
      t.op = t.sub = pipert::Opcode::AllReduce;
      t.dtype = pipert::DType::F32;
      t.chunk = g.group;
      t.mb = 0;
      t.offset = rk.tiedBase.at(g.group);
      t.bytes = g.bytes;
      std::vector<pipert::BufferUse> tu;
      block(Accs, rk.accBase, rk.accBytes, false, tu);
      block(kTiedId + g.group, t.offset, t.bytes, true, tu);
      instrs.push_back(t);
      uses.push_back(tu);
    };
    for (size_t i = 0; i < prog.getNumInstrs(); ++i) {
      pipe::Instr in = prog.getInstr(i);
      pipert::Instr o;
      o.op = pipert::Opcode(uint8_t(in.op));
      o.sub = o.op;
      std::vector<pipert::BufferUse> u;
      int32_t c = -1;
      if (in.op != InstrOp::Wait && in.op != InstrOp::AllReduce &&
          in.op != InstrOp::OptStep)
        c = chunkIndex(L, prog.getSymbol(in.sym).getValue());
      switch (in.op) {
      case InstrOp::Fwd:
      case InstrOp::BwdB:
      case InstrOp::BwdW: {
        o.chunk = c;
        o.mb = in.mb;
        const int phase = in.op == InstrOp::Fwd    ? 0
                          : in.op == InstrOp::BwdB ? 1
                                                   : 2;
        const ChunkLayout &ch = L.chunks[size_t(c)];
        if (phase < 2) {
          block(Values, rk.valuesBase, pb, false, u);
          // The cuda target's kernels read the bf16 working copies, which
          // the optimizer (or, before the first step, Begin) wrote.
          block(Copies, rk.copiesBase, rk.copiesBytes, false, u);
        }
        // A same-rank neighbour hands the input (at F) or the output's
        // gradient (at B) over by a copy from its outgoing region.
        int handedOver = -1;
        if (phase == 0 && c > 0 && L.chunks[size_t(c - 1)].rank == r) {
          part(c - 1, in.mb, OutAct, false, u);
          handedOver = kInAct;
        } else if (phase == 1 && c + 1 < C &&
                   L.chunks[size_t(c + 1)].rank == r) {
          part(c + 1, in.mb, OutGrad, false, u);
          handedOver = kInGrad;
        }
        // A region the phase writes is declared written only: what it reads
        // there it wrote itself (F's host inputs and values, B's values).
        for (int k = 0; k < kRegions; ++k) {
          bool write = k == handedOver || ((ch.writes[phase] >> k) & 1);
          if (write || ((ch.reads[phase] >> k) & 1))
            part(c, in.mb, Part(k), write, u);
        }
        workspace(u);
        if (phase < 2) {
          block(Scratch, rk.scratchBase, rk.scratchBytes, true, u);
        } else {
          block(Accs, rk.accBase, rk.accBytes, false, u);
          block(Accs, rk.accBase, rk.accBytes, true, u);
        }
        if (phase == 0 && ch.lossValue)
          block(kLossId + in.mb, rk.lossOffset + 8 * in.mb, 8, true, u);
        break;
      }
      case InstrOp::RecvAct:
      case InstrOp::SendAct:
      case InstrOp::RecvGrad:
      case InstrOp::SendGrad: {
        bool recv = pipe::isRecvOp(in.op);
        int32_t owner = in.op == InstrOp::RecvAct    ? c + 1
                        : in.op == InstrOp::RecvGrad ? c - 1
                                                     : c;
        Part k = in.op == InstrOp::RecvAct    ? InAct
                 : in.op == InstrOp::SendAct  ? OutAct
                 : in.op == InstrOp::RecvGrad ? InGrad
                                              : OutGrad;
        part(owner, in.mb, k, recv, u);
        if (u.empty()) {
          error = "rank " + std::to_string(r) + ": " + prog.formatInstr(in) +
                  " has an empty message";
          return false;
        }
        o.peer = in.peer;
        o.chunk = c;
        o.mb = in.mb;
        o.req = in.req;
        o.offset = u[0].offset;
        o.bytes = u[0].bytes;
        posts[in.req] = o;
        break;
      }
      case InstrOp::Wait: {
        const pipert::Instr &post = posts.at(in.req);
        o.sub = post.op;
        o.peer = post.peer;
        o.chunk = post.chunk;
        o.mb = post.mb;
        o.req = in.req;
        break;
      }
      case InstrOp::AllReduce: {
        StringRef group = prog.getSymbol(in.sym).getValue();
        if (group != "world") {
          // A tied parameter's group (--pipe-schedule places it).
          auto param = L.groupParam.find(group.str());
          const TiedGroup *tg = nullptr;
          for (const TiedGroup &g : L.tied)
            if (param != L.groupParam.end() &&
                g.segments.front().param == param->second)
              tg = &g;
          if (!tg || !std::count(tg->ranks.begin(), tg->ranks.end(), r)) {
            error = "rank " + std::to_string(r) + ": " +
                    prog.formatInstr(in) +
                    ": not a tied parameter of this rank the emitter knows";
            return false;
          }
          if (worldDone) {
            error = "rank " + std::to_string(r) + ": " +
                    prog.formatInstr(in) +
                    " comes after all_reduce @world, whose gradient norm "
                    "needs it";
            return false;
          }
          appendTied(*tg);
          tiedDone.insert(tg->group);
          continue;
        }
        // Tied groups the program does not all-reduce itself (an older
        // --pipe-schedule) go first: group 0's contribution needs them.
        for (const TiedGroup &g : L.tied)
          if (std::count(g.ranks.begin(), g.ranks.end(), r) &&
              !programHasTied)
            appendTied(g);
        worldDone = true;
        o.dtype = pipert::DType::F64;
        o.chunk = 0;
        o.mb = in.mb;
        o.offset = rk.normBase;
        o.bytes = 8 * L.normSlots;
        block(Accs, rk.accBase, rk.accBytes, false, u);
        for (auto [g, off] : rk.tiedBase)
          for (const TiedGroup &tg : L.tied)
            if (tg.group == g)
              block(kTiedId + g, off, tg.bytes, false, u);
        block(Grads, rk.gradsBase, pb, true, u);
        block(Norm, o.offset, o.bytes, true, u);
        workspace(u); // the sums of squares' chunks
        break;
      }
      case InstrOp::OptStep:
        block(Norm, rk.normBase, 8 * L.normSlots, false, u);
        block(Grads, rk.gradsBase, pb, false, u);
        for (auto [id, base, bytes] :
             {std::tuple<int64_t, int64_t, int64_t>{Values, rk.valuesBase, pb},
              {AdamM, rk.mBase, rk.momentBlockBytes},
              {AdamV, rk.vBase, rk.momentBlockBytes}}) {
          block(id, base, bytes, false, u);
          block(id, base, bytes, true, u);
        }
        block(Accs, rk.accBase, rk.accBytes, true, u);
        block(GradNorm, rk.gradNormOffset, 8, true, u);
        // cuda: AdamW refreshes the working copies; the step, clip scale
        // and learning rate are written (copied in, computed) before
        // they are read.
        block(Copies, rk.copiesBase, rk.copiesBytes, true, u);
        if (rk.scalarsOffset >= 0)
          block(Scalars, rk.scalarsOffset, 8 * layout::kOptimizerScalars,
                true, u);
        workspace(u); // ZeRO-1's norm totals
        break;
      case InstrOp::ReduceScatter:
      case InstrOp::AllGather:
        // ZeRO-1's collectives join the streams when --dp replicates them
        // (Replicate.h), after the programs are written.
        error = "rank " + std::to_string(r) + ": " + prog.formatInstr(in) +
                ": a pipe.program holds no reduce-scatter or all-gather "
                "(--dp --zero 1 adds them to the replicated streams)";
        return false;
      }
      instrs.push_back(o);
      uses.push_back(std::move(u));
    }
    for (const TiedGroup &g : L.tied)
      if (programHasTied && std::count(g.ranks.begin(), g.ranks.end(), r) &&
          !tiedDone.count(g.group)) {
        error = "rank " + std::to_string(r) + " holds the tied parameter " +
                g.segments.front().param +
                " but its program never all-reduces its gradient";
        return false;
      }
    stages.push_back({std::move(instrs), std::move(uses)});
  }
  if (L.replicas > 1 && !replicateStages(L, stages, error))
    return false;
  // Replica 0's streams: the other replicas run them moved (PlanStreams.h).
  for (size_t q = 0; q < stages.size(); ++q) {
    pipert::Stream s;
    s.rank = int32_t(q);
    s.ranks = L.stages * L.replicas;
    s.microbatches = M;
    s.arenaBytes = L.ranks[q % size_t(L.stages)].arenaBytes;
    pipert::appendWithUses(s, stages[q].instrs, stages[q].uses,
                           stages[q].parts);
    // Its instructions and uses are in the stream now: freed at once, so
    // that a plan of many replicas does not hold both forms of every rank.
    stages[q] = RankInstrs();
    if (pipert::Status st = pipert::validateStream(s); !st.ok()) {
      error = "the stream of rank " + std::to_string(q) +
              " is invalid: " + st.message();
      return false;
    }
    out.push_back(std::move(s));
  }
  return true;
}

LogicalResult pipec::emit::buildStreams(const PlanLayout &L,
                                        std::vector<pipert::Stream> &out) {
  std::string error;
  if (!writeStreams(L, out, error))
    return L.module.emitError(error);
  return success();
}
