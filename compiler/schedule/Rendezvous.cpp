//===- Rendezvous.cpp - in-process transport with pipec's semantics -----===//

#include "compiler/schedule/Rendezvous.h"

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

bool RendezvousTransport::joinCollective(int32_t rank, int32_t bucket,
                                         Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu);
  if (joinedBy.empty())
    joinedBy.assign(ranks, 0);
  size_t k = size_t(joinedBy[rank]++);
  if (k == joinCount.size()) {
    joinCount.push_back(0);
    bucketOf.push_back(bucket);
  }
  if (bucketOf[k] != bucket && firstMismatch.empty())
    firstMismatch = "rank " + std::to_string(rank) + " joined collective #" +
                    std::to_string(k) + " with another bucket";
  if (++joinCount[k] == ranks)
    cv.notify_all();
  return cv.wait_until(lock, deadline,
                       [&] { return joinCount[k] == ranks; });
}

std::string RendezvousTransport::mismatch() const {
  std::lock_guard<std::mutex> lock(mu);
  return firstMismatch;
}

Verdict runOnThreads(const Schedule &s, std::chrono::milliseconds timeout) {
  RendezvousTransport t(s.ranks());
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
      case Op::AllReduce:
        if (!t.joinCollective(r, in.mb, deadline)) {
          stuck = true;
          return;
        }
        break;
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
