//===- Shadow.h - shadow memory: who wrote each arena byte last -*- C++ -*-===//
//
// The debug mode that proves a memory plan while it runs. For every 4-byte
// granule of a rank's arena it keeps the instruction (and step) that wrote
// it last. Before an instruction runs, each region it reads must have been
// written last by the instruction the plan names; a compute instruction
// must not touch a buffer a transfer still owns; and after it ran, a
// comparison with a snapshot of the arena proves it changed no byte outside
// the regions the plan says it writes. The highest byte any instruction
// touched must equal the plan's peak. A device's arena (the cuda target,
// under --transport local, where every function waits for its stream) is
// read through the target's copy into a host mirror for each snapshot and
// comparison.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_SHADOW_H
#define PIPERT_SHADOW_H

#include "pipert/Status.h"
#include "pipert/Stream.h"
#include "pipert/Transport.h"

#include <cstdint>
#include <vector>

namespace pipert {

/// An arena region owned by a transfer in flight.
struct Region {
  int64_t offset = 0, bytes = 0;
  /// A recv's buffer (written by the peer at any moment until the wait);
  /// otherwise a send's (read by the peer until the wait).
  bool recv = false;
};

/// Shadow state of one rank's arena; every table is allocated up front.
class ShadowMemory {
public:
  /// `arenaCopy`: how host code reaches a device's arena (null: host).
  ShadowMemory(const Stream &stream, const uint8_t *arena,
               ArenaCopy arenaCopy = nullptr);

  /// Checks the reads of instruction `i` (in step `step`) against the plan.
  Status checkReads(int64_t i, int64_t step) const;
  /// Fails if an access of `i` overlaps a region in flight.
  Status checkInFlight(int64_t i, const std::vector<Region> &inFlight) const;
  /// Copies the arena outside `inFlight` and `i`'s writes; fails only
  /// where a device's arena cannot be read.
  Status snapshot(int64_t i, const std::vector<Region> &inFlight);
  /// Compares with the snapshot: fails on a change outside `i`'s writes.
  Status checkUnchanged(int64_t i, const std::vector<Region> &inFlight);
  /// Records `i`'s writes (its write accesses) as done in `step`.
  void markWrites(int64_t i, int64_t step);
  /// Records a write of [offset, +bytes) by instruction `writer`.
  void markRegion(int64_t offset, int64_t bytes, int64_t writer, int64_t step);
  /// Counts `i`'s accesses and message buffer into the high-water mark.
  void touch(int64_t i);
  /// The end of the highest region any executed instruction touched.
  int64_t highWater() const { return high; }

private:
  Status fail(int64_t i, const std::string &what) const;
  /// Builds `excluded` = inFlight + i's writes, sorted by offset.
  void buildExcluded(int64_t i, const std::vector<Region> &inFlight);

  /// The arena's bytes on the host: the arena itself, or the mirror
  /// refreshed from a device's arena; null with the copy's failure.
  const uint8_t *hostView(Status &why);

  const Stream &stream;
  const uint8_t *arena;
  ArenaCopy arenaCopy;
  std::vector<uint8_t> mirror; ///< a device arena's bytes, when read
  std::vector<int32_t> writer;     ///< per granule: stream index or -1
  std::vector<int32_t> writerStep; ///< per granule: step or -1 (host)
  std::vector<uint8_t> copy;       ///< the snapshot
  std::vector<Region> excluded;    ///< scratch, reserved up front
  int64_t high = 0;
};

} // namespace pipert

#endif // PIPERT_SHADOW_H
