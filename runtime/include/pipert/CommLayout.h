//===- CommLayout.h - the communicators of one process per rank -*- C++ -*-===//
//
// A transport with one process per rank over a library whose operations on
// one communicator run in issue order on every member (NCCL) realises the
// communication model of Transport.h only with the right communicators:
//
//   a pair     one per direction and channel (src -> dst, activations or
//              gradients): two members, src issues only sends, dst only
//              recvs, each in its stream's posting order. That is the
//              model's FIFO per (sender, receiver, kind) exactly, so a send
//              blocks nothing but its own channel, as a rendezvous does,
//              and the compiler's deadlock proof holds for the device
//              streams unchanged;
//   a group    one per group a collective uses, its members in ascending
//              rank order (the order the sums run in). Groups with the
//              same members share one (a pipeline's tied-embedding group
//              and its norm group are both its first and last ranks) when
//              every member issues their collectives in the same order,
//              so one communicator meets them in that order.
//
// The layout is created from one world communicator by ncclCommSplit calls
// that every rank joins; in one call a rank is in at most one new
// communicator, so the communicators are coloured into rounds (greedily,
// in a fixed order): round k's call gives each rank the communicator it
// belongs to in round k, or none.
//
// checkCommLayout proves what the library cannot check while running
// (there, a mismatch is a hang or garbage): per pair, the sender's n-th
// send and the receiver's n-th recv claim the same chunk, micro-batch and
// bytes; per group, every member issues the same collectives (kind,
// bucket, count, type, parts) in the same order.
//
// Where it happens: the compiler plans and proves the layout over every
// rank's stream, once, and writes each rank's part of it into that rank's
// stream (attachComms). A process then reads its own stream and nothing
// else (commViewOf): at 220,000 ranks, a process reading every stream
// would read the whole plan, and every process would derive the same
// layout again.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_COMMLAYOUT_H
#define PIPERT_COMMLAYOUT_H

#include "pipert/Status.h"
#include "pipert/Stream.h"
#include "pipert/Transport.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipert {

/// One communicator of the layout.
struct CommSpec {
  /// A pair carries `channel` from members[0] (src) to members[1] (dst);
  /// a group communicator carries the plan's groups `groups` (ascending;
  /// more than one when they have the same members), `group` the first.
  bool pair = false;
  Channel channel = Channel::Activation;
  int32_t group = -1;
  std::vector<int32_t> groups;
  /// A member's index is its rank in the communicator: a pair's sender
  /// then its receiver, a group's members ascending (the split's key).
  std::vector<int32_t> members;
  /// The split call (round) that creates it.
  int32_t round = 0;
  /// Its index in the plan's whole layout: the split's colour, the same in
  /// every member's view (in the whole layout, its own index).
  int32_t id = 0;
};

/// Every communicator of a plan, or one rank's view of them (commViewOf),
/// and how to find them.
struct CommLayout {
  int32_t ranks = 0;
  std::vector<CommSpec> comms;
  int32_t rounds = 0;
  /// The pair communicator of (src, dst, channel), or -1.
  int32_t pairOf(int32_t src, int32_t dst, Channel channel) const;
  /// The communicator of `group`, or -1 when no collective uses it.
  int32_t groupOf(int32_t group) const;
  /// The communicator `rank` joins in `round`, or -1 (NCCL_SPLIT_NOCOLOR).
  int32_t colorOf(int32_t rank, int32_t round) const;
  /// The communicators `rank` is a member of, ascending.
  std::vector<int32_t> commsOf(int32_t rank) const;

  // Lookup tables filled by planComms.
  std::vector<int64_t> pairKeys;   ///< (src * ranks + dst) * 2 + channel, ascending
  std::vector<int32_t> pairIndex;  ///< the communicator of pairKeys[k]
  std::vector<int32_t> groupIndex; ///< per plan group
  std::vector<int32_t> roundColor; ///< rank * rounds + round (a view: round)
  /// -1: the whole layout; else the rank whose view this is: comms holds
  /// its communicators only (their ids index the whole layout).
  int32_t only = -1;
};

/// The communicators the streams use: a pair per (src, dst, channel) with
/// at least one message, a group communicator per set of groups with the
/// same members and at least one collective (merged only where every
/// member issues their collectives in the same order).
/// `groups` as in the manifest (ascending members). Fails on a stream
/// that names a rank or group out of range.
Status planComms(const std::vector<Stream> &streams,
                 const std::vector<std::vector<int32_t>> &groups,
                 CommLayout &out);

/// planComms over the D P streams of a plan of D replicas, given replica
/// 0's P streams alone (`zero`): replica k's rank r + k P runs rank r's
/// stream moved into it (PlanStreams.h), its peers by k P, its replica's
/// groups g < G by k G; the data-parallel groups (D G and above) span the
/// replicas. The layout is the one planComms would plan from all D P
/// streams (PlanStreamsTest holds the two equal), in memory linear in the
/// communicators, not in the instructions of D P streams. Fails where
/// replica 0 names another replica's rank or group.
Status planReplicatedComms(const std::vector<Stream> &zero,
                           const std::vector<std::vector<int32_t>> &groups,
                           int32_t replicas, int32_t pipelineGroups,
                           CommLayout &out);

/// The static check above; the failure names both sides' instructions.
/// streams[r] is rank r's; ranks past the streams given are not compared
/// (with replica 0's streams alone, the other replicas run moved copies of
/// them, which meet as replica 0 does).
Status checkCommLayout(const std::vector<Stream> &streams,
                       const CommLayout &layout);

/// checkCommLayout, and the split rounds within what a stream may announce
/// (kMaxCommRounds).
Status proveCommLayout(const std::vector<Stream> &streams,
                       const CommLayout &layout);

/// Writes each stream's communicators of `layout` into it (Stream::comms,
/// commRounds).
void attachLayout(std::vector<Stream> &streams, const CommLayout &layout);

/// The compiler's step: plans the layout over every rank's stream, proves
/// it, and writes each rank's communicators into its stream
/// (Stream::comms, commRounds).
Status attachComms(std::vector<Stream> &streams,
                   const std::vector<std::vector<int32_t>> &groups);

/// A process's step: rank `s.rank`'s view of the layout, from the table in
/// its stream alone. Fails, naming the instruction, where a post or a
/// collective of the stream has no communicator there (a stream built by
/// hand, or another plan's), and where a group communicator's members are
/// not the manifest's `groups`.
Status commViewOf(const Stream &s,
                  const std::vector<std::vector<int32_t>> &groups,
                  CommLayout &out);

/// "group 3" or "groups 0+1": the plan groups a communicator carries.
std::string groupsName(const CommSpec &spec);

} // namespace pipert

#endif // PIPERT_COMMLAYOUT_H
