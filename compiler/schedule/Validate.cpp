//===- Validate.cpp - checks and proofs of instruction streams ----------===//

#include "compiler/schedule/Validate.h"

#include <algorithm>
#include <sstream>

namespace pipec::schedule {

namespace {
/// Builds "rank R #I text: why" messages.
struct Reporter {
  const Schedule &s;
  std::string at(int32_t r, size_t i, const std::string &why) const {
    std::ostringstream os;
    os << "rank " << r << " #" << i << " " << describe(s.streams[r][i])
       << ": " << why;
    return os.str();
  }
};

/// "group G (ranks a, b)" for messages.
std::string groupText(const Schedule &s, int32_t g) {
  std::ostringstream os;
  os << "group " << g << " (ranks";
  std::vector<int32_t> m = s.groupMembers(g);
  for (size_t i = 0; i < m.size(); ++i)
    os << (i ? ", " : " ") << m[i];
  os << ")";
  return os.str();
}

/// The group table: group 0 is every rank (of replica 0, in a replicated
/// schedule); each group is a non-empty, strictly ascending list of ranks
/// in range.
std::string checkGroups(const Schedule &s) {
  const int32_t R = s.ranks(), S = s.placement.ranks;
  if (s.groups.empty())
    return "";
  if (int32_t(s.groups[0].size()) != (s.replicas > 1 ? S : R))
    return groupText(s, 0) + " must hold every rank 0.." +
           std::to_string((s.replicas > 1 ? S : R) - 1) +
           (s.replicas > 1 ? " (replica 0)" : "");
  for (size_t g = 0; g < s.groups.size(); ++g) {
    const auto &m = s.groups[g];
    if (m.empty())
      return "group " + std::to_string(g) + " has no ranks";
    for (size_t i = 0; i < m.size(); ++i) {
      if (m[i] < 0 || m[i] >= R)
        return groupText(s, int32_t(g)) + " names rank " +
               std::to_string(m[i]) + ", outside 0.." + std::to_string(R - 1);
      if (i > 0 && m[i] <= m[i - 1])
        return groupText(s, int32_t(g)) +
               ": ranks must be listed ascending, each once";
    }
  }
  return "";
}

/// Every member of a group posts the same (bucket) sequence of its
/// collectives: the k-th collective of a group on one rank meets the k-th
/// on every other member, so any difference leaves a member waiting.
/// `posted[g][j]` holds the instruction indices of the collectives of g
/// of its j-th member.
std::string checkCollectives(
    const Schedule &s, const Reporter &rep,
    const std::vector<std::vector<std::vector<size_t>>> &posted) {
  for (int32_t g = 0; g < int32_t(posted.size()); ++g) {
    std::vector<int32_t> m = s.groupMembers(g);
    const int32_t ref = m[0];
    const auto &mine = posted[g][0];
    for (size_t j = 1; j < m.size(); ++j) {
      const int32_t q = m[j];
      const auto &theirs = posted[g][j];
      size_t n = std::min(mine.size(), theirs.size());
      for (size_t k = 0; k < n; ++k) {
        const Instr &a = s.streams[ref][mine[k]];
        const Instr &b = s.streams[q][theirs[k]];
        if (a.mb != b.mb || a.op != b.op)
          return rep.at(q, theirs[k],
                        "collective #" + std::to_string(k) + " of " +
                            groupText(s, g) + " meets rank " +
                            std::to_string(ref) + " #" +
                            std::to_string(mine[k]) + " " + describe(a) +
                            (a.op != b.op ? ", another collective"
                                          : ", which names another bucket"));
      }
      if (mine.size() != theirs.size()) {
        bool refMore = mine.size() > theirs.size();
        int32_t more = refMore ? ref : q, fewer = refMore ? q : ref;
        size_t extra = refMore ? mine[n] : theirs[n];
        return rep.at(more, extra,
                      "collective #" + std::to_string(n) + " of " +
                          groupText(s, g) + " has no partner on rank " +
                          std::to_string(fewer) + ", which posts " +
                          std::to_string(n) + " collectives of the group and " +
                          "rank " + std::to_string(more) + " posts " +
                          std::to_string(refMore ? mine.size()
                                                 : theirs.size()) +
                          " (every member must post the same sequence)");
      }
    }
  }
  return "";
}
} // namespace

std::string validateStreams(const Schedule &s) {
  const Placement &pl = s.placement;
  const int32_t R = s.ranks(), S = pl.ranks, C = pl.chunks,
                M = s.microbatches;
  Reporter rep{s};
  if (int32_t(s.streams.size()) != R || int32_t(pl.rankOf.size()) != C ||
      M < 1 || s.replicas < 1)
    return "the schedule's sizes disagree: " + std::to_string(s.streams.size()) +
           " streams for " + std::to_string(R) + " ranks";
  if (std::string why = checkGroups(s); !why.empty())
    return "the collective groups are invalid: " + why;
  const int32_t G = s.groupCount();
  // members[g], ascending (checkGroups), and posted[g][j]: the positions of
  // the collectives of group g of its j-th member. Sized by the members,
  // not groups x ranks: data parallelism has about two groups a replica,
  // which would make that quadratic in the ranks.
  std::vector<std::vector<int32_t>> members(static_cast<size_t>(G));
  std::vector<std::vector<std::vector<size_t>>> posted(static_cast<size_t>(G));
  for (int32_t g = 0; g < G; ++g) {
    members[g] = s.groupMembers(g);
    posted[g].resize(members[g].size());
  }
  auto memberIndex = [&](int32_t g, int32_t r) -> int64_t {
    auto it = std::lower_bound(members[g].begin(), members[g].end(), r);
    return it != members[g].end() && *it == r ? it - members[g].begin() : -1;
  };
  const size_t N = size_t(s.replicas) * C * M;
  // Facts indexed by (replica * C + chunk) * M + mb; each (chunk, mb) of a
  // replica lives on one rank, so one global table per fact serves all
  // ranks.
  std::vector<uint8_t> fwd(N), bwdB(N), bwdW(N), gotAct(N), gotGrad(N),
      sentAct(N), sentGrad(N), postedRecvAct(N), postedRecvGrad(N);
  for (int32_t r = 0; r < R; ++r) {
    const auto &stream = s.streams[r];
    // The rank's replica and its first rank: rankOf is replica 0's.
    const int32_t replica = r / S, off = replica * S;
    auto rankOf = [&](int32_t c) { return off + pl.rankOf[c]; };
    // Per request: 0 unused, 1 posted, 2 waited; and where it was posted.
    std::vector<uint8_t> reqState;
    std::vector<int32_t> reqAt;
    std::vector<size_t> waitedAt;
    bool optimizer = false;
    for (size_t i = 0; i < stream.size(); ++i) {
      const Instr &in = stream[i];
      // ZeRO-1's all-gathers of the updated parameters follow the step.
      if (optimizer && in.op != Op::AllGather)
        return rep.at(r, i, "comes after opt_step, which must end the stream "
                            "(but for ZeRO's all-gathers)");
      bool usesChunk = !pipert::isCollectiveOp(in.op) && in.op != Op::OptStep;
      if (usesChunk && (in.chunk < 0 || in.chunk >= C || in.mb < 0 ||
                        in.mb >= M))
        return rep.at(r, i,
                      "chunk must be in 0.." + std::to_string(C - 1) +
                          " and micro-batch in 0.." + std::to_string(M - 1));
      size_t x = (size_t(replica) * C + size_t(in.chunk)) * M + in.mb;
      auto need = [&](bool ok, const std::string &why) { return ok ? "" : why; };
      std::string why;
      switch (in.op) {
      case Op::Fwd: {
        if (rankOf(in.chunk) != r)
          return rep.at(r, i, "chunk " + std::to_string(in.chunk) +
                                  " is placed on rank " +
                                  std::to_string(rankOf(in.chunk)));
        if (fwd[x])
          return rep.at(r, i, "duplicates an earlier fwd of this micro-batch");
        if (in.chunk > 0) {
          size_t p = x - M;
          bool local = rankOf(in.chunk - 1) == r;
          why = local ? need(fwd[p], "runs before fwd of chunk " +
                                         std::to_string(in.chunk - 1) +
                                         " on this rank")
                      : need(gotAct[p], "runs before its input activation "
                                        "was received (no completed wait on "
                                        "recv_act from rank " +
                                            std::to_string(
                                                rankOf(in.chunk - 1)) +
                                            ")");
        }
        fwd[x] = 1;
        break;
      }
      case Op::BwdB: {
        if (rankOf(in.chunk) != r)
          return rep.at(r, i, "chunk is placed on rank " +
                                  std::to_string(rankOf(in.chunk)));
        if (bwdB[x])
          return rep.at(r, i, "duplicates an earlier bwd_b");
        if (!fwd[x])
          return rep.at(r, i, "a backward before its forward");
        if (in.chunk + 1 < C) {
          size_t n = x + M;
          bool local = rankOf(in.chunk + 1) == r;
          why = local ? need(bwdB[n], "runs before bwd_b of chunk " +
                                          std::to_string(in.chunk + 1))
                      : need(gotGrad[n], "runs before its output gradient "
                                         "was received (no completed wait on "
                                         "recv_grad from rank " +
                                             std::to_string(
                                                 rankOf(in.chunk + 1)) +
                                             ")");
        }
        bwdB[x] = 1;
        break;
      }
      case Op::BwdW:
        if (rankOf(in.chunk) != r)
          return rep.at(r, i, "chunk is placed on rank " +
                                  std::to_string(rankOf(in.chunk)));
        if (bwdW[x])
          return rep.at(r, i, "duplicates an earlier bwd_w");
        why = need(bwdB[x], "runs before bwd_b of the same chunk and "
                            "micro-batch");
        bwdW[x] = 1;
        break;
      case Op::RecvAct:
      case Op::RecvGrad:
      case Op::SendAct:
      case Op::SendGrad: {
        bool send = in.op == Op::SendAct || in.op == Op::SendGrad;
        bool act = in.op == Op::SendAct || in.op == Op::RecvAct;
        int32_t to = act ? in.chunk + 1 : in.chunk - 1;
        if (to < 0 || to >= C)
          return rep.at(r, i, "no chunk on the other side of this message");
        int32_t src = rankOf(in.chunk), dst = rankOf(to);
        if ((send ? src : dst) != r || in.peer != (send ? dst : src))
          return rep.at(r, i, "the message goes from rank " +
                                  std::to_string(src) + " to rank " +
                                  std::to_string(dst));
        if (src == dst)
          return rep.at(r, i, "both chunks are on this rank; no message needed");
        auto &flag = send ? (act ? sentAct : sentGrad)
                          : (act ? postedRecvAct : postedRecvGrad);
        if (flag[x])
          return rep.at(r, i, "duplicated communication: this message is "
                              "already posted once");
        flag[x] = 1;
        if (send)
          why = need(act ? fwd[x] : bwdB[x],
                     "sends a message this rank has not computed yet");
        // Ids are dense in posting order; bounding them by the stream length
        // keeps the request tables small whatever a stream says.
        if (in.req < 0 || size_t(in.req) >= stream.size())
          return rep.at(r, i, "request id must be in 0.." +
                                  std::to_string(stream.size() - 1));
        if (size_t(in.req) >= reqState.size()) {
          reqState.resize(size_t(in.req) + 1, 0);
          reqAt.resize(size_t(in.req) + 1, -1);
        }
        if (reqState[in.req])
          return rep.at(r, i, "request id already used at #" +
                                  std::to_string(reqAt[in.req]));
        reqState[in.req] = 1;
        reqAt[in.req] = int32_t(i);
        break;
      }
      case Op::Wait: {
        if (in.req < 0 || size_t(in.req) >= reqState.size() ||
            !reqState[in.req])
          return rep.at(r, i, "waits on a request not posted before it");
        if (reqState[in.req] == 2)
          return rep.at(r, i, "waits twice on the same request");
        const Instr &p = stream[reqAt[in.req]];
        if (p.op != in.sub || p.peer != in.peer || p.chunk != in.chunk ||
            p.mb != in.mb)
          return rep.at(r, i, "names request " + std::to_string(in.req) +
                                  " but describes another message than its "
                                  "post at #" +
                                  std::to_string(reqAt[in.req]));
        reqState[in.req] = 2;
        if (in.sub == Op::RecvAct)
          gotAct[x] = 1;
        else if (in.sub == Op::RecvGrad)
          gotGrad[x] = 1;
        break;
      }
      case Op::AllReduce:
      case Op::ReduceScatter:
      case Op::AllGather: {
        if (in.chunk < 0 || in.chunk >= G)
          return rep.at(r, i, "group must be in 0.." + std::to_string(G - 1));
        const int64_t j = memberIndex(in.chunk, r);
        if (j < 0)
          return rep.at(r, i, "rank " + std::to_string(r) +
                                  " is not a member of " +
                                  groupText(s, in.chunk) +
                                  "; only members may join its collectives");
        if (in.mb < 0)
          return rep.at(r, i, "the bucket must not be negative");
        posted[in.chunk][size_t(j)].push_back(i);
        break;
      }
      case Op::OptStep:
        // With or without the allreduce before it (post-validation), the
        // step must follow every W of the rank.
        for (int32_t c : pl.chunksOf(r - off))
          for (int32_t mb = 0; mb < M; ++mb)
            if (!bwdW[(size_t(replica) * C + size_t(c)) * M + mb])
              return rep.at(r, i, "opt_step before bwd_w(chunk " +
                                      std::to_string(c) + ", mb " +
                                      std::to_string(mb) + ")");
        optimizer = true;
        break;
      }
      if (!why.empty())
        return rep.at(r, i, why);
    }
    for (size_t q = 0; q < reqState.size(); ++q)
      if (reqState[q] == 1)
        return rep.at(r, size_t(reqAt[q]), "posted but never waited");
  }
  // Completeness: every step ran, every needed message was sent and received.
  for (int32_t replica = 0; replica < s.replicas; ++replica)
    for (int32_t c = 0; c < C; ++c)
      for (int32_t mb = 0; mb < M; ++mb) {
        size_t x = (size_t(replica) * C + size_t(c)) * M + mb;
        const int32_t off = replica * S, r = off + pl.rankOf[c];
        const bool missing =
            !fwd[x] || !bwdB[x] || !bwdW[x] ||
            (c + 1 < C && pl.rankOf[c + 1] + off != r && !sentAct[x]) ||
            (c > 0 && pl.rankOf[c - 1] + off != r && !sentGrad[x]);
        if (!missing)
          continue; // (a stream a (chunk, mb) costs nothing to format)
        std::ostringstream os;
        if (!fwd[x] || !bwdB[x] || !bwdW[x])
          os << "rank " << r << " never runs "
             << (!fwd[x] ? "fwd" : !bwdB[x] ? "bwd_b" : "bwd_w") << "(chunk "
             << c << ", mb " << mb << ") (a missing action)";
        else if (c + 1 < C && pl.rankOf[c + 1] + off != r && !sentAct[x])
          os << "rank " << r << " never sends the activation of chunk " << c
             << " mb " << mb << " to rank " << off + pl.rankOf[c + 1];
        else if (c > 0 && pl.rankOf[c - 1] + off != r && !sentGrad[x])
          os << "rank " << r << " never sends the input gradient of chunk "
             << c << " mb " << mb << " to rank " << off + pl.rankOf[c - 1];
        if (!os.str().empty())
          return os.str();
      }
  if (std::string why = checkCollectives(s, rep, posted); !why.empty())
    return why;
  // Pairing: per channel, the k-th send matches the k-th recv.
  for (int32_t src = 0; src < R; ++src)
    for (int kind = 0; kind < 2; ++kind) {
      Op sendOp = kind == 0 ? Op::SendAct : Op::SendGrad;
      Op recvOp = kind == 0 ? Op::RecvAct : Op::RecvGrad;
      // Peers of src on this kind.
      std::vector<int32_t> peers;
      for (const Instr &in : s.streams[src])
        if (in.op == sendOp)
          peers.push_back(in.peer);
      std::sort(peers.begin(), peers.end());
      peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
      for (int32_t dst : peers) {
        std::vector<size_t> sends, recvs;
        for (size_t i = 0; i < s.streams[src].size(); ++i)
          if (s.streams[src][i].op == sendOp && s.streams[src][i].peer == dst)
            sends.push_back(i);
        for (size_t i = 0; i < s.streams[dst].size(); ++i)
          if (s.streams[dst][i].op == recvOp && s.streams[dst][i].peer == src)
            recvs.push_back(i);
        size_t n = std::min(sends.size(), recvs.size());
        for (size_t k = 0; k < n; ++k) {
          const Instr &a = s.streams[src][sends[k]];
          const Instr &b = s.streams[dst][recvs[k]];
          if (a.chunk != b.chunk || a.mb != b.mb)
            return rep.at(src, sends[k],
                          "message #" + std::to_string(k) + " from rank " +
                              std::to_string(src) + " to rank " +
                              std::to_string(dst) +
                              " is matched, in posting order, by rank " +
                              std::to_string(dst) + " #" +
                              std::to_string(recvs[k]) + " " + describe(b) +
                              ": the two ranks post this channel in "
                              "different orders");
        }
        if (sends.size() != recvs.size())
          return "rank " + std::to_string(src) + " posts " +
                 std::to_string(sends.size()) + " " + opName(sendOp) +
                 " to rank " + std::to_string(dst) + " but rank " +
                 std::to_string(dst) + " posts " +
                 std::to_string(recvs.size()) + " " + opName(recvOp) +
                 " from it";
      }
    }
  return "";
}

std::string verifySchedule(const Schedule &schedule, const Costs &costs,
                           MachineResult &result, bool recordSpans) {
  std::string err = validateStreams(schedule);
  if (!err.empty())
    return err;
  result = runMachine(schedule, costs, recordSpans);
  if (result.verdict != Verdict::Completed)
    return result.message;
  return "";
}

} // namespace pipec::schedule
