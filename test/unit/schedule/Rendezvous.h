//===- Rendezvous.h - in-process transport with pipec's semantics -*- C++ -*-===//
//
// Ranks as threads of one process, exchanging messages under exactly the
// communication model the abstract machine assumes: posts never block; a
// send completes only when its recv is posted (the data is copied at that
// moment, so nothing is buffered); messages match in posting order per
// (sender, receiver, kind); a collective completes when every member of its
// group joined (the k-th of a group on each member meet; groups are
// independent channels);
// point-to-point and collectives are separate channels. The schedule tests
// run schedules on it to confirm the machine's verdicts (test-only: the
// runtime's transports implement the same model on their own).
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_TEST_UNIT_SCHEDULE_RENDEZVOUS_H
#define PIPEC_TEST_UNIT_SCHEDULE_RENDEZVOUS_H

#include "compiler/schedule/Machine.h"
#include "compiler/schedule/Schedule.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace pipec::schedule {

/// A message: what it claims to be (chunk, micro-batch) and its bytes.
struct Payload {
  int32_t chunk = 0, mb = 0;
  void *data = nullptr;
  size_t bytes = 0;
};

/// The transport shared by all rank threads.
class RendezvousTransport {
public:
  using Clock = std::chrono::steady_clock;
  /// `groups[g]` lists the members of group g; an empty table means group
  /// 0 alone, holding every rank.
  explicit RendezvousTransport(int32_t ranks,
                               std::vector<std::vector<int32_t>> groups = {});

  /// Posts a send of `kind` (0 activation, 1 gradient); returns its handle.
  int64_t postSend(int32_t src, int32_t dst, int kind, Payload payload);
  /// Posts a recv into `payload.data`; returns its handle.
  int64_t postRecv(int32_t dst, int32_t src, int kind, Payload payload);
  /// Blocks until the request completed; false if the deadline passed.
  bool wait(int64_t handle, Clock::time_point deadline);
  /// Joins `rank`'s next collective of `group` and blocks until every member
  /// of the group joined it; false if the deadline passed. A rank outside
  /// the group (or an unknown group) is recorded as a mismatch and returns
  /// at once.
  bool joinCollective(int32_t rank, int32_t group, int32_t bucket,
                      Clock::time_point deadline);
  /// The first disagreement between a matched send and recv, or "".
  std::string mismatch() const;

private:
  struct Request {
    int32_t rank;
    Payload payload;
    bool done = false;
  };
  struct Channel {
    std::vector<int64_t> sends, recvs;
    size_t sendHead = 0, recvHead = 0;
  };
  int64_t post(int32_t me, int64_t channel, bool send, Payload payload);

  int32_t ranks;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<Request> requests;
  std::unordered_map<int64_t, Channel> channels;
  /// Per group: its members, collectives joined per rank, ranks joined and
  /// bucket per collective instance.
  struct Group {
    std::vector<int32_t> members;
    std::vector<int32_t> joinedBy;
    std::vector<int32_t> joinCount, bucketOf;
  };
  std::vector<Group> groups;
  std::string firstMismatch;
};

/// Runs every rank's stream on its own thread over a RendezvousTransport;
/// compute instructions do nothing. A wait that does not complete within
/// `timeout` counts as a deadlock. Returns Completed, Deadlock, Mismatch or
/// Malformed, like the abstract machine.
Verdict runOnThreads(const Schedule &schedule,
                     std::chrono::milliseconds timeout);

} // namespace pipec::schedule

#endif // PIPEC_TEST_UNIT_SCHEDULE_RENDEZVOUS_H
