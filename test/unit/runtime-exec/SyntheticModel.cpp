//===- SyntheticModel.cpp - a real model for executor tests ---------------===//

#include "SyntheticModel.h"

#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"
#include "compiler/schedule/Validate.h"
#include "kernels/cpu/Activation.h"
#include "kernels/cpu/AdamW.h"
#include "kernels/cpu/Matmul.h"
#include "pipert/CommLayout.h"
#include "pipert/StreamBuilder.h"

#include <cmath>
#include <cstring>

namespace pipec::testing {

using pipert::DType;
using pipert::Opcode;
using pipert::Status;
namespace sch = pipec::schedule;

namespace {

/// Bump allocation per rank, 64-byte aligned; every buffer gets an id so
/// expected writers are tracked per buffer, as a memory planner sees them.
struct Allocator {
  std::vector<int64_t> top;
  std::vector<Buf> all;
  std::vector<int32_t> ids; ///< parallel to `all`
  Buf alloc(int32_t rank, int64_t bytes) {
    Buf b{rank, (top[rank] + 63) / 64 * 64, bytes};
    top[rank] = b.offset + bytes;
    return b;
  }
};

/// A buffer identity: (rank, offset, bytes) is not enough once a bug plan
/// aliases two buffers, so accesses carry the planner's id.
struct Use {
  Buf buf;
  int64_t id;
  bool write;
};

/// Deterministic data in [-1, 1] from (step, mb, element, stream).
float dataValue(int64_t step, int32_t mb, int64_t i, uint64_t which) {
  uint64_t z = (uint64_t(step) * 1000003u + uint64_t(mb)) * 0x9E3779B97F4A7C15ull ^
               (uint64_t(i) << 8) ^ which;
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return float(double(z >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

} // namespace

std::string buildPlan(const PlanOptions &opt, SyntheticPlan &p) {
  p = SyntheticPlan();
  p.options = opt;
  sch::ComputePlan cplan;
  if (std::string err = sch::generatePlan(
          {opt.kind, opt.stages, opt.microbatches, 0, 0}, cplan);
      !err.empty())
    return err;
  if (opt.reorderLastW) {
    // ... B(M-2) W(M-2) B(M-1) W(M-1) becomes B(M-2) B(M-1) W(M-1) W(M-2):
    // still a valid plan, but the weight gradients accumulate in another
    // order.
    auto &order = cplan.order[0];
    if (cplan.kind != sch::Kind::GPipe || opt.stages != 1)
      return "reorderLastW needs a one-rank gpipe plan";
    // Split each full backward into B then W (the same on one rank).
    std::vector<sch::Action> split;
    for (const sch::Action &a : order) {
      if (a.phase != sch::Phase::FullBackward) {
        split.push_back(a);
        continue;
      }
      split.push_back({sch::Phase::B, a.chunk, a.mb});
      split.push_back({sch::Phase::W, a.chunk, a.mb});
    }
    order = split;
    size_t n = order.size();
    auto isW = [](const sch::Action &a) { return a.phase == sch::Phase::W; };
    if (n < 4 || !isW(order[n - 1]) || !isW(order[n - 3]))
      return "reorderLastW needs a one-rank gpipe plan";
    std::swap(order[n - 3], order[n - 2]);
    std::swap(order[n - 2], order[n - 1]);
  }
  p.schedule = sch::lowerPlan(cplan);
  p.chunks = cplan.placement.chunks;
  sch::MachineResult timing;
  if (std::string err = sch::verifySchedule(
          p.schedule, sch::Costs::uniform(p.chunks, 1, 1, 1), timing);
      !err.empty())
    return err;
  p.modeledBubble = timing.bubbleFraction;

  const int32_t S = opt.stages, M = opt.microbatches, L = opt.shape.layers;
  const int64_t D = opt.shape.width, R = opt.shape.rows;
  if (L % p.chunks != 0)
    return std::to_string(L) + " layers do not split into " +
           std::to_string(p.chunks) + " chunks";
  const int32_t lpc = L / p.chunks;
  const auto &rankOf = cplan.placement.rankOf;
  for (int32_t c = 0; c <= p.chunks; ++c)
    p.firstLayer.push_back(c * lpc);
  for (int32_t l = 0; l < L; ++l)
    p.layerRank.push_back(rankOf[l / lpc]);

  Allocator A;
  A.top.assign(S, 0);
  auto fresh = [&](int32_t rank, int64_t bytes) { return A.alloc(rank, bytes); };
  const int64_t act = R * D * 4, wBytes = D * D * 4, bBytes = D * 4;
  auto resize = [&](std::vector<Buf> &v, size_t n) { v.assign(n, Buf()); };
  for (auto *v : {&p.w, &p.b, &p.dw, &p.db, &p.mw, &p.vw, &p.mbias, &p.vbias})
    resize(*v, size_t(L));
  for (auto *v : {&p.h, &p.a, &p.da, &p.dh})
    resize(*v, size_t(L) * M);
  resize(p.in, size_t(p.chunks) * M);
  resize(p.dout, size_t(p.chunks) * M);
  resize(p.din, size_t(p.chunks) * M);
  std::vector<Buf> &din = p.din;
  for (int32_t l = 0; l < L; ++l) {
    int32_t r = p.layerRank[l];
    p.w[l] = fresh(r, wBytes);
    p.b[l] = fresh(r, bBytes);
    p.dw[l] = fresh(r, wBytes);
    p.db[l] = fresh(r, bBytes);
    p.mw[l] = fresh(r, wBytes);
    p.vw[l] = fresh(r, wBytes);
    p.mbias[l] = fresh(r, bBytes);
    p.vbias[l] = fresh(r, bBytes);
  }
  for (int32_t c = 0; c < p.chunks; ++c) {
    int32_t r = rankOf[c];
    int32_t first = p.firstLayer[c], last = p.firstLayer[c + 1] - 1;
    for (int32_t mb = 0; mb < M; ++mb) {
      bool prevHere = c > 0 && rankOf[c - 1] == r;
      p.in[p.cm(c, mb)] = prevHere ? p.a[p.lm(first - 1, mb)] : fresh(r, act);
      for (int32_t l = first; l <= last; ++l) {
        p.h[p.lm(l, mb)] = fresh(r, act);
        p.a[p.lm(l, mb)] = fresh(r, act);
        p.dh[p.lm(l, mb)] = fresh(r, act);
        if (l < last)
          p.da[p.lm(l, mb)] = fresh(r, act);
      }
      p.dout[p.cm(c, mb)] = fresh(r, act);
      p.da[p.lm(last, mb)] = p.dout[p.cm(c, mb)];
      if (c > 0)
        din[p.cm(c, mb)] = prevHere ? p.dout[p.cm(c - 1, mb)] : fresh(r, act);
    }
  }
  std::vector<Buf> lossMb(M);
  int32_t lossRank = rankOf[p.chunks - 1];
  // One contiguous slot of M doubles (the manifest's loss slot); each
  // micro-batch's element is its own buffer for the expected writers.
  Buf lossAll = fresh(lossRank, 8 * M);
  for (int32_t mb = 0; mb < M; ++mb)
    lossMb[mb] = Buf{lossRank, lossAll.offset + 8 * mb, 8};
  for (int32_t r = 0; r < S; ++r) {
    p.normBuf.push_back(fresh(r, 8 * 2 * L));
    p.normSlot.push_back(fresh(r, 8));
  }
  p.lossSlot.assign(S, Buf());
  p.lossSlot[lossRank] = Buf{lossRank, lossMb[0].offset, 8 * M};
  // The bug plans: an overlap of two live buffers, or unused slack.
  Buf &h1 = p.h[p.lm(0, std::min(1, M - 1))];
  Buf hPlanned = h1;
  if (opt.aliasBug)
    h1.offset = p.h[p.lm(0, 0)].offset;

  // A buffer's identity is its planned place; the bugged h keeps the id of
  // its planned (non-overlapping) place, as a buggy planner believes.
  auto id = [&](const Buf &b) -> int64_t {
    const Buf &planned = (opt.aliasBug && &b == &h1) ? hPlanned : b;
    return (int64_t(planned.rank) << 40) | planned.offset;
  };

  // Accesses of every instruction, as buffer uses.
  auto uses = [&](int32_t r, const sch::Instr &in, Buf &msg) {
    std::vector<Use> u;
    auto R_ = [&](const Buf &b) { u.push_back({b, id(b), false}); };
    auto W_ = [&](const Buf &b) { u.push_back({b, id(b), true}); };
    int32_t c = in.chunk, mb = in.mb;
    switch (in.op) {
    case sch::Op::Fwd: {
      if (c == 0)
        W_(p.in[p.cm(c, mb)]);
      else
        R_(p.in[p.cm(c, mb)]);
      for (int32_t l = p.firstLayer[c]; l < p.firstLayer[c + 1]; ++l) {
        R_(p.w[l]);
        R_(p.b[l]);
        W_(p.h[p.lm(l, mb)]);
        W_(p.a[p.lm(l, mb)]);
      }
      if (c == p.chunks - 1)
        W_(lossMb[mb]);
      break;
    }
    case sch::Op::BwdB: {
      int32_t first = p.firstLayer[c], last = p.firstLayer[c + 1] - 1;
      if (c == p.chunks - 1) {
        R_(p.a[p.lm(last, mb)]);
        W_(p.dout[p.cm(c, mb)]);
      } else {
        R_(p.dout[p.cm(c, mb)]);
      }
      for (int32_t l = last; l >= first; --l) {
        R_(p.h[p.lm(l, mb)]);
        W_(p.dh[p.lm(l, mb)]);
        if (l > first) {
          R_(p.w[l]);
          W_(p.da[p.lm(l - 1, mb)]);
        } else if (c > 0) {
          R_(p.w[l]);
          W_(din[p.cm(c, mb)]);
        }
      }
      break;
    }
    case sch::Op::BwdW:
      for (int32_t l = p.firstLayer[c]; l < p.firstLayer[c + 1]; ++l) {
        R_(p.dh[p.lm(l, mb)]);
        R_(l == p.firstLayer[c] ? p.in[p.cm(c, mb)] : p.a[p.lm(l - 1, mb)]);
        R_(p.dw[l]);
        R_(p.db[l]);
        W_(p.dw[l]);
        W_(p.db[l]);
      }
      break;
    case sch::Op::SendAct:
      msg = p.a[p.lm(p.firstLayer[c + 1] - 1, mb)];
      R_(msg);
      break;
    case sch::Op::RecvAct:
      msg = p.in[p.cm(c + 1, mb)];
      W_(msg); // by the transport, at the wait
      break;
    case sch::Op::SendGrad:
      msg = din[p.cm(c, mb)];
      R_(msg);
      break;
    case sch::Op::RecvGrad:
      msg = p.dout[p.cm(c - 1, mb)];
      W_(msg);
      break;
    case sch::Op::AllReduce:
      for (int32_t l = 0; l < L; ++l)
        if (p.layerRank[l] == r) {
          R_(p.dw[l]);
          R_(p.db[l]);
        }
      msg = p.normBuf[r];
      W_(msg);
      break;
    case sch::Op::OptStep:
      R_(p.normBuf[r]);
      for (int32_t l = 0; l < L; ++l)
        if (p.layerRank[l] == r)
          for (const Buf *b : {&p.w[l], &p.b[l], &p.mw[l], &p.vw[l],
                               &p.mbias[l], &p.vbias[l], &p.dw[l], &p.db[l]}) {
            R_(*b);
            W_(*b);
          }
      W_(p.normSlot[r]);
      break;
    case sch::Op::Wait:
      break;
    case sch::Op::ReduceScatter:
    case sch::Op::AllGather:
      // ZeRO-1's collectives: this synthetic model's streams have none
      // (it trains without --zero).
      break;
    }
    return u;
  };

  for (int32_t r = 0; r < S; ++r) {
    const auto &src = p.schedule.streams[r];
    std::vector<std::vector<Use>> all(src.size());
    std::vector<Buf> msgs(src.size());
    for (size_t i = 0; i < src.size(); ++i)
      all[i] = uses(r, src[i], msgs[i]);
    pipert::Stream s;
    s.rank = r;
    s.ranks = S;
    s.microbatches = M;
    std::vector<pipert::Instr> instrs;
    std::vector<std::vector<pipert::BufferUse>> bufferUses;
    for (size_t i = 0; i < src.size(); ++i) {
      const sch::Instr &in = src[i];
      pipert::Instr out;
      out.op = Opcode(uint8_t(in.op));
      out.sub = in.op == sch::Op::Wait ? Opcode(uint8_t(in.sub)) : out.op;
      out.peer = in.peer;
      out.chunk = in.chunk;
      out.mb = in.mb;
      out.req = in.req;
      if (pipert::isPostOp(out.op) || out.op == Opcode::AllReduce) {
        out.offset = msgs[i].offset;
        out.bytes = msgs[i].bytes;
      }
      if (out.op == Opcode::AllReduce)
        out.dtype = DType::F64;
      instrs.push_back(out);
      bufferUses.emplace_back();
      for (const Use &u : all[i])
        bufferUses.back().push_back({u.id, u.buf.offset, u.buf.bytes, u.write});
    }
    pipert::appendWithUses(s, instrs, bufferUses);
    s.arenaBytes = A.top[r] + (opt.slackBug ? 64 : 0);
    p.streams.push_back(std::move(s));
  }

  pipert::Manifest &m = p.manifest;
  m.model = "synthetic-gelu-chain";
  m.ranks = S;
  m.microbatches = M;
  m.tokensPerMicrobatch = R;
  m.scheduleKind = sch::kindName(opt.kind);
  m.stages = S;
  m.chunksPerRank = cplan.chunksPerRank;
  m.modeledBubble = p.modeledBubble;
  m.chunkRank = rankOf;
  m.groups.emplace_back();
  for (int32_t r = 0; r < S; ++r) {
    m.groups[0].push_back(r);
    int64_t arena = p.streams[r].arenaBytes;
    m.rankInfo.push_back({"rank" + std::to_string(r) + ".pstream", arena,
                          arena});
  }
  for (int32_t l = 0; l < L; ++l) {
    pipert::ParamInfo w;
    w.name = "layer" + std::to_string(l) + ".weight";
    w.shape = {D, D};
    w.rank = p.layerRank[l];
    w.offset = p.w[l].offset;
    w.gradOffset = p.dw[l].offset;
    w.adamMOffset = p.mw[l].offset;
    w.adamVOffset = p.vw[l].offset;
    w.bytes = wBytes;
    w.std = 0.4;
    w.decay = true;
    pipert::ParamInfo b = w;
    b.name = "layer" + std::to_string(l) + ".bias";
    b.shape = {D};
    b.offset = p.b[l].offset;
    b.gradOffset = p.db[l].offset;
    b.adamMOffset = p.mbias[l].offset;
    b.adamVOffset = p.vbias[l].offset;
    b.bytes = bBytes;
    b.std = 0.1;
    b.decay = false;
    m.params.push_back(w);
    m.params.push_back(b);
  }
  for (int32_t c = 0; c < p.chunks; ++c)
    for (int32_t mb = 0; mb < M; ++mb) {
      std::string tag = ".c" + std::to_string(c) + ".mb" + std::to_string(mb);
      m.buffers.push_back({"input" + tag, p.in[p.cm(c, mb)].rank,
                           p.in[p.cm(c, mb)].offset, act});
      m.buffers.push_back({"output_grad" + tag, p.dout[p.cm(c, mb)].rank,
                           p.dout[p.cm(c, mb)].offset, act});
    }
  m.loss = {lossRank, p.lossSlot[lossRank].offset, DType::F64, M};
  m.gradNorm = {0, p.normSlot[0].offset, DType::F64, 1};
  m.train.lr = 0.05;
  m.train.minLr = 0.005;
  m.train.warmupSteps = 1;
  m.train.decaySteps = 10;
  m.train.beta1 = 0.9;
  m.train.beta2 = 0.95;
  m.train.eps = 1e-8;
  m.train.weightDecay = 0.1;
  m.train.gradClip = 1.0;
  m.train.seed = 7;
  // The communicators of one process per rank, as the compiler adds them.
  if (Status st = pipert::attachComms(p.streams, m.groups); !st.ok())
    return st.message();
  return "";
}

pipert::Status writePlanFiles(const SyntheticPlan &plan,
                              const std::string &dir) {
  for (const pipert::Stream &s : plan.streams)
    if (Status st = pipert::writeStreamFile(
            dir + "/" + plan.manifest.rankInfo[size_t(s.rank)].stream, s);
        !st.ok())
      return st;
  return pipert::writeManifestFile(dir + "/manifest.json", plan.manifest);
}

// --- kernels -----------------------------------------------------------

static float *F(const pipert::RankContext &ctx, const Buf &b) {
  return reinterpret_cast<float *>(ctx.arena + b.offset);
}

Status SyntheticKernels::fwd(const pipert::RankContext &ctx, int32_t c,
                             int32_t mb) {
  const int64_t D = plan.options.shape.width, R = plan.options.shape.rows;
  float *x = F(ctx, plan.in[plan.cm(c, mb)]);
  if (c == 0) // the data loader of this model: deterministic random rows
    for (int64_t i = 0; i < R * D; ++i)
      x[i] = dataValue(ctx.step, mb, i, 1);
  for (int32_t l = plan.firstLayer[c]; l < plan.firstLayer[c + 1]; ++l) {
    float *h = F(ctx, plan.h[plan.lm(l, mb)]), *a = F(ctx, plan.a[plan.lm(l, mb)]);
    pipert::cpu::matmulForward(h, x, F(ctx, plan.w[l]), F(ctx, plan.b[l]), R,
                               D, D, false);
    pipert::cpu::geluForward(a, h, R * D);
    x = a;
  }
  if (c == plan.chunks - 1) {
    double sum = 0;
    for (int64_t i = 0; i < R * D; ++i) {
      double d = double(x[i]) - double(dataValue(ctx.step, mb, i, 2));
      sum += d * d;
    }
    double loss = sum / double(R * D);
    std::memcpy(ctx.arena + plan.lossSlot[ctx.rank].offset + 8 * mb, &loss, 8);
  }
  if (strayWrite) {
    uint32_t pattern = 0xA5A5A5A5u;
    std::memcpy(ctx.arena + plan.normSlot[ctx.rank].offset, &pattern, 4);
  }
  return Status::success();
}

Status SyntheticKernels::bwdB(const pipert::RankContext &ctx, int32_t c,
                              int32_t mb) {
  const int64_t D = plan.options.shape.width, R = plan.options.shape.rows;
  const int32_t first = plan.firstLayer[c], last = plan.firstLayer[c + 1] - 1;
  float *g = F(ctx, plan.dout[plan.cm(c, mb)]);
  if (c == plan.chunks - 1) {
    // d(mean squared error)/da, times 1/M: the step's loss is the mean.
    const float *a = F(ctx, plan.a[plan.lm(last, mb)]);
    float scale = float(2.0 / double(R * D) / plan.options.microbatches);
    for (int64_t i = 0; i < R * D; ++i)
      g[i] = (a[i] - dataValue(ctx.step, mb, i, 2)) * scale;
  }
  for (int32_t l = last; l >= first; --l) {
    float *dh = F(ctx, plan.dh[plan.lm(l, mb)]);
    pipert::cpu::geluBackwardB(dh, g, F(ctx, plan.h[plan.lm(l, mb)]), R * D);
    // Chunk 0 needs no gradient of the model input.
    float *dx = l > first ? F(ctx, plan.da[plan.lm(l - 1, mb)])
                : c > 0   ? F(ctx, plan.din[plan.cm(c, mb)])
                          : nullptr;
    if (dx)
      pipert::cpu::matmulBackwardB(dx, dh, F(ctx, plan.w[l]), R, D, D, false);
    g = dx;
  }
  return Status::success();
}

Status SyntheticKernels::bwdW(const pipert::RankContext &ctx, int32_t c,
                              int32_t mb) {
  const int64_t D = plan.options.shape.width, R = plan.options.shape.rows;
  if (c == failChunk && mb == failMb && ctx.step == 1)
    return Status::failure("injected failure");
  for (int32_t l = plan.firstLayer[c]; l < plan.firstLayer[c + 1]; ++l) {
    const float *x = l == plan.firstLayer[c] ? F(ctx, plan.in[plan.cm(c, mb)])
                                             : F(ctx, plan.a[plan.lm(l - 1, mb)]);
    pipert::cpu::matmulBackwardW(F(ctx, plan.dw[l]), F(ctx, plan.db[l]), x,
                                 F(ctx, plan.dh[plan.lm(l, mb)]), R, D, D,
                                 false);
  }
  return Status::success();
}

Status SyntheticKernels::prepareAllReduce(const pipert::RankContext &ctx,
                                          int32_t group, int32_t bucket,
                                          uint8_t *data, int64_t bytes) {
  const int32_t L = plan.options.shape.layers;
  const int64_t D = plan.options.shape.width;
  if (group != 0 || bucket != 0 || bytes != 8 * 2 * L)
    return Status::failure("unexpected all-reduce group " +
                           std::to_string(group) + " bucket " +
                           std::to_string(bucket));
  // Per-tensor squares in declaration order, zero for other ranks' tensors:
  // summing in rank order then adds exact zeros, so the norm is the same
  // bits as on one rank.
  double sq[2];
  for (int32_t l = 0; l < L; ++l) {
    sq[0] = sq[1] = 0;
    if (plan.layerRank[l] == ctx.rank) {
      sq[0] = pipert::cpu::sumOfSquares(F(ctx, plan.dw[l]), D * D);
      sq[1] = pipert::cpu::sumOfSquares(F(ctx, plan.db[l]), D);
    }
    std::memcpy(data + 16 * l, sq, 16);
  }
  return Status::success();
}

Status SyntheticKernels::optStep(const pipert::RankContext &ctx) {
  const int32_t L = plan.options.shape.layers;
  const int64_t D = plan.options.shape.width;
  const pipert::TrainInfo &t = ctx.manifest->train;
  double squares[64];
  if (2 * L > 64)
    return Status::failure("too many layers for the synthetic model");
  std::memcpy(squares, ctx.arena + plan.normBuf[ctx.rank].offset, 16 * L);
  double norm = pipert::cpu::globalNorm(squares, 2 * L);
  double scale = pipert::cpu::clipScale(norm, t.gradClip);
  pipert::cpu::AdamWConfig cfg{ctx.lr, t.beta1, t.beta2, t.eps, t.weightDecay};
  for (int32_t l = 0; l < L; ++l) {
    if (plan.layerRank[l] != ctx.rank)
      continue;
    pipert::cpu::Status s = pipert::cpu::adamwStep(
        F(ctx, plan.w[l]), F(ctx, plan.dw[l]), F(ctx, plan.mw[l]),
        F(ctx, plan.vw[l]), D * D, cfg, true, ctx.step + 1, scale);
    if (s.ok())
      s = pipert::cpu::adamwStep(F(ctx, plan.b[l]), F(ctx, plan.db[l]),
                                 F(ctx, plan.mbias[l]), F(ctx, plan.vbias[l]),
                                 D, cfg, false, ctx.step + 1, scale);
    if (!s.ok())
      return Status::failure(s.message());
    std::memset(F(ctx, plan.dw[l]), 0, size_t(D * D * 4));
    std::memset(F(ctx, plan.db[l]), 0, size_t(D * 4));
  }
  std::memcpy(ctx.arena + plan.normSlot[ctx.rank].offset, &norm, 8);
  return Status::success();
}

namespace {
void *hostAllocate(int32_t, int64_t bytes, char *, int64_t) {
  void *p = std::aligned_alloc(256, size_t((bytes + 255) / 256 * 256));
  std::memset(p, 0, size_t(bytes));
  return p;
}
void hostRelease(void *p) { std::free(p); }
bool hostCopy(void *dst, const void *src, int64_t bytes, char *, int64_t) {
  std::memcpy(dst, src, size_t(bytes));
  return true;
}
} // namespace

pipert::ArenaAllocator hostBackedDeviceArenas() {
  return {hostAllocate, hostRelease, hostCopy};
}

Status trainForBits(const SyntheticPlan &plan,
                    const pipert::ArenaAllocator *allocator,
                    pipert::DeviceQueues *queues, int64_t steps,
                    std::vector<double> &metrics,
                    std::vector<uint8_t> &params) {
  std::unique_ptr<pipert::Executor> exec;
  if (Status st = pipert::Executor::create(plan.manifest, plan.streams, exec,
                                           -1, allocator);
      !st.ok())
    return st;
  SyntheticKernels kernels(plan);
  pipert::RunOptions o;
  o.steps = steps;
  o.timeout = std::chrono::milliseconds(5000);
  o.cores = 2;
  o.queues = queues;
  pipert::RunResult result;
  if (Status st = exec->run(kernels, o, result); !st.ok())
    return st;
  for (const pipert::StepRecord &r : result.steps) {
    metrics.push_back(r.loss);
    metrics.push_back(r.gradNorm);
  }
  return readParameters(*exec, params);
}

std::string strayWriteReport(const SyntheticPlan &plan) {
  return "#0 fwd(chunk 0, mb 0): changed arena bytes [" +
         std::to_string(plan.normSlot[0].offset) + ", " +
         std::to_string(plan.normSlot[0].offset + 4) + ")";
}

Status readParameters(const pipert::Executor &exec,
                      std::vector<uint8_t> &params) {
  for (const pipert::ParamInfo &p : exec.manifest().params) {
    params.resize(params.size() + size_t(p.bytes));
    if (Status st = exec.readArena(
            p.rank, p.offset, params.data() + params.size() - size_t(p.bytes),
            p.bytes);
        !st.ok())
      return st;
  }
  return Status::success();
}

} // namespace pipec::testing
