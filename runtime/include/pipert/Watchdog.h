//===- Watchdog.h - the operation a rank has waited on too long -*- C++ -*-===//
//
// A transport whose waits do not block the host (nccl: the compute stream
// waits on an event, the host goes on) cannot time a wait out where it is
// made: a dead or hung peer shows only as device work that never ends,
// and the host then blocks in a synchronization with no deadline. So the
// transport tracks every operation it enqueued (by id, with the peer it
// needs), and a watchdog thread asks the device which have finished; the
// oldest unfinished one past the limit names the peer, and the transport
// aborts its communicators and ends the process (docs/NCCL.md). The table
// is sized before the first step; tracking allocates nothing.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_WATCHDOG_H
#define PIPERT_WATCHDOG_H

#include "pipert/Transport.h"

#include <mutex>
#include <vector>

namespace pipert {

class Watchdog {
public:
  /// An enqueued operation: `handle` is what `finished` asks about (an
  /// event), `peer` the rank it needs (-1: a group), `instr` the stream
  /// index of the instruction that enqueued it. `start` (when not null)
  /// is the point its device work begins at (the event recorded on the
  /// compute stream when it was posted): its clock runs from the first
  /// look that finds `start` finished, not from the enqueue, since the
  /// host may enqueue a whole step ahead of the device.
  struct Op {
    bool active = false;
    void *handle = nullptr;
    int32_t peer = -1, group = -1;
    int64_t instr = -1;
    Clock::time_point since{};
    void *start = nullptr;
    /// Time it may take beyond the limit (a whole step's graph: the step's
    /// own length, of which the limit bounds only the waiting).
    Clock::duration allowance{};
  };

  /// Ids are in [0, capacity): the transport's choice (stream indices).
  Watchdog(int64_t capacity, std::chrono::milliseconds limit)
      : ops(size_t(capacity)), limit(limit) {}

  /// Starts watching operation `id` (replacing whatever it watched); its
  /// clock from `now`, or from when `start` is first seen finished.
  void track(int64_t id, void *handle, int32_t peer, int32_t group,
             int64_t instr, Clock::time_point now, void *start = nullptr,
             Clock::duration allowance = {}) {
    std::lock_guard<std::mutex> lock(mutex);
    if (id < 0 || size_t(id) >= ops.size())
      return;
    ops[size_t(id)] = {true, handle, peer, group, instr, now, start,
                       allowance};
  }

  /// Stops watching `id` (before its event is recorded anew).
  void forget(int64_t id) {
    std::lock_guard<std::mutex> lock(mutex);
    if (id >= 0 && size_t(id) < ops.size())
      ops[size_t(id)].active = false;
  }

  /// Forgets finished operations (`finished(handle)`: 1 finished, 0 not
  /// yet, -1 failed) and returns the oldest unfinished one that has run
  /// past the limit, or a failed one, in `out`; false when none.
  template <typename Finished>
  bool overdue(Finished &&finished, Clock::time_point now, Op &out,
               bool &failed) {
    std::lock_guard<std::mutex> lock(mutex);
    bool found = false;
    failed = false;
    for (Op &op : ops) {
      if (!op.active)
        continue;
      if (op.start) {
        // Not begun on the device yet: the work before it is what waits
        // (and is watched, if it is an operation).
        int begun = finished(op.start);
        if (begun < 0) {
          out = op;
          failed = true;
          return true;
        }
        if (begun == 0)
          continue;
        op.start = nullptr;
        op.since = now;
      }
      int state = finished(op.handle);
      if (state == 1) {
        op.active = false;
        continue;
      }
      if (state < 0) {
        out = op;
        failed = true;
        return true;
      }
      if (now - op.since >= limit + op.allowance &&
          (!found || op.since < out.since)) {
        out = op;
        found = true;
      }
    }
    return found;
  }

  /// How many operations are being watched (tests).
  int64_t active() {
    std::lock_guard<std::mutex> lock(mutex);
    int64_t n = 0;
    for (const Op &op : ops)
      n += op.active;
    return n;
  }

private:
  std::mutex mutex;
  std::vector<Op> ops;
  std::chrono::milliseconds limit;
};

} // namespace pipert

#endif // PIPERT_WATCHDOG_H
