//===- Transport.h - how ranks exchange messages and reduce -*- C++ -*-===//
//
// Every transport obeys the communication model of docs/SCHEDULES.md: posts
// never block; a send completes only when its recv is posted (rendezvous),
// the bytes moving straight into the receiver's buffer; messages between
// two ranks match in posting order per direction and kind; a collective
// completes when every member of its group joined; point-to-point and
// collectives never match each other. Waits take a deadline, so a lost
// message becomes an error instead of a hang.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_TRANSPORT_H
#define PIPERT_TRANSPORT_H

#include "pipert/Status.h"
#include "pipert/Stream.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace pipert {

using Clock = std::chrono::steady_clock;

/// How host code moves bytes between host memory and arenas, or between
/// two arenas, when the arenas are a device's memory (PlanTarget::copy,
/// done when it returns); false with why in `error`. Null: host arenas,
/// std::memcpy.
using ArenaCopy = bool (*)(void *dst, const void *src, int64_t bytes,
                           char *error, int64_t errorBytes);

/// `bytes` from `src` to `dst` through `copy` (std::memcpy where null).
inline Status copyArenaBytes(ArenaCopy copy, void *dst, const void *src,
                             int64_t bytes) {
  if (bytes <= 0)
    return Status::success();
  if (!copy) {
    std::memcpy(dst, src, size_t(bytes));
    return Status::success();
  }
  char why[256] = {0};
  if (copy(dst, src, bytes, why, sizeof why))
    return Status::success();
  return Status::failure("copying " + std::to_string(bytes) +
                         " bytes to or from an arena: " + why);
}

/// The two point-to-point channels between a pair of ranks.
enum class Channel : uint8_t { Activation = 0, Gradient = 1 };

/// A posted message: what it claims to be, where its bytes live and the
/// stream index of the posting instruction (for error messages).
struct Message {
  int32_t chunk = 0, mb = 0;
  void *data = nullptr;
  int64_t bytes = 0;
  int64_t instr = -1;
};

/// The transport interface the executor drives; one instance serves every
/// rank of the process (or, for MPI, this process's rank).
class Transport {
public:
  virtual ~Transport() = default;
  /// Posts a send of `msg` from `rank` to `peer` under request id `req`.
  virtual Status postSend(int32_t rank, int32_t peer, Channel channel,
                          int32_t req, const Message &msg) = 0;
  /// Posts a recv into `msg.data` at `rank` from `peer`.
  virtual Status postRecv(int32_t rank, int32_t peer, Channel channel,
                          int32_t req, const Message &msg) = 0;
  /// Blocks (passively) until request `req` of `rank` completed; fails on a
  /// mismatched message, the deadline, or an abort.
  virtual Status wait(int32_t rank, int32_t req, Clock::time_point deadline) = 0;
  /// Sums `count` elements at `data` over the members of `group` in rank
  /// order, leaving the identical sum on every member; blocks until all
  /// members joined.
  virtual Status allReduce(int32_t rank, int32_t group, int32_t bucket,
                           void *data, int64_t count, DType dtype,
                           Clock::time_point deadline) = 0;
  /// ZeRO-1's reduce-scatter: every member passes the same `parts` of the
  /// operand (`count` elements at `data`; byte ranges from its start, each
  /// naming its member rank); each member's own parts get the group's sum
  /// in rank order, the same per element as allReduce's, and its other
  /// bytes are left as they were. Blocks until all members joined.
  virtual Status reduceScatter(int32_t rank, int32_t group, int32_t bucket,
                               void *data, int64_t count, DType dtype,
                               const Part *parts, int32_t partCount,
                               Clock::time_point deadline) = 0;
  /// ZeRO-1's all-gather: with the same `parts` on every member, each
  /// member's parts of its operand are copied into every other member's.
  virtual Status allGatherParts(int32_t rank, int32_t group, int32_t bucket,
                                void *data, int64_t count, DType dtype,
                                const Part *parts, int32_t partCount,
                                Clock::time_point deadline) = 0;
  /// Wakes every blocked wait with `reason`; later calls fail at once.
  virtual void abort(const std::string &reason) = 0;
  /// At the end of `rank`'s run or at a checkpoint's step boundary, before
  /// host code reads its arena: whatever the transport still moves for it
  /// has landed when this returns (cuda-local: the rank's streams drained).
  virtual Status drain(int32_t rank) {
    (void)rank;
    return Status::success();
  }
  /// Whether this process runs every rank (the local transport) or only
  /// some, the others running in other processes (MPI).
  virtual bool runsAllRanks() const { return true; }
  /// Transports that do not run every rank: gives every process the
  /// `bytes` bytes each rank contributed, in rank order (checkpoints share
  /// ZeRO's moments this way; the step's metrics use reduceWorld, whose
  /// size does not grow with the ranks). Blocks passively until all
  /// contributed or the deadline.
  virtual Status allGather(int32_t rank, const void *mine, void *all,
                           int64_t bytes, Clock::time_point deadline) {
    (void)mine, (void)all, (void)bytes, (void)deadline;
    return Status::failure("this transport runs every rank in one process "
                           "and has no allGather",
                           rank);
  }
  /// How reduceWorld combines the ranks' words.
  enum class WorldOp { Sum, Max };
  /// Transports that do not run every rank: replaces the `count` words at
  /// `data` on every process by their element-wise sum (or maximum) over
  /// all ranks. Integer operations, so every reduction order the library
  /// picks gives the same words (the executor's step metrics: ExactSum.h).
  /// Blocks passively until all contributed or the deadline.
  virtual Status reduceWorld(int32_t rank, int64_t *data, int64_t count,
                             WorldOp op, Clock::time_point deadline) {
    (void)data, (void)count, (void)op, (void)deadline;
    return Status::failure("this transport runs every rank in one process "
                           "and has no reduceWorld",
                           rank);
  }
  /// Transports that do not run every rank: collects `mine` of every rank
  /// at rank 0 (`all` concatenates them in rank order, `sizes` gives each
  /// rank's bytes; both empty elsewhere). Collective.
  virtual Status gatherAtRoot(int32_t rank, const void *mine, int64_t bytes,
                              std::vector<uint8_t> &all,
                              std::vector<int64_t> &sizes,
                              Clock::time_point deadline) {
    (void)mine, (void)bytes, (void)all, (void)sizes, (void)deadline;
    return Status::failure("this transport runs every rank in one process "
                           "and has no gatherAtRoot",
                           rank);
  }
};

} // namespace pipert

#endif // PIPERT_TRANSPORT_H
