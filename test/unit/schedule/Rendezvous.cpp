//===- Rendezvous.cpp - in-process transport with pipec's semantics -----===//

#include "test/unit/schedule/Rendezvous.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

namespace pipec::schedule {

int64_t RendezvousTransport::post(int32_t me, int64_t key, bool send,
                                  Payload payload) {
  std::lock_guard<std::mutex> lock(mu);
  int64_t h = int64_t(requests.size());
  requests.push_back(Request{me, payload});
  Channel &ch = channels[key];
  auto &theirs = send ? ch.recvs : ch.sends;
  size_t &head = send ? ch.recvHead : ch.sendHead;
  if (head == theirs.size()) {
    (send ? ch.sends : ch.recvs).push_back(h);
    return h;
  }
  int64_t other = theirs[head++];
  Request &a = requests[h], &b = requests[other];
  Request &s = send ? a : b, &r = send ? b : a;
  if ((s.payload.chunk != r.payload.chunk || s.payload.mb != r.payload.mb ||
       s.payload.bytes != r.payload.bytes) &&
      firstMismatch.empty())
    firstMismatch = "rank " + std::to_string(s.rank) + " sent chunk " +
                    std::to_string(s.payload.chunk) + " mb " +
                    std::to_string(s.payload.mb) + " to rank " +
                    std::to_string(r.rank) + ", which expected chunk " +
                    std::to_string(r.payload.chunk) + " mb " +
                    std::to_string(r.payload.mb);
  // Rendezvous: the bytes move now, straight into the receiver's buffer.
  if (s.payload.data && r.payload.data)
    std::memcpy(r.payload.data, s.payload.data,
                std::min(s.payload.bytes, r.payload.bytes));
  a.done = b.done = true;
  cv.notify_all();
  return h;
}

int64_t RendezvousTransport::postSend(int32_t src, int32_t dst, int kind,
                                      Payload payload) {
  return post(src, (int64_t(src) * ranks + dst) * 2 + kind, true, payload);
}

int64_t RendezvousTransport::postRecv(int32_t dst, int32_t src, int kind,
                                      Payload payload) {
  return post(dst, (int64_t(src) * ranks + dst) * 2 + kind, false, payload);
}

bool RendezvousTransport::wait(int64_t handle, Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu);
  return cv.wait_until(lock, deadline,
                       [&] { return requests[handle].done; });
}

RendezvousTransport::RendezvousTransport(
    int32_t ranks, std::vector<std::vector<int32_t>> members)
    : ranks(ranks) {
  if (members.empty()) {
    members.emplace_back();
    for (int32_t r = 0; r < ranks; ++r)
      members[0].push_back(r);
  }
  for (auto &m : members) {
    Group g;
    g.members = std::move(m);
    g.joinedBy.assign(size_t(std::max(ranks, 0)), 0);
    groups.push_back(std::move(g));
  }
}

bool RendezvousTransport::joinCollective(int32_t rank, int32_t group,
                                         int32_t bucket,
                                         Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu);
  if (group < 0 || group >= int32_t(groups.size()) || rank < 0 ||
      rank >= ranks ||
      std::find(groups[group].members.begin(), groups[group].members.end(),
                rank) == groups[group].members.end()) {
    if (firstMismatch.empty())
      firstMismatch = "rank " + std::to_string(rank) +
                      " joined a collective of group " +
                      std::to_string(group) + ", which it is not a member of";
    return true;
  }
  Group &g = groups[group];
  size_t k = size_t(g.joinedBy[rank]++);
  if (k == g.joinCount.size()) {
    g.joinCount.push_back(0);
    g.bucketOf.push_back(bucket);
  }
  if (g.bucketOf[k] != bucket && firstMismatch.empty())
    firstMismatch = "rank " + std::to_string(rank) + " joined collective #" +
                    std::to_string(k) + " of group " + std::to_string(group) +
                    " with another bucket";
  const int32_t need = int32_t(g.members.size());
  if (++g.joinCount[k] == need)
    cv.notify_all();
  // `groups` never grows after construction, so g stays valid.
  return cv.wait_until(lock, deadline,
                       [&] { return g.joinCount[k] == need; });
}

std::string RendezvousTransport::mismatch() const {
  std::lock_guard<std::mutex> lock(mu);
  return firstMismatch;
}

Verdict runOnThreads(const Schedule &s, std::chrono::milliseconds timeout) {
  RendezvousTransport t(s.ranks(), s.groups);
  std::atomic<bool> stuck{false}, malformed{false};
  auto runRank = [&](int32_t r) {
    std::vector<int64_t> handle;
    for (const Instr &in : s.streams[r]) {
      auto deadline = RendezvousTransport::Clock::now() + timeout;
      switch (in.op) {
      case Op::RecvAct:
      case Op::RecvGrad:
      case Op::SendAct:
      case Op::SendGrad: {
        if (in.req < 0 || size_t(in.req) >= s.streams[r].size() ||
            in.peer < 0 || in.peer >= s.ranks()) {
          malformed = true;
          return;
        }
        if (size_t(in.req) >= handle.size())
          handle.resize(size_t(in.req) + 1, -1);
        int kind = (in.op == Op::RecvAct || in.op == Op::SendAct) ? 0 : 1;
        Payload p{in.chunk, in.mb, nullptr, 0};
        bool send = in.op == Op::SendAct || in.op == Op::SendGrad;
        handle[in.req] = send ? t.postSend(r, in.peer, kind, p)
                              : t.postRecv(r, in.peer, kind, p);
        break;
      }
      case Op::Wait:
        if (in.req < 0 || size_t(in.req) >= handle.size() ||
            handle[in.req] < 0) {
          malformed = true;
          return;
        }
        if (!t.wait(handle[in.req], deadline)) {
          stuck = true;
          return;
        }
        break;
      case Op::AllReduce: {
        // A collective of a group the rank is not in would never be met:
        // malformed, as the abstract machine says.
        std::vector<int32_t> m = s.groupMembers(in.chunk);
        if (std::find(m.begin(), m.end(), r) == m.end()) {
          malformed = true;
          return;
        }
        if (!t.joinCollective(r, in.chunk, in.mb, deadline)) {
          stuck = true;
          return;
        }
        break;
      }
      default:
        break; // compute: nothing to do in a communication test
      }
    }
  };
  std::vector<std::thread> threads;
  for (int32_t r = 0; r < s.ranks(); ++r)
    threads.emplace_back(runRank, r);
  for (auto &th : threads)
    th.join();
  if (malformed)
    return Verdict::Malformed;
  if (!t.mismatch().empty())
    return Verdict::Mismatch;
  return stuck ? Verdict::Deadlock : Verdict::Completed;
}

} // namespace pipec::schedule
