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
// Every process holds every rank's stream, so every process derives the
// same layout. The layout is created from one world communicator by
// ncclCommSplit calls that every rank joins; in one call a rank is in at
// most one new communicator, so the communicators are coloured into
// rounds (greedily, in a fixed order): round k's call gives each rank the
// communicator it belongs to in round k, or none.
//
// checkCommLayout proves what the library cannot check while running
// (there, a mismatch is a hang or garbage): per pair, the sender's n-th
// send and the receiver's n-th recv claim the same chunk, micro-batch and
// bytes; per group, every member issues the same collectives (kind,
// bucket, count, type, parts) in the same order.
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
};

/// Every communicator of a plan, and how to find them.
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
  std::vector<int32_t> roundColor; ///< rank * rounds + round
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

/// The static check above; the failure names both sides' instructions.

/// "group 3" or "groups 0+1": the plan groups a communicator carries.
std::string groupsName(const CommSpec &spec);
Status checkCommLayout(const std::vector<Stream> &streams,
                       const CommLayout &layout);

} // namespace pipert

#endif // PIPERT_COMMLAYOUT_H
