//===- ExactCollectives.h - collectives as exchanges and ordered sums -*- C++ -*-===//
//
// The numerics contract (docs/NUMERICS.md) sums a collective's operands in
// member order, element by element, so a gradient's bits do not depend on
// the layout. NCCL's own all-reduce sums in its ring's or tree's order,
// which changes with the member count, the algorithm and the message size.
// So the nccl transport builds every collective from point-to-point
// exchanges and sums of its own, planned here:
//
//   all-reduce      the operand cut into one shard per member; gather:
//                   each member sends shard j to member j; sum: member j
//                   adds the D copies of its shard in member order; spread:
//                   each member sends its summed shard to all others. Each
//                   member sends and receives 2 (D - 1) / D of the operand,
//                   what a ring all-reduce moves.
//   reduce-scatter  (ZeRO-1) the same gather and sum over the members' own
//                   parts; no spread.
//   all-gather      (ZeRO-1) each member sends its parts to all others.
//
// A plan is data (which bytes go to or come from which member, which
// ranges are summed from which staging slots); runCollectiveOnHost carries
// every member's plan out with memcpy and the host's sums, which is how
// the tests hold the plans to the local transport's bits, and the nccl
// transport carries it out with ncclSend/ncclRecv in one group per phase
// and a summing kernel.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_EXACTCOLLECTIVES_H
#define PIPERT_EXACTCOLLECTIVES_H

#include "pipert/Status.h"
#include "pipert/Stream.h"

#include <cstdint>
#include <vector>

namespace pipert {

/// One point-to-point transfer of a phase.
struct Exchange {
  int32_t peer = 0; ///< member index
  bool send = false;
  /// Where the bytes are (send) or go (recv): the staging buffer, or the
  /// operand.
  bool staged = false;
  int64_t offset = 0, bytes = 0;
};

/// operand[offset, +bytes) = the sum over members m, in order, of member
/// m's copy: the operand itself for this member, staging[stage +
/// stagingSlot(m, me) * bytes, +bytes) for the others (a member keeps no
/// slot for itself).
struct OrderedSum {
  int64_t offset = 0, bytes = 0, stage = 0;
};

/// Member m's slot among member `me`'s staged copies: the members before
/// `me` in order, then those after it.
inline int64_t stagingSlot(int32_t m, int32_t me) { return m < me ? m : m - 1; }

/// One member's part of one collective.
struct CollectivePlan {
  std::vector<Exchange> gather; ///< phase 1, one group of transfers
  std::vector<OrderedSum> sums; ///< after phase 1
  std::vector<Exchange> spread; ///< phase 2, after the sums
  int64_t stagingBytes = 0;
};

/// Member `me` of `members`' all-reduce of `count` elements of `dtype`.
Status planAllReduce(int32_t members, int32_t me, int64_t count, DType dtype,
                     CollectivePlan &out);
/// Member `me`'s reduce-scatter over `parts` (their ranks among `ranks`,
/// the group's members ascending).
Status planReduceScatter(const std::vector<int32_t> &ranks, int32_t me,
                         int64_t count, DType dtype, const Part *parts,
                         int32_t partCount, CollectivePlan &out);
/// Member `me`'s all-gather of `parts`.
Status planAllGatherParts(const std::vector<int32_t> &ranks, int32_t me,
                          int64_t count, DType dtype, const Part *parts,
                          int32_t partCount, CollectivePlan &out);

/// The plan of `rank` (a member of `members`, ascending) for collective
/// `op` (AllReduce, ReduceScatter or AllGather): the one the transports
/// make once per collective of their stream and reuse every step.
Status planCollective(Opcode op, const std::vector<int32_t> &members,
                      int32_t rank, int64_t count, DType dtype,
                      const Part *parts, int32_t partCount,
                      CollectivePlan &out);

/// One transfer of a phase with both ends known: `bytes` from member
/// `from`'s operand or staging (`fromStaged`) at `fromOffset` to member
/// `to`'s at `toOffset`.
struct Move {
  int32_t from = 0, to = 0;
  bool fromStaged = false, toStaged = false;
  int64_t fromOffset = 0, toOffset = 0, bytes = 0;
};

/// The phase `which` (&CollectivePlan::gather or ::spread) of every
/// member's plan as moves: the n-th send from a to b meets b's n-th recv
/// from a, as NCCL matches them. A send without its recv, or of other
/// bytes, fails, the phase named by `name`.
Status matchPhase(const std::vector<CollectivePlan> &plans,
                  std::vector<Exchange> CollectivePlan::*which,
                  const char *name, std::vector<Move> &out);

/// One sum of `me`'s plan on host memory: operand[s.offset, +s.bytes) the
/// members' copies added in member order (the mpi transport's and
/// runCollectiveOnHost's; OrderedSum.cu is the device's).
void sumOnHost(DType dtype, void *operand, const uint8_t *staging,
               const OrderedSum &s, int32_t members, int32_t me);

/// Carries out every member's plan on host memory: `operands[m]` is member
/// m's operand, `plans[m]` its plan. Each phase's sends are matched with
/// the peer's recvs in order, as NCCL matches them; a transfer without a
/// partner, or of other bytes, fails.
Status runCollectiveOnHost(const std::vector<CollectivePlan> &plans,
                           const std::vector<void *> &operands, DType dtype);

} // namespace pipert

#endif // PIPERT_EXACTCOLLECTIVES_H
