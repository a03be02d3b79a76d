//===- RaceDevice.h - a fake device that proves the streams' order -*- C++ -*-===//
//
// pipert::DeviceQueues on the CPU as a race detector: every stream (a
// rank's compute stream and its transfer stream) carries a vector clock;
// an event keeps the clock of the stream where it was recorded, and a wait
// joins it into the waiting stream's. Every transfer, sum and test access
// (`access`, as a rank's kernels touch its arena) records the bytes it
// reads and writes with its stream's clock, and two accesses to the same
// byte, one a write, must be ordered: the earlier one's tick is in the
// later one's clock. A missing wait is a race here whatever order the work
// happens to run in (the operations run at once, so the bits are what an
// ordered device would give); a wait on an event's stale recording joins
// an old clock and shows up the same way.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_TEST_RUNTIME_EXEC_RACEDEVICE_H
#define PIPEC_TEST_RUNTIME_EXEC_RACEDEVICE_H

#include "pipert/DeviceQueues.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace pipec::testing {

class RaceDevice : public pipert::DeviceQueues {
public:
  explicit RaceDevice(int32_t ranks, int32_t devices = 1)
      : devices(devices), clocks(size_t(2 * ranks),
                                 Clock(size_t(2 * ranks), 0)) {}

  int32_t deviceOf(int32_t rank) const override { return rank % devices; }

  pipert::Status createEvent(int32_t device, Event &out) override {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(std::make_unique<FakeEvent>());
    events.back()->device = device;
    live.insert(events.back().get());
    out = events.back().get();
    return pipert::Status::success();
  }
  void destroyEvent(Event event) override {
    std::lock_guard<std::mutex> lock(mu);
    live.erase(static_cast<FakeEvent *>(event));
  }
  pipert::Status recordCompute(int32_t rank, Event event) override {
    std::lock_guard<std::mutex> lock(mu);
    return record(compute(rank), rank, event);
  }
  pipert::Status transfer(int32_t rank, const Event *after, int32_t afterCount,
                          void *dst, const void *src, int64_t bytes,
                          const Event *done, int32_t doneCount) override {
    std::lock_guard<std::mutex> lock(mu);
    const int32_t s = transferOf(rank);
    for (int32_t i = 0; i < afterCount; ++i)
      if (pipert::Status w = join(s, after[i]); !w.ok())
        return w;
    tick(s);
    touch(s, src, bytes, false, "a transfer's read");
    touch(s, dst, bytes, true, "a transfer's write");
    std::memcpy(dst, src, size_t(bytes));
    ++transfers;
    for (int32_t i = 0; i < doneCount; ++i)
      if (pipert::Status r = record(s, rank, done[i]); !r.ok())
        return r;
    return pipert::Status::success();
  }
  pipert::Status computeWaits(int32_t rank, Event event) override {
    std::lock_guard<std::mutex> lock(mu);
    return join(compute(rank), event);
  }
  pipert::Status drain(int32_t) override { return pipert::Status::success(); }
  pipert::Status allocate(int32_t, int64_t bytes, void *&out) override {
    std::lock_guard<std::mutex> lock(mu);
    memory.push_back(std::make_unique<uint8_t[]>(size_t(bytes)));
    out = memory.back().get();
    return pipert::Status::success();
  }
  void release(int32_t, void *) override {}
  pipert::Status sum(int32_t rank, pipert::DType dtype, void *operand,
                     const void *staging, const pipert::OrderedSum &s,
                     int32_t members, int32_t me) override {
    std::lock_guard<std::mutex> lock(mu);
    const int32_t c = compute(rank);
    tick(c);
    const auto *slots = static_cast<const uint8_t *>(staging);
    for (int32_t m = 0; m < members; ++m)
      if (m != me)
        touch(c, slots + s.stage + pipert::stagingSlot(m, me) * s.bytes,
              s.bytes, false, "a sum's read of a staged copy");
    auto *mine = static_cast<uint8_t *>(operand) + s.offset;
    touch(c, mine, s.bytes, false, "a sum's read of its operand");
    touch(c, mine, s.bytes, true, "a sum's write");
    pipert::sumOnHost(dtype, operand, slots, s, members, me);
    ++sums;
    return pipert::Status::success();
  }

  /// `rank`'s kernels reading or writing [p, p + bytes) on its compute
  /// stream (the tests' stand-in for what the executor's kernels do).
  void access(int32_t rank, const void *p, int64_t bytes, bool write,
              const std::string &what) {
    std::lock_guard<std::mutex> lock(mu);
    tick(compute(rank));
    touch(compute(rank), p, bytes, write, what);
  }

  std::vector<std::string> races, errors;
  int64_t transfers = 0, sums = 0;

private:
  using Clock = std::vector<uint64_t>;
  struct FakeEvent {
    int32_t device = 0;
    bool recorded = false;
    Clock clock;
  };
  struct Access {
    int32_t stream;
    uint64_t tick;
    const uint8_t *lo, *hi;
    bool write;
    std::string what;
  };

  static int32_t compute(int32_t rank) { return 2 * rank; }
  static int32_t transferOf(int32_t rank) { return 2 * rank + 1; }
  std::string streamName(int32_t s) const {
    return "rank " + std::to_string(s / 2) +
           (s % 2 ? "'s transfer stream" : "'s compute stream");
  }
  void tick(int32_t s) { ++clocks[size_t(s)][size_t(s)]; }
  pipert::Status fail(const std::string &what) {
    errors.push_back(what);
    return pipert::Status::failure(what);
  }
  FakeEvent *known(Event event) {
    auto *e = static_cast<FakeEvent *>(event);
    return live.count(e) ? e : nullptr;
  }
  pipert::Status record(int32_t s, int32_t rank, Event event) {
    FakeEvent *e = known(event);
    if (!e)
      return fail("a record of an unknown event");
    if (e->device != deviceOf(rank))
      return fail(streamName(s) + " recorded an event of device " +
                  std::to_string(e->device));
    e->recorded = true;
    e->clock = clocks[size_t(s)];
    return pipert::Status::success();
  }
  pipert::Status join(int32_t s, Event event) {
    FakeEvent *e = known(event);
    if (!e || !e->recorded)
      return fail(streamName(s) + " waits on an event never recorded");
    Clock &c = clocks[size_t(s)];
    for (size_t i = 0; i < c.size(); ++i)
      c[i] = std::max(c[i], e->clock[i]);
    return pipert::Status::success();
  }
  /// Records an access of stream `s` (after its tick) and reports every
  /// earlier conflicting access its clock does not include.
  void touch(int32_t s, const void *p, int64_t bytes, bool write,
             const std::string &what) {
    if (bytes <= 0)
      return;
    const auto *lo = static_cast<const uint8_t *>(p);
    Access a{s, clocks[size_t(s)][size_t(s)], lo, lo + bytes, write, what};
    for (const Access &b : accesses)
      if ((a.write || b.write) && a.lo < b.hi && b.lo < a.hi &&
          b.stream != s && clocks[size_t(s)][size_t(b.stream)] < b.tick)
        races.push_back(what + " on " + streamName(s) + " races with " +
                        b.what + " on " + streamName(b.stream));
    accesses.push_back(a);
  }

  const int32_t devices;
  std::mutex mu;
  std::vector<Clock> clocks; ///< per stream
  std::vector<std::unique_ptr<FakeEvent>> events;
  std::set<FakeEvent *> live;
  std::vector<Access> accesses;
  std::vector<std::unique_ptr<uint8_t[]>> memory;
};

} // namespace pipec::testing

#endif // PIPEC_TEST_RUNTIME_EXEC_RACEDEVICE_H
