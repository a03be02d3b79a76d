//===- DeviceCollectives.h - cuda-local's collectives on the device -*- C++ -*-===//
//
// The `cuda-local` transport's all-reduces, reduce-scatters and all-gathers
// without the host: the exact collectives' plans (ExactCollectives.h, the
// nccl transport's) carried out by a device's queues (DeviceQueues.h), so
// the bits are the local transport's and no rank's host waits for its
// device. For each collective, once every member has joined, the last one
// enqueues for all:
//
//   post     each member records `posted` on its compute stream: its
//            operand is final
//   gather   each move on its receiver's transfer stream, after both
//            members' `posted`; the receiver's last one records `gathered`
//   sum      a member with sums: its compute stream waits for its own
//            `gathered` (the moves into its staging; no move reads the
//            part of its operand it sums into), sums, records `summed`
//   spread   each move on its receiver's transfer stream, after both
//            members' `posted` and every member's end of the first half
//            (`summed`, else `gathered`); the receiver's last one records
//            `done`
//   end      every member's compute stream waits for every member's last
//            event, so no member writes its operand (or sums into its
//            staging again) while another's transfer may still touch it
//
// The plans, their matched moves, the staging (on each member's device,
// sized by its largest collective) and the events are made before the first
// step; a collective allocates nothing. Each wait is on an event recorded
// earlier in host order, so the device's dependencies cannot form a cycle.
// test/unit/runtime-exec/DeviceCollectivesTest.cpp proves every pair of
// conflicting accesses ordered (RaceDevice.h, a vector-clock detector).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_DEVICECOLLECTIVES_H
#define PIPERT_DEVICECOLLECTIVES_H

#include "pipert/DeviceQueues.h"
#include "pipert/ExactCollectives.h"

#include <map>
#include <memory>
#include <tuple>
#include <vector>

namespace pipert {

/// Every collective of a process's ranks, planned for one device's queues.
class DeviceCollectives {
public:
  /// Plans the collectives of `streams` (every rank of the process) in
  /// `groups` (each group's ranks ascending); makes the staging and events.
  static Status create(const std::vector<Stream> &streams,
                       const std::vector<std::vector<int32_t>> &groups,
                       DeviceQueues &device,
                       std::unique_ptr<DeviceCollectives> &out);
  ~DeviceCollectives();
  DeviceCollectives(const DeviceCollectives &) = delete;
  DeviceCollectives &operator=(const DeviceCollectives &) = delete;

  /// Member `rank` of `group` joins: its operand is final on its compute
  /// stream.
  Status post(int32_t rank, int32_t group);
  /// Enqueues collective (op, group, bucket) for all of `group`'s members,
  /// `operands[m]` member m's operand (after each member's post). The
  /// count, type and parts must be the ones the streams planned.
  Status enqueue(Opcode op, int32_t group, int32_t bucket, int64_t count,
                 DType dtype, const Part *parts, int32_t partCount,
                 const std::vector<void *> &operands);
  /// Bytes of staging made on the device, all members together.
  int64_t stagingBytes() const;

private:
  struct Collective {
    int64_t count = 0;
    DType dtype = DType::None;
    std::vector<Part> parts;
    std::vector<CollectivePlan> plans; ///< per member
    std::vector<Move> gather, spread;
    /// Per move: the receiver's last of the phase (it records the event).
    std::vector<uint8_t> lastGather, lastSpread;
  };
  struct Member {
    int32_t rank = -1;
    void *staging = nullptr;
    int64_t stagingBytes = 0;
    DeviceQueues::Event posted = nullptr, gathered = nullptr,
                        summed = nullptr, done = nullptr;
  };
  struct Group {
    std::vector<Member> members;
    std::vector<int32_t> memberIndex; ///< rank -> index or -1
    /// Per collective, scratch: each member's event that ends a phase.
    std::vector<DeviceQueues::Event> half, last;
    std::vector<DeviceQueues::Event> after; ///< a move's waits, scratch
  };
  using Key = std::tuple<int32_t, int32_t, int32_t>; ///< op, group, bucket

  explicit DeviceCollectives(DeviceQueues &device) : device(device) {}

  DeviceQueues &device;
  std::vector<Group> groups;
  std::map<Key, Collective> collectives;
};

} // namespace pipert

#endif // PIPERT_DEVICECOLLECTIVES_H
