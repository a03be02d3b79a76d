//===- LocalTransport.h - ranks as threads of one process -*- C++ -*-===//
//
// The `local` transport: every table it needs (request slots per rank,
// posting-order queues per channel, collective state per group) is sized
// from the streams before the first step, so posting, matching and waiting
// allocate nothing. Waits are passive (condition variables, one per rank),
// so ranks sharing cores never spin. All-reduce sums in rank order, element
// by element, and writes the same sum to every member: tied copies and
// replicated gradients stay bitwise equal. ZeRO's reduce-scatter makes the
// same sums for each member's own parts only; its all-gather copies each
// member's parts to the others.
//
// With a device's queues (DeviceQueues.h) it is the `cuda-local`
// transport: a matched message is copied on the receiver's transfer stream
// between events of both ranks' compute streams, and a wait only makes the
// waiter's compute stream wait; the events are made here, before the first
// step. Its collectives run on the device too (DeviceCollectives.h): the
// last member to join enqueues the exact collective's transfers and sums
// for all, and no host waits for the device. Without the queues (host
// arenas, or device arenas the host reaches through `copy`) the bytes move
// when the second side posts, and a collective is summed on the host.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_LOCALTRANSPORT_H
#define PIPERT_LOCALTRANSPORT_H

#include "pipert/DeviceCollectives.h"
#include "pipert/DeviceQueues.h"
#include "pipert/Transport.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

namespace pipert {

/// In-process transport for ranks running as threads.
class LocalTransport : public Transport {
public:
  /// Sizes the tables from every rank's stream; `groups` lists each
  /// group's ranks in ascending order (group 0: all ranks).
  /// `copy` reaches device arenas (null: host arenas, memcpy); with it the
  /// all-reduce sums in host staging buffers sized here. `queues` (with
  /// `copy`) moves the messages and carries out the collectives on the
  /// device, ordered by events; it must outlive the transport.
  static Status create(const std::vector<Stream> &streams,
                       const std::vector<std::vector<int32_t>> &groups,
                       std::unique_ptr<LocalTransport> &out,
                       ArenaCopy copy = nullptr,
                       DeviceQueues *queues = nullptr);
  ~LocalTransport() override;

  Status postSend(int32_t rank, int32_t peer, Channel channel, int32_t req,
                  const Message &msg) override;
  Status postRecv(int32_t rank, int32_t peer, Channel channel, int32_t req,
                  const Message &msg) override;
  Status wait(int32_t rank, int32_t req, Clock::time_point deadline) override;
  Status allReduce(int32_t rank, int32_t group, int32_t bucket, void *data,
                   int64_t count, DType dtype,
                   Clock::time_point deadline) override;
  Status reduceScatter(int32_t rank, int32_t group, int32_t bucket,
                       void *data, int64_t count, DType dtype,
                       const Part *parts, int32_t partCount,
                       Clock::time_point deadline) override;
  Status allGatherParts(int32_t rank, int32_t group, int32_t bucket,
                        void *data, int64_t count, DType dtype,
                        const Part *parts, int32_t partCount,
                        Clock::time_point deadline) override;
  void abort(const std::string &reason) override;
  Status drain(int32_t rank) override;

private:
  struct Request {
    Message msg;
    int32_t peer = -1;
    Channel channel = Channel::Activation;
    bool send = false;
    bool pending = false; ///< posted, not yet waited
    bool done = false;    ///< matched; the bytes have moved
    std::string error;    ///< a mismatch or a failed move (preallocated)
    /// cuda-local: recorded on the poster's compute stream at the post.
    DeviceQueues::Event posted = nullptr;
    /// cuda-local: the events a transfer records for this side, one per
    /// device a transfer of this request runs on (the receiver's), and the
    /// one the last match chose, which the wait waits for.
    std::vector<std::pair<int32_t, DeviceQueues::Event>> landed;
    DeviceQueues::Event arrived = nullptr;
  };
  /// Unmatched posts of one (sender, receiver, channel), in posting order;
  /// a fixed ring because at most one side has unmatched posts at a time.
  struct Queue {
    std::vector<int32_t> ring; ///< request ids of the posting rank
    size_t head = 0, count = 0;
    bool holdsSends = false;
  };
  struct Group {
    std::vector<int32_t> members;
    std::vector<int32_t> memberIndex; ///< rank -> index or -1
    std::vector<void *> data;
    int64_t generation = 0;
    int32_t joined = 0;
    Opcode op = Opcode::AllReduce;
    int32_t bucket = 0;
    /// The first member's parts (its stream's, alive for the run).
    const Part *parts = nullptr;
    int32_t partCount = 0;
    int64_t count = 0;
    DType dtype = DType::None;
    std::string error;
    /// Device arenas: each member's bytes on the host, and pointers to them.
    std::vector<std::vector<double>> staging;
    std::vector<void *> staged;
    /// Where error happened ("through the host", "on the device"); null:
    /// a mismatch of the members' calls.
    const char *failedAt = nullptr;
  };

  LocalTransport() = default;
  Status post(int32_t rank, int32_t peer, Channel channel, int32_t req,
              const Message &msg, bool send);
  /// An all-reduce, reduce-scatter or all-gather: the last member to join
  /// does the work for all, under the lock.
  Status collective(Opcode op, int32_t rank, int32_t group, int32_t bucket,
                    void *data, int64_t count, DType dtype, const Part *parts,
                    int32_t partCount, Clock::time_point deadline);
  Queue &queue(int32_t src, int32_t dst, Channel channel) {
    return queues[(size_t(src) * ranks + size_t(dst)) * 2 + size_t(channel)];
  }

  /// The event of `req` for a transfer on `device`, or null.
  static DeviceQueues::Event landedOn(const Request &req, int32_t device);
  /// Makes the posted and landed events of every request (cuda-local).
  Status createEvents(const std::vector<Stream> &streams);

  int32_t ranks = 0;
  ArenaCopy copy = nullptr;
  DeviceQueues *device = nullptr; ///< cuda-local: the device's queues
  /// cuda-local: the collectives, carried out by `device`.
  std::unique_ptr<DeviceCollectives> onDevice;
  std::mutex mu;
  std::vector<std::unique_ptr<std::condition_variable>> cvs; ///< per rank
  std::vector<std::vector<Request>> requests;                ///< [rank][req]
  std::vector<Queue> queues;
  std::vector<Group> groups;
  bool aborted = false;
  std::string abortReason;
};

} // namespace pipert

#endif // PIPERT_LOCALTRANSPORT_H
