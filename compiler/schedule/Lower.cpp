//===- Lower.cpp - compute plans to instruction streams -----------------===//

#include "compiler/schedule/Lower.h"

#include <algorithm>
#include <sstream>

namespace pipec::schedule {

std::string checkPlan(const ComputePlan &plan) {
  const Placement &pl = plan.placement;
  std::ostringstream err;
  if (pl.ranks < 1 || pl.chunks < 1 || int32_t(pl.rankOf.size()) != pl.chunks)
    return "the placement table is empty or its size differs from the chunk "
           "count";
  if (int32_t(plan.order.size()) != pl.ranks)
    return "the plan has " + std::to_string(plan.order.size()) +
           " rank orders for " + std::to_string(pl.ranks) + " ranks";
  for (int32_t c = 0; c < pl.chunks; ++c)
    if (pl.rankOf[c] < 0 || pl.rankOf[c] >= pl.ranks) {
      err << "chunk " << c << " is placed on rank " << pl.rankOf[c]
          << ", outside 0.." << pl.ranks - 1;
      return err.str();
    }
  for (int32_t r = 0; r < pl.ranks; ++r)
    if (pl.chunksOf(r).empty()) {
      err << "rank " << r << " holds no chunk";
      return err.str();
    }
  int32_t m = plan.microbatches;
  if (m < 1)
    return "the micro-batch count must be at least 1";
  if (int64_t(pl.chunks) * m > kMaxChunkMicrobatches)
    return "the plan is too large: " + std::to_string(pl.chunks) +
           " chunks x " + std::to_string(m) + " micro-batches";
  // done[phase][chunk * m + mb]: 0 = not yet, else 1 + the step index.
  std::vector<int32_t> done[3];
  for (auto &d : done)
    d.assign(size_t(pl.chunks) * m, 0);
  static const char *names[] = {"F", "B", "W"};
  for (int32_t r = 0; r < pl.ranks; ++r) {
    const auto &order = plan.order[r];
    for (size_t k = 0; k < order.size(); ++k) {
      const Action &a = order[k];
      if (a.chunk < 0 || a.chunk >= pl.chunks || a.mb < 0 || a.mb >= m) {
        err << "rank " << r << " step " << k << " (" << compactToken(a)
            << "): chunk must be in 0.." << pl.chunks - 1
            << " and micro-batch in 0.." << m - 1;
        return err.str();
      }
      if (pl.rankOf[a.chunk] != r) {
        err << "rank " << r << " step " << k << " (" << compactToken(a)
            << ") runs chunk " << a.chunk << ", which is placed on rank "
            << pl.rankOf[a.chunk];
        return err.str();
      }
      size_t i = size_t(a.chunk) * m + a.mb;
      auto mark = [&](int phase) -> bool {
        if (done[phase][i]) {
          err << "rank " << r << " step " << k << " (" << compactToken(a)
              << ") duplicates " << names[phase] << " of chunk " << a.chunk
              << " micro-batch " << a.mb << " (first at step "
              << done[phase][i] - 1 << ")";
          return false;
        }
        if (phase > 0 && !done[phase - 1][i]) {
          err << "rank " << r << " step " << k << " (" << compactToken(a)
              << ") runs " << names[phase] << " of chunk " << a.chunk
              << " micro-batch " << a.mb << " before its "
              << names[phase - 1];
          return false;
        }
        done[phase][i] = int32_t(k) + 1;
        return true;
      };
      switch (a.phase) {
      case Phase::F:
        if (!mark(0))
          return err.str();
        break;
      case Phase::B:
        if (!mark(1))
          return err.str();
        break;
      case Phase::W:
        if (!mark(2))
          return err.str();
        break;
      case Phase::FullBackward:
        if (!mark(1) || !mark(2))
          return err.str();
        break;
      }
    }
  }
  for (int phase = 0; phase < 3; ++phase)
    for (int32_t c = 0; c < pl.chunks; ++c)
      for (int32_t mb = 0; mb < m; ++mb)
        if (!done[phase][size_t(c) * m + mb]) {
          err << "rank " << pl.rankOf[c] << " never runs " << names[phase]
              << " of chunk " << c << " micro-batch " << mb;
          return err.str();
        }
  return "";
}

namespace {
/// An instruction before its final position is known: sorted by slot (the
/// compute step it belongs to), then section, then creation order.
struct Entry {
  int32_t slot;
  int32_t section;
  int32_t order;
  int32_t key; ///< message key, -1 for compute and collectives
  Instr instr;
};

enum Section : int32_t {
  RecvPost = 0,
  SendWait = 1,
  RecvWait = 2,
  Compute = 3,
  SendPost = 4,
  Collective = 5,
  Optimizer = 6
};

/// One compute step after FullBackward is split into B and W.
struct Item {
  Op op;
  int32_t chunk, mb;
  int32_t needKey;  ///< message consumed, or -1
  int32_t sendKey;  ///< message posted right after, or -1
};

constexpr int32_t kNone = -1;
} // namespace

Schedule lowerPlan(const ComputePlan &plan, const LowerOptions &options) {
  const Placement &pl = plan.placement;
  const int32_t R = pl.ranks, C = pl.chunks, M = plan.microbatches;
  // Message key: (kind * C + producing chunk) * M + mb; kind 0 act, 1 grad.
  auto key = [&](int kind, int32_t c, int32_t mb) {
    return (kind * C + c) * M + mb;
  };
  const size_t nKeys = size_t(2) * C * M;
  auto keyKind = [&](int32_t k) { return k / (C * M); };
  auto keyChunk = [&](int32_t k) { return (k / M) % C; };
  auto keyMb = [&](int32_t k) { return k % M; };
  auto sender = [&](int32_t k) { return pl.rankOf[keyChunk(k)]; };
  auto receiver = [&](int32_t k) {
    int32_t c = keyChunk(k);
    return pl.rankOf[keyKind(k) == 0 ? c + 1 : c - 1];
  };

  // 1. Expand each rank's plan into items with their messages.
  std::vector<std::vector<Item>> items(R);
  for (int32_t r = 0; r < R; ++r) {
    for (const Action &a : plan.order[r]) {
      int32_t c = a.chunk, mb = a.mb;
      bool remoteIn = c > 0 && pl.rankOf[c - 1] != r;
      bool remoteOut = c + 1 < C && pl.rankOf[c + 1] != r;
      int32_t actIn = remoteIn ? key(0, c - 1, mb) : kNone;
      int32_t actOut = remoteOut ? key(0, c, mb) : kNone;
      int32_t gradIn = remoteOut ? key(1, c + 1, mb) : kNone;
      int32_t gradOut = remoteIn ? key(1, c, mb) : kNone;
      switch (a.phase) {
      case Phase::F:
        items[r].push_back({Op::Fwd, c, mb, actIn, actOut});
        break;
      case Phase::B:
        items[r].push_back({Op::BwdB, c, mb, gradIn, gradOut});
        break;
      case Phase::W:
        items[r].push_back({Op::BwdW, c, mb, kNone, kNone});
        break;
      case Phase::FullBackward:
        items[r].push_back({Op::BwdB, c, mb, gradIn, kNone});
        items[r].push_back({Op::BwdW, c, mb, kNone, gradOut});
        break;
      }
    }
  }

  // 2. Where each message is produced and consumed (as item indices).
  std::vector<int32_t> sendSlot(nKeys, kNone), waitSlot(nKeys, kNone),
      postSlot(nKeys, kNone);
  // (channel, key) in the sender's order; channel = (src * R + dst) * 2 + kind.
  std::vector<std::pair<int64_t, int32_t>> channelSeq;
  for (int32_t r = 0; r < R; ++r)
    for (int32_t k = 0; k < int32_t(items[r].size()); ++k) {
      const Item &it = items[r][k];
      if (it.needKey != kNone)
        waitSlot[it.needKey] = k;
      if (it.sendKey != kNone) {
        sendSlot[it.sendKey] = k;
        int64_t ch = (int64_t(r) * R + receiver(it.sendKey)) * 2 +
                     keyKind(it.sendKey);
        channelSeq.push_back({ch, it.sendKey});
      }
    }
  std::stable_sort(channelSeq.begin(), channelSeq.end(),
                   [](const auto &a, const auto &b) { return a.first < b.first; });

  std::vector<std::vector<Entry>> entries(R);
  int32_t order = 0;
  auto add = [&](int32_t r, int32_t slot, int32_t section, int32_t k,
                 Instr in) {
    entries[r].push_back({slot, section, order++, k, in});
  };

  // 3. Recv posts: one step ahead of the consumer, but never after a recv
  // that the sender's order puts later on the same channel, so that posting
  // order matches on every channel.
  for (size_t i = 0; i < channelSeq.size();) {
    size_t j = i;
    while (j < channelSeq.size() && channelSeq[j].first == channelSeq[i].first)
      ++j;
    int32_t running = INT32_MAX;
    for (size_t t = j; t-- > i;) {
      int32_t k = channelSeq[t].second;
      running = std::min(running,
                         std::max(0, waitSlot[k] - options.recvLookahead));
      postSlot[k] = running;
    }
    for (size_t t = i; t < j; ++t) {
      int32_t k = channelSeq[t].second;
      Op op = keyKind(k) == 0 ? Op::RecvAct : Op::RecvGrad;
      add(receiver(k), postSlot[k], RecvPost, k,
          Instr{op, op, sender(k), keyChunk(k), keyMb(k), 0});
    }
    i = j;
  }

  // 4. Compute, recv waits and send posts.
  for (int32_t r = 0; r < R; ++r)
    for (int32_t k = 0; k < int32_t(items[r].size()); ++k) {
      const Item &it = items[r][k];
      if (it.needKey != kNone) {
        int32_t n = it.needKey;
        Op sub = keyKind(n) == 0 ? Op::RecvAct : Op::RecvGrad;
        add(r, k, RecvWait, n,
            Instr{Op::Wait, sub, sender(n), keyChunk(n), keyMb(n), 0});
      }
      add(r, k, Compute, kNone, Instr{it.op, it.op, 0, it.chunk, it.mb, 0});
      if (it.sendKey != kNone) {
        int32_t n = it.sendKey;
        Op op = keyKind(n) == 0 ? Op::SendAct : Op::SendGrad;
        add(r, k, SendPost, n,
            Instr{op, op, receiver(n), keyChunk(n), keyMb(n), 0});
      }
    }

  auto sortEntries = [](std::vector<Entry> &v) {
    std::sort(v.begin(), v.end(), [](const Entry &a, const Entry &b) {
      if (a.slot != b.slot)
        return a.slot < b.slot;
      if (a.section != b.section)
        return a.section < b.section;
      return a.order < b.order;
    });
  };
  for (auto &v : entries)
    sortEntries(v);

  // 5. Send waits. Index every post in its stream, then for each send to R
  // find the earliest receive from R that R posts after posting our send's
  // recv: once that receive has arrived, our send has completed.
  std::vector<int32_t> recvPostIdx(nKeys, kNone), sendPostIdx(nKeys, kNone);
  for (int32_t r = 0; r < R; ++r)
    for (int32_t i = 0; i < int32_t(entries[r].size()); ++i) {
      const Entry &e = entries[r][i];
      if (e.section == RecvPost)
        recvPostIdx[e.key] = i;
      else if (e.section == SendPost)
        sendPostIdx[e.key] = i;
    }
  // Messages grouped by (sender, receiver) pair.
  std::vector<std::pair<int64_t, int32_t>> byPair;
  for (const auto &[ch, k] : channelSeq)
    byPair.push_back({ch / 2, k});
  std::sort(byPair.begin(), byPair.end());
  auto pairRange = [&](int64_t pair) {
    auto lo = std::lower_bound(byPair.begin(), byPair.end(),
                               std::pair<int64_t, int32_t>{pair, INT32_MIN});
    auto hi = std::lower_bound(byPair.begin(), byPair.end(),
                               std::pair<int64_t, int32_t>{pair + 1, INT32_MIN});
    return std::make_pair(lo, hi);
  };
  for (int32_t s = 0; s < R; ++s) {
    const int32_t endSlot = int32_t(items[s].size());
    // Distinct receivers of s.
    std::vector<int32_t> peers;
    for (int32_t k = 0; k < int32_t(items[s].size()); ++k)
      if (items[s][k].sendKey != kNone)
        peers.push_back(receiver(items[s][k].sendKey));
    std::sort(peers.begin(), peers.end());
    peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
    for (int32_t rr : peers) {
      // y: messages rr -> s, as (send index in rr's stream, wait slot in s).
      std::vector<std::pair<int32_t, int32_t>> back;
      auto [blo, bhi] = pairRange(int64_t(rr) * R + s);
      for (auto it = blo; it != bhi; ++it)
        back.push_back({sendPostIdx[it->second], waitSlot[it->second]});
      std::sort(back.begin(), back.end());
      // suffixMin[i] = min wait slot over back[i..].
      std::vector<int32_t> suffixMin(back.size() + 1, INT32_MAX);
      for (size_t i = back.size(); i-- > 0;)
        suffixMin[i] = std::min(suffixMin[i + 1], back[i].second);
      auto [lo, hi] = pairRange(int64_t(s) * R + rr);
      for (auto it = lo; it != hi; ++it) {
        int32_t x = it->second;
        auto pos = std::upper_bound(
            back.begin(), back.end(),
            std::pair<int32_t, int32_t>{recvPostIdx[x], INT32_MAX});
        int32_t slot = suffixMin[pos - back.begin()];
        if (slot == INT32_MAX || slot <= sendSlot[x])
          slot = endSlot;
        Op sub = keyKind(x) == 0 ? Op::SendAct : Op::SendGrad;
        add(s, slot, SendWait, x,
            Instr{Op::Wait, sub, rr, keyChunk(x), keyMb(x), 0});
      }
    }
    if (options.optimizerStep) {
      // Tied groups: every W of this rank (so every accumulator of a tied
      // parameter it holds) is done by endSlot, and the sum must exist
      // before the gradient norm and the optimizer read it. Before a
      // collective a rank has only posted its sends and waited for
      // messages that need no collective, so joining cannot block the
      // point-to-point traffic; ascending group order on every rank is
      // one total order, so two groups cannot wait on each other.
      for (size_t g = 0; g < options.groups.size(); ++g)
        if (std::find(options.groups[g].begin(), options.groups[g].end(),
                      s) != options.groups[g].end())
          add(s, endSlot, Collective, kNone,
              Instr{Op::AllReduce, Op::AllReduce, 0, int32_t(g + 1), 0, 0});
      if (!options.postValidation)
        add(s, endSlot, Collective, kNone,
            Instr{Op::AllReduce, Op::AllReduce, 0, 0, 0, 0});
      add(s, endSlot, Optimizer, kNone, Instr{Op::OptStep, Op::OptStep, 0, 0, 0, 0});
    }
  }
  for (auto &v : entries)
    sortEntries(v);

  // 6. Request ids in posting order; waits name their post's id.
  Schedule out;
  out.kind = plan.kind;
  out.microbatches = M;
  out.chunksPerRank = plan.chunksPerRank;
  out.placement = pl;
  out.groups.push_back({});
  for (int32_t r = 0; r < R; ++r)
    out.groups[0].push_back(r);
  out.groups.insert(out.groups.end(), options.groups.begin(),
                    options.groups.end());
  out.streams.resize(R);
  std::vector<int32_t> reqOf(2 * nKeys, kNone); // [key * 2 + isSend]
  for (int32_t r = 0; r < R; ++r) {
    int32_t next = 0;
    auto &stream = out.streams[r];
    stream.reserve(entries[r].size());
    for (Entry &e : entries[r]) {
      Instr in = e.instr;
      if (isPost(in.op)) {
        bool send = in.op == Op::SendAct || in.op == Op::SendGrad;
        in.req = next++;
        reqOf[size_t(e.key) * 2 + send] = in.req;
      } else if (in.op == Op::Wait) {
        bool send = in.sub == Op::SendAct || in.sub == Op::SendGrad;
        in.req = reqOf[size_t(e.key) * 2 + send];
      }
      stream.push_back(in);
    }
    std::vector<Entry>().swap(entries[r]);
  }
  return out;
}

Schedule repeatSteps(const Schedule &schedule, int32_t steps) {
  Schedule out = schedule;
  for (int32_t r = 0; r < schedule.ranks(); ++r) {
    const auto &one = schedule.streams[r];
    int32_t reqs = 0;
    for (const Instr &in : one)
      if (isPost(in.op) || in.op == Op::Wait)
        reqs = std::max(reqs, in.req + 1);
    auto &all = out.streams[r];
    all.clear();
    all.reserve(one.size() * size_t(std::max(steps, 0)));
    for (int32_t k = 0; k < steps; ++k)
      for (Instr in : one) {
        if (isPost(in.op) || in.op == Op::Wait)
          in.req += k * reqs;
        all.push_back(in);
      }
  }
  return out;
}

} // namespace pipec::schedule
