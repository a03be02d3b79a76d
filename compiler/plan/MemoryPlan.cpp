//===- MemoryPlan.cpp - lifetimes over a rank's stream, packed ------------===//
//
// Per rank: (1) the lifetime of every (role, chunk, micro-batch) buffer as
// an interval of stream positions; (2) the micro-batches of one (role,
// chunk) share slots, assigned by interval colouring (optimal for intervals:
// as many slots as micro-batches are ever in flight at once); (3) the slots
// are packed into the arena first-fit by decreasing size, each at the lowest
// offset free over its lifetime (IREE's stream.resource.pack does the same);
// (4) a sweep over the raw intervals gives the exact peak of live bytes,
// which the arena can only exceed by fragmentation.
//
//===----------------------------------------------------------------------===//

#include "compiler/plan/MemoryPlan.h"

#include <algorithm>
#include <cassert>
#include <queue>

using namespace pipec::schedule;

namespace pipec::plan {

const char *bufferKindName(BufferKind kind) {
  switch (kind) {
  case BufferKind::Weights:
    return "weights";
  case BufferKind::Gradients:
    return "gradients";
  case BufferKind::Optimizer:
    return "optimizer";
  case BufferKind::Workspace:
    return "workspace";
  case BufferKind::Activations:
    return "activations";
  case BufferKind::OutputGrads:
    return "output_grads";
  case BufferKind::Receive:
    return "receive";
  case BufferKind::Send:
    return "send";
  }
  return "?";
}

const char *bufferRoleName(int32_t role) {
  static const char *names[] = {"saved",   "recomputed", "output_grad",
                                "in_act",  "in_grad",    "out_act",
                                "out_grad", "recompute_in", "saved_b"};
  return role >= 0 && role < kBufferRoles ? names[role] : "static";
}

namespace {

enum : int32_t {
  Saved = RoleSaved,
  Recomputed = RoleRecomputed,
  OutGrad = RoleOutGrad,
  InAct = RoleInAct,
  InGrad = RoleInGrad,
  OutAct = RoleOutAct,
  OutGradMsg = RoleOutGradMsg,
  RecomputeIn = RoleRecomputeIn,
  SavedForB = RoleSavedForB,
  kRoles = kBufferRoles
};

BufferKind kindOf(int32_t role) {
  switch (role) {
  case Saved:
  case Recomputed:
  case RecomputeIn:
  case SavedForB:
    return BufferKind::Activations;
  case OutGrad:
    return BufferKind::OutputGrads;
  case InAct:
  case InGrad:
    return BufferKind::Receive;
  default:
    return BufferKind::Send;
  }
}

struct Interval {
  int32_t group; ///< role * chunks + chunk
  int32_t mb;
  int32_t start, end; ///< inclusive stream positions
  int64_t bytes;
};

/// Lowest offset where `bytes` fits beside the placed blocks in `busy`
/// (those overlapping in time), sorted by offset.
int64_t firstFit(std::vector<std::pair<int64_t, int64_t>> &busy,
                 int64_t base, int64_t bytes) {
  std::sort(busy.begin(), busy.end());
  int64_t at = base;
  for (auto [off, size] : busy) {
    if (off >= at + bytes)
      break;
    at = std::max(at, off + size);
  }
  return at;
}

} // namespace

std::vector<RankMemory> planMemory(const Schedule &schedule,
                                   const std::vector<ChunkMemory> &chunks,
                                   const std::vector<StaticMemory> &statics) {
  const int32_t nChunks = schedule.placement.chunks;
  const int32_t mbs = schedule.microbatches;
  const std::vector<int32_t> &rankOf = schedule.placement.rankOf;
  assert(int32_t(chunks.size()) == nChunks);
  auto key = [&](int32_t c, int32_t mb) { return size_t(c) * mbs + mb; };
  auto valid = [&](int32_t c, int32_t mb) {
    return c >= 0 && c < nChunks && mb >= 0 && mb < mbs;
  };

  // Positions of every compute step, on whichever rank runs it.
  std::vector<int32_t> posF(size_t(nChunks) * mbs, -1), posB = posF,
                                                         posW = posF;
  for (const std::vector<Instr> &stream : schedule.streams)
    for (size_t i = 0; i < stream.size(); ++i) {
      const Instr &in = stream[i];
      if (!valid(in.chunk, in.mb))
        continue;
      if (in.op == Op::Fwd)
        posF[key(in.chunk, in.mb)] = int32_t(i);
      else if (in.op == Op::BwdB)
        posB[key(in.chunk, in.mb)] = int32_t(i);
      else if (in.op == Op::BwdW)
        posW[key(in.chunk, in.mb)] = int32_t(i);
    }

  std::vector<RankMemory> out(schedule.ranks());
  for (int32_t r = 0; r < schedule.ranks(); ++r) {
    const std::vector<Instr> &stream = schedule.streams[r];
    RankMemory &mem = out[r];

    // Where each request is waited.
    int32_t maxReq = -1;
    for (const Instr &in : stream)
      maxReq = std::max(maxReq, in.req);
    std::vector<int32_t> waitPos(size_t(maxReq + 1), -1);
    for (size_t i = 0; i < stream.size(); ++i)
      if (stream[i].op == Op::Wait && stream[i].req >= 0 &&
          stream[i].req <= maxReq)
        waitPos[stream[i].req] = int32_t(i);

    // Positions of a step; -1 (no interval) for one outside the plan, so a
    // malformed stream (validateStreams rejects those) cannot index out of
    // range.
    auto at = [&](const std::vector<int32_t> &pos, int32_t c, int32_t mb) {
      return valid(c, mb) ? pos[key(c, mb)] : -1;
    };
    std::vector<Interval> iv;
    auto add = [&](int32_t role, int32_t c, int32_t mb, int32_t s, int32_t e,
                   int64_t bytes) {
      if (bytes > 0 && s >= 0 && valid(c, mb))
        iv.push_back({role * nChunks + c, mb, s, std::max(s, e), bytes});
    };
    int64_t workspace = 0;
    for (int32_t c = 0; c < nChunks; ++c)
      if (rankOf[c] == r)
        workspace = std::max(workspace, chunks[c].workspaceBytes);

    for (size_t i = 0; i < stream.size(); ++i) {
      const Instr &in = stream[i];
      int32_t pos = int32_t(i);
      if (in.op != Op::Wait && in.op != Op::AllReduce &&
          in.op != Op::OptStep && !valid(in.chunk, in.mb))
        continue;
      switch (in.op) {
      case Op::Fwd: {
        const ChunkMemory &cm = chunks[in.chunk];
        int32_t last = cm.deferredW ? at(posW, in.chunk, in.mb)
                                    : at(posB, in.chunk, in.mb);
        add(Saved, in.chunk, in.mb, pos, last, cm.savedBytes);
        add(RecomputeIn, in.chunk, in.mb, pos, at(posB, in.chunk, in.mb),
            cm.recomputeInBytes);
        add(SavedForB, in.chunk, in.mb, pos, at(posB, in.chunk, in.mb),
            cm.savedForBBytes);
        // The next chunk on this rank reads the output without a message.
        if (in.chunk + 1 < nChunks && rankOf[in.chunk + 1] == r)
          add(InAct, in.chunk + 1, in.mb, pos, at(posF, in.chunk + 1, in.mb),
              cm.outBytes);
        break;
      }
      case Op::BwdB: {
        const ChunkMemory &cm = chunks[in.chunk];
        int32_t w = at(posW, in.chunk, in.mb);
        add(Recomputed, in.chunk, in.mb, pos, cm.deferredW ? w : pos,
            cm.recomputedBytes);
        if (cm.deferredW)
          add(OutGrad, in.chunk, in.mb, pos, w, cm.wGradBytes);
        if (in.chunk > 0 && rankOf[in.chunk - 1] == r)
          add(InGrad, in.chunk - 1, in.mb, pos, at(posB, in.chunk - 1, in.mb),
              cm.inBytes);
        break;
      }
      case Op::RecvAct: // the consumer is the chunk after the producer
        add(InAct, in.chunk + 1, in.mb, pos, at(posF, in.chunk + 1, in.mb),
            chunks[in.chunk].outBytes);
        break;
      case Op::RecvGrad: // the consumer is the chunk before the producer
        add(InGrad, in.chunk - 1, in.mb, pos, at(posB, in.chunk - 1, in.mb),
            chunks[in.chunk].inBytes);
        break;
      case Op::SendAct:
        add(OutAct, in.chunk, in.mb, at(posF, in.chunk, in.mb),
            in.req >= 0 ? waitPos[in.req] : pos, chunks[in.chunk].outBytes);
        break;
      case Op::SendGrad:
        add(OutGradMsg, in.chunk, in.mb, at(posB, in.chunk, in.mb),
            in.req >= 0 ? waitPos[in.req] : pos, chunks[in.chunk].inBytes);
        break;
      default:
        break;
      }
    }

    // Static blocks at the front of the arena.
    const StaticMemory &st = statics[r];
    int64_t offset = 0;
    int32_t lastPos = std::max<int32_t>(0, int32_t(stream.size()) - 1);
    auto addStatic = [&](BufferKind kind, int64_t bytes) {
      mem.atPeak[int(kind)] = bytes;
      if (bytes <= 0)
        return;
      mem.blocks.push_back({kind, -1, -1, 0, offset, bytes, 0, lastPos});
      offset += bytes;
    };
    addStatic(BufferKind::Weights, st.weights);
    addStatic(BufferKind::Gradients, st.gradients);
    addStatic(BufferKind::Optimizer, st.optimizer);
    addStatic(BufferKind::Workspace, workspace);
    const int64_t staticBytes = offset;

    // Exact peak of live bytes: a sweep over interval ends.
    std::vector<std::pair<int32_t, int64_t>> events;
    events.reserve(iv.size() * 2);
    for (const Interval &x : iv) {
      events.push_back({x.start, x.bytes});
      events.push_back({x.end + 1, -x.bytes});
    }
    std::sort(events.begin(), events.end());
    int64_t live = 0, peak = 0;
    int32_t peakPos = 0;
    for (size_t i = 0; i < events.size();) {
      int32_t at = events[i].first;
      for (; i < events.size() && events[i].first == at; ++i)
        live += events[i].second;
      if (live > peak) {
        peak = live;
        peakPos = at;
      }
    }
    mem.peakLiveBytes = staticBytes + peak;
    mem.peakPosition = peakPos;
    for (const Interval &x : iv)
      if (x.start <= peakPos && peakPos <= x.end)
        mem.atPeak[int(kindOf(x.group / nChunks))] += x.bytes;

    // Slots: colour each group's intervals (sorted by start).
    std::sort(iv.begin(), iv.end(), [](const Interval &a, const Interval &b) {
      return a.group != b.group ? a.group < b.group : a.start < b.start;
    });
    mem.slotOf.assign(size_t(kRoles) * nChunks, {});
    struct Slot {
      int32_t group;
      int64_t bytes;
      int32_t start, end;
    };
    std::vector<Slot> slots;
    std::vector<int32_t> slotBase(size_t(kRoles) * nChunks, 0);
    for (size_t i = 0; i < iv.size();) {
      int32_t g = iv[i].group;
      mem.slotOf[g].assign(mbs, -1);
      slotBase[g] = int32_t(slots.size());
      using Busy = std::pair<int32_t, int32_t>; // (end, local slot)
      std::priority_queue<Busy, std::vector<Busy>, std::greater<Busy>> busy;
      std::priority_queue<int32_t, std::vector<int32_t>, std::greater<int32_t>>
          free;
      int32_t used = 0;
      for (; i < iv.size() && iv[i].group == g; ++i) {
        const Interval &x = iv[i];
        while (!busy.empty() && busy.top().first < x.start) {
          free.push(busy.top().second);
          busy.pop();
        }
        int32_t s;
        if (!free.empty()) {
          s = free.top();
          free.pop();
        } else {
          s = used++;
          slots.push_back({g, x.bytes, x.start, x.end});
        }
        Slot &slot = slots[slotBase[g] + s];
        slot.start = std::min(slot.start, x.start);
        slot.end = std::max(slot.end, x.end);
        mem.slotOf[g][x.mb] = s;
        busy.push({x.end, s});
      }
    }

    // Pack the slots: largest first, each at the lowest offset that is free
    // over its whole lifetime.
    std::vector<int32_t> order(slots.size());
    for (size_t i = 0; i < order.size(); ++i)
      order[i] = int32_t(i);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return slots[a].bytes != slots[b].bytes ? slots[a].bytes > slots[b].bytes
                                              : slots[a].start < slots[b].start;
    });
    std::vector<int64_t> slotOffset(slots.size(), -1);
    std::vector<int32_t> placed;
    int64_t arena = staticBytes;
    std::vector<std::pair<int64_t, int64_t>> overlap;
    for (int32_t s : order) {
      overlap.clear();
      for (int32_t p : placed)
        if (slots[p].start <= slots[s].end && slots[s].start <= slots[p].end)
          overlap.push_back({slotOffset[p], slots[p].bytes});
      slotOffset[s] = firstFit(overlap, staticBytes, slots[s].bytes);
      arena = std::max(arena, slotOffset[s] + slots[s].bytes);
      placed.push_back(s);
    }
    for (size_t s = 0; s < slots.size(); ++s) {
      const Slot &slot = slots[s];
      mem.blocks.push_back({kindOf(slot.group / nChunks), slot.group / nChunks,
                            slot.group % nChunks,
                            int32_t(s) - slotBase[slot.group], slotOffset[s],
                            slot.bytes, slot.start, slot.end});
    }
    mem.arenaBytes = arena;
  }
  return out;
}

} // namespace pipec::plan
