//===- Local.cpp - the `local` transport: ranks as threads of one process ===//

#include "pipert/LocalTransport.h"

#include <algorithm>
#include <cstring>

namespace pipert {

static const char *channelName(Channel c, bool send) {
  if (c == Channel::Activation)
    return send ? "send_act" : "recv_act";
  return send ? "send_grad" : "recv_grad";
}

Status LocalTransport::create(const std::vector<Stream> &streams,
                              const std::vector<std::vector<int32_t>> &groups,
                              std::unique_ptr<LocalTransport> &out,
                              ArenaCopy copy, DeviceQueues *queues) {
  std::unique_ptr<LocalTransport> t(new LocalTransport());
  int32_t n = int32_t(streams.size());
  t->ranks = n;
  t->copy = copy;
  if (queues && !copy)
    return Status::failure("local transport: device queues without the "
                           "target's copy (the all-reduce reaches device "
                           "arenas through it)");
  t->requests.resize(n);
  t->queues.resize(size_t(n) * n * 2);
  for (int32_t r = 0; r < n; ++r) {
    t->cvs.push_back(std::make_unique<std::condition_variable>());
    const Stream &s = streams[r];
    if (s.rank != r || s.ranks != n)
      return Status::failure("local transport: stream " + std::to_string(r) +
                                 " is for rank " + std::to_string(s.rank) +
                                 " of " + std::to_string(s.ranks),
                             r);
    int32_t maxReq = -1;
    // Per step, a channel never holds more unmatched posts than one side
    // posts on it, and every post is waited (hence matched) before the
    // step ends: that bounds each ring.
    for (const Instr &in : s.instrs) {
      if (!isPostOp(in.op))
        continue;
      maxReq = std::max(maxReq, in.req);
      bool send = in.op == Opcode::SendAct || in.op == Opcode::SendGrad;
      Channel ch = (in.op == Opcode::SendAct || in.op == Opcode::RecvAct)
                       ? Channel::Activation
                       : Channel::Gradient;
      Queue &q = send ? t->queue(r, in.peer, ch) : t->queue(in.peer, r, ch);
      q.ring.push_back(-1);
    }
    t->requests[r].resize(size_t(maxReq + 1));
    for (Request &req : t->requests[r])
      req.error.reserve(256);
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    Group grp;
    grp.members = groups[g];
    grp.memberIndex.assign(n, -1);
    for (size_t i = 0; i < grp.members.size(); ++i) {
      if (grp.members[i] < 0 || grp.members[i] >= n)
        return Status::failure("local transport: group " + std::to_string(g) +
                               " names rank " +
                               std::to_string(grp.members[i]));
      grp.memberIndex[grp.members[i]] = int32_t(i);
    }
    grp.data.assign(grp.members.size(), nullptr);
    grp.error.reserve(256);
    t->groups.push_back(std::move(grp));
  }
  if (copy && !queues) {
    // The host staging of each group's largest collective (ZeRO-1's
    // reduce-scatters and all-gathers included).
    std::vector<int64_t> largest(t->groups.size(), 0);
    for (const Stream &s : streams)
      for (const Instr &in : s.instrs)
        if (isCollectiveOp(in.op) && in.chunk >= 0 &&
            size_t(in.chunk) < largest.size())
          largest[in.chunk] = std::max(largest[in.chunk], in.bytes);
    for (size_t g = 0; g < t->groups.size(); ++g) {
      Group &grp = t->groups[g];
      grp.staging.assign(grp.members.size(),
                         std::vector<double>(size_t(largest[g] + 7) / 8));
      for (std::vector<double> &b : grp.staging)
        grp.staged.push_back(b.data());
    }
  }
  if (queues) {
    // Set only now: the destructor gives back the events made so far.
    t->device = queues;
    if (Status s = t->createEvents(streams); !s.ok())
      return s;
    if (Status s = DeviceCollectives::create(streams, groups, *queues,
                                             t->onDevice);
        !s.ok())
      return Status::failure("cuda-local transport: " + s.message());
  }
  out = std::move(t);
  return Status::success();
}

Status LocalTransport::createEvents(const std::vector<Stream> &streams) {
  for (int32_t r = 0; r < ranks; ++r)
    for (const Instr &in : streams[size_t(r)].instrs) {
      if (!isPostOp(in.op) || in.req < 0 ||
          size_t(in.req) >= requests[size_t(r)].size())
        continue;
      Request &req = requests[size_t(r)][size_t(in.req)];
      bool send = in.op == Opcode::SendAct || in.op == Opcode::SendGrad;
      // A message is copied on its receiver's transfer stream, so both
      // sides' landed events belong to the receiver's device.
      int32_t where = device->deviceOf(send ? in.peer : r);
      DeviceQueues::Event e = nullptr;
      if (!req.posted) {
        if (Status s = device->createEvent(device->deviceOf(r), e); !s.ok())
          return Status::failure("cuda-local transport: " + s.message(), r);
        req.posted = e;
      }
      if (landedOn(req, where))
        continue;
      if (Status s = device->createEvent(where, e); !s.ok())
        return Status::failure("cuda-local transport: " + s.message(), r);
      req.landed.push_back({where, e});
    }
  return Status::success();
}

LocalTransport::~LocalTransport() {
  if (!device)
    return;
  for (std::vector<Request> &rank : requests)
    for (Request &req : rank) {
      if (req.posted)
        device->destroyEvent(req.posted);
      for (auto &[where, e] : req.landed)
        device->destroyEvent(e);
    }
}

DeviceQueues::Event LocalTransport::landedOn(const Request &req,
                                             int32_t device) {
  for (const auto &[d, e] : req.landed)
    if (d == device)
      return e;
  return nullptr;
}

Status LocalTransport::post(int32_t rank, int32_t peer, Channel channel,
                            int32_t req, const Message &msg, bool send) {
  // cuda-local: the buffer is ready (send) or free (recv) once the work
  // launched so far on this rank's compute stream is done. The event is
  // fixed at creation, so it is read outside the lock; the transfer that
  // waited on its last recording was enqueued before that post's wait.
  if (device && msg.bytes > 0 && req >= 0 &&
      size_t(req) < requests[rank].size() && requests[rank][req].posted)
    if (Status s = device->recordCompute(rank, requests[rank][req].posted);
        !s.ok())
      return Status::failure("recording the post's event: " + s.message(),
                             rank, msg.instr);
  std::unique_lock<std::mutex> lock(mu);
  if (aborted)
    return Status::failure("aborted: " + abortReason, rank, msg.instr);
  if (req < 0 || size_t(req) >= requests[rank].size() || peer < 0 ||
      peer >= ranks)
    return Status::failure("request " + std::to_string(req) + " or peer " +
                               std::to_string(peer) + " out of range",
                           rank, msg.instr);
  Request &me = requests[rank][req];
  if (me.pending)
    return Status::failure("request " + std::to_string(req) +
                               " is posted again before its wait",
                           rank, msg.instr);
  me.msg = msg;
  me.peer = peer;
  me.channel = channel;
  me.send = send;
  me.pending = true;
  me.done = false;
  me.arrived = nullptr;
  me.error.clear();
  Queue &q = send ? queue(rank, peer, channel) : queue(peer, rank, channel);
  if (q.count == 0 || q.holdsSends == send) {
    if (q.count == q.ring.size())
      return Status::failure(std::string("more ") + channelName(channel, send) +
                                 " posts to rank " + std::to_string(peer) +
                                 " in flight than the stream holds",
                             rank, msg.instr);
    q.ring[(q.head + q.count) % q.ring.size()] = req;
    ++q.count;
    q.holdsSends = send;
    return Status::success();
  }
  // Posting order matches: the oldest unmatched post of the other side.
  int32_t otherReq = q.ring[q.head];
  q.head = (q.head + 1) % q.ring.size();
  --q.count;
  Request &other = requests[peer][otherReq];
  Request &s = send ? me : other;
  Request &r = send ? other : me;
  int32_t sRank = send ? rank : peer, rRank = send ? peer : rank;
  if (s.msg.chunk != r.msg.chunk || s.msg.mb != r.msg.mb ||
      s.msg.bytes != r.msg.bytes) {
    std::string why = "mismatched message: rank " + std::to_string(sRank) +
                      " #" + std::to_string(s.msg.instr) + " sent chunk " +
                      std::to_string(s.msg.chunk) + " mb " +
                      std::to_string(s.msg.mb) + " (" +
                      std::to_string(s.msg.bytes) + " bytes), which rank " +
                      std::to_string(rRank) + " #" +
                      std::to_string(r.msg.instr) + " received as chunk " +
                      std::to_string(r.msg.chunk) + " mb " +
                      std::to_string(r.msg.mb) + " (" +
                      std::to_string(r.msg.bytes) + " bytes)";
    s.error = why;
    r.error = why;
  } else if (s.msg.bytes > 0 && device) {
    // cuda-local: the copy goes on the receiver's transfer stream after
    // both posts' events; each side's wait orders its compute stream after
    // the event the copy records for it (the sender must not overwrite
    // the buffer, nor the receiver read it, before the copy is done).
    int32_t where = device->deviceOf(rRank);
    DeviceQueues::Event after[2] = {s.posted, r.posted};
    DeviceQueues::Event done[2] = {landedOn(s, where), landedOn(r, where)};
    Status moved =
        !after[0] || !after[1] || !done[0] || !done[1]
            ? Status::failure("no event for a transfer on device " +
                              std::to_string(where) +
                              " (the streams did not declare this message)")
            : device->transfer(rRank, after, 2, r.msg.data, s.msg.data,
                               s.msg.bytes, done, 2);
    if (moved.ok()) {
      s.arrived = done[0];
      r.arrived = done[1];
    } else {
      s.error = r.error = "moving the message of rank " +
                          std::to_string(sRank) + " #" +
                          std::to_string(s.msg.instr) + " to rank " +
                          std::to_string(rRank) + ": " + moved.message();
    }
  } else if (s.msg.bytes > 0) {
    // Rendezvous: the bytes move now, straight into the receiver's buffer.
    // Both buffers belong to requests in flight, which their ranks leave
    // alone until the wait, so the copy runs outside the lock and other
    // ranks keep posting and waking meanwhile.
    void *dst = r.msg.data;
    const void *src = s.msg.data;
    lock.unlock();
    Status moved = copyArenaBytes(copy, dst, src, s.msg.bytes);
    lock.lock();
    if (!moved.ok())
      s.error = r.error = "moving the message of rank " +
                          std::to_string(sRank) + " #" +
                          std::to_string(s.msg.instr) + " to rank " +
                          std::to_string(rRank) + ": " + moved.message();
  }
  s.done = r.done = true;
  cvs[peer]->notify_all();
  return Status::success();
}

Status LocalTransport::postSend(int32_t rank, int32_t peer, Channel channel,
                                int32_t req, const Message &msg) {
  return post(rank, peer, channel, req, msg, true);
}

Status LocalTransport::postRecv(int32_t rank, int32_t peer, Channel channel,
                                int32_t req, const Message &msg) {
  return post(rank, peer, channel, req, msg, false);
}

Status LocalTransport::wait(int32_t rank, int32_t req,
                            Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu);
  if (req < 0 || size_t(req) >= requests[rank].size() ||
      !requests[rank][req].pending)
    return Status::failure("request " + std::to_string(req) +
                               " is not in flight",
                           rank);
  Request &me = requests[rank][req];
  bool finished = cvs[rank]->wait_until(
      lock, deadline, [&] { return me.done || aborted; });
  me.pending = false;
  if (!me.error.empty())
    return Status::failure(me.error, rank, me.msg.instr);
  if (me.done && me.arrived) {
    // cuda-local: the device orders the rest; the host goes on.
    DeviceQueues::Event arrived = me.arrived;
    int64_t instr = me.msg.instr;
    lock.unlock();
    if (Status s = device->computeWaits(rank, arrived); !s.ok())
      return Status::failure("waiting for the transfer's event: " +
                                 s.message(),
                             rank, instr);
    return Status::success();
  }
  if (me.done)
    return Status::success();
  if (aborted)
    return Status::failure("aborted: " + abortReason, rank, me.msg.instr);
  (void)finished;
  return Status::failure(
      std::string("timed out: rank ") + std::to_string(me.peer) +
          " did not post the matching " + channelName(me.channel, !me.send) +
          " (chunk " + std::to_string(me.msg.chunk) + ", mb " +
          std::to_string(me.msg.mb) + ")",
      rank, me.msg.instr);
}

/// The sum over the members, in member order, of elements [first, end),
/// written to the members `to` (all when null).
template <typename T>
static void sumRange(const std::vector<void *> &data, int64_t first,
                     int64_t end, void *to) {
  for (int64_t i = first; i < end; ++i) {
    T sum = static_cast<T *>(data[0])[i];
    for (size_t m = 1; m < data.size(); ++m)
      sum += static_cast<T *>(data[m])[i];
    if (to) {
      static_cast<T *>(to)[i] = sum;
      continue;
    }
    for (void *d : data)
      static_cast<T *>(d)[i] = sum;
  }
}

/// What the last member to join a collective does with the members' data.
static void combine(Opcode op, const std::vector<void *> &data,
                    const std::vector<int32_t> &memberIndex, int64_t count,
                    DType dtype, const Part *parts, int32_t partCount) {
  const int64_t e = dtypeBytes(dtype);
  auto sum = [&](int64_t first, int64_t end, void *to) {
    if (dtype == DType::F32)
      sumRange<float>(data, first, end, to);
    else
      sumRange<double>(data, first, end, to);
  };
  if (op == Opcode::AllReduce) {
    sum(0, count, nullptr);
    return;
  }
  for (int32_t k = 0; k < partCount; ++k) {
    const Part &p = parts[k];
    void *owner = data[size_t(memberIndex[p.rank])];
    if (op == Opcode::ReduceScatter) {
      sum(p.offset / e, (p.offset + p.bytes) / e, owner);
      continue;
    }
    for (void *d : data)
      if (d != owner)
        std::memcpy(static_cast<uint8_t *>(d) + p.offset,
                    static_cast<const uint8_t *>(owner) + p.offset,
                    size_t(p.bytes));
  }
}

Status LocalTransport::allReduce(int32_t rank, int32_t group, int32_t bucket,
                                 void *data, int64_t count, DType dtype,
                                 Clock::time_point deadline) {
  return collective(Opcode::AllReduce, rank, group, bucket, data, count,
                    dtype, nullptr, 0, deadline);
}

Status LocalTransport::reduceScatter(int32_t rank, int32_t group,
                                     int32_t bucket, void *data,
                                     int64_t count, DType dtype,
                                     const Part *parts, int32_t partCount,
                                     Clock::time_point deadline) {
  return collective(Opcode::ReduceScatter, rank, group, bucket, data, count,
                    dtype, parts, partCount, deadline);
}

Status LocalTransport::allGatherParts(int32_t rank, int32_t group,
                                      int32_t bucket, void *data,
                                      int64_t count, DType dtype,
                                      const Part *parts, int32_t partCount,
                                      Clock::time_point deadline) {
  return collective(Opcode::AllGather, rank, group, bucket, data, count,
                    dtype, parts, partCount, deadline);
}

Status LocalTransport::collective(Opcode op, int32_t rank, int32_t group,
                                  int32_t bucket, void *data, int64_t count,
                                  DType dtype, const Part *parts,
                                  int32_t partCount,
                                  Clock::time_point deadline) {
  const char *what = opcodeName(op);
  // Device arenas without queues (`--transport local` of a cuda plan):
  // the sums and copies are made on the host, after the functions that
  // wrote the operands waited for their streams (the target defers no
  // synchronization there). With queues nothing waits here.
  std::unique_lock<std::mutex> lock(mu);
  if (aborted)
    return Status::failure("aborted: " + abortReason, rank);
  if (group < 0 || size_t(group) >= groups.size() ||
      groups[group].memberIndex[rank] < 0)
    return Status::failure("rank " + std::to_string(rank) +
                               " is not a member of group " +
                               std::to_string(group),
                           rank);
  Group &g = groups[group];
  for (int32_t k = 0; k < partCount; ++k)
    if (parts[k].rank < 0 || size_t(parts[k].rank) >= g.memberIndex.size() ||
        g.memberIndex[size_t(parts[k].rank)] < 0)
      return Status::failure(std::string(what) + " of group " +
                                 std::to_string(group) + ": part " +
                                 std::to_string(k) + " belongs to rank " +
                                 std::to_string(parts[k].rank) +
                                 ", not a member",
                             rank);
  auto sameParts = [&] {
    if (g.partCount != partCount)
      return false;
    for (int32_t k = 0; k < partCount; ++k)
      if (g.parts[k].rank != parts[k].rank ||
          g.parts[k].offset != parts[k].offset ||
          g.parts[k].bytes != parts[k].bytes)
        return false;
    return true;
  };
  if (g.joined == 0) {
    g.op = op;
    g.bucket = bucket;
    g.count = count;
    g.dtype = dtype;
    g.parts = parts;
    g.partCount = partCount;
    g.error.clear();
    g.failedAt = nullptr;
  } else if (g.op != op || g.bucket != bucket || g.count != count ||
             g.dtype != dtype) {
    g.error = "rank " + std::to_string(rank) + " joined " + what +
              " bucket " + std::to_string(bucket) + " with " +
              std::to_string(count) + " elements, the others " +
              opcodeName(g.op) + " bucket " + std::to_string(g.bucket) +
              " with " + std::to_string(g.count);
    g.failedAt = nullptr;
  } else if (!sameParts()) {
    g.error = "rank " + std::to_string(rank) + " joined " + what +
              " bucket " + std::to_string(bucket) +
              " with other parts than the others";
    g.failedAt = nullptr;
  }
  g.data[g.memberIndex[rank]] = data;
  // cuda-local: this member's operand is final where its stream is now.
  if (onDevice && g.error.empty())
    if (Status p = onDevice->post(rank, group); !p.ok())
      g.error = p.message(), g.failedAt = "on the device";
  int64_t myGeneration = g.generation;
  if (++g.joined == int32_t(g.members.size())) {
    if (onDevice && g.error.empty()) {
      // The last to join enqueues the exact collective for all; every
      // member's compute stream waits for it, no host waits. An enqueue
      // that fails half-way leaves some moves queued and some members
      // without their waits: every member gets the error and the run is
      // abandoned, so nothing reads what the device still moves.
      if (Status e = onDevice->enqueue(op, group, bucket, count, dtype, parts,
                                       partCount, g.data);
          !e.ok())
        g.error = e.message(), g.failedAt = "on the device";
    } else if (g.error.empty()) {
      // Device arenas: the members' bytes come to the host, are summed
      // (or, for an all-gather, copied) there in the same order, and go
      // back whole: the bytes a member does not own come back as they
      // left.
      int64_t bytes = count * dtypeBytes(dtype);
      if (copy && (g.staging.empty() ||
                   bytes > int64_t(g.staging[0].size() * sizeof(double))))
        g.error = std::string(what) + " of " + std::to_string(bytes) +
                  " bytes, more than the streams declare for group " +
                  std::to_string(group);
      std::vector<void *> &sum = copy ? g.staged : g.data;
      for (size_t m = 0; copy && m < g.data.size() && g.error.empty(); ++m)
        if (Status c = copyArenaBytes(copy, g.staged[m], g.data[m], bytes);
            !c.ok())
          g.error = c.message(), g.failedAt = "through the host";
      if (g.error.empty())
        combine(op, sum, g.memberIndex, count, dtype, parts, partCount);
      for (size_t m = 0; copy && m < g.data.size() && g.error.empty(); ++m)
        if (Status c = copyArenaBytes(copy, g.data[m], g.staged[m], bytes);
            !c.ok())
          g.error = c.message(), g.failedAt = "through the host";
    }
    g.joined = 0;
    ++g.generation;
    for (int32_t m : g.members)
      cvs[m]->notify_all();
  } else {
    cvs[rank]->wait_until(lock, deadline, [&] {
      return g.generation != myGeneration || aborted;
    });
  }
  if (g.generation == myGeneration) {
    if (aborted)
      return Status::failure("aborted: " + abortReason, rank);
    return Status::failure("timed out: " +
                               std::to_string(g.members.size() - g.joined) +
                               " member(s) of group " +
                               std::to_string(group) + " never joined its " +
                               what,
                           rank);
  }
  if (!g.error.empty())
    return Status::failure(
        (g.failedAt ? std::string(what) + " " + g.failedAt + ": "
                      : std::string("mismatched ") + what + ": ") +
            g.error,
        rank);
  return Status::success();
}

Status LocalTransport::drain(int32_t rank) {
  if (!device)
    return Status::success();
  if (Status s = device->drain(rank); !s.ok())
    return Status::failure("draining the rank's device streams: " +
                               s.message(),
                           rank);
  return Status::success();
}

void LocalTransport::abort(const std::string &reason) {
  std::lock_guard<std::mutex> lock(mu);
  if (aborted)
    return;
  aborted = true;
  abortReason = reason;
  for (auto &cv : cvs)
    cv->notify_all();
  if (device)
    device->abandon();
}

} // namespace pipert
