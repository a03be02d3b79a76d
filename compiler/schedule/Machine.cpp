//===- Machine.cpp - the abstract machine that runs all streams ---------===//

#include "compiler/schedule/Machine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <unordered_map>

namespace pipec::schedule {

Costs Costs::uniform(int32_t chunks, double f, double b, double w) {
  Costs c;
  c.f.assign(chunks, f);
  c.b.assign(chunks, b);
  c.w.assign(chunks, w);
  return c;
}

double jitterFactor(double sigma, uint64_t seed, int64_t rank, int64_t instr) {
  if (sigma <= 0)
    return 1;
  // SplitMix64 of the three: two uniforms, a Box-Muller normal.
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  const uint64_t h = mix(seed ^ mix(uint64_t(rank) ^ mix(uint64_t(instr))));
  const double u1 = (double((h >> 11) | 1) / 9007199254740992.0),
               u2 = double(mix(h) >> 11) / 9007199254740992.0;
  const double z = std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  return std::exp(sigma * z - sigma * sigma / 2);
}

const char *verdictName(Verdict v) {
  switch (v) {
  case Verdict::Completed:
    return "completed";
  case Verdict::Deadlock:
    return "deadlock";
  case Verdict::Mismatch:
    return "mismatch";
  case Verdict::Malformed:
    return "malformed";
  case Verdict::Failed:
    return "failed";
  }
  return "?";
}

namespace {

/// A posted request of one rank.
struct Request {
  bool posted = false, matched = false;
  int32_t instr = -1; ///< index of the post in its stream
  double postTime = 0, done = 0;
  int32_t postSpan = -1; ///< the poster's last span when it posted
  int32_t doneSpan = -1; ///< the later poster's: what `done` waited for
};

/// Unmatched posts of one channel, oldest first.
struct Channel {
  std::vector<std::pair<int32_t, int32_t>> sends, recvs; ///< (rank, req)
  size_t sendHead = 0, recvHead = 0;
};

/// One instance of a collective: the k-th allreduce of a group.
struct Collective {
  std::vector<int32_t> joined; ///< member ranks that joined, in join order
  Op op = Op::AllReduce;
  int32_t bucket = -1;
  int32_t firstInstr = -1; ///< the first joiner's instruction index
  double latest = 0, done = 0;
  int32_t latestSpan = -1; ///< the last span of the latest joiner
  bool complete = false;
};

struct RankState {
  size_t pc = 0;
  double clock = 0, busy = 0;
  int32_t lastSpan = -1; ///< the span whose end set `clock` (recorded runs)
  bool finished = false, broken = false;
  bool dead = false; ///< reached Costs::failAt
  int32_t blockedReq = -1;        ///< request waited on, or -1
  int32_t blockedGroup = -1;      ///< group of the collective waited on
  int32_t blockedCollective = -1; ///< its instance in the group, or -1
  bool joinedCurrent = false;     ///< joined the collective at pc already
  std::vector<int32_t> joinedOf;  ///< collectives completed, per group
};

class Machine {
public:
  Machine(const Schedule &s, const Costs &c, bool spans)
      : s(s), costs(c), record(spans), R(s.ranks()), ranks(R), reqs(R),
        G(s.groupCount()), members(G), isMember(G), collectives(G) {
    for (int32_t g = 0; g < G; ++g) {
      isMember[g].assign(R, 0);
      for (int32_t q : s.groupMembers(g))
        if (q >= 0 && q < R && !isMember[g][q]) {
          isMember[g][q] = 1;
          members[g].push_back(q);
        }
    }
    for (RankState &st : ranks)
      st.joinedOf.assign(G, 0);
    for (int32_t r = 0; r < R; ++r) {
      int32_t maxReq = -1;
      for (const Instr &in : s.streams[r])
        if ((isPost(in.op) || in.op == Op::Wait) &&
            size_t(in.req) < s.streams[r].size())
          maxReq = std::max(maxReq, in.req);
      // Ids at or past the stream length are reported as malformed.
      reqs[r].resize(size_t(maxReq + 1));
    }
  }

  MachineResult run();

private:
  void step(int32_t r);
  /// Runs the allreduce at r's pc; false if r must block on it.
  bool collective(int32_t r, const Instr &in);
  std::string groupText(int32_t g) const;
  void post(int32_t r, const Instr &in);
  void complete(int32_t r, int32_t req, double t);
  void malformed(int32_t r, const std::string &why);
  std::string where(int32_t r) const;
  std::string diagnoseDeadlock();
  double cost(const Instr &in) const;
  /// Whether `r` has failed by `until` (Costs::failAt); if so it stops
  /// there.
  bool dies(int32_t r, double until);
  /// Whether `r` fails before `t` (Costs::failAt).
  bool failsBefore(int32_t r, double t) const;

  const Schedule &s;
  const Costs &costs;
  bool record;
  int32_t R;
  std::vector<RankState> ranks;
  std::vector<std::vector<Request>> reqs;
  std::unordered_map<int64_t, Channel> channels;
  int32_t G;                                        ///< group count
  std::vector<std::vector<int32_t>> members;        ///< [group] ascending ranks
  std::vector<std::vector<uint8_t>> isMember;       ///< [group][rank]
  std::vector<std::vector<Collective>> collectives; ///< [group][instance]
  std::vector<int32_t> work;
  std::vector<Span> spans;
  std::vector<MachineResult::Joined> joins;
  std::string mismatch, malformedMsg;
};

} // namespace

double Machine::cost(const Instr &in) const {
  auto at = [&](const std::vector<double> &v) {
    return in.chunk >= 0 && size_t(in.chunk) < v.size() ? v[in.chunk] : 0.0;
  };
  switch (in.op) {
  case Op::Fwd:
    return at(costs.f);
  case Op::BwdB:
    return at(costs.b);
  case Op::BwdW:
    return at(costs.w);
  case Op::OptStep:
    return costs.optStep;
  default:
    return 0;
  }
}

std::string Machine::where(int32_t r) const {
  const RankState &st = ranks[r];
  std::ostringstream os;
  os << "rank " << r << " #" << st.pc << " " << describe(s.streams[r][st.pc]);
  return os.str();
}

void Machine::malformed(int32_t r, const std::string &why) {
  ranks[r].broken = true;
  if (malformedMsg.empty())
    malformedMsg = where(r) + ": " + why;
}

void Machine::complete(int32_t r, int32_t req, double t) {
  Request &q = reqs[r][req];
  q.matched = true;
  q.done = t;
  if (ranks[r].blockedReq == req) {
    ranks[r].blockedReq = -1;
    work.push_back(r);
  }
}

void Machine::post(int32_t r, const Instr &in) {
  bool send = in.op == Op::SendAct || in.op == Op::SendGrad;
  bool act = in.op == Op::SendAct || in.op == Op::RecvAct;
  int32_t src = send ? r : in.peer, dst = send ? in.peer : r;
  int64_t key = (int64_t(src) * R + dst) * 2 + (act ? 0 : 1);
  Channel &ch = channels[key];
  auto &mine = send ? ch.sends : ch.recvs;
  auto &theirs = send ? ch.recvs : ch.sends;
  size_t &theirHead = send ? ch.recvHead : ch.sendHead;
  Request &q = reqs[r][in.req];
  q.posted = true;
  q.instr = int32_t(ranks[r].pc);
  q.postTime = ranks[r].clock;
  q.postSpan = ranks[r].lastSpan;
  if (theirHead == theirs.size()) {
    mine.push_back({r, in.req});
    return;
  }
  auto [peer, peerReq] = theirs[theirHead++];
  Request &p = reqs[peer][peerReq];
  const Instr &other = s.streams[peer][p.instr];
  if ((other.chunk != in.chunk || other.mb != in.mb) && mismatch.empty()) {
    std::ostringstream os;
    os << "rank " << r << " #" << q.instr << " " << describe(in)
       << " was matched, in posting order, with rank " << peer << " #"
       << p.instr << " " << describe(other) << ", which names another message";
    mismatch = os.str();
  }
  const std::vector<double> &of = act ? costs.actCommOf : costs.gradCommOf;
  const double cost = in.chunk >= 0 && size_t(in.chunk) < of.size()
                          ? of[size_t(in.chunk)]
                          : act ? costs.actComm : costs.gradComm;
  double t = std::max(q.postTime, p.postTime) + cost;
  q.doneSpan = p.doneSpan = q.postTime >= p.postTime ? q.postSpan : p.postSpan;
  // A message moves only while both sides live: if either fails before it
  // would land, neither side's request ever completes (the survivor
  // stalls, as on a real machine where the peer's process is gone).
  if (failsBefore(r, t) || failsBefore(peer, t))
    return;
  complete(r, in.req, t);
  complete(peer, peerReq, t);
}

bool Machine::failsBefore(int32_t r, double t) const {
  return size_t(r) < costs.failAt.size() &&
         std::isfinite(costs.failAt[size_t(r)]) &&
         costs.failAt[size_t(r)] < t;
}

bool Machine::dies(int32_t r, double until) {
  RankState &st = ranks[r];
  if (size_t(r) >= costs.failAt.size() ||
      !std::isfinite(costs.failAt[size_t(r)]) ||
      !(until >= costs.failAt[size_t(r)]))
    return false;
  st.clock = std::max(st.clock, costs.failAt[size_t(r)]);
  st.dead = true;
  return true;
}

void Machine::step(int32_t r) {
  RankState &st = ranks[r];
  const auto &stream = s.streams[r];
  while (!st.broken && !st.dead && st.pc < stream.size()) {
    const Instr &in = stream[st.pc];
    // A rank that has failed starts nothing more.
    if (dies(r, st.clock))
      return;
    switch (in.op) {
    case Op::Fwd:
    case Op::BwdB:
    case Op::BwdW:
    case Op::OptStep: {
      double c = cost(in);
      if (size_t(r) < costs.rankSlowdown.size())
        c *= costs.rankSlowdown[size_t(r)];
      if (costs.jitterSigma > 0)
        c *= jitterFactor(costs.jitterSigma, costs.jitterSeed,
                          costs.jitterRankBase + r, int64_t(st.pc));
      // Cut where the rank fails (clock + c is past its failure).
      if (size_t(r) < costs.failAt.size() &&
          st.clock + c > costs.failAt[size_t(r)]) {
        st.busy += std::max(0.0, costs.failAt[size_t(r)] - st.clock);
        dies(r, st.clock + c);
        return;
      }
      if (record) {
        spans.push_back(
            {r, in.op, in.chunk, in.mb, st.clock, st.clock + c, st.lastSpan});
        st.lastSpan = int32_t(spans.size()) - 1;
      }
      st.clock += c;
      st.busy += c;
      break;
    }
    case Op::RecvAct:
    case Op::RecvGrad:
    case Op::SendAct:
    case Op::SendGrad:
      if (in.req < 0 || size_t(in.req) >= reqs[r].size() ||
          reqs[r][in.req].posted)
        return malformed(r, "request id used by two posts");
      if (in.peer < 0 || in.peer >= R || in.peer == r)
        return malformed(r, "peer rank out of range");
      post(r, in);
      break;
    case Op::Wait: {
      if (in.req < 0 || size_t(in.req) >= reqs[r].size() ||
          !reqs[r][in.req].posted)
        return malformed(r, "waits on a request that was not posted before");
      Request &q = reqs[r][in.req];
      if (!q.matched) {
        st.blockedReq = in.req;
        return;
      }
      if (dies(r, q.done))
        return; // failed while waiting
      if (q.done > st.clock) {
        st.clock = q.done;
        st.lastSpan = q.doneSpan;
      }
      break;
    }
    case Op::AllReduce:
    case Op::ReduceScatter:
    case Op::AllGather:
      if (in.chunk < 0 || in.chunk >= G)
        return malformed(r, "group " + std::to_string(in.chunk) +
                                " is not defined (groups 0.." +
                                std::to_string(G - 1) + ")");
      if (!isMember[in.chunk][r])
        return malformed(r, "rank " + std::to_string(r) +
                                " is not a member of " + groupText(in.chunk));
      if (!collective(r, in))
        return;
      break;
    }
    ++st.pc;
  }
  if (!st.broken && !st.dead)
    st.finished = true;
}

std::string Machine::groupText(int32_t g) const {
  std::ostringstream os;
  os << "group " << g << " (ranks";
  for (size_t i = 0; i < members[g].size(); ++i)
    os << (i ? ", " : " ") << members[g][i];
  os << ")";
  return os.str();
}

bool Machine::collective(int32_t r, const Instr &in) {
  RankState &st = ranks[r];
  const int32_t g = in.chunk, k = st.joinedOf[g];
  auto &instances = collectives[g];
  if (!st.joinedCurrent) {
    if (size_t(k) == instances.size())
      instances.emplace_back();
    Collective &c = instances[k];
    if (c.joined.empty()) {
      c.op = in.op;
      c.bucket = in.mb;
      c.firstInstr = int32_t(st.pc);
    } else if ((c.bucket != in.mb || c.op != in.op) && mismatch.empty()) {
      mismatch = where(r) + " joined collective #" + std::to_string(k) +
                 " of " + groupText(g) + ", which rank " +
                 std::to_string(c.joined[0]) + " #" +
                 std::to_string(c.firstInstr) + " joined as " + opName(c.op) +
                 " with bucket " + std::to_string(c.bucket);
    }
    if (c.joined.empty() || st.clock >= c.latest) {
      c.latest = st.clock;
      c.latestSpan = st.lastSpan;
    }
    c.joined.push_back(r);
    st.joinedCurrent = true;
    if (c.joined.size() == members[g].size()) {
      double from = c.latest;
      if (size_t(g) < costs.notBefore.size() &&
          size_t(c.bucket) < costs.notBefore[size_t(g)].size())
        from = std::max(from, costs.notBefore[size_t(g)][size_t(c.bucket)]);
      const double done =
          from + (size_t(g) < costs.collective.size() &&
                          size_t(c.bucket) < costs.collective[size_t(g)].size()
                      ? costs.collective[size_t(g)][size_t(c.bucket)]
                      : costs.allReduce);
      // It completes only if every member lives until it does; a member
      // outside this run that never joins (a failed replica's) is an
      // infinite bound. One that does not complete is not a join the
      // other replicas can count (ReplicaReplay.h).
      bool lives = !std::isinf(from);
      for (int32_t q : members[g])
        lives = lives && !failsBefore(q, done);
      if (!lives) {
        st.blockedGroup = g;
        st.blockedCollective = k;
        return false;
      }
      joins.push_back({g, c.bucket, c.latest});
      c.complete = true;
      c.done = done;
      for (int32_t q : members[g])
        if (ranks[q].blockedGroup == g && ranks[q].blockedCollective == k) {
          ranks[q].blockedGroup = ranks[q].blockedCollective = -1;
          work.push_back(q);
        }
    }
  }
  Collective &c = instances[k];
  if (!c.complete) {
    st.blockedGroup = g;
    st.blockedCollective = k;
    return false;
  }
  // The collective's own time, from its last member's arrival (what a
  // rank waits before that is idle in pictures).
  int32_t doneSpan = c.latestSpan;
  if (dies(r, c.done))
    return false; // failed while the collective ran
  if (record && c.done > c.latest) {
    spans.push_back({r, c.op, g, c.bucket, c.latest, c.done, c.latestSpan});
    doneSpan = int32_t(spans.size()) - 1;
  }
  if (c.done > st.clock) {
    st.clock = c.done;
    st.lastSpan = doneSpan;
  }
  st.joinedCurrent = false;
  st.joinedOf[g]++;
  return true;
}

std::string Machine::diagnoseDeadlock() {
  std::ostringstream os;
  os << "deadlock: no rank can proceed";
  // waitsFor[r]: the rank r needs to act first, or -1.
  std::vector<int32_t> waitsFor(R, -1);
  for (int32_t r = 0; r < R; ++r) {
    RankState &st = ranks[r];
    if (st.finished || st.broken)
      continue;
    const Instr &in = s.streams[r][st.pc];
    os << "\n  " << where(r);
    if (pipert::isCollectiveOp(in.op)) {
      // Blocked ranks have joined; name the members that have not.
      const int32_t g = in.chunk, k = st.joinedOf[g];
      const Collective &c = collectives[g][k];
      os << " waits for the members of " << groupText(g)
         << " that have not joined its collective #" << k << ":";
      bool first = true;
      for (int32_t q : members[g]) {
        if (std::find(c.joined.begin(), c.joined.end(), q) != c.joined.end())
          continue;
        os << (first ? " " : "; ") << "rank " << q;
        first = false;
        const RankState &other = ranks[q];
        if (other.finished)
          os << " finished its stream after " << other.joinedOf[g]
             << " collectives of group " << g
             << " without joining it (a missing allreduce)";
        else if (other.broken)
          os << " stopped at a malformed instruction";
        else
          os << " is blocked at #" << other.pc << " "
             << describe(s.streams[q][other.pc]);
        // Prefer a blocked member as the edge, to expose a cycle.
        if (waitsFor[r] < 0 || ranks[waitsFor[r]].finished)
          waitsFor[r] = q;
      }
      continue;
    }
    bool recv = in.sub == Op::RecvAct || in.sub == Op::RecvGrad;
    int32_t peer = in.peer;
    waitsFor[r] = peer;
    os << " waits for rank " << peer << " to post the matching "
       << (recv ? (in.sub == Op::RecvAct ? "send_act" : "send_grad")
                : (in.sub == Op::SendAct ? "recv_act" : "recv_grad"));
    if (peer >= 0 && peer < R && ranks[peer].finished)
      os << ", but rank " << peer
         << " finished its stream without posting it (a missing action)";
  }
  // Follow waits-for edges from each blocked rank to expose a cycle.
  for (int32_t start = 0; start < R; ++start) {
    if (waitsFor[start] < 0)
      continue;
    std::vector<int32_t> seenAt(R, -1), path;
    int32_t r = start;
    while (r >= 0 && r < R && waitsFor[r] >= 0 && seenAt[r] < 0) {
      seenAt[r] = int32_t(path.size());
      path.push_back(r);
      r = waitsFor[r];
    }
    if (r >= 0 && r < R && seenAt[r] >= 0) {
      os << "\n  cycle: rank " << r;
      for (size_t i = seenAt[r] + 1; i < path.size(); ++i)
        os << " -> rank " << path[i];
      os << " -> rank " << r;
      break;
    }
  }
  return os.str();
}

MachineResult Machine::run() {
  MachineResult res;
  for (int32_t r = R; r-- > 0;)
    work.push_back(r);
  while (!work.empty()) {
    int32_t r = work.back();
    work.pop_back();
    if (!ranks[r].finished && !ranks[r].broken)
      step(r);
  }
  // A rank blocked for good past its own failure time failed there.
  for (int32_t r = 0; r < R; ++r)
    if (!ranks[r].finished && !ranks[r].broken && !ranks[r].dead)
      dies(r, std::numeric_limits<double>::infinity());
  bool stuck = false;
  int32_t firstDead = -1, stalled = 0;
  for (int32_t r = 0; r < R; ++r) {
    const RankState &st = ranks[r];
    stuck |= !st.finished && !st.broken && !st.dead;
    stalled += !st.finished && !st.broken && !st.dead;
    if (st.dead && (firstDead < 0 || st.clock < ranks[firstDead].clock))
      firstDead = r;
  }
  if (firstDead >= 0 && malformedMsg.empty() && mismatch.empty()) {
    std::ostringstream os;
    os << "rank " << firstDead << " failed at " << ranks[firstDead].clock
       << " s; " << stalled << " of " << R
       << " ranks stalled behind the failures";
    res.verdict = Verdict::Failed;
    res.message = os.str();
  } else if (!malformedMsg.empty()) {
    res.verdict = Verdict::Malformed;
    res.message = malformedMsg;
  } else if (!mismatch.empty()) {
    res.verdict = Verdict::Mismatch;
    res.message = "mismatch: " + mismatch;
  } else if (stuck) {
    res.verdict = Verdict::Deadlock;
    res.message = diagnoseDeadlock();
  }
  res.busy.resize(R);
  res.finish.resize(R);
  res.stopped.resize(R);
  for (int32_t r = 0; r < R; ++r)
    res.stopped[r] = !ranks[r].finished;
  double idle = 0;
  for (int32_t r = 0; r < R; ++r) {
    res.busy[r] = ranks[r].busy;
    res.finish[r] = ranks[r].clock;
    res.stepTime = std::max(res.stepTime, ranks[r].clock);
  }
  for (int32_t r = 0; r < R; ++r)
    idle += res.stepTime - res.busy[r];
  res.bubbleFraction = res.stepTime > 0 ? idle / (R * res.stepTime) : 0;
  res.spans = std::move(spans);
  res.joins = std::move(joins);
  return res;
}

MachineResult runMachine(const Schedule &schedule, const Costs &costs,
                         bool recordSpans) {
  Machine m(schedule, costs, recordSpans);
  return m.run();
}

std::vector<int32_t> criticalPath(const MachineResult &r) {
  int32_t at = -1;
  for (size_t i = 0; i < r.spans.size(); ++i)
    if (at < 0 || r.spans[i].end > r.spans[size_t(at)].end)
      at = int32_t(i);
  // A pred always precedes its span, so the walk ends; the bound guards a
  // result assembled by hand.
  std::vector<int32_t> path;
  for (; at >= 0 && path.size() <= r.spans.size();
       at = r.spans[size_t(at)].pred)
    path.push_back(at);
  std::reverse(path.begin(), path.end());
  return path;
}

} // namespace pipec::schedule
