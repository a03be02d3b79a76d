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
#include <array>
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

bool bufferRoleOf(const std::string &name, int32_t &role) {
  for (int32_t r = -1; r < kBufferRoles; ++r)
    if (name == bufferRoleName(r)) {
      role = r;
      return true;
    }
  return false;
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
  assert(int32_t(chunks.size()) == nChunks);
  // Each estimated role is a buffer touched by the steps that make and
  // read it (docs/PARTITION.md has the lifetimes).
  std::vector<std::vector<ChunkBuffer>> buffers(static_cast<size_t>(nChunks));
  for (int32_t c = 0; c < nChunks; ++c) {
    const ChunkMemory &cm = chunks[size_t(c)];
    uint32_t last = cm.deferredW ? TouchW : TouchB;
    std::vector<ChunkBuffer> &b = buffers[size_t(c)];
    b.push_back({Saved, cm.savedBytes, TouchF | last, 0});
    b.push_back({Recomputed, cm.recomputedBytes,
                 TouchB | (cm.deferredW ? TouchW : 0u), 0});
    if (cm.deferredW)
      b.push_back({OutGrad, cm.wGradBytes, TouchB | TouchW, 0});
    if (c > 0)
      b.push_back({InAct, chunks[size_t(c - 1)].outBytes,
                   TouchRecvIn | TouchPrevF | TouchF,
                   TouchRecvIn | TouchPrevF});
    if (c + 1 < nChunks)
      b.push_back({InGrad, chunks[size_t(c + 1)].inBytes,
                   TouchRecvGradIn | TouchNextB | TouchB,
                   TouchRecvGradIn | TouchNextB});
    b.push_back({OutAct, cm.outBytes, TouchF | TouchSendOut, TouchSendOut});
    b.push_back({OutGradMsg, cm.inBytes, TouchB | TouchSendGradOut,
                 TouchSendGradOut});
    b.push_back({RecomputeIn, cm.recomputeInBytes, TouchF | TouchB, 0});
    b.push_back({SavedForB, cm.savedForBBytes, TouchF | TouchB, 0});
  }
  std::vector<std::vector<StaticBlock>> blocks(statics.size());
  for (int32_t r = 0; r < schedule.ranks(); ++r) {
    int64_t workspace = 0;
    for (int32_t c = 0; c < nChunks; ++c)
      if (schedule.placement.rankOf[size_t(c)] == r)
        workspace = std::max(workspace, chunks[size_t(c)].workspaceBytes);
    const StaticMemory &st = statics[size_t(r)];
    blocks[size_t(r)] = {{BufferKind::Weights, st.weights},
                         {BufferKind::Gradients, st.gradients},
                         {BufferKind::Optimizer, st.optimizer},
                         {BufferKind::Workspace, workspace + st.deviceWorkspace}};
  }
  return planBuffers(schedule, buffers, blocks);
}

std::vector<RankMemory>
planBuffers(const Schedule &schedule,
            const std::vector<std::vector<ChunkBuffer>> &buffers,
            const std::vector<std::vector<StaticBlock>> &statics) {
  const int32_t nChunks = schedule.placement.chunks;
  const int32_t mbs = schedule.microbatches;
  const std::vector<int32_t> &rankOf = schedule.placement.rankOf;
  assert(int32_t(buffers.size()) == nChunks);
  auto valid = [&](int32_t c, int32_t mb) {
    return c >= 0 && c < nChunks && mb >= 0 && mb < mbs;
  };

  std::vector<RankMemory> out(schedule.ranks());
  for (int32_t r = 0; r < schedule.ranks(); ++r) {
    const std::vector<Instr> &stream = schedule.streams[r];
    RankMemory &mem = out[r];

    // Per (chunk, role, micro-batch): the first and last touching
    // position, and whether a `needs` event happened.
    struct Life {
      int32_t first = -1, last = -1;
      bool needed = false;
    };
    std::vector<int32_t> local(size_t(nChunks), -1);
    int32_t held = 0;
    for (int32_t c = 0; c < nChunks; ++c)
      if (rankOf[size_t(c)] == r)
        local[size_t(c)] = held++;
    auto lifeKey = [&](int32_t c, int32_t role, int32_t mb) {
      return (size_t(local[size_t(c)]) * kRoles + size_t(role)) * size_t(mbs) +
             size_t(mb);
    };
    std::vector<Life> life(size_t(held) * kRoles * size_t(mbs));
    auto event = [&](int32_t c, int32_t mb, uint32_t bit, int32_t pos) {
      if (!valid(c, mb) || rankOf[size_t(c)] != r)
        return;
      for (const ChunkBuffer &b : buffers[size_t(c)]) {
        Life &l = life[lifeKey(c, b.role, mb)];
        if (b.touches & bit) {
          if (l.first < 0)
            l.first = pos;
          l.last = pos;
        }
        if (b.needs & bit)
          l.needed = true;
      }
    };
    auto sameRank = [&](int32_t c) {
      return c >= 0 && c < nChunks && rankOf[size_t(c)] == r;
    };
    // A wait repeats the events of its post (found by request).
    int32_t maxReq = -1;
    for (const Instr &in : stream)
      maxReq = std::max(maxReq, in.req);
    std::vector<std::array<int32_t, 3>> postEvent(size_t(maxReq + 1),
                                                  {-1, -1, 0});
    for (size_t i = 0; i < stream.size(); ++i) {
      const Instr &in = stream[i];
      int32_t pos = int32_t(i), c = in.chunk, mb = in.mb;
      switch (in.op) {
      case Op::Fwd:
        event(c, mb, TouchF, pos);
        if (sameRank(c + 1))
          event(c + 1, mb, TouchPrevF, pos);
        if (sameRank(c - 1))
          event(c - 1, mb, TouchNextF, pos);
        break;
      case Op::BwdB:
        event(c, mb, TouchB, pos);
        if (sameRank(c - 1))
          event(c - 1, mb, TouchNextB, pos);
        if (sameRank(c + 1))
          event(c + 1, mb, TouchPrevB, pos);
        break;
      case Op::BwdW:
        event(c, mb, TouchW, pos);
        break;
      case Op::RecvAct: // the consumer is the chunk after the producer
      case Op::RecvGrad: // the consumer is the chunk before the producer
      case Op::SendAct:
      case Op::SendGrad: {
        std::array<int32_t, 3> e = {
            in.op == Op::RecvAct    ? c + 1
            : in.op == Op::RecvGrad ? c - 1
                                    : c,
            mb,
            int32_t(in.op == Op::RecvAct    ? TouchRecvIn
                    : in.op == Op::RecvGrad ? TouchRecvGradIn
                    : in.op == Op::SendAct  ? TouchSendOut
                                            : TouchSendGradOut)};
        event(e[0], e[1], uint32_t(e[2]), pos);
        if (in.req >= 0)
          postEvent[size_t(in.req)] = e;
        break;
      }
      case Op::Wait:
        if (in.req >= 0 && in.req <= maxReq)
          event(postEvent[size_t(in.req)][0], postEvent[size_t(in.req)][1],
                uint32_t(postEvent[size_t(in.req)][2]), pos);
        break;
      default:
        break;
      }
    }

    std::vector<Interval> iv;
    for (int32_t c = 0; c < nChunks; ++c) {
      if (rankOf[size_t(c)] != r)
        continue;
      for (const ChunkBuffer &b : buffers[size_t(c)]) {
        if (b.bytes <= 0)
          continue;
        for (int32_t mb = 0; mb < mbs; ++mb) {
          const Life &l = life[lifeKey(c, b.role, mb)];
          if (l.first >= 0 && (b.needs == 0 || l.needed))
            iv.push_back({b.role * nChunks + c, mb, l.first, l.last, b.bytes});
        }
      }
    }

    // Static blocks at the front of the arena.
    int64_t offset = 0;
    int32_t lastPos = std::max<int32_t>(0, int32_t(stream.size()) - 1);
    for (const StaticBlock &sb : statics[size_t(r)]) {
      mem.atPeak[int(sb.kind)] += sb.bytes;
      if (sb.bytes <= 0)
        continue;
      mem.blocks.push_back({sb.kind, -1, -1, 0, offset, sb.bytes, 0, lastPos});
      offset += sb.bytes;
    }
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
      if (a.group != b.group)
        return a.group < b.group;
      return a.start != b.start ? a.start < b.start : a.mb < b.mb;
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
