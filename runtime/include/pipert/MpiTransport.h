//===- MpiTransport.h - one rank per process over MPI -*- C++ -*-===//
//
// The `mpi` transport: each process (started by `mpirun -np RANKS`) runs
// one rank of the plan with the communication model of Transport.h. Posts
// are MPI_Issend / MPI_Irecv (a synchronous send completes only once its
// recv matched: the rendezvous of the model) tagged with the channel, the
// chunk and the micro-batch, so messages of one (sender, receiver, kind)
// match in posting order. Every blocking point polls MPI_Test with a short,
// growing sleep: ranks sharing cores never spin, and every wait has a
// deadline. The collectives are the nccl transport's exact ones
// (ExactCollectives.h): point-to-point exchanges on the group's
// communicator and sums in rank order, element by element, exactly like
// the local transport, so the two give the same bits (MPI_Allreduce's
// order is unspecified), and every mpi run exercises the plans the nccl
// transport runs on GPUs. Both sides' order on every pair and group was
// proven by the compiler, which gave each stream its communicators
// (CommLayout.h); a process reads its own stream only. A failing rank
// tells the others, which stop waiting at once.
//
// This header does not include <mpi.h>: the plan executable's main() links
// it without MPI's headers.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_MPITRANSPORT_H
#define PIPERT_MPITRANSPORT_H

#include "pipert/Transport.h"

#include <memory>
#include <string>
#include <vector>

namespace pipert {

/// The process's MPI environment (MPI_Init_thread .. MPI_Finalize).
class MpiSession {
public:
  /// Initialises MPI with MPI_THREAD_SERIALIZED (the rank's thread, not the
  /// main thread, makes the calls, never two at once).
  static Status init(int *argc, char ***argv);
  static bool active();
  static int32_t rank();
  static int32_t size();
  /// Every process says whether it succeeded; returns the lowest rank that
  /// failed, or -1 when all succeeded. Blocks passively until all answered
  /// or the deadline passed (then returns -2).
  static int32_t firstFailure(bool ok, Clock::time_point deadline);
  /// Whether every process holds the same `value` (one reduction of four
  /// words): 1 when they do, 0 when they do not, -2 when the others did not
  /// answer by the deadline.
  static int32_t sameEverywhere(uint64_t value, Clock::time_point deadline);
  /// Ends MPI normally (every process must call it).
  static void finalize();
  /// Ends every process of the job with `code` (after a failure that the
  /// other processes may not know of).
  [[noreturn]] static void abortAll(int code);
};

/// The transport of one process's rank.
class MpiTransport : public Transport {
public:
  ~MpiTransport() override;
  /// Sizes the request tables and all-reduce buffers from the stream of
  /// this process's rank (MpiSession::rank()), and creates the groups'
  /// communicators from the stream's table, one split a round.
  /// Collective: every process calls it; where one process's stream
  /// fails its checks, every process returns a failure (agreed before
  /// `deadline`) before any communicator is made: the failing process its
  /// reason, the others one whose rank() is the failing rank.
  static Status create(const Stream &mine,
                       const std::vector<std::vector<int32_t>> &groups,
                       std::unique_ptr<MpiTransport> &out,
                       Clock::time_point deadline = Clock::time_point::max());

  Status postSend(int32_t rank, int32_t peer, Channel channel, int32_t req,
                  const Message &msg) override;
  Status postRecv(int32_t rank, int32_t peer, Channel channel, int32_t req,
                  const Message &msg) override;
  Status wait(int32_t rank, int32_t req, Clock::time_point deadline) override;
  Status allReduce(int32_t rank, int32_t group, int32_t bucket, void *data,
                   int64_t count, DType dtype,
                   Clock::time_point deadline) override;
  /// ZeRO's collectives: each member's parts travel to the members that
  /// need them (MPI_Ialltoallv, MPI_Iallgatherv) behind a header that
  /// names a mismatch; sums in member order, as allReduce's.
  Status reduceScatter(int32_t rank, int32_t group, int32_t bucket,
                       void *data, int64_t count, DType dtype,
                       const Part *parts, int32_t partCount,
                       Clock::time_point deadline) override;
  Status allGatherParts(int32_t rank, int32_t group, int32_t bucket,
                        void *data, int64_t count, DType dtype,
                        const Part *parts, int32_t partCount,
                        Clock::time_point deadline) override;
  void abort(const std::string &reason) override;
  bool runsAllRanks() const override { return false; }
  Status allGather(int32_t rank, const void *mine, void *all, int64_t bytes,
                   Clock::time_point deadline) override;
  Status reduceWorld(int32_t rank, int64_t *data, int64_t count, WorldOp op,
                     Clock::time_point deadline) override;

  /// Collects `mine` of every rank at rank 0 (`all` concatenates them in
  /// rank order, `sizes` gives each rank's bytes; both empty elsewhere).
  Status gatherAtRoot(int32_t rank, const void *mine, int64_t bytes,
                      std::vector<uint8_t> &all, std::vector<int64_t> &sizes,
                      Clock::time_point deadline) override;

private:
  struct Impl;
  explicit MpiTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

} // namespace pipert

#endif // PIPERT_MPITRANSPORT_H
