//===- DeviceQueues.h - a device's streams as a transport orders them -*- C++
//-*-===//
//
// The `cuda-local` transport is the local transport (LocalTransport.h) with
// the bytes of a message moved by the device instead of the host: every
// rank has a compute stream (where its kernels run) and a transfer stream
// (where the messages it receives are copied), and events order the two
// (docs/CUDA.md, "Transfers ordered by events"):
//
//   post (send or recv)  an event on the poster's compute stream: the
//                        message's buffer is ready (send) or free (recv)
//   match                on the receiver's transfer stream: wait for both
//                        posts' events, copy, record one event per side
//   wait                 the waiter's compute stream waits for its side's
//                        event; the host goes on at once
//
// No host thread blocks on the device for a message, nor for a
// collective: the exact collectives' plans (ExactCollectives.h) run as
// transfers between the members' streams and sums on their compute
// streams (DeviceCollectives.h). This interface is
// what the transport needs of the device; the cuda target implements it
// (runtime/kernels/cuda/Queues.cpp), and a fake that defers every copy to
// the latest moment the events allow tests the ordering on the CPU
// (test/unit/runtime-exec/DeviceQueuesTest.cpp). Events are made before
// the first step and reused: nothing is created in the training loop.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_DEVICEQUEUES_H
#define PIPERT_DEVICEQUEUES_H

#include "pipert/ExactCollectives.h"
#include "pipert/Status.h"

#include <cstdint>

namespace pipert {

/// A device's compute and transfer streams per rank, and events on them.
/// Every call may come from any rank's thread; a failure says what the
/// device refused.
class DeviceQueues {
public:
  /// An event of one device (cudaEvent_t on the cuda target).
  using Event = void *;

  virtual ~DeviceQueues() = default;
  /// The device `rank`'s streams run on (an event recorded on a stream
  /// must belong to the stream's device).
  virtual int32_t deviceOf(int32_t rank) const = 0;
  /// A new event of `device`, never recorded yet.
  virtual Status createEvent(int32_t device, Event &out) = 0;
  virtual void destroyEvent(Event event) = 0;
  /// Records on `rank`'s compute stream: everything launched there so far.
  virtual Status recordCompute(int32_t rank, Event event) = 0;
  /// On `rank`'s transfer stream: waits for the `afterCount` events of
  /// `after`, copies `bytes` from `src` to `dst` (any ranks' arenas), then
  /// records the `doneCount` events of `done` (events of rank's device).
  virtual Status transfer(int32_t rank, const Event *after, int32_t afterCount,
                          void *dst, const void *src, int64_t bytes,
                          const Event *done, int32_t doneCount) = 0;
  /// `rank`'s compute stream waits for `event` (recorded before): what it
  /// launches next runs after the event's work. The host does not block.
  virtual Status computeWaits(int32_t rank, Event event) = 0;
  /// The host waits until everything launched on `rank`'s streams is done
  /// (before host code reads its arena, and at the end of a run).
  virtual Status drain(int32_t rank) = 0;
  /// The run is over (a rank failed): a host thread waiting for the
  /// device stops waiting and fails, since a stream may wait on an event
  /// of a faulted device that never completes.
  virtual void abandon() {}

  // The exact collectives on the device (DeviceCollectives.h).

  /// `bytes` of memory on `rank`'s device, outside every arena (a
  /// collective's staging); made before the first step.
  virtual Status allocate(int32_t rank, int64_t bytes, void *&out) = 0;
  /// Gives back what allocate made for `rank` (null: nothing).
  virtual void release(int32_t rank, void *memory) = 0;
  /// On `rank`'s compute stream: one ordered sum of member `me` of
  /// `members` (ExactCollectives.h), its operand `operand`, the others'
  /// copies in `staging` (both on `rank`'s device).
  virtual Status sum(int32_t rank, DType dtype, void *operand,
                     const void *staging, const OrderedSum &s,
                     int32_t members, int32_t me) = 0;
};

} // namespace pipert

#endif // PIPERT_DEVICEQUEUES_H
