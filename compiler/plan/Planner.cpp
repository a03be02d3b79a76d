//===- Planner.cpp - partition, schedule and memory plan together ---------===//

#include "compiler/plan/Planner.h"

#include "compiler/schedule/Replicate.h"

#include "compiler/schedule/Csv.h"
#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"
#include "compiler/schedule/Validate.h"

#include <algorithm>
#include <set>

using namespace pipec::schedule;

namespace pipec::plan {

int64_t maxPeak(const Plan &plan) {
  int64_t m = 0;
  for (const RankMemory &r : plan.memory)
    m = std::max(m, r.arenaBytes);
  return m;
}

bool parseRecompute(const std::string &text, Recompute &out) {
  if (text == "none")
    out = Recompute::None;
  else if (text == "full")
    out = Recompute::Full;
  else if (text == "auto")
    out = Recompute::Auto;
  else
    return false;
  return true;
}

namespace {

/// Builds the compute plan of a kind or a CSV file.
std::string computePlan(const PlanOptions &o, Kind kind, int32_t v,
                        int32_t pieces, ComputePlan &cp) {
  if (!o.csvText.empty())
    return readCsvPlan(o.csvText, o.csvName, o.microbatches, cp);
  GenerateOptions g;
  g.kind = kind;
  g.stages = o.stages;
  g.microbatches = o.microbatches;
  g.chunksPerRank = v;
  g.modelOps = pieces;
  return generatePlan(g, cp);
}

std::string planCuts(const ModelCosts &model, const PlanOptions &o,
                     const ComputePlan &cp, const std::vector<double> &pieceTime,
                     const Cuts &cuts, bool recompute, Plan &plan);
bool recomputeToFit(const ModelCosts &model, const PlanOptions &o, Plan &plan);

/// Plans one kind, V and recomputation choice; no cap check.
std::string planOne(const ModelCosts &model, const PlanOptions &o, Kind kind,
                    int32_t v, bool recompute, Plan &plan) {
  const int32_t n = int32_t(model.pieces.size());
  ComputePlan cp;
  if (std::string err = computePlan(o, kind, v, n, cp); !err.empty())
    return err;
  const Placement &pl = cp.placement;
  if (pl.chunks > n)
    return "the plan needs " + std::to_string(pl.chunks) +
           " chunks but the model has only " + std::to_string(n) +
           " compute ops to split";

  std::vector<double> pieceTime(n);
  for (int32_t i = 0; i < n; ++i) {
    const Piece &p = model.pieces[i];
    pieceTime[i] = p.f + p.b + p.w + (recompute ? p.f : 0);
  }
  // Partition and schedule together: time each candidate partition with
  // the schedule and keep the fastest (the least largest rank on a tie).
  std::vector<Cuts> candidates =
      partitionCandidates(pieceTime, pl.rankOf, pl.ranks);
  std::string firstErr;
  bool found = false;
  for (const Cuts &cuts : candidates) {
    Plan trial;
    std::string err = planCuts(model, o, cp, pieceTime, cuts, recompute, trial);
    if (!err.empty()) {
      if (firstErr.empty())
        firstErr = err;
      continue;
    }
    auto worst = [](const Plan &p) {
      return *std::max_element(p.rankTime.begin(), p.rankTime.end());
    };
    if (!found || trial.timing.stepTime < plan.timing.stepTime * (1 - 1e-9) ||
        (trial.timing.stepTime <= plan.timing.stepTime * (1 + 1e-9) &&
         worst(trial) < worst(plan))) {
      plan = std::move(trial);
      found = true;
    }
  }
  return found ? "" : firstErr;
}

/// Fills a chunk's costs and memory from its pieces and recomputed prefix.
void fillChunk(const ModelCosts &model, ChunkPlan &ch) {
  ch.f = ch.b = ch.w = 0;
  for (Work &w : ch.work)
    w = Work();
  ch.firstLayer = ch.lastLayer = -1;
  ChunkMemory &m = ch.memory;
  m = ChunkMemory();
  m.inBytes = model.crossBytes[ch.firstPiece];
  m.outBytes = model.crossBytes[ch.endPiece];
  if (ch.recomputes())
    m.recomputeInBytes = m.inBytes;
  for (int32_t i = ch.firstPiece; i < ch.endPiece; ++i) {
    const Piece &p = model.pieces[i];
    bool again = i < ch.recomputeEnd;
    if (p.layer >= 0) {
      if (ch.firstLayer < 0)
        ch.firstLayer = p.layer;
      ch.lastLayer = p.layer;
    }
    ch.f += p.f;
    ch.b += p.b + (again ? p.f : 0);
    (p.wWithB ? ch.b : ch.w) += p.w;
    ch.work[PhaseF] += p.work[PhaseF];
    ch.work[PhaseB] += p.work[PhaseB];
    if (again)
      ch.work[PhaseB] += p.work[PhaseF];
    ch.work[p.wWithB ? PhaseB : PhaseW] += p.work[PhaseW];
    (again ? m.recomputedBytes : m.savedBytes) += p.savedBytes;
    if (p.w > 0 && !p.wWithB) {
      m.deferredW = true;
      m.wGradBytes += p.wGradBytes;
    }
    m.workspaceBytes = std::max(m.workspaceBytes, p.workspaceBytes);
  }
}

/// Kept activations and output gradients per chunk from @train_step's
/// liveness: a value is kept once by each chunk holding one of its backward
/// readers; until W when a deferred W of the chunk reads it, else until B;
/// rebuilt in B instead when its maker is in the chunk's recomputed prefix.
/// An output gradient (made by B) is kept from B to a deferred W.
void keptFromLiveness(const ModelCosts &model,
                      const std::vector<int32_t> &chunkOfPiece, Plan &plan) {
  for (ChunkPlan &ch : plan.chunks) {
    ch.memory.savedBytes = ch.memory.savedForBBytes = 0;
    ch.memory.wGradBytes = ch.memory.recomputedBytes = 0;
  }
  // (chunk, read by a deferred W) for one value's readers.
  std::vector<std::pair<int32_t, bool>> readers;
  for (const KeptValue &k : model.kept) {
    readers.clear();
    for (int32_t piece : k.bPieces)
      readers.push_back({chunkOfPiece[piece], false});
    for (int32_t piece : k.wPieces)
      readers.push_back({chunkOfPiece[piece], !model.pieces[piece].wWithB});
    std::sort(readers.begin(), readers.end());
    for (size_t i = 0; i < readers.size(); ++i) {
      int32_t c = readers[i].first;
      bool byW = readers[i].second;
      while (i + 1 < readers.size() && readers[i + 1].first == c) {
        ++i;
        byW = byW || readers[i].second;
      }
      ChunkPlan &ch = plan.chunks[c];
      ChunkMemory &m = ch.memory;
      if (k.fromBackward) {
        if (byW && m.deferredW)
          m.wGradBytes += k.bytes;
        continue;
      }
      bool rebuilt = ch.recomputes() && k.defPiece >= ch.firstPiece &&
                     k.defPiece < ch.recomputeEnd;
      if (rebuilt)
        m.recomputedBytes += k.bytes;
      else if (byW)
        m.savedBytes += k.bytes;
      else
        m.savedForBBytes += k.bytes;
    }
  }
}

/// Times the plan's chunks with its compute plan and plans every rank's
/// memory; the chunks' ranges and recomputed prefixes are set.
std::string finishPlan(const ModelCosts &model, const PlanOptions &o,
                       Plan &plan) {
  const int32_t n = int32_t(model.pieces.size());
  const ComputePlan &cp = plan.computePlan;
  const Placement &pl = cp.placement;
  Costs costs;
  double comm = 0;
  plan.recompute = false;
  plan.rankTime.assign(pl.ranks, 0.0);
  for (int32_t c = 0; c < pl.chunks; ++c) {
    ChunkPlan &ch = plan.chunks[c];
    fillChunk(model, ch);
    plan.recompute = plan.recompute || ch.recomputes();
    costs.f.push_back(ch.f);
    costs.b.push_back(ch.b);
    costs.w.push_back(ch.w);
    plan.rankTime[ch.rank] += ch.f + ch.b + ch.w;
    if (c + 1 < pl.chunks && pl.rankOf[c + 1] != ch.rank)
      comm = std::max(comm, messageTime(o.rates, double(ch.memory.outBytes)));
  }
  // The machine takes one message cost; the largest boundary's is the
  // conservative choice.
  costs.actComm = costs.gradComm = comm;

  plan.streams = lowerPlan(cp);
  if (std::string err = verifySchedule(plan.streams, costs, plan.timing);
      !err.empty())
    return "the schedule is rejected: " + err;

  // Static memory: a rank holds every parameter its chunks read (with its
  // working copy), its optimizer state (AdamW's m and v), and one
  // accumulator per use.
  std::vector<StaticMemory> statics(pl.ranks);
  for (StaticMemory &st : statics)
    st.deviceWorkspace = o.deviceWorkspaceBytes;
  std::vector<int32_t> chunkOfPiece(n);
  for (int32_t c = 0; c < pl.chunks; ++c)
    for (int32_t i = plan.chunks[c].firstPiece; i < plan.chunks[c].endPiece; ++i)
      chunkOfPiece[i] = c;
  plan.tied.clear();
  plan.gradientBytes.assign(size_t(pl.chunks), 0);
  for (const ParamUse &p : model.params) {
    std::set<int32_t> ranks;
    for (int32_t piece : p.pieces) {
      int32_t r = pl.rankOf[chunkOfPiece[piece]];
      ranks.insert(r);
      statics[r].gradients += p.bytes;
      plan.gradientBytes[size_t(chunkOfPiece[piece])] += p.bytes;
    }
    // ZeRO-1: about a D-th of the moments (whole norm chunks, balanced
    // over the replicas: pipert/ZeroShard.h).
    const int64_t D = o.zero == 1 ? std::max(o.replicas, 1) : 1;
    for (int32_t r : ranks) {
      statics[r].weights += p.bytes + p.copyBytes;
      statics[r].optimizer += 2 * ((p.bytes + D - 1) / D);
    }
    if (ranks.size() > 1)
      plan.tied.push_back({p.name, {ranks.begin(), ranks.end()}});
  }
  if (model.exactKept)
    keptFromLiveness(model, chunkOfPiece, plan);
  std::vector<ChunkMemory> cm(pl.chunks);
  for (int32_t c = 0; c < pl.chunks; ++c)
    cm[c] = plan.chunks[c].memory;
  plan.memory = planMemory(plan.streams, cm, statics);
  if (o.replicas > 1) {
    // Replica 0 with the data-parallel collectives, timed with each
    // chunk's ring all-reduce: every replica runs its streams, so its
    // proof and times are the plan's (Replicate.h's replicaZeroAlone);
    // its data-parallel group of stage s is G + s.
    const int32_t G = plan.streams.groupCount(), D = o.replicas;
    std::vector<uint8_t> reduced;
    for (int64_t bytes : plan.gradientBytes)
      reduced.push_back(bytes > 0);
    const bool zero = o.zero == 1;
    plan.streams = replicaZeroAlone(plan.streams, reduced, zero);
    plan.replicas = D;
    costs.collective.assign(size_t(plan.streams.groupCount()), {});
    // A ring: an all-reduce is a reduce-scatter and an all-gather, each
    // (D - 1) messages of a D-th.
    std::vector<double> stageBytes(size_t(pl.ranks), 0.0);
    for (int32_t c = 0; c < pl.chunks; ++c) {
      auto &times = costs.collective[size_t(
          dataParallelGroup(pl.rankOf[c], 1, G))];
      times.resize(size_t(zeroWeightsBucket(pl.chunks)) + 1, 0.0);
      times[size_t(c)] =
          (zero ? 1.0 : 2.0) * (D - 1) *
          messageTime(o.rates, double(plan.gradientBytes[size_t(c)]) / D);
      stageBytes[size_t(pl.rankOf[c])] += double(plan.gradientBytes[size_t(c)]);
    }
    for (int32_t s = 0; zero && s < pl.ranks; ++s) {
      auto &times = costs.collective[size_t(dataParallelGroup(s, 1, G))];
      times.resize(size_t(zeroWeightsBucket(pl.chunks)) + 1, 0.0);
      times[size_t(zeroWeightsBucket(pl.chunks))] =
          (D - 1) * messageTime(o.rates, stageBytes[size_t(s)] / D);
    }
    if (std::string err = verifySchedule(plan.streams, costs, plan.timing);
        !err.empty())
      return "the schedule with " + std::to_string(D) +
             " replicas is rejected: " + err;
  }
  plan.costs = costs;
  return "";
}

/// Plans one partition of one compute plan.
std::string planCuts(const ModelCosts &model, const PlanOptions &o,
                     const ComputePlan &cp, const std::vector<double> &pieceTime,
                     const Cuts &cuts, bool recompute, Plan &plan) {
  const Placement &pl = cp.placement;
  plan = Plan();
  plan.computePlan = cp;
  plan.chunks.resize(pl.chunks);
  for (int32_t c = 0; c < pl.chunks; ++c) {
    ChunkPlan &ch = plan.chunks[c];
    ch.rank = pl.rankOf[c];
    ch.firstPiece = cuts.cuts[c];
    ch.endPiece = cuts.cuts[c + 1];
    ch.firstOp = model.pieces[ch.firstPiece].firstOp;
    ch.lastOp = model.pieces[ch.endPiece - 1].lastOp;
    ch.recomputeEnd = recompute ? ch.endPiece : ch.firstPiece;
  }
  plan.balanceBound = balanceBound(pieceTime, pl.ranks);
  return finishPlan(model, o, plan);
}

/// Recomputes layer by layer on the ranks over the cap: each round extends
/// the recomputed prefix of every chunk of such a rank to the next layer
/// boundary (a whole chunk at most), then re-times and re-plans. Returns
/// false when a rank is still over the cap with all its chunks recomputed.
bool recomputeToFit(const ModelCosts &model, const PlanOptions &o,
                    Plan &plan) {
  for (;;) {
    std::vector<bool> over(plan.memory.size(), false);
    bool any = false;
    for (size_t r = 0; r < plan.memory.size(); ++r)
      if (plan.memory[r].arenaBytes > o.memoryCap)
        over[r] = any = true;
    if (!any)
      return true;
    bool moved = false;
    for (ChunkPlan &ch : plan.chunks) {
      if (!over[ch.rank] || ch.recomputeEnd >= ch.endPiece)
        continue;
      int32_t e = ch.recomputeEnd + 1;
      while (e < ch.endPiece &&
             model.pieces[e].layer == model.pieces[e - 1].layer)
        ++e;
      ch.recomputeEnd = e;
      moved = true;
    }
    if (!moved)
      return false;
    if (!finishPlan(model, o, plan).empty())
      return false;
  }
}

std::string overCap(const Plan &plan, int64_t cap) {
  for (size_t r = 0; r < plan.memory.size(); ++r)
    if (plan.memory[r].arenaBytes > cap)
      return "rank " + std::to_string(r) + " needs " +
             std::to_string(plan.memory[r].arenaBytes) +
             " bytes, over the memory cap of " + std::to_string(cap) +
             " bytes";
  return "";
}

} // namespace

std::string makePlan(const ModelCosts &model, const PlanOptions &o,
                     Plan &plan) {
  if (model.pieces.empty())
    return "the model has no compute ops to partition";
  const bool full = o.recompute == Recompute::Full;
  const bool layered = o.recompute == Recompute::Auto && o.memoryCap > 0;

  struct Candidate {
    Kind kind;
    int32_t v;
  };
  std::vector<Candidate> candidates;
  if (o.autoSchedule && o.csvText.empty()) {
    candidates = {{Kind::GPipe, 1}, {Kind::OneFOneB, 1}, {Kind::ZBH1, 1},
                  {Kind::ZBV, 2},   {Kind::DualPipeV, 2}};
    for (int32_t v = 2; v <= 4; ++v)
      candidates.push_back({Kind::Interleaved, v});
    // --chunks-per-rank given: the kinds that run that many alone.
    if (o.chunksPerRank > 0) {
      std::vector<Candidate> kept;
      for (const Candidate &c : candidates)
        if (c.v == o.chunksPerRank)
          kept.push_back(c);
      if (o.chunksPerRank > 4)
        kept.push_back({Kind::Interleaved, o.chunksPerRank});
      if (kept.empty())
        return "--chunks-per-rank " + std::to_string(o.chunksPerRank) +
               ": no schedule kind runs that many chunks a rank";
      candidates = std::move(kept);
    }
  } else {
    candidates = {{o.kind, o.chunksPerRank}};
  }

  bool found = false;
  std::string firstErr, capErr;
  int64_t capPeak = 0; // the smallest need over the cap seen so far
  for (const Candidate &cand : candidates) {
    Plan trial;
    std::string err = planOne(model, o, cand.kind, cand.v, full, trial);
    if (!err.empty()) {
      if (firstErr.empty())
        firstErr = err;
      continue;
    }
    if (o.memoryCap > 0 && !overCap(trial, o.memoryCap).empty() &&
        !(layered && recomputeToFit(model, o, trial))) {
      if (capErr.empty() || maxPeak(trial) < capPeak) {
        capErr = overCap(trial, o.memoryCap) +
                 (trial.recompute ? " even with recomputation" : "");
        capPeak = maxPeak(trial);
      }
      continue;
    }
    bool better = !found ||
                  trial.timing.stepTime < plan.timing.stepTime * (1 - 1e-9) ||
                  (trial.timing.stepTime <= plan.timing.stepTime * (1 + 1e-9) &&
                   maxPeak(trial) < maxPeak(plan));
    if (better) {
      plan = std::move(trial);
      found = true;
    }
  }
  if (found)
    return "";
  if (!capErr.empty())
    return "no plan fits the memory cap: " + capErr;
  if (candidates.size() > 1)
    return "no schedule kind --schedule auto tried fits; the first, " +
           firstErr;
  return firstErr;
}

} // namespace pipec::plan
