//===- LazyDevice.h - a fake device as lazy as its events allow -*- C++ -*-===//
//
// pipert::DeviceQueues on the CPU for the cuda-local transport's tests: a
// transfer runs only when a compute stream waits for an event it records,
// or its stream is drained, and copies the source as it is then; compute
// (the kernels, a collective's sums) runs when launched. So a wait the
// transport forgot changes the bits, and an event waited on before it was
// ever recorded (a no-op on a real device) or recorded on another device's
// stream is an error.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_TEST_RUNTIME_EXEC_LAZYDEVICE_H
#define PIPEC_TEST_RUNTIME_EXEC_LAZYDEVICE_H

#include "pipert/DeviceQueues.h"

#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace pipec::testing {

/// A device whose compute is the host's (done when a kernel call returns)
/// and whose transfers wait in per-rank queues until something needs them.
/// A collective's sums run when launched, or, with `lazySums`, wait in the
/// rank's compute queue until an event recorded after them is needed or
/// the rank's stream goes on (its next wait: the executor's kernels, which
/// run at once, come after it). The first catches a sum that does not wait
/// for its copies, the second a copy that does not wait for a sum.
class LazyDevice : public pipert::DeviceQueues {
public:
  explicit LazyDevice(int32_t ranks, int32_t devices = 1,
                      bool lazySums = false)
      : devices(devices), lazySums(lazySums), ranks(ranks),
        queues(size_t(2 * ranks)) {}

  struct FakeEvent {
    int32_t device = 0;
    bool recorded = false; ///< ever
    bool complete = false; ///< the work of its last recording is done
    int32_t queue = -1;    ///< where its pending recording waits
    uint64_t op = 0;       ///< the transfer or sum that records it
  };

  int32_t deviceOf(int32_t rank) const override { return rank % devices; }

  pipert::Status createEvent(int32_t device, Event &out) override {
    std::lock_guard<std::mutex> lock(mu);
    if (failCreate >= 0 && created >= failCreate)
      return pipert::Status::failure("fake device out of events");
    ++created;
    events.push_back(std::make_unique<FakeEvent>());
    events.back()->device = device;
    live.insert(events.back().get());
    out = events.back().get();
    return pipert::Status::success();
  }

  void destroyEvent(Event event) override {
    std::lock_guard<std::mutex> lock(mu);
    if (!live.erase(static_cast<FakeEvent *>(event)))
      errors.push_back("an event destroyed twice or never made");
    ++destroyed;
  }

  pipert::Status recordCompute(int32_t rank, Event event) override {
    std::lock_guard<std::mutex> lock(mu);
    FakeEvent *e = known(event);
    if (!e)
      return pipert::Status::failure("record of an unknown event");
    if (e->device != deviceOf(rank))
      return error("rank " + std::to_string(rank) +
                   "'s compute stream recorded an event of device " +
                   std::to_string(e->device));
    e->recorded = true;
    // Behind the sums still queued on the stream, if any.
    std::deque<Op> &sumsQueued = queues[size_t(ranks + rank)];
    e->complete = sumsQueued.empty();
    e->queue = e->complete ? -1 : ranks + rank;
    e->op = e->complete ? 0 : sumsQueued.back().id;
    if (!e->complete)
      sumsQueued.back().done.push_back(e);
    return pipert::Status::success();
  }

  pipert::Status transfer(int32_t rank, const Event *after, int32_t afterCount,
                          void *dst, const void *src, int64_t bytes,
                          const Event *done, int32_t doneCount) override {
    std::lock_guard<std::mutex> lock(mu);
    if (failTransfer >= 0 && transfers >= failTransfer)
      return pipert::Status::failure("fake transfer refused");
    ++transfers;
    Op op{nextOp++, dst, src, bytes, {}};
    for (int32_t i = 0; i < afterCount; ++i) {
      FakeEvent *e = known(after[i]);
      if (!e || !e->recorded)
        return error("a transfer waits on an event never recorded");
      // Compute is done when recorded; an earlier transfer's event must
      // run first (in order, so its queue up to it).
      if (!e->complete)
        flush(e->queue, e->op);
    }
    for (int32_t i = 0; i < doneCount; ++i) {
      FakeEvent *e = known(done[i]);
      if (!e)
        return error("a transfer records an unknown event");
      if (e->device != deviceOf(rank))
        return error("rank " + std::to_string(rank) +
                     "'s transfer stream recorded an event of device " +
                     std::to_string(e->device));
      e->recorded = true;
      e->complete = false;
      e->queue = rank;
      e->op = op.id;
      op.done.push_back(e);
    }
    queues[size_t(rank)].push_back(op);
    return pipert::Status::success();
  }

  pipert::Status computeWaits(int32_t rank, Event event) override {
    std::lock_guard<std::mutex> lock(mu);
    FakeEvent *e = known(event);
    if (!e || !e->recorded)
      return error("rank " + std::to_string(rank) +
                   "'s compute stream waits on an event never recorded");
    ++computeWaitCount;
    // The latest moment: the waiter's next kernel needs the transfer now,
    // and runs after its own stream's queued sums.
    if (!e->complete)
      flush(e->queue, e->op);
    flush(ranks + rank, ~uint64_t(0));
    return pipert::Status::success();
  }

  pipert::Status drain(int32_t rank) override {
    std::lock_guard<std::mutex> lock(mu);
    ++drains;
    flush(ranks + rank, ~uint64_t(0));
    flush(rank, ~uint64_t(0));
    return pipert::Status::success();
  }

  pipert::Status allocate(int32_t rank, int64_t bytes, void *&out) override {
    std::lock_guard<std::mutex> lock(mu);
    memory.push_back(std::make_unique<uint8_t[]>(size_t(bytes)));
    // Fresh device memory is not zero: a sum that read a slot no transfer
    // filled would show.
    std::memset(memory.back().get(), 0xa5, size_t(bytes));
    out = memory.back().get();
    owner[out] = rank;
    allocated += bytes;
    return pipert::Status::success();
  }

  void release(int32_t rank, void *p) override {
    std::lock_guard<std::mutex> lock(mu);
    auto it = owner.find(p);
    if (it == owner.end() || it->second != rank)
      errors.push_back("memory released by a rank that did not allocate it");
    else
      owner.erase(it);
  }

  pipert::Status sum(int32_t rank, pipert::DType dtype, void *operand,
                     const void *staging, const pipert::OrderedSum &s,
                     int32_t members, int32_t me) override {
    std::lock_guard<std::mutex> lock(mu);
    if (staging && !owner.count(const_cast<void *>(staging)))
      return error("a sum reads staging the device never allocated");
    if (staging && owner[const_cast<void *>(staging)] != rank)
      return error("rank " + std::to_string(rank) +
                   " sums from another rank's staging");
    ++sums;
    Op op{nextOp++, operand, staging, 0, {}};
    op.sum = true;
    op.dtype = dtype;
    op.orderedSum = s;
    op.members = members;
    op.me = me;
    queues[size_t(ranks + rank)].push_back(op);
    if (!lazySums)
      flush(ranks + rank, op.id);
    return pipert::Status::success();
  }

  void abandon() override {
    std::lock_guard<std::mutex> lock(mu);
    ++abandons;
  }

  /// Transfers and sums enqueued and not yet run.
  size_t pending() {
    std::lock_guard<std::mutex> lock(mu);
    size_t n = 0;
    for (const std::deque<Op> &q : queues)
      n += q.size();
    return n;
  }

  const int32_t devices;
  const bool lazySums;
  int64_t created = 0, destroyed = 0, transfers = 0, computeWaitCount = 0,
          drains = 0, sums = 0, allocated = 0, abandons = 0;
  int64_t failCreate = -1, failTransfer = -1; ///< -1: never
  std::vector<std::string> errors;
  std::set<FakeEvent *> live;
  std::map<void *, int32_t> owner; ///< memory allocated and not released

private:
  struct Op {
    uint64_t id;
    void *dst;
    const void *src;
    int64_t bytes;
    std::vector<FakeEvent *> done;
    // A sum: operand dst, staging src.
    bool sum = false;
    pipert::DType dtype = pipert::DType::None;
    pipert::OrderedSum orderedSum;
    int32_t members = 0, me = 0;
  };

  FakeEvent *known(Event event) {
    auto *e = static_cast<FakeEvent *>(event);
    return live.count(e) ? e : nullptr;
  }
  pipert::Status error(const std::string &what) {
    errors.push_back(what);
    return pipert::Status::failure(what);
  }
  /// Runs queue q's operations in order up to and including `upTo`
  /// (queues [0, ranks) the transfer streams, then the compute streams).
  void flush(int32_t q, uint64_t upTo) {
    std::deque<Op> &ops = queues[size_t(q)];
    while (!ops.empty() && ops.front().id <= upTo) {
      Op op = ops.front();
      ops.pop_front();
      if (op.sum)
        pipert::sumOnHost(op.dtype, op.dst,
                          static_cast<const uint8_t *>(op.src), op.orderedSum,
                          op.members, op.me);
      else
        std::memcpy(op.dst, op.src, size_t(op.bytes));
      for (FakeEvent *e : op.done)
        if (e->queue == q && e->op == op.id)
          e->complete = true;
    }
  }

  const int32_t ranks;
  std::mutex mu;
  std::vector<std::unique_ptr<FakeEvent>> events;
  uint64_t nextOp = 1;
  std::vector<std::deque<Op>> queues;
  std::vector<std::unique_ptr<uint8_t[]>> memory;
};

} // namespace pipec::testing

#endif // PIPEC_TEST_RUNTIME_EXEC_LAZYDEVICE_H
