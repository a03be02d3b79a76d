//===- Generate.cpp - compute orders of the built-in schedule kinds -----===//
//
// GPipe, 1F1B and interleaved 1F1B follow Megatron (full backward, then the
// gradient is sent); ZB-H1 delays each rank's W by its rank index; ZB-V and
// DualPipe-V follow the orders of the Zero Bubble paper and DeepSeek's
// DualPipeV, with B sending at once and W filling the gaps.
//
//===----------------------------------------------------------------------===//

#include "compiler/schedule/Generate.h"

#include <algorithm>
#include <deque>
#include <sstream>

namespace pipec::schedule {

Placement linearPlacement(int32_t ranks) {
  return loopedPlacement(ranks, 1);
}

Placement loopedPlacement(int32_t ranks, int32_t chunksPerRank) {
  Placement p;
  p.ranks = ranks;
  p.chunks = ranks * chunksPerRank;
  p.rankOf.resize(p.chunks);
  for (int32_t c = 0; c < p.chunks; ++c)
    p.rankOf[c] = c % ranks;
  return p;
}

Placement vShapePlacement(int32_t ranks) {
  Placement p;
  p.ranks = ranks;
  p.chunks = 2 * ranks;
  p.rankOf.resize(p.chunks);
  for (int32_t c = 0; c < p.chunks; ++c)
    p.rankOf[c] = c < ranks ? c : 2 * ranks - 1 - c;
  return p;
}

static Action act(Phase phase, int32_t chunk, int32_t mb) {
  return Action{phase, chunk, mb};
}

static void genGPipe(ComputePlan &plan) {
  int32_t m = plan.microbatches;
  for (int32_t r = 0; r < plan.placement.ranks; ++r) {
    auto &o = plan.order[r];
    for (int32_t i = 0; i < m; ++i)
      o.push_back(act(Phase::F, r, i));
    for (int32_t i = 0; i < m; ++i)
      o.push_back(act(Phase::FullBackward, r, i));
  }
}

static void gen1F1B(ComputePlan &plan) {
  int32_t s = plan.placement.ranks, m = plan.microbatches;
  for (int32_t r = 0; r < s; ++r) {
    auto &o = plan.order[r];
    int32_t warm = std::min(s - r - 1, m);
    for (int32_t i = 0; i < warm; ++i)
      o.push_back(act(Phase::F, r, i));
    for (int32_t i = 0; i < m; ++i) {
      if (i + warm < m)
        o.push_back(act(Phase::F, r, i + warm));
      o.push_back(act(Phase::FullBackward, r, i));
    }
  }
}

/// Megatron's interleaved order: micro-batches go through a rank's chunks in
/// groups of `ranks`, forward over local chunks ascending and backward
/// descending; warm-up grows by two per hop from the last rank.
static void genInterleaved(ComputePlan &plan) {
  int32_t s = plan.placement.ranks, m = plan.microbatches,
          v = plan.chunksPerRank;
  int32_t total = v * m;
  auto virt = [&](int32_t r, int32_t k, bool backward) {
    int32_t group = k / (s * v), within = k % (s * v);
    int32_t local = within / s;
    if (backward)
      local = v - 1 - local;
    return std::pair<int32_t, int32_t>(local * s + r, group * s + within % s);
  };
  for (int32_t r = 0; r < s; ++r) {
    auto &o = plan.order[r];
    int32_t warm = std::min((s - r - 1) * 2 + (v - 1) * s, total);
    for (int32_t k = 0; k < warm; ++k) {
      auto [c, mb] = virt(r, k, false);
      o.push_back(act(Phase::F, c, mb));
    }
    for (int32_t k = 0; k < total; ++k) {
      if (k + warm < total) {
        auto [c, mb] = virt(r, k + warm, false);
        o.push_back(act(Phase::F, c, mb));
      }
      auto [c, mb] = virt(r, k, true);
      o.push_back(act(Phase::FullBackward, c, mb));
    }
  }
}

/// ZB-H1: 1F1B's warm-up and memory, but rank r runs W(i) only after
/// B(i + r), so gradients travel back at B's pace and the delayed Ws fill
/// the cool-down.
static void genZBH1(ComputePlan &plan) {
  int32_t s = plan.placement.ranks, m = plan.microbatches;
  for (int32_t r = 0; r < s; ++r) {
    auto &o = plan.order[r];
    int32_t warm = std::min(s - r - 1, m);
    for (int32_t i = 0; i < warm; ++i)
      o.push_back(act(Phase::F, r, i));
    int32_t nextW = 0;
    for (int32_t i = 0; i < m; ++i) {
      if (i + warm < m)
        o.push_back(act(Phase::F, r, i + warm));
      o.push_back(act(Phase::B, r, i));
      if (i - r >= 0)
        o.push_back(act(Phase::W, r, nextW++));
    }
    while (nextW < m)
      o.push_back(act(Phase::W, r, nextW++));
  }
}

namespace {
/// Per-chunk counters that hand out the next micro-batch of each phase, and
/// drop steps past the real micro-batch count (ZB-V pads small counts).
struct Counters {
  int32_t m;
  std::vector<Action> *out;
  int32_t next[2][3] = {{0, 0, 0}, {0, 0, 0}};
  int32_t chunk[2];
  void emit(int32_t local, Phase phase) {
    int32_t idx = phase == Phase::F ? 0 : phase == Phase::B ? 1 : 2;
    int32_t mb = next[local][idx]++;
    if (mb < m)
      out->push_back(Action{phase, chunk[local], mb});
  }
};
} // namespace

/// ZB-V (Zero Bubble paper, section 6): both chunks of a rank in a V, with
/// F, B and W of equal cost filling every slot of the steady state.
static void genZBV(ComputePlan &plan) {
  int32_t s = plan.placement.ranks;
  int32_t padded = std::max(2 * s - 1, plan.microbatches);
  for (int32_t r = 0; r < s; ++r) {
    Counters k{plan.microbatches, &plan.order[r], {}, {r, 2 * s - 1 - r}};
    for (int32_t i = 0; i < 2 * (s - r) - 1; ++i)
      k.emit(0, Phase::F);
    for (int32_t i = 0; i < r; ++i) {
      k.emit(1, Phase::F);
      k.emit(0, Phase::F);
    }
    for (int32_t i = 0; i < s - r; ++i) {
      k.emit(1, Phase::F);
      k.emit(1, Phase::B);
      k.emit(1, Phase::W);
    }
    while (k.next[1][0] < k.next[0][0] || k.next[0][0] < padded) {
      if (k.next[0][0] < padded)
        k.emit(0, Phase::F);
      k.emit(0, Phase::B);
      k.emit(0, Phase::W);
      k.emit(1, Phase::F);
      k.emit(1, Phase::B);
      k.emit(1, Phase::W);
    }
    for (int32_t i = 0; i < r; ++i) {
      k.emit(0, Phase::B);
      k.emit(1, Phase::B);
    }
    for (int32_t i = 0; i < s - r; ++i) {
      k.emit(0, Phase::B);
      k.emit(0, Phase::W);
    }
    while (k.next[1][2] < k.next[1][1])
      k.emit(1, Phase::W);
    while (k.next[0][2] < k.next[0][1])
      k.emit(0, Phase::W);
  }
}

namespace {
/// DualPipeV's bookkeeping: counters per chunk and the queue of Ws whose B
/// ran alone (zero-bubble mode) and still wait for a slot.
struct DualPipeRank {
  std::vector<Action> *out;
  int32_t chunk[2];
  int32_t nextF[2] = {0, 0}, nextB[2] = {0, 0};
  std::deque<Action> pendingW;
  void f(int32_t local) {
    out->push_back(Action{Phase::F, chunk[local], nextF[local]++});
  }
  /// B alone; its W is queued.
  void bOnly(int32_t local) {
    int32_t mb = nextB[local]++;
    out->push_back(Action{Phase::B, chunk[local], mb});
    pendingW.push_back(Action{Phase::W, chunk[local], mb});
  }
  /// B then W at once (DualPipe's full backward; the gradient still leaves
  /// right after B).
  void bw(int32_t local) {
    int32_t mb = nextB[local]++;
    out->push_back(Action{Phase::B, chunk[local], mb});
    out->push_back(Action{Phase::W, chunk[local], mb});
  }
  void popW() {
    if (pendingW.empty())
      return;
    out->push_back(pendingW.front());
    pendingW.pop_front();
  }
};
} // namespace

/// DualPipe-V (DeepSeek's DualPipeV): the V placement; the main phase pairs
/// the forward of one chunk with the backward of the other.
static void genDualPipeV(ComputePlan &plan) {
  int32_t s = plan.placement.ranks, m = plan.microbatches;
  for (int32_t r = 0; r < s; ++r) {
    DualPipeRank d{&plan.order[r], {r, 2 * s - 1 - r}};
    for (int32_t i = 0; i < (s - r - 1) * 2; ++i)
      d.f(0);
    for (int32_t i = 0; i < r + 1; ++i) {
      d.f(0);
      d.f(1);
    }
    for (int32_t i = 0; i < s - r - 1; ++i) {
      d.bOnly(1);
      d.popW();
      d.f(1);
    }
    for (int32_t i = 0; i < m - 2 * s + r + 1; ++i) {
      d.f(0);
      d.bw(1);
      d.f(1);
      d.bw(0);
    }
    for (int32_t i = 0; i < s - r - 1; ++i) {
      d.bw(1);
      d.f(1);
      d.bw(0);
    }
    bool zb = false;
    int32_t step6 = r + 1;
    for (int32_t i = 0; i < step6; ++i) {
      if (i == step6 / 2 && r % 2 == 1)
        zb = true;
      zb ? d.bOnly(1) : d.bw(1);
      if (i == step6 / 2 && r % 2 == 0)
        zb = true;
      zb ? d.bOnly(0) : d.bw(0);
    }
    for (int32_t i = 0; i < s - r - 1; ++i) {
      d.popW();
      zb ? d.bOnly(0) : d.bw(0);
    }
    while (!d.pendingW.empty())
      d.popW();
  }
}

double closedFormBubble(Kind kind, int32_t stages, int32_t microbatches,
                        int32_t chunksPerRank) {
  double p = stages, m = microbatches, v = chunksPerRank;
  switch (kind) {
  case Kind::GPipe:
  case Kind::OneFOneB:
    return (p - 1) / (m + p - 1);
  case Kind::Interleaved:
    return (p - 1) / (v * m + p - 1);
  case Kind::ZBH1:
    return (p - 1) / (3 * m + p - 1);
  case Kind::ZBV:
  case Kind::DualPipeV:
    return (p - 1) / (6 * m + p - 1);
  case Kind::Csv:
    break;
  }
  return -1;
}

const char *closedFormText(Kind kind) {
  switch (kind) {
  case Kind::GPipe:
  case Kind::OneFOneB:
    return "(p-1)/(m+p-1)";
  case Kind::Interleaved:
    return "(p-1)/(vm+p-1)";
  case Kind::ZBH1:
    return "(p-1)/(3m+p-1)";
  case Kind::ZBV:
  case Kind::DualPipeV:
    return "about (p-1)/(6m+p-1), the start-up delay";
  case Kind::Csv:
    break;
  }
  return "";
}

std::string generatePlan(const GenerateOptions &opt, ComputePlan &plan) {
  std::ostringstream err;
  const char *name = kindName(opt.kind);
  if (opt.kind == Kind::Csv)
    return "generatePlan: a CSV schedule is read with readCsvPlan, not generated";
  if (opt.stages < 1)
    return "the stage count must be at least 1 (got " +
           std::to_string(opt.stages) + ")";
  if (opt.microbatches < 1)
    return "the micro-batch count must be at least 1 (got " +
           std::to_string(opt.microbatches) + ")";
  bool vShape = opt.kind == Kind::ZBV || opt.kind == Kind::DualPipeV;
  int32_t v = opt.chunksPerRank;
  if (v == 0)
    v = (opt.kind == Kind::Interleaved || vShape) ? 2 : 1;
  if (v < 1) {
    err << "chunks per rank must be at least 1 (got " << v << ")";
    return err.str();
  }
  if (vShape && v != 2) {
    err << name << " places exactly 2 chunks per rank in a V; got "
        << "--chunks-per-rank " << v;
    return err.str();
  }
  if ((opt.kind == Kind::GPipe || opt.kind == Kind::OneFOneB ||
       opt.kind == Kind::ZBH1) &&
      v != 1) {
    err << name << " runs one chunk per rank; use interleaved-1f1b for "
        << v << " chunks per rank";
    return err.str();
  }
  if (opt.kind == Kind::Interleaved && v < 2) {
    err << "interleaved-1f1b needs at least 2 chunks per rank (got " << v
        << "); use 1f1b for one";
    return err.str();
  }
  if (opt.kind == Kind::Interleaved && opt.microbatches % opt.stages != 0) {
    err << "interleaved-1f1b needs the micro-batch count to be a multiple of "
           "the stage count: "
        << opt.microbatches << " micro-batches over " << opt.stages
        << " stages leaves " << opt.microbatches % opt.stages;
    return err.str();
  }
  if (opt.kind == Kind::DualPipeV && opt.microbatches < 2 * opt.stages) {
    err << "dualpipe-v needs at least 2 x stages = " << 2 * opt.stages
        << " micro-batches to fill both directions of the V; got "
        << opt.microbatches;
    return err.str();
  }
  int64_t chunks = int64_t(opt.stages) * v;
  if (chunks * opt.microbatches > kMaxChunkMicrobatches) {
    err << opt.stages << " stages x " << v << " chunks per rank x "
        << opt.microbatches << " micro-batches is too large to schedule "
        << "(at most " << kMaxChunkMicrobatches
        << " chunk-micro-batch pairs)";
    return err.str();
  }
  if (opt.modelOps > 0 && chunks > opt.modelOps) {
    err << name << " with " << opt.stages << " stages x " << v
        << " chunks per rank needs " << chunks
        << " chunks, but the model has only " << opt.modelOps << " ops";
    return err.str();
  }

  plan = ComputePlan();
  plan.kind = opt.kind;
  plan.microbatches = opt.microbatches;
  plan.chunksPerRank = v;
  plan.placement = vShape ? vShapePlacement(opt.stages)
                          : loopedPlacement(opt.stages, v);
  plan.order.assign(opt.stages, {});
  switch (opt.kind) {
  case Kind::GPipe:
    genGPipe(plan);
    break;
  case Kind::OneFOneB:
    gen1F1B(plan);
    break;
  case Kind::Interleaved:
    genInterleaved(plan);
    break;
  case Kind::ZBH1:
    genZBH1(plan);
    break;
  case Kind::ZBV:
    genZBV(plan);
    break;
  case Kind::DualPipeV:
    genDualPipeV(plan);
    break;
  case Kind::Csv:
    break;
  }
  return "";
}

} // namespace pipec::schedule
