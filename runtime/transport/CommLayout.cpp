//===- CommLayout.cpp - pairs, groups, split rounds and their proof -------===//

#include "pipert/CommLayout.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>

namespace pipert {
namespace {

bool isSend(Opcode op) { return op == Opcode::SendAct || op == Opcode::SendGrad; }

Channel channelOf(Opcode op) {
  return op == Opcode::SendAct || op == Opcode::RecvAct ? Channel::Activation
                                                        : Channel::Gradient;
}

const char *channelWord(Channel c) {
  return c == Channel::Activation ? "activation" : "gradient";
}

using PairKey = std::tuple<int32_t, int32_t, int32_t>; // src, dst, channel

/// The communicator `rank`'s instruction `in` uses: its pair or its group's
/// (-1: none in `layout`); -2 for an instruction that communicates nothing.
int32_t commOfInstr(const CommLayout &layout, int32_t rank, const Instr &in) {
  if (isPostOp(in.op))
    return isSend(in.op) ? layout.pairOf(rank, in.peer, channelOf(in.op))
                         : layout.pairOf(in.peer, rank, channelOf(in.op));
  if (isCollectiveOp(in.op))
    return layout.groupOf(in.chunk);
  return -2;
}

} // namespace

int32_t CommLayout::pairOf(int32_t src, int32_t dst, Channel channel) const {
  if (src < 0 || dst < 0 || src >= ranks || dst >= ranks)
    return -1;
  // pairIndex holds (key, comm) sorted by key: a plan of 220,000 ranks has
  // a few pairs per rank, not ranks squared.
  int64_t key = (int64_t(src) * ranks + dst) * 2 + int64_t(channel);
  auto it = std::lower_bound(
      pairKeys.begin(), pairKeys.end(), key);
  if (it == pairKeys.end() || *it != key)
    return -1;
  return pairIndex[size_t(it - pairKeys.begin())];
}

int32_t CommLayout::groupOf(int32_t group) const {
  return group < 0 || size_t(group) >= groupIndex.size()
             ? -1
             : groupIndex[size_t(group)];
}

int32_t CommLayout::colorOf(int32_t rank, int32_t round) const {
  if (rank < 0 || rank >= ranks || round < 0 || round >= rounds)
    return -1;
  if (only >= 0)
    return rank == only ? roundColor[size_t(round)] : -1;
  return roundColor[size_t(rank) * size_t(rounds) + size_t(round)];
}

std::vector<int32_t> CommLayout::commsOf(int32_t rank) const {
  std::vector<int32_t> out;
  for (int32_t k = 0; k < rounds; ++k)
    if (int32_t c = colorOf(rank, k); c >= 0)
      out.push_back(c);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

/// What the layout needs of each rank's stream: the pairs it posts on and
/// the groups of its collectives, in its stream's order.
struct Traffic {
  int32_t ranks = 0;
  std::map<PairKey, bool> pairs;
  std::vector<bool> groupUsed;
  std::vector<std::vector<int32_t>> issued;
};

/// Adds stream `s` (rank s.rank of t.ranks) to `t`.
Status addTraffic(const Stream &s, Traffic &t) {
  const int32_t n = t.ranks;
  for (size_t i = 0; i < s.instrs.size(); ++i) {
    const Instr &in = s.instrs[i];
    if (isPostOp(in.op)) {
      if (in.peer < 0 || in.peer >= n || in.peer == s.rank)
        return Status::failure("a message to rank " +
                                   std::to_string(in.peer) + " of " +
                                   std::to_string(n),
                               s.rank, int64_t(i));
      int32_t src = isSend(in.op) ? s.rank : in.peer;
      int32_t dst = isSend(in.op) ? in.peer : s.rank;
      t.pairs[{src, dst, int32_t(channelOf(in.op))}] = true;
    } else if (isCollectiveOp(in.op)) {
      if (in.chunk < 0 || size_t(in.chunk) >= t.groupUsed.size())
        return Status::failure("a collective of group " +
                                   std::to_string(in.chunk) + " of " +
                                   std::to_string(t.groupUsed.size()),
                               s.rank, int64_t(i));
      t.groupUsed[size_t(in.chunk)] = true;
      if (s.rank >= 0 && s.rank < n)
        t.issued[size_t(s.rank)].push_back(in.chunk);
    }
  }
  return Status::success();
}

Status layoutOf(const Traffic &t,
                const std::vector<std::vector<int32_t>> &groups,
                CommLayout &out);

} // namespace

Status planComms(const std::vector<Stream> &streams,
                 const std::vector<std::vector<int32_t>> &groups,
                 CommLayout &out) {
  out = CommLayout{};
  Traffic t;
  t.ranks = int32_t(streams.size());
  t.groupUsed.assign(groups.size(), false);
  t.issued.resize(streams.size());
  for (const Stream &s : streams)
    if (Status st = addTraffic(s, t); !st.ok())
      return st;
  return layoutOf(t, groups, out);
}

Status planReplicatedComms(const std::vector<Stream> &zero,
                           const std::vector<std::vector<int32_t>> &groups,
                           int32_t replicas, int32_t pipelineGroups,
                           CommLayout &out) {
  out = CommLayout{};
  const int32_t P = int32_t(zero.size()), G = pipelineGroups;
  const int64_t n = int64_t(P) * replicas;
  if (P < 1 || replicas < 1 || G < 1 || n > INT32_MAX ||
      int64_t(groups.size()) != int64_t(replicas) * G + P)
    return Status::failure(
        "planning the communicators of " + std::to_string(replicas) +
        " replicas of " + std::to_string(P) + " ranks and " +
        std::to_string(G) + " groups: the plan has " +
        std::to_string(groups.size()) + " groups, not D G + P");
  Traffic t;
  t.ranks = int32_t(n);
  t.groupUsed.assign(groups.size(), false);
  t.issued.resize(size_t(n));
  for (int32_t s = 0; s < P; ++s) {
    if (zero[size_t(s)].rank != s)
      return Status::failure("stream " + std::to_string(s) + " is rank " +
                             std::to_string(zero[size_t(s)].rank) +
                             "'s, not replica 0's rank " + std::to_string(s));
    if (Status st = addTraffic(zero[size_t(s)], t); !st.ok())
      return st;
  }
  // Replica 0 names its own ranks and groups and the data-parallel
  // groups, nothing of another replica's: then replica k's traffic is
  // replica 0's moved by k P ranks and k G groups.
  for (const auto &[key, used] : std::map<PairKey, bool>(t.pairs)) {
    (void)used;
    auto [src, dst, ch] = key;
    if (src >= P || dst >= P)
      return Status::failure("rank " + std::to_string(src < P ? src : dst) +
                             " of replica 0 sends or receives a message of "
                             "rank " + std::to_string(src < P ? dst : src) +
                             ", another replica's");
    for (int32_t k = 1; k < replicas; ++k)
      t.pairs[{src + k * P, dst + k * P, ch}] = true;
  }
  for (int32_t s = 0; s < P; ++s)
    for (int32_t g : t.issued[size_t(s)])
      if (g >= G && g < replicas * G)
        return Status::failure("rank " + std::to_string(s) +
                               " of replica 0 joins group " +
                               std::to_string(g) + ", another replica's");
  for (int32_t k = 1; k < replicas; ++k)
    for (int32_t s = 0; s < P; ++s) {
      std::vector<int32_t> &mine = t.issued[size_t(k * P + s)];
      mine = t.issued[size_t(s)];
      for (int32_t &g : mine)
        if (g < G) {
          g += k * G;
          t.groupUsed[size_t(g)] = true;
        }
    }
  return layoutOf(t, groups, out);
}

namespace {

Status layoutOf(const Traffic &t,
                const std::vector<std::vector<int32_t>> &groups,
                CommLayout &out) {
  const int32_t n = t.ranks;
  out.ranks = n;
  const std::vector<std::vector<int32_t>> &issued = t.issued;
  const std::vector<bool> &groupUsed = t.groupUsed;
  // Whether the groups `set` (the same members) meet in one order on one
  // communicator: every member issues their collectives in the same order.
  auto oneOrder = [&](const std::vector<int32_t> &set,
                      const std::vector<int32_t> &members) {
    std::vector<int32_t> first;
    for (size_t i = 0; i < members.size(); ++i) {
      std::vector<int32_t> mine;
      for (int32_t g : issued[size_t(members[i])])
        if (std::find(set.begin(), set.end(), g) != set.end())
          mine.push_back(g);
      if (i == 0)
        first = std::move(mine);
      else if (mine != first)
        return false;
    }
    return true;
  };
  // Groups first, then pairs by (src, dst, channel): the same order, so
  // the same rounds, in every process. The group communicators by their
  // members, so that finding one to share is not a walk over all of them
  // (data parallelism has about two groups a replica).
  std::map<std::vector<int32_t>, std::vector<int32_t>> byMembers;
  for (size_t g = 0; g < groups.size(); ++g) {
    out.groupIndex.push_back(-1);
    if (!groupUsed[g])
      continue;
    const std::vector<int32_t> &members = groups[g];
    if (!std::is_sorted(members.begin(), members.end()) ||
        std::adjacent_find(members.begin(), members.end()) != members.end())
      return Status::failure("group " + std::to_string(g) +
                             "'s members are not ascending and distinct");
    for (int32_t m : members)
      if (m < 0 || m >= n)
        return Status::failure("group " + std::to_string(g) + " names rank " +
                               std::to_string(m) + " of " + std::to_string(n));
    // An earlier group communicator with these members, if the order
    // allows; else a new one.
    int32_t shared = -1;
    std::vector<int32_t> &same = byMembers[members];
    for (size_t k = 0; k < same.size() && shared < 0; ++k) {
      const int32_t c = same[k];
      CommSpec &spec = out.comms[size_t(c)];
      std::vector<int32_t> set = spec.groups;
      set.push_back(int32_t(g));
      if (oneOrder(set, members)) {
        spec.groups = std::move(set);
        shared = int32_t(c);
      }
    }
    if (shared >= 0) {
      out.groupIndex.back() = shared;
      continue;
    }
    out.groupIndex.back() = int32_t(out.comms.size());
    same.push_back(int32_t(out.comms.size()));
    CommSpec c;
    c.group = int32_t(g);
    c.groups = {int32_t(g)};
    c.members = members;
    out.comms.push_back(std::move(c));
  }
  for (const auto &[key, used] : t.pairs) {
    (void)used;
    auto [src, dst, ch] = key;
    CommSpec c;
    c.pair = true;
    c.channel = Channel(ch);
    // Member 0 is the sender: NCCL ranks follow the split's key, which is
    // chosen per member (the sender's key 0, the receiver's 1).
    c.members = {src, dst};
    out.pairKeys.push_back((int64_t(src) * n + dst) * 2 + ch);
    out.pairIndex.push_back(int32_t(out.comms.size()));
    out.comms.push_back(std::move(c));
  }
  // Greedy colouring: the first round where none of the members is taken.
  std::vector<std::vector<int32_t>> taken(static_cast<size_t>(n));
  for (size_t c = 0; c < out.comms.size(); ++c) {
    CommSpec &spec = out.comms[c];
    int32_t round = 0;
    for (bool clash = true; clash; ) {
      clash = false;
      for (int32_t m : spec.members) {
        const auto &t = taken[size_t(m)];
        if (size_t(round) < t.size() && t[size_t(round)] >= 0) {
          clash = true;
          ++round;
          break;
        }
      }
    }
    spec.round = round;
    for (int32_t m : spec.members) {
      auto &t = taken[size_t(m)];
      if (t.size() <= size_t(round))
        t.resize(size_t(round) + 1, -1);
      t[size_t(round)] = int32_t(c);
    }
    out.rounds = std::max(out.rounds, round + 1);
  }
  out.roundColor.assign(size_t(n) * size_t(out.rounds), -1);
  for (int32_t r = 0; r < n; ++r)
    for (size_t k = 0; k < taken[size_t(r)].size(); ++k)
      out.roundColor[size_t(r) * size_t(out.rounds) + k] = taken[size_t(r)][k];
  for (size_t c = 0; c < out.comms.size(); ++c)
    out.comms[c].id = int32_t(c);
  return Status::success();
}

} // namespace

std::string groupsName(const CommSpec &spec) {
  std::string s = spec.groups.size() > 1 ? "groups " : "group ";
  if (spec.groups.empty())
    return s + std::to_string(spec.group);
  for (size_t i = 0; i < spec.groups.size(); ++i)
    s += (i ? "+" : "") + std::to_string(spec.groups[i]);
  return s;
}

Status checkCommLayout(const std::vector<Stream> &streams,
                       const CommLayout &layout) {
  // Per communicator, every member's operations in its stream's order.
  struct Op {
    int32_t rank;
    int64_t instr;
  };
  std::vector<std::vector<std::vector<Op>>> ops(layout.comms.size());
  for (size_t c = 0; c < layout.comms.size(); ++c)
    ops[c].resize(layout.comms[c].members.size());
  for (size_t r = 0; r < streams.size(); ++r) {
    const Stream &s = streams[r];
    if (s.rank != int32_t(r))
      return Status::failure("stream " + std::to_string(r) + " is rank " +
                             std::to_string(s.rank) + "'s");
    for (size_t i = 0; i < s.instrs.size(); ++i) {
      const Instr &in = s.instrs[i];
      const int32_t c = commOfInstr(layout, s.rank, in);
      if (c == -2)
        continue;
      if (c < 0)
        return Status::failure("no communicator for " + describe(in), s.rank,
                               int64_t(i));
      // A pair's member 0 is its sender; a group's members ascend.
      const CommSpec &spec = layout.comms[size_t(c)];
      const auto &members = spec.members;
      auto at = spec.pair ? std::find(members.begin(), members.end(), s.rank)
                          : std::lower_bound(members.begin(), members.end(),
                                             s.rank);
      if (at == members.end() || *at != s.rank)
        return Status::failure(describe(in) + " in a group rank " +
                                   std::to_string(s.rank) + " is not in",
                               s.rank, int64_t(i));
      ops[size_t(c)][size_t(at - members.begin())].push_back({s.rank, int64_t(i)});
    }
  }
  auto instrOf = [&](const Op &o) -> const Instr & {
    return streams[size_t(o.rank)].instrs[size_t(o.instr)];
  };
  auto where = [&](const Op &o) {
    return "rank " + std::to_string(o.rank) + " #" + std::to_string(o.instr) +
           " " + describe(instrOf(o));
  };
  // Members beyond the streams given run a moved copy of one that is
  // given (replica 0's streams alone): nothing of theirs to compare.
  auto given = [&](int32_t rank) { return size_t(rank) < streams.size(); };
  for (size_t c = 0; c < layout.comms.size(); ++c) {
    const CommSpec &spec = layout.comms[c];
    if (spec.members.empty() || !given(spec.members[0]))
      continue;
    const auto &lead = ops[c][0];
    for (size_t m = 1; m < spec.members.size(); ++m) {
      if (!given(spec.members[m]))
        continue;
      const auto &other = ops[c][m];
      std::string what =
          spec.pair ? std::string(channelWord(spec.channel)) + " messages from rank " +
                          std::to_string(spec.members[0]) + " to rank " +
                          std::to_string(spec.members[1])
                    : "the collectives of " + groupsName(spec);
      if (lead.size() != other.size())
        return Status::failure(
            what + ": rank " + std::to_string(spec.members[0]) + " issues " +
            std::to_string(lead.size()) + ", rank " +
            std::to_string(spec.members[m]) + " " +
            std::to_string(other.size()) +
            " (on a communicator the n-th of each side meet)");
      for (size_t k = 0; k < lead.size(); ++k) {
        const Instr &a = instrOf(lead[k]), &b = instrOf(other[k]);
        bool same = a.chunk == b.chunk && a.bytes == b.bytes;
        if (spec.pair)
          same = same && a.mb == b.mb;
        else {
          same = same && a.op == b.op && a.mb == b.mb && a.dtype == b.dtype &&
                 a.partCount == b.partCount;
          const Stream &sa = streams[size_t(lead[k].rank)],
                       &sb = streams[size_t(other[k].rank)];
          for (uint32_t p = 0; same && p < a.partCount; ++p) {
            const Part &pa = sa.parts[a.firstPart + p],
                       &pb = sb.parts[b.firstPart + p];
            same = pa.rank == pb.rank && pa.offset == pb.offset &&
                   pa.bytes == pb.bytes;
          }
        }
        if (!same)
          return Status::failure(what + ": operation " + std::to_string(k) +
                                 " differs: " + where(lead[k]) + " meets " +
                                 where(other[k]));
      }
    }
  }
  return Status::success();
}

Status proveCommLayout(const std::vector<Stream> &streams,
                       const CommLayout &layout) {
  if (Status s = checkCommLayout(streams, layout); !s.ok())
    return Status::failure("the streams cannot run with one process per "
                           "rank: " + s.message());
  if (layout.rounds > kMaxCommRounds)
    return Status::failure("the communicators need " +
                           std::to_string(layout.rounds) +
                           " split rounds, more than the " +
                           std::to_string(kMaxCommRounds) +
                           " a stream may announce");
  return Status::success();
}

Status attachComms(std::vector<Stream> &streams,
                   const std::vector<std::vector<int32_t>> &groups) {
  CommLayout layout;
  if (Status s = planComms(streams, groups, layout); !s.ok())
    return s;
  if (Status s = proveCommLayout(streams, layout); !s.ok())
    return s;
  attachLayout(streams, layout);
  return Status::success();
}

void attachLayout(std::vector<Stream> &streams, const CommLayout &layout) {
  for (Stream &s : streams) {
    s.commRounds = layout.rounds;
    s.comms.clear();
    for (int32_t c : layout.commsOf(s.rank)) {
      const CommSpec &spec = layout.comms[size_t(c)];
      StreamComm k;
      k.id = spec.id;
      k.round = spec.round;
      k.pair = spec.pair;
      k.channel = uint8_t(spec.channel);
      if (!spec.pair)
        k.groups = spec.groups;
      // Evenly spaced members (a data-parallel group) as three numbers.
      const auto &m = spec.members;
      bool even = !spec.pair && m.size() >= 3;
      for (size_t i = 2; even && i < m.size(); ++i)
        even = m[i] - m[i - 1] == m[1] - m[0];
      if (even) {
        k.first = m[0];
        k.stride = m[1] - m[0];
        k.count = int32_t(m.size());
      } else {
        k.members = m;
      }
      s.comms.push_back(std::move(k));
    }
  }
}

Status commViewOf(const Stream &s,
                  const std::vector<std::vector<int32_t>> &groups,
                  CommLayout &out) {
  out = CommLayout{};
  out.ranks = s.ranks;
  out.rounds = s.commRounds;
  out.only = s.rank;
  out.roundColor.assign(size_t(std::max(0, s.commRounds)), -1);
  out.groupIndex.assign(groups.size(), -1);
  if (Status v = validateStream(s); !v.ok())
    return v;
  auto fail = [&](const std::string &what) {
    return Status::failure("rank " + std::to_string(s.rank) + ": " + what,
                           s.rank);
  };
  // The table is ascending by id and the pairs' keys are built in that
  // order, so they are sorted for pairOf once the pairs are.
  std::vector<std::pair<int64_t, int32_t>> pairs;
  for (const StreamComm &k : s.comms) {
    CommSpec spec;
    spec.pair = k.pair;
    spec.channel = Channel(k.channel);
    // Listed only once its count is a group's of the manifest (or a pair's
    // two): a crafted count must not allocate.
    if (!k.pair && (k.groups.empty() || size_t(k.groups.front()) >= groups.size() ||
                    size_t(k.memberCount()) != groups[size_t(k.groups.front())].size()))
      return fail("communicator " + std::to_string(k.id) + " has " +
                  std::to_string(k.memberCount()) +
                  " members, not those of a group of the plan's " +
                  std::to_string(groups.size()) +
                  " (a stream of another plan?)");
    spec.members = k.memberList();
    spec.round = k.round;
    spec.id = k.id;
    const int32_t local = int32_t(out.comms.size());
    out.roundColor[size_t(k.round)] = local;
    if (k.pair) {
      pairs.push_back({(int64_t(k.members[0]) * s.ranks + k.members[1]) * 2 +
                           k.channel,
                       local});
    } else {
      spec.groups = k.groups;
      spec.group = k.groups.front();
      for (int32_t g : k.groups) {
        if (size_t(g) >= groups.size())
          return fail("communicator " + std::to_string(k.id) +
                      " carries group " + std::to_string(g) +
                      ", but the plan has " + std::to_string(groups.size()) +
                      " groups");
        if (groups[size_t(g)] != spec.members)
          return fail("communicator " + std::to_string(k.id) + " of group " +
                      std::to_string(g) +
                      " has other members than the manifest's group (a "
                      "stream of another plan?)");
        if (out.groupIndex[size_t(g)] >= 0)
          return fail("group " + std::to_string(g) +
                      " is carried by two communicators of the table");
        out.groupIndex[size_t(g)] = local;
      }
    }
    out.comms.push_back(std::move(spec));
  }
  std::sort(pairs.begin(), pairs.end());
  for (size_t k = 1; k < pairs.size(); ++k)
    if (pairs[k].first == pairs[k - 1].first)
      return fail("communicators " +
                  std::to_string(out.comms[size_t(pairs[k - 1].second)].id) +
                  " and " +
                  std::to_string(out.comms[size_t(pairs[k].second)].id) +
                  " of the table are the same pair and channel");
  for (auto [key, local] : pairs) {
    out.pairKeys.push_back(key);
    out.pairIndex.push_back(local);
  }
  // Every message and collective of the stream has its communicator.
  for (size_t i = 0; i < s.instrs.size(); ++i) {
    const Instr &in = s.instrs[i];
    if (commOfInstr(out, s.rank, in) == -1)
      return Status::failure(
          "rank " + std::to_string(s.rank) + " #" + std::to_string(i) + " " +
              describe(in) +
              ": no communicator in the stream's table (" +
              (s.comms.empty() && s.commRounds == 0
                   ? std::string("it has none: a stream built by hand, or "
                                 "by a compiler before version 4")
                   : std::string("the table does not match the stream")) +
              ")",
          s.rank, int64_t(i));
  }
  return Status::success();
}

} // namespace pipert
