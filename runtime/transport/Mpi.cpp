//===- Mpi.cpp - the `mpi` transport: one rank per process ----------------===//

#include "pipert/MpiTransport.h"

#include "pipert/CommLayout.h"
#include "pipert/ExactCollectives.h"

// The C API only: no C++ bindings to link (Open MPI, MPICH).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace pipert {

namespace {

/// Longest abort reason sent to the other ranks (bytes, with the NUL).
constexpr int kNoteBytes = 4096;

/// How a poll ended.
enum class Poll { Done, Failed, Aborted, Timeout };

std::string mpiError(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, size_t(len));
}

const char *channelName(Channel c, bool send) {
  if (c == Channel::Activation)
    return send ? "send_act" : "recv_act";
  return send ? "send_grad" : "recv_grad";
}

/// Sleeps after an unsuccessful test: short at first (a message usually
/// follows soon), then at most 100 us, so a waiting rank costs its core
/// almost nothing and answers within a fraction of a millisecond.
class Backoff {
public:
  void pause() {
    std::this_thread::sleep_for(std::chrono::microseconds(us));
    us = std::min(us * 2, 100);
  }

private:
  int us = 10;
};

/// Polls `req` until it completes or the deadline passes; no abort notes
/// (MpiSession has no transport).
bool pollPlain(MPI_Request *req, Clock::time_point deadline) {
  Backoff backoff;
  for (;;) {
    int flag = 0;
    MPI_Test(req, &flag, MPI_STATUS_IGNORE);
    if (flag)
      return true;
    if (Clock::now() >= deadline)
      return false;
    backoff.pause();
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// MpiSession
//===----------------------------------------------------------------------===//

Status MpiSession::init(int *argc, char ***argv) {
  int provided = 0;
  if (int rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
      rc != MPI_SUCCESS)
    return Status::failure("MPI_Init_thread failed: " + mpiError(rc));
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    return Status::failure(
        "the MPI library offers no MPI_THREAD_SERIALIZED (the rank runs on "
        "its own thread)");
  }
  return Status::success();
}

bool MpiSession::active() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

int32_t MpiSession::rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int32_t MpiSession::size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

int32_t MpiSession::firstFailure(bool ok, Clock::time_point deadline) {
  int32_t n = size();
  // On the heap: after a timeout the request is still pending, and a late
  // process would complete it into these buffers, so they are left
  // allocated then (the caller ends the job).
  auto *flags = new std::vector<char>(size_t(n), 0);
  auto *mine = new char(ok ? 1 : 0);
  MPI_Request req;
  MPI_Iallgather(mine, 1, MPI_CHAR, flags->data(), 1, MPI_CHAR,
                 MPI_COMM_WORLD, &req);
  if (!pollPlain(&req, deadline))
    return -2;
  int32_t first = -1;
  for (int32_t r = 0; r < n && first < 0; ++r)
    if (!(*flags)[size_t(r)])
      first = r;
  delete flags;
  delete mine;
  return first;
}

int32_t MpiSession::sameEverywhere(uint64_t value,
                                   Clock::time_point deadline) {
  // The halves and their negations: one MPI_MAX gives every half's
  // largest and smallest. On the heap for the reason firstFailure's are.
  const int64_t hi = int64_t(value >> 32), lo = int64_t(value & 0xffffffffu);
  auto *mine = new int64_t[4]{hi, lo, -hi, -lo};
  auto *most = new int64_t[4]{};
  MPI_Request req;
  MPI_Iallreduce(mine, most, 4, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD, &req);
  if (!pollPlain(&req, deadline))
    return -2;
  const bool same = most[0] == -most[2] && most[1] == -most[3];
  delete[] mine;
  delete[] most;
  return same ? 1 : 0;
}

void MpiSession::finalize() {
  if (active())
    MPI_Finalize();
}

void MpiSession::abortAll(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code); // MPI_Abort does not return; this keeps [[noreturn]] true
}

//===----------------------------------------------------------------------===//
// MpiTransport
//===----------------------------------------------------------------------===//

struct MpiTransport::Impl {
  struct Request {
    MPI_Request handle = MPI_REQUEST_NULL;
    Message msg;
    int32_t peer = -1;
    Channel channel = Channel::Activation;
    bool send = false;
    bool pending = false;
  };
  struct Group {
    MPI_Comm comm = MPI_COMM_NULL; ///< null where this rank is no member
    std::vector<int32_t> members;
  };
  /// A collective as the nccl transport makes it (ExactCollectives.h):
  /// exchanges on the group's communicator and sums in member order.
  Status collective(Opcode op, int32_t group, int32_t bucket, void *data,
                    int64_t count, DType dtype, const Part *parts,
                    int32_t partCount, Clock::time_point deadline);
  /// One phase's exchanges, all posted, then polled to completion.
  Status exchange(const std::vector<Exchange> &xs, int tag, Group &g,
                  uint8_t *data, const std::string &what, int32_t group,
                  Clock::time_point deadline);

  int32_t rank = 0, ranks = 0, microbatches = 0;
  MPI_Comm p2p = MPI_COMM_NULL;   ///< posts
  MPI_Comm notes = MPI_COMM_NULL; ///< abort notes
  MPI_Comm world = MPI_COMM_NULL; ///< allGather, gatherAtRoot
  std::vector<Request> requests;
  std::vector<Group> groups;      ///< per plan group
  std::vector<MPI_Comm> groupComms; ///< what groups' comms share, to free
  std::vector<uint8_t> staging; ///< the exact collectives' (sized in create)
  std::vector<MPI_Request> exchanges;
  /// The call's plan (its parts are the call's, as Transport.h says),
  /// reused so that the vectors stop growing after the first step.
  CollectivePlan plan;
  char noteIn[kNoteBytes] = {0};
  char noteOut[kNoteBytes] = {0};
  MPI_Request noteReq = MPI_REQUEST_NULL;
  std::vector<MPI_Request> noteSends;
  bool aborted = false;
  std::string abortReason;

  int tag(Channel channel, int32_t chunk, int32_t mb) const {
    return int(((int64_t(chunk) * microbatches + mb) * 2) + int(channel));
  }

  /// True once another rank's abort note arrived (or this one aborted).
  bool abortNoted() {
    if (aborted)
      return true;
    int flag = 0;
    MPI_Status st;
    MPI_Test(&noteReq, &flag, &st);
    if (!flag)
      return false;
    noteIn[kNoteBytes - 1] = 0;
    aborted = true;
    abortReason = noteIn;
    return true;
  }

  /// Polls `handle` passively until it completes, fails, an abort note
  /// arrives, or the deadline passes.
  Poll poll(MPI_Request *handle, MPI_Status *st, int &rc,
            Clock::time_point deadline) {
    Backoff backoff;
    for (;;) {
      int flag = 0;
      rc = MPI_Test(handle, &flag, st);
      if (rc != MPI_SUCCESS)
        return Poll::Failed;
      if (flag)
        return Poll::Done;
      if (abortNoted())
        return Poll::Aborted;
      if (Clock::now() >= deadline)
        return Poll::Timeout;
      backoff.pause();
    }
  }

  Status abortedStatus(int64_t instr = -1) const {
    return Status::failure("aborted: " + abortReason, rank, instr);
  }

  /// Waits for a collective over the world communicator begun as `req`;
  /// `what` names it in a failure ("the gather at rank 0").
  Status finishWorld(MPI_Request *req, const char *what,
                     Clock::time_point deadline) {
    MPI_Status st;
    int rc = MPI_SUCCESS;
    switch (poll(req, &st, rc, deadline)) {
    case Poll::Done:
      return Status::success();
    case Poll::Failed:
      return Status::failure(std::string(what) + " failed: " + mpiError(rc),
                             rank);
    case Poll::Aborted:
      return abortedStatus();
    case Poll::Timeout:
      break;
    }
    return Status::failure(
        std::string("timed out: not every rank reached ") + what, rank);
  }

  /// Names the group's ranks: "group 1 (ranks 0, 3)".
  std::string groupName(int32_t g) const {
    std::string s = "group " + std::to_string(g) + " (ranks";
    for (size_t i = 0; i < groups[size_t(g)].members.size(); ++i)
      s += (i ? ", " : " ") + std::to_string(groups[size_t(g)].members[i]);
    return s + ")";
  }

  Status post(int32_t r, int32_t peer, Channel channel, int32_t req,
              const Message &msg, bool send);
};

MpiTransport::MpiTransport(std::unique_ptr<Impl> impl)
    : impl(std::move(impl)) {}

MpiTransport::~MpiTransport() {
  if (!impl || !MpiSession::active())
    return;
  if (impl->noteReq != MPI_REQUEST_NULL) {
    MPI_Cancel(&impl->noteReq);
    MPI_Wait(&impl->noteReq, MPI_STATUS_IGNORE);
  }
  for (MPI_Request &r : impl->noteSends)
    if (r != MPI_REQUEST_NULL)
      MPI_Request_free(&r);
  for (MPI_Comm &c : impl->groupComms)
    MPI_Comm_free(&c);
  for (MPI_Comm *c : {&impl->p2p, &impl->notes, &impl->world})
    if (*c != MPI_COMM_NULL)
      MPI_Comm_free(c);
}

Status MpiTransport::create(const Stream &mine,
                            const std::vector<std::vector<int32_t>> &groups,
                            std::unique_ptr<MpiTransport> &out,
                            Clock::time_point deadline) {
  if (!MpiSession::active())
    return Status::failure("mpi transport: MPI is not initialised");
  auto impl = std::make_unique<Impl>();
  impl->rank = MpiSession::rank();
  impl->ranks = mine.ranks;
  if (MpiSession::size() != impl->ranks)
    return Status::failure(
        "mpi transport: the plan has " + std::to_string(impl->ranks) +
        " ranks but MPI started " + std::to_string(MpiSession::size()) +
        " processes (run it with mpirun -np " + std::to_string(impl->ranks) +
        ")");
  const int32_t me = impl->rank;
  if (mine.rank != me)
    return Status::failure("mpi transport: process " + std::to_string(me) +
                               " was given the stream of rank " +
                               std::to_string(mine.rank),
                           me);
  impl->microbatches = mine.microbatches;
  // What MPI cannot check while running (a mismatch would hang or sum
  // garbage): both sides of every pair and every member of every group
  // issue matching operations in one order. The compiler proved it over
  // every stream and gave each its communicators (CommLayout.h); this
  // rank's view holds every message and collective of its stream.
  CommLayout layout;
  int32_t maxReq = -1;
  int64_t stagingBytes = 0;
  auto checks = [&]() -> Status {
    if (Status st = commViewOf(mine, groups, layout); !st.ok())
      return Status::failure("mpi transport: " + st.message(), st.rank(),
                             st.instr());
    int *tagUb = nullptr, flag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tagUb, &flag);
    int64_t maxTag = flag && tagUb ? *tagUb : 32767;
    // Tags and counts of this rank's posts (the proof gives a peer's
    // matching post the same chunk, micro-batch and bytes).
    for (size_t i = 0; i < mine.instrs.size(); ++i) {
      const Instr &in = mine.instrs[i];
      if (!isPostOp(in.op))
        continue;
      auto bad = [&](const std::string &what) {
        return Status::failure("mpi transport: rank " + std::to_string(me) +
                                   " #" + std::to_string(i) + " " +
                                   describe(in) + ": " + what,
                               me, int64_t(i));
      };
      if ((int64_t(in.chunk) * impl->microbatches + in.mb) * 2 + 1 > maxTag)
        return bad("its tag (chunk x micro-batches x 2) exceeds MPI's tag "
                   "bound " + std::to_string(maxTag));
      if (in.bytes > INT_MAX)
        return bad("a message of " + std::to_string(in.bytes) +
                   " bytes exceeds MPI's int count");
      maxReq = std::max(maxReq, in.req);
    }
    // This rank's collectives, planned once (their staging sized by them).
    for (size_t i = 0; i < mine.instrs.size(); ++i) {
      const Instr &in = mine.instrs[i];
      if (!isCollectiveOp(in.op) || in.chunk < 0 ||
          size_t(in.chunk) >= groups.size())
        continue;
      const int64_t e = dtypeBytes(in.dtype);
      CollectivePlan p;
      Status made = planCollective(in.op, groups[size_t(in.chunk)], me,
                                   e ? in.bytes / e : 0, in.dtype,
                                   mine.parts.data() + in.firstPart,
                                   int32_t(in.partCount), p);
      if (!made.ok())
        return Status::failure("mpi transport: #" + std::to_string(i) + " " +
                                   describe(in) + ": " + made.message(),
                               me, int64_t(i));
      for (const auto *phase : {&p.gather, &p.spread})
        for (const Exchange &x : *phase)
          if (x.bytes > INT_MAX)
            return Status::failure("mpi transport: #" + std::to_string(i) +
                                       " " + describe(in) + " moves " +
                                       std::to_string(x.bytes) +
                                       " bytes at once, more than MPI's int "
                                       "count",
                                   me, int64_t(i));
      stagingBytes = std::max(stagingBytes, p.stagingBytes);
    }
    return Status::success();
  };
  // Each process checks its own stream alone, so the processes learn
  // whether any failed before the first collective call: one that
  // returned while the others entered MPI_Comm_dup would leave them there.
  Status checked = checks();
  const int32_t first = MpiSession::firstFailure(checked.ok(), deadline);
  if (!checked.ok())
    return checked;
  if (first == -2)
    return Status::failure("mpi transport: the other processes did not "
                           "answer before the deadline",
                           me);
  // Another process's failure, which that process reports: its rank.
  if (first >= 0)
    return Status::failure("mpi transport: rank " + std::to_string(first) +
                               " cannot run its stream (it says why)",
                           first);
  impl->requests.resize(size_t(maxReq + 1));

  // Communicators: one MPI_Comm_split a split round of the layout, which
  // every process calls; a rank's colour is its group communicator of the
  // round (pairs ride p2p with tags), so the splits are as many as the
  // rounds, not the groups. Ranks keep their world order inside each, the
  // member order. Groups with the same members may share one: every
  // member issues their collectives in one order.
  for (MPI_Comm *c : {&impl->p2p, &impl->notes, &impl->world}) {
    MPI_Comm_dup(MPI_COMM_WORLD, c);
    MPI_Comm_set_errhandler(*c, MPI_ERRORS_RETURN);
  }
  impl->groups.resize(groups.size());
  for (size_t g = 0; g < groups.size(); ++g)
    impl->groups[g].members = groups[g];
  for (int32_t k = 0; k < layout.rounds; ++k) {
    const int32_t c = layout.colorOf(me, k);
    const bool group = c >= 0 && !layout.comms[size_t(c)].pair;
    MPI_Comm made = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD,
                   group ? layout.comms[size_t(c)].id : MPI_UNDEFINED, me,
                   &made);
    if (made == MPI_COMM_NULL)
      continue;
    MPI_Comm_set_errhandler(made, MPI_ERRORS_RETURN);
    impl->groupComms.push_back(made);
    for (int32_t g : layout.comms[size_t(c)].groups)
      impl->groups[size_t(g)].comm = made;
  }
  impl->staging.assign(size_t(stagingBytes), 0);
  impl->noteSends.assign(size_t(impl->ranks), MPI_REQUEST_NULL);
  MPI_Irecv(impl->noteIn, kNoteBytes, MPI_CHAR, MPI_ANY_SOURCE, 0, impl->notes,
            &impl->noteReq);
  out.reset(new MpiTransport(std::move(impl)));
  return Status::success();
}

Status MpiTransport::Impl::post(int32_t r, int32_t peer, Channel channel,
                                int32_t req, const Message &msg, bool send) {
  if (aborted)
    return abortedStatus(msg.instr);
  if (r != rank)
    return Status::failure("mpi transport: this process runs rank " +
                               std::to_string(rank) + ", not " +
                               std::to_string(r),
                           r, msg.instr);
  if (req < 0 || size_t(req) >= requests.size() || peer < 0 || peer >= ranks ||
      peer == rank)
    return Status::failure("request " + std::to_string(req) + " or peer " +
                               std::to_string(peer) + " out of range",
                           r, msg.instr);
  Request &q = requests[size_t(req)];
  if (q.pending)
    return Status::failure("request " + std::to_string(req) +
                               " is posted again before its wait",
                           r, msg.instr);
  q.msg = msg;
  q.peer = peer;
  q.channel = channel;
  q.send = send;
  int t = tag(channel, msg.chunk, msg.mb);
  // MPI_Issend completes only when the recv matched: the model's rendezvous.
  int rc = send ? MPI_Issend(msg.data, int(msg.bytes), MPI_BYTE, peer, t, p2p,
                             &q.handle)
                : MPI_Irecv(msg.data, int(msg.bytes), MPI_BYTE, peer, t, p2p,
                            &q.handle);
  if (rc != MPI_SUCCESS)
    return Status::failure(std::string(send ? "MPI_Issend" : "MPI_Irecv") +
                               " failed: " + mpiError(rc),
                           r, msg.instr);
  q.pending = true;
  return Status::success();
}

Status MpiTransport::postSend(int32_t rank, int32_t peer, Channel channel,
                              int32_t req, const Message &msg) {
  return impl->post(rank, peer, channel, req, msg, true);
}

Status MpiTransport::postRecv(int32_t rank, int32_t peer, Channel channel,
                              int32_t req, const Message &msg) {
  return impl->post(rank, peer, channel, req, msg, false);
}

Status MpiTransport::wait(int32_t rank, int32_t req,
                          Clock::time_point deadline) {
  Impl &I = *impl;
  if (rank != I.rank || req < 0 || size_t(req) >= I.requests.size() ||
      !I.requests[size_t(req)].pending)
    return Status::failure("request " + std::to_string(req) +
                               " is not in flight",
                           rank);
  Impl::Request &q = I.requests[size_t(req)];
  q.pending = false;
  MPI_Status st;
  int rc = MPI_SUCCESS;
  Poll p = I.poll(&q.handle, &st, rc, deadline);
  auto claim = [&](int32_t chunk, int32_t mb, int64_t bytes) {
    return "chunk " + std::to_string(chunk) + " mb " + std::to_string(mb) +
           " (" + std::to_string(bytes) + " bytes)";
  };
  const std::string mine =
      "rank " + std::to_string(rank) + " #" + std::to_string(q.msg.instr);
  switch (p) {
  case Poll::Done: {
    if (q.send)
      return Status::success();
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    if (count == q.msg.bytes)
      return Status::success();
    return Status::failure(
        "mismatched message: rank " + std::to_string(q.peer) + " sent " +
            claim(q.msg.chunk, q.msg.mb, count) + ", which " + mine +
            " received as " + claim(q.msg.chunk, q.msg.mb, q.msg.bytes),
        rank, q.msg.instr);
  }
  case Poll::Failed:
    return Status::failure(
        std::string(q.send ? "send" : "recv") + " failed: " + mpiError(rc) +
            (q.send ? std::string()
                    : " (rank " + std::to_string(q.peer) + " sent more than " +
                          mine + " expected as " +
                          claim(q.msg.chunk, q.msg.mb, q.msg.bytes) + ")"),
        rank, q.msg.instr);
  case Poll::Aborted:
    return I.abortedStatus(q.msg.instr);
  case Poll::Timeout:
    break;
  }
  // A message of this channel from the peer under another tag is a send
  // the stream did not expect here (dropped or reordered on one side).
  if (!q.send) {
    int flag = 0;
    MPI_Status ps;
    MPI_Iprobe(q.peer, MPI_ANY_TAG, I.p2p, &flag, &ps);
    if (flag && ps.MPI_TAG % 2 == int(q.channel) && I.microbatches > 0) {
      int count = 0;
      MPI_Get_count(&ps, MPI_BYTE, &count);
      int32_t mb = int32_t((ps.MPI_TAG / 2) % I.microbatches);
      int32_t chunk = int32_t(ps.MPI_TAG / 2 / I.microbatches);
      return Status::failure("mismatched message: rank " +
                                 std::to_string(q.peer) + " sent " +
                                 claim(chunk, mb, count) + ", which " + mine +
                                 " expected as " +
                                 claim(q.msg.chunk, q.msg.mb, q.msg.bytes),
                             rank, q.msg.instr);
    }
  }
  return Status::failure(std::string("timed out: rank ") +
                             std::to_string(q.peer) +
                             " did not post the matching " +
                             channelName(q.channel, !q.send) + " (chunk " +
                             std::to_string(q.msg.chunk) + ", mb " +
                             std::to_string(q.msg.mb) + ")",
                         rank, q.msg.instr);
}

Status MpiTransport::allReduce(int32_t rank, int32_t group, int32_t bucket,
                               void *data, int64_t count, DType dtype,
                               Clock::time_point deadline) {
  if (rank != impl->rank)
    return Status::failure("mpi transport: this process runs rank " +
                               std::to_string(impl->rank),
                           rank);
  return impl->collective(Opcode::AllReduce, group, bucket, data, count, dtype,
                          nullptr, 0, deadline);
}

Status MpiTransport::reduceScatter(int32_t rank, int32_t group, int32_t bucket,
                                   void *data, int64_t count, DType dtype,
                                   const Part *parts, int32_t partCount,
                                   Clock::time_point deadline) {
  if (rank != impl->rank)
    return Status::failure("mpi transport: this process runs rank " +
                               std::to_string(impl->rank),
                           rank);
  return impl->collective(Opcode::ReduceScatter, group, bucket, data, count,
                          dtype, parts, partCount, deadline);
}

Status MpiTransport::allGatherParts(int32_t rank, int32_t group,
                                    int32_t bucket, void *data, int64_t count,
                                    DType dtype, const Part *parts,
                                    int32_t partCount,
                                    Clock::time_point deadline) {
  if (rank != impl->rank)
    return Status::failure("mpi transport: this process runs rank " +
                               std::to_string(impl->rank),
                           rank);
  return impl->collective(Opcode::AllGather, group, bucket, data, count, dtype,
                          parts, partCount, deadline);
}

Status MpiTransport::Impl::exchange(const std::vector<Exchange> &xs, int tag,
                                    Group &g, uint8_t *data,
                                    const std::string &what, int32_t group,
                                    Clock::time_point deadline) {
  exchanges.assign(xs.size(), MPI_REQUEST_NULL);
  // On any early return the requests still active are cancelled and
  // freed: none may later write into staging or the operand.
  auto release = [&] {
    for (MPI_Request &r : exchanges)
      if (r != MPI_REQUEST_NULL) {
        MPI_Cancel(&r);
        MPI_Request_free(&r);
      }
  };
  for (size_t k = 0; k < xs.size(); ++k) {
    const Exchange &x = xs[k];
    uint8_t *at = (x.staged ? staging.data() : data) + x.offset;
    int rc = x.send ? MPI_Isend(at, int(x.bytes), MPI_BYTE, x.peer, tag,
                                g.comm, &exchanges[k])
                    : MPI_Irecv(at, int(x.bytes), MPI_BYTE, x.peer, tag,
                                g.comm, &exchanges[k]);
    if (rc != MPI_SUCCESS) {
      release();
      return Status::failure(what + " over " + groupName(group) +
                                 " failed to start: " + mpiError(rc),
                             rank);
    }
  }
  Backoff backoff;
  for (;;) {
    int flag = 0;
    int rc = MPI_Testall(int(exchanges.size()), exchanges.data(), &flag,
                         MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) {
      release();
      return Status::failure(what + " over " + groupName(group) +
                                 " failed: " + mpiError(rc),
                             rank);
    }
    if (flag)
      return Status::success();
    if (abortNoted()) {
      release();
      return abortedStatus();
    }
    if (Clock::now() >= deadline) {
      release();
      return Status::failure("timed out: not every member of " +
                                 groupName(group) + " joined the " + what,
                             rank);
    }
    backoff.pause();
  }
}

Status MpiTransport::Impl::collective(Opcode op, int32_t group, int32_t bucket,
                                      void *data, int64_t count, DType dtype,
                                      const Part *parts, int32_t partCount,
                                      Clock::time_point deadline) {
  (void)bucket; // the order of a group's collectives is proven in create
  const std::string what = opcodeName(op);
  if (aborted)
    return abortedStatus();
  if (group < 0 || size_t(group) >= groups.size() ||
      groups[size_t(group)].comm == MPI_COMM_NULL)
    return Status::failure("rank " + std::to_string(rank) +
                               " is not a member of group " +
                               std::to_string(group),
                           rank);
  Group &g = groups[size_t(group)];
  if (Status planned = planCollective(op, g.members, rank, count, dtype, parts,
                                      partCount, plan);
      !planned.ok())
    return Status::failure(what + " of " + groupName(group) + ": " +
                               planned.message(),
                           rank);
  if (plan.stagingBytes > int64_t(staging.size()))
    return Status::failure(what + " of " + groupName(group) + " stages " +
                               std::to_string(plan.stagingBytes) +
                               " bytes, more than the streams announce",
                           rank);
  const int32_t me = int32_t(
      std::lower_bound(g.members.begin(), g.members.end(), rank) -
      g.members.begin());
  auto *bytes = static_cast<uint8_t *>(data);
  if (Status st = exchange(plan.gather, 1, g, bytes, what, group, deadline);
      !st.ok())
    return st;
  for (const OrderedSum &sum : plan.sums)
    sumOnHost(dtype, bytes, staging.data(), sum, int32_t(g.members.size()),
              me);
  return exchange(plan.spread, 2, g, bytes, what, group, deadline);
}

void MpiTransport::abort(const std::string &reason) {
  Impl &I = *impl;
  if (I.aborted)
    return;
  I.aborted = true;
  I.abortReason = reason;
  // Best effort: every other rank stops at its next poll instead of its
  // deadline. The process ends with MpiSession::abortAll, so these sends
  // need not complete.
  size_t len = std::min(reason.size(), size_t(kNoteBytes - 1));
  std::memcpy(I.noteOut, reason.data(), len);
  I.noteOut[len] = 0;
  for (int32_t r = 0; r < I.ranks; ++r)
    if (r != I.rank)
      MPI_Isend(I.noteOut, int(len + 1), MPI_CHAR, r, 0, I.notes,
                &I.noteSends[size_t(r)]);
}

Status MpiTransport::allGather(int32_t rank, const void *mine, void *all,
                               int64_t bytes, Clock::time_point deadline) {
  Impl &I = *impl;
  if (I.aborted)
    return I.abortedStatus();
  if (bytes > INT_MAX / std::max(1, I.ranks))
    return Status::failure("allGather of " + std::to_string(bytes) +
                               " bytes per rank exceeds MPI's int count",
                           rank);
  MPI_Request req;
  int rc = MPI_Iallgather(mine, int(bytes), MPI_BYTE, all, int(bytes),
                          MPI_BYTE, I.world, &req);
  if (rc != MPI_SUCCESS)
    return Status::failure("MPI_Iallgather failed: " + mpiError(rc), rank);
  return I.finishWorld(&req, "the exchange between the processes", deadline);
}

Status MpiTransport::reduceWorld(int32_t rank, int64_t *data, int64_t count,
                                 WorldOp op, Clock::time_point deadline) {
  Impl &I = *impl;
  if (I.aborted)
    return I.abortedStatus();
  if (count > INT_MAX)
    return Status::failure("reducing " + std::to_string(count) +
                               " words exceeds MPI's int count",
                           rank);
  MPI_Request req;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, data, int(count), MPI_INT64_T,
                          op == WorldOp::Sum ? MPI_SUM : MPI_MAX, I.world,
                          &req);
  if (rc != MPI_SUCCESS)
    return Status::failure("MPI_Iallreduce failed: " + mpiError(rc), rank);
  return I.finishWorld(&req, "the reduction between the processes", deadline);
}

Status MpiTransport::gatherAtRoot(int32_t rank, const void *mine,
                                  int64_t bytes, std::vector<uint8_t> &all,
                                  std::vector<int64_t> &sizes,
                                  Clock::time_point deadline) {
  (void)rank; // this process's, as every call here
  Impl &I = *impl;
  sizes.assign(size_t(I.ranks), 0);
  if (Status s = allGather(I.rank, &bytes, sizes.data(), sizeof bytes,
                           deadline);
      !s.ok())
    return s;
  std::vector<int> counts, displs;
  int64_t total = 0;
  for (int64_t b : sizes) {
    displs.push_back(int(std::min<int64_t>(total, INT_MAX)));
    counts.push_back(int(std::min<int64_t>(b, INT_MAX)));
    total += b;
  }
  if (total > INT_MAX)
    return Status::failure("gathering " + std::to_string(total) +
                               " bytes at rank 0 exceeds MPI's int count",
                           I.rank);
  all.assign(I.rank == 0 ? size_t(total) : 0, 0);
  MPI_Request req;
  int rc = MPI_Igatherv(mine, int(bytes), MPI_BYTE, all.data(), counts.data(),
                        displs.data(), MPI_BYTE, 0, I.world, &req);
  if (rc != MPI_SUCCESS)
    return Status::failure("MPI_Igatherv failed: " + mpiError(rc), I.rank);
  Status s = I.finishWorld(&req, "the gather at rank 0", deadline);
  if (s.ok() && I.rank != 0)
    sizes.clear();
  return s;
}

} // namespace pipert
