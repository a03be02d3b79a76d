//===- Nccl.cpp - the nccl transport: one process per GPU ------------------===//
//
// docs/NCCL.md has the design; in short:
//
//   communicators  CommLayout.h: a two-member communicator per direction
//                  and channel of every pair that exchanges messages, one
//                  per group with collectives, split from one world
//                  communicator in rounds; the compiler proved that both
//                  sides of every communicator issue matching operations
//                  in one order, and gave each rank's stream its own
//                  communicators (the process reads no other stream).
//   a post         the compute stream records "posted"; the
//                  communicator's stream waits for it and runs
//                  ncclSend/ncclRecv, then records "done". A send blocks
//                  only its own channel's stream, as a rendezvous does.
//   a wait         the compute stream waits for "done"; the host goes on.
//   a collective   ExactCollectives.h's exchanges, one NCCL group per
//                  phase, and the ordered sums (OrderedSum.cu) on the
//                  group communicator's stream: the local transport's bits.
//   the watchdog   a thread asks which enqueued operations have finished
//                  and what NCCL reports; an operation unfinished past
//                  --watchdog-ms, or an asynchronous NCCL error, names the
//                  peer, aborts every communicator and ends the process.
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/Nccl.h"

#include "kernels/cuda/Calls.h"
#include "kernels/cuda/NcclLibrary.h"
#include "kernels/cuda/OrderedSum.h"

#include "pipert/CommLayout.h"
#include "pipert/ExactCollectives.h"
#include "pipert/Watchdog.h"

#include <cuda_runtime_api.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

namespace pipert::cuda {
namespace {

/// Ends the process when `limit` passes before cancel(): a collective
/// creation step (the rendezvous, ncclCommInitRank, ncclCommSplit) that a
/// missing rank would block forever.
class Deadline {
public:
  Deadline(std::chrono::milliseconds limit, std::string what)
      : thread([this, limit, what] {
          std::unique_lock<std::mutex> lock(mutex);
          if (!cv.wait_for(lock, limit, [this] { return cancelled; })) {
            std::fprintf(stderr, "pipec-run: error: %s within %lld ms\n",
                         what.c_str(), static_cast<long long>(limit.count()));
            std::fflush(stderr);
            std::_Exit(1);
          }
        }) {}
  ~Deadline() { cancel(); }
  void cancel() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      cancelled = true;
    }
    cv.notify_all();
    if (thread.joinable())
      thread.join();
  }

private:
  std::mutex mutex;
  std::condition_variable cv;
  bool cancelled = false;
  std::thread thread;
};

class NcclTransport final : public Transport {
public:
  ~NcclTransport() override;
  /// "" or why not.
  std::string init(const NcclSetup &setup, call::Context &ctx);
  /// --step-graph: this rank's step, its NCCL calls included, captured
  /// once and replayed (StepGraph.h); the watchdog watches each launch.
  /// "" or why not.
  std::string enableStepGraph(int64_t from);

  Status postSend(int32_t rank, int32_t peer, Channel channel, int32_t req,
                  const Message &msg) override {
    return post(rank, peer, channel, req, msg, true);
  }
  Status postRecv(int32_t rank, int32_t peer, Channel channel, int32_t req,
                  const Message &msg) override {
    return post(rank, peer, channel, req, msg, false);
  }
  Status wait(int32_t rank, int32_t req, Clock::time_point) override;
  Status allReduce(int32_t rank, int32_t group, int32_t bucket, void *data,
                   int64_t count, DType dtype, Clock::time_point) override {
    return collective(rank, Opcode::AllReduce, group, bucket, data, count,
                      dtype);
  }
  Status reduceScatter(int32_t rank, int32_t group, int32_t bucket,
                       void *data, int64_t count, DType dtype, const Part *,
                       int32_t, Clock::time_point) override {
    return collective(rank, Opcode::ReduceScatter, group, bucket, data, count,
                      dtype);
  }
  Status allGatherParts(int32_t rank, int32_t group, int32_t bucket,
                        void *data, int64_t count, DType dtype, const Part *,
                        int32_t, Clock::time_point) override {
    return collective(rank, Opcode::AllGather, group, bucket, data, count,
                      dtype);
  }
  void abort(const std::string &reason) override;
  Status drain(int32_t rank) override;
  bool runsAllRanks() const override { return false; }
  Status allGather(int32_t rank, const void *mine, void *all, int64_t bytes,
                   Clock::time_point deadline) override;
  Status reduceWorld(int32_t rank, int64_t *data, int64_t count, WorldOp op,
                     Clock::time_point deadline) override;
  Status gatherAtRoot(int32_t rank, const void *mine, int64_t bytes,
                      std::vector<uint8_t> &all, std::vector<int64_t> &sizes,
                      Clock::time_point deadline) override;

private:
  struct Request {
    cudaEvent_t posted = nullptr, done = nullptr;
  };
  /// One collective of this rank's stream, planned before the first step.
  struct Collective {
    CollectivePlan plan;
    int32_t comm = -1, member = 0; ///< member: this rank's index in it
    int64_t count = 0, instr = -1;
    DType dtype = DType::None;
    cudaEvent_t posted = nullptr, done = nullptr;
  };
  using CollectiveKey = std::tuple<int32_t, int32_t, int32_t>; // op, group, bucket

  Status post(int32_t rank, int32_t peer, Channel channel, int32_t req,
              const Message &msg, bool send);
  Status collective(int32_t rank, Opcode op, int32_t group, int32_t bucket,
                    void *data, int64_t count, DType dtype);
  Status nccl(ncclResult_t r, const std::string &what) const;
  Status enqueueExchanges(const std::vector<Exchange> &xs, int32_t comm,
                          uint8_t *data, uint8_t *staging);
  void watch();
  [[noreturn]] void terminate(const std::string &why);
  std::string commName(int32_t comm) const;

  const NcclLibrary *lib = nullptr;
  int32_t me = 0;
  int device = 0;
  cudaStream_t compute = nullptr;
  Stream stream; // this rank's, for messages
  CommLayout layout;
  ncclComm_t world = nullptr;
  std::vector<ncclComm_t> comms;        // by layout index; null: not a member
  std::vector<cudaStream_t> commStreams; // by layout index
  std::vector<void *> staging;           // by layout index (device memory)
  std::vector<Request> requests;
  std::map<CollectiveKey, Collective> collectives;
  // The step's metrics, the trace and checkpoints over the world
  // communicator (reduceWorld, allGather).
  cudaStream_t worldStream = nullptr;
  void *gatherBuffer = nullptr;
  int64_t gatherBytes = 0; ///< gatherBuffer's size
  void *hostBuffer = nullptr; ///< pinned: the copies to and from it
  int64_t hostBytes = 0;      ///< hostBuffer's size
  /// Grows the device buffer to `bytes`; makes the pinned one.
  cudaError_t worldBuffers(int64_t bytes);
  /// Grows the world buffers to `bytes` and orders the world stream after
  /// the rank's device work: the start of an all-gather or a reduction.
  Status beginWorld(int32_t rank, int64_t bytes, const char *what);
  /// `bytes` from host to device (or back) on the world stream through the
  /// pinned buffer, each piece waited for under the deadline.
  Status worldCopy(int32_t rank, void *dst, const void *src, int64_t bytes,
                   bool toDevice, const char *what, Clock::time_point deadline);
  std::unique_ptr<Watchdog> dog;
  std::thread watcher;
  std::mutex watcherMutex;
  std::condition_variable watcherCv;
  bool stopping = false;
  std::atomic<bool> aborted{false};
  std::mutex abortMutex; // abortReason: written before `aborted` is set
  std::string abortReason;

  Status abortedStatus(int32_t rank, int64_t instr = -1) {
    std::lock_guard<std::mutex> lock(abortMutex);
    return Status::failure("aborted: " + abortReason, rank, instr);
  }
  /// Host waits for the world communicator's work (the metrics' and
  /// checkpoints' exchanges), bounded by the deadline and watched.
  Status waitWorld(int32_t rank, const char *what, Clock::time_point deadline);
  cudaEvent_t worldDone = nullptr, computeMark = nullptr;
  call::Context *context = nullptr; ///< the rank's (createRank's)
  std::unique_ptr<StepGraph> stepGraph;
  int64_t graphWatchId = -1;
  /// The watchdog's instruction for the step's graph (no stream index).
  static constexpr int64_t kGraphInstr = -2;
  /// The longest time between two drains (a whole step, host included),
  /// the allowance of a graph's launch beyond --watchdog-ms: the graph runs
  /// the whole step, while the limit bounds one operation's waiting.
  Clock::time_point lastDrain = Clock::now();
  Clock::duration longestStep{};
  /// Whether the rank's stream is being captured (the step graph's
  /// capture step); asked of the device only when there is a step graph.
  bool capturing() const {
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    return stepGraph && cudaStreamIsCapturing(compute, &st) == cudaSuccess &&
           st == cudaStreamCaptureStatusActive;
  }
  /// One-byte exchanges on every communicator, in split-round order, so
  /// that NCCL's connections (made lazily, blocking the host until the
  /// peer connects too) are all made before the first step.
  std::string connectAll();
};

Status NcclTransport::nccl(ncclResult_t r, const std::string &what) const {
  if (r == ncclSuccess)
    return Status::success();
  return Status::failure(what + ": " + ncclFailure(*lib, r), me);
}

std::string NcclTransport::commName(int32_t c) const {
  const CommSpec &s = layout.comms[size_t(c)];
  if (s.pair)
    return std::string(s.channel == Channel::Activation ? "activation"
                                                        : "gradient") +
           " channel from rank " + std::to_string(s.members[0]) +
           " to rank " + std::to_string(s.members[1]);
  std::string m;
  for (size_t k = 0; k < s.members.size() && k < 8; ++k)
    m += (k ? "," : "") + std::to_string(s.members[k]);
  if (s.members.size() > 8)
    m += ",...";
  return groupsName(s) + " (ranks " + m + ")";
}

std::string NcclTransport::init(const NcclSetup &setup, call::Context &ctx) {
  std::string error;
  lib = loadNccl(error);
  if (!lib)
    return error;
  me = setup.env.rank;
  device = ctx.device;
  compute = ctx.stream;
  context = &ctx;
  const Stream &mine = *setup.stream;
  if (me < 0 || me >= mine.ranks)
    return "rank " + std::to_string(me) + " of a plan of " +
           std::to_string(mine.ranks);
  if (setup.env.size != mine.ranks)
    return "the plan has " + std::to_string(mine.ranks) +
           " ranks but the launcher started " +
           std::to_string(setup.env.size) + " processes";
  if (mine.rank != me)
    return "process " + std::to_string(me) + " was given the stream of rank " +
           std::to_string(mine.rank);
  stream = mine;
  // The compiler proved the layout over every stream and wrote this
  // rank's communicators into its stream (CommLayout.h).
  if (Status s = commViewOf(mine, *setup.groups, layout); !s.ok())
    return s.message();
  if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess)
    return std::string("cudaSetDevice: ") + cudaGetErrorString(e);

  // The world communicator: rank 0's id through the rendezvous (bounded by
  // its own deadline, whose failure names the missing ranks), then the
  // communicators, bounded by the guard: a rank that stops between the two
  // would block the others in NCCL forever.
  {
    ncclUniqueId id{};
    std::vector<uint8_t> blob;
    if (me == 0) {
      if (Status s = nccl(lib->getUniqueId(&id), "ncclGetUniqueId"); !s.ok())
        return s.message();
      blob.assign(reinterpret_cast<uint8_t *>(&id),
                  reinterpret_cast<uint8_t *>(&id) + sizeof id);
    }
    if (Status s = shareBlob(setup.env, setup.rendezvous, setup.jobKey,
                             setup.planId, blob, Clock::now() + setup.timeout);
        !s.ok())
      return s.message();
    if (blob.size() != sizeof id)
      return "rendezvous: the id has " + std::to_string(blob.size()) +
             " bytes, not NCCL's " + std::to_string(sizeof id);
    std::memcpy(&id, blob.data(), sizeof id);
    Deadline guard(setup.timeout,
                   "rank " + std::to_string(me) +
                       ": the NCCL communicators were not made (a rank that "
                       "stopped after the rendezvous, or cannot reach the "
                       "others?)");
    if (Status s = nccl(lib->commInitRank(&world, setup.env.size, id, me),
                        "ncclCommInitRank");
        !s.ok())
      return s.message();
    // Each round: every rank joins the one communicator it has there, or
    // none; the key orders the members (a pair's sender first).
    comms.assign(layout.comms.size(), nullptr);
    for (int32_t k = 0; k < layout.rounds; ++k) {
      int32_t c = layout.colorOf(me, k);
      int key = 0;
      if (c >= 0) {
        const auto &m = layout.comms[size_t(c)].members;
        key = int(std::find(m.begin(), m.end(), me) - m.begin());
      }
      ncclComm_t made = nullptr;
      // The colour is the communicator's id in the plan's layout: the
      // same in every member's view.
      const int color = c >= 0 ? layout.comms[size_t(c)].id : NCCL_SPLIT_NOCOLOR;
      if (Status s = nccl(lib->commSplit(world, color, key, &made, nullptr),
                          "ncclCommSplit (round " + std::to_string(k) + ")");
          !s.ok())
        return s.message();
      if (c >= 0)
        comms[size_t(c)] = made;
    }
    commStreams.assign(layout.comms.size(), nullptr);
    for (size_t c = 0; c < comms.size(); ++c)
      if (comms[c]) {
        cudaError_t e =
            cudaStreamCreateWithFlags(&commStreams[c], cudaStreamNonBlocking);
        if (e != cudaSuccess)
          return std::string("cudaStreamCreate: ") + cudaGetErrorString(e);
      }
    if (std::string why = connectAll(); !why.empty())
      return why;
    guard.cancel();
  }
  if (setup.verbose && me == 0)
    std::printf("nccl: %s (NCCL %d), rank 0 in %zu communicators, %d split "
                "rounds\n",
                lib->path.c_str(), lib->version, layout.comms.size(),
                layout.rounds);

  auto cuda = [&](cudaError_t e, const char *what) {
    if (e != cudaSuccess && error.empty())
      error = std::string(what) + ": " + cudaGetErrorString(e);
    return e == cudaSuccess;
  };
  staging.assign(layout.comms.size(), nullptr);
  if (!cuda(cudaStreamCreateWithFlags(&worldStream, cudaStreamNonBlocking),
            "cudaStreamCreate"))
    return error;

  // Events per request, plans and staging per collective, all before the
  // first step.
  int32_t reqs = 0;
  for (const Instr &in : stream.instrs)
    if (isPostOp(in.op))
      reqs = std::max(reqs, in.req + 1);
  requests.resize(size_t(reqs));
  auto event = [&](cudaEvent_t &e) {
    return cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming),
                "cudaEventCreate");
  };
  for (Request &r : requests)
    if (!event(r.posted) || !event(r.done))
      return error;
  if (!event(worldDone) || !event(computeMark))
    return error;
  std::vector<int64_t> stagingBytes(layout.comms.size(), 0);
  for (size_t i = 0; i < stream.instrs.size(); ++i) {
    const Instr &in = stream.instrs[i];
    if (!isCollectiveOp(in.op))
      continue;
    CollectiveKey key{int32_t(in.op), in.chunk, in.mb};
    if (collectives.count(key))
      continue;
    Collective col;
    col.comm = layout.groupOf(in.chunk);
    const auto &members = layout.comms[size_t(col.comm)].members;
    col.member = int32_t(
        std::lower_bound(members.begin(), members.end(), me) - members.begin());
    const int64_t e = dtypeBytes(in.dtype);
    col.count = e > 0 ? in.bytes / e : 0;
    col.dtype = in.dtype;
    col.instr = int64_t(i);
    Status planned = planCollective(in.op, members, me, col.count, in.dtype,
                                    stream.parts.data() + in.firstPart,
                                    int32_t(in.partCount), col.plan);
    if (!planned.ok())
      return "rank " + std::to_string(me) + " #" + std::to_string(i) + " " +
             describe(in) + ": " + planned.message();
    stagingBytes[size_t(col.comm)] =
        std::max(stagingBytes[size_t(col.comm)], col.plan.stagingBytes);
    if (!event(col.posted) || !event(col.done))
      return error;
    collectives.emplace(key, std::move(col));
  }
  for (size_t c = 0; c < stagingBytes.size(); ++c)
    if (stagingBytes[c] > 0 &&
        !cuda(cudaMalloc(&staging[c], size_t(stagingBytes[c])),
              "cudaMalloc of a collective's staging buffer"))
      return error;

  // Watch ids: requests, then collectives by instruction index, then the
  // world communicator's exchanges, then a step graph's launch.
  graphWatchId = int64_t(reqs) + int64_t(stream.instrs.size()) + 1;
  dog = std::make_unique<Watchdog>(graphWatchId + 1, setup.watchdog);
  watcher = std::thread([this] { watch(); });
  return "";
}

NcclTransport::~NcclTransport() {
  {
    std::lock_guard<std::mutex> lock(watcherMutex);
    stopping = true;
  }
  watcherCv.notify_all();
  if (watcher.joinable())
    watcher.join();
  if (context)
    context->stepGraph = nullptr;
  stepGraph.reset();
  cudaSetDevice(device);
  for (cudaStream_t s : commStreams)
    if (s)
      cudaStreamSynchronize(s);
  if (lib) {
    for (ncclComm_t &c : comms)
      if (c) {
        aborted ? lib->commAbort(c) : lib->commDestroy(c);
        c = nullptr;
      }
    if (world)
      aborted ? lib->commAbort(world) : lib->commDestroy(world);
    world = nullptr;
  }
  for (cudaEvent_t e : {worldDone, computeMark})
    if (e)
      cudaEventDestroy(e);
  for (cudaStream_t s : commStreams)
    if (s)
      cudaStreamDestroy(s);
  if (worldStream)
    cudaStreamDestroy(worldStream);
  for (void *p : staging)
    if (p)
      cudaFree(p);
  if (gatherBuffer)
    cudaFree(gatherBuffer);
  if (hostBuffer)
    cudaFreeHost(hostBuffer);
  for (Request &r : requests) {
    if (r.posted)
      cudaEventDestroy(r.posted);
    if (r.done)
      cudaEventDestroy(r.done);
  }
  for (auto &[key, c] : collectives) {
    (void)key;
    if (c.posted)
      cudaEventDestroy(c.posted);
    if (c.done)
      cudaEventDestroy(c.done);
  }
}

std::string NcclTransport::connectAll() {
  // Round by round, as the splits made them: every member of a round's
  // communicator is in that round at once, and each rank is in at most
  // one communicator a round, so the connections cannot wait in a cycle.
  size_t most = 2;
  for (size_t c = 0; c < comms.size(); ++c)
    if (comms[c])
      most = std::max(most, layout.comms[c].members.size() + 1);
  void *buf = nullptr;
  cudaError_t e = cudaMalloc(&buf, most);
  if (e == cudaSuccess)
    e = cudaMemset(buf, 0, most);
  if (e != cudaSuccess)
    return std::string("connecting: cudaMalloc: ") + cudaGetErrorString(e);
  auto *b = static_cast<uint8_t *>(buf);
  std::string why;
  for (int32_t k = 0; k < layout.rounds && why.empty(); ++k) {
    const int32_t c = layout.colorOf(me, k);
    if (c < 0)
      continue;
    const auto &members = layout.comms[size_t(c)].members;
    const int mine =
        int(std::find(members.begin(), members.end(), me) - members.begin());
    cudaStream_t s = commStreams[size_t(c)];
    ncclResult_t r = lib->groupStart();
    if (layout.comms[size_t(c)].pair) {
      if (r == ncclSuccess)
        r = mine == 0 ? lib->send(b, 1, ncclUint8, 1, comms[size_t(c)], s)
                      : lib->recv(b + 1, 1, ncclUint8, 0, comms[size_t(c)], s);
    } else {
      for (int j = 0; j < int(members.size()) && r == ncclSuccess; ++j)
        if (j != mine) {
          r = lib->send(b, 1, ncclUint8, j, comms[size_t(c)], s);
          if (r == ncclSuccess)
            r = lib->recv(b + 1 + j, 1, ncclUint8, j, comms[size_t(c)], s);
        }
    }
    ncclResult_t ended = lib->groupEnd();
    if (r == ncclSuccess)
      r = ended;
    if (r != ncclSuccess)
      why = "connecting the " + commName(c) + ": " + ncclFailure(*lib, r);
    else if ((e = cudaStreamSynchronize(s)) != cudaSuccess)
      why = "connecting the " + commName(c) + ": " + cudaGetErrorString(e);
  }
  cudaFree(buf);
  return why;
}

Status NcclTransport::waitWorld(int32_t rank, const char *what,
                                Clock::time_point deadline) {
  const int64_t id = int64_t(requests.size() + stream.instrs.size());
  dog->forget(id);
  cudaError_t e = cudaEventRecord(worldDone, worldStream);
  if (e != cudaSuccess)
    return Status::failure(std::string(what) + ": " + cudaGetErrorString(e),
                           rank);
  dog->track(id, worldDone, -1, -1, -1, Clock::now());
  auto pause = std::chrono::microseconds(20);
  for (;;) {
    e = call::queried(cudaEventQuery(worldDone));
    if (e == cudaSuccess) {
      dog->forget(id);
      return Status::success();
    }
    if (e != cudaErrorNotReady)
      return Status::failure(std::string(what) + ": " +
                                 cudaGetErrorString(e),
                             rank);
    if (aborted)
      return abortedStatus(rank);
    if (Clock::now() >= deadline)
      return Status::failure(std::string("timed out: ") + what +
                                 ": not every rank joined",
                             rank);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(1000));
  }
}

Status NcclTransport::post(int32_t rank, int32_t peer, Channel channel,
                           int32_t req, const Message &msg, bool send) {
  if (aborted)
    return abortedStatus(rank, msg.instr);
  if (rank != me || req < 0 || size_t(req) >= requests.size())
    return Status::failure("request " + std::to_string(req) +
                               " is not one of rank " + std::to_string(me) +
                               "'s stream",
                           rank, msg.instr);
  int32_t c = send ? layout.pairOf(me, peer, channel)
                   : layout.pairOf(peer, me, channel);
  if (c < 0 || !comms[size_t(c)])
    return Status::failure("no communicator for a message " +
                               std::string(send ? "to" : "from") + " rank " +
                               std::to_string(peer),
                           rank, msg.instr);
  Request &r = requests[size_t(req)];
  cudaStream_t s = commStreams[size_t(c)];
  // The event is recorded anew below: the watchdog must not pair the
  // last step's post time with it.
  dog->forget(req);
  cudaError_t e = cudaSetDevice(device);
  if (e == cudaSuccess)
    e = cudaEventRecord(r.posted, compute);
  if (e == cudaSuccess)
    e = cudaStreamWaitEvent(s, r.posted, 0);
  if (e != cudaSuccess)
    return Status::failure(std::string("posting: ") + cudaGetErrorString(e),
                           rank, msg.instr);
  if (msg.bytes > 0) {
    // The sender is the pair's member 0, the receiver member 1.
    ncclResult_t n =
        send ? lib->send(msg.data, size_t(msg.bytes), ncclUint8, 1,
                         comms[size_t(c)], s)
             : lib->recv(msg.data, size_t(msg.bytes), ncclUint8, 0,
                         comms[size_t(c)], s);
    if (Status st = nccl(n, send ? "ncclSend" : "ncclRecv"); !st.ok())
      return Status::failure(st.message(), rank, msg.instr);
  }
  if ((e = cudaEventRecord(r.done, s)) != cudaSuccess)
    return Status::failure(std::string("posting: ") + cudaGetErrorString(e),
                           rank, msg.instr);
  // An event recorded in a capture cannot be queried: the step graph's
  // launch is watched instead.
  if (!capturing())
    dog->track(req, r.done, peer, -1, msg.instr, Clock::now(), r.posted);
  return Status::success();
}

Status NcclTransport::wait(int32_t rank, int32_t req, Clock::time_point) {
  if (aborted)
    return abortedStatus(rank);
  if (rank != me || req < 0 || size_t(req) >= requests.size())
    return Status::failure("no request " + std::to_string(req), rank);
  // The compute stream goes on after the message; the host at once (the
  // watchdog bounds how long the device may wait).
  cudaError_t e = cudaStreamWaitEvent(compute, requests[size_t(req)].done, 0);
  if (e != cudaSuccess)
    return Status::failure(std::string("cudaStreamWaitEvent: ") +
                               cudaGetErrorString(e),
                           rank);
  return Status::success();
}

Status NcclTransport::enqueueExchanges(const std::vector<Exchange> &xs,
                                       int32_t c, uint8_t *data,
                                       uint8_t *stage) {
  if (xs.empty())
    return Status::success();
  ncclComm_t comm = comms[size_t(c)];
  cudaStream_t s = commStreams[size_t(c)];
  if (Status st = nccl(lib->groupStart(), "ncclGroupStart"); !st.ok())
    return st;
  Status st = Status::success();
  for (const Exchange &x : xs) {
    uint8_t *at = (x.staged ? stage : data) + x.offset;
    ncclResult_t r = x.send ? lib->send(at, size_t(x.bytes), ncclUint8, x.peer,
                                        comm, s)
                            : lib->recv(at, size_t(x.bytes), ncclUint8, x.peer,
                                        comm, s);
    if (r != ncclSuccess) {
      st = nccl(r, x.send ? "ncclSend" : "ncclRecv");
      break;
    }
  }
  Status ended = nccl(lib->groupEnd(), "ncclGroupEnd");
  return st.ok() ? ended : st;
}

Status NcclTransport::collective(int32_t rank, Opcode op, int32_t group,
                                 int32_t bucket, void *data, int64_t count,
                                 DType dtype) {
  if (aborted)
    return abortedStatus(rank);
  auto it = collectives.find({int32_t(op), group, bucket});
  if (rank != me || it == collectives.end())
    return Status::failure(std::string(opcodeName(op)) + " of group " +
                               std::to_string(group) + " bucket " +
                               std::to_string(bucket) +
                               " is not in rank " + std::to_string(me) +
                               "'s stream",
                           rank);
  Collective &col = it->second;
  if (col.count != count || col.dtype != dtype)
    return Status::failure(std::string(opcodeName(op)) + " of group " +
                               std::to_string(group) + " bucket " +
                               std::to_string(bucket) + ": " +
                               std::to_string(count) + " elements, the stream "
                               "planned " + std::to_string(col.count),
                           rank, col.instr);
  cudaStream_t s = commStreams[size_t(col.comm)];
  dog->forget(int64_t(requests.size()) + col.instr);
  auto *bytes = static_cast<uint8_t *>(data);
  auto *stage = static_cast<uint8_t *>(staging[size_t(col.comm)]);
  const int32_t members =
      int32_t(layout.comms[size_t(col.comm)].members.size());
  cudaError_t e = cudaSetDevice(device);
  if (e == cudaSuccess)
    e = cudaEventRecord(col.posted, compute);
  if (e == cudaSuccess)
    e = cudaStreamWaitEvent(s, col.posted, 0);
  if (e != cudaSuccess)
    return Status::failure(std::string("a collective: ") +
                               cudaGetErrorString(e),
                           rank, col.instr);
  if (Status st = enqueueExchanges(col.plan.gather, col.comm, bytes, stage);
      !st.ok())
    return Status::failure(st.message(), rank, col.instr);
  for (const OrderedSum &sum : col.plan.sums)
    if ((e = launchOrderedSum(s, dtype, bytes, stage, sum, members,
                              col.member)) !=
        cudaSuccess)
      return Status::failure(std::string("the ordered sum: ") +
                                 cudaGetErrorString(e),
                             rank, col.instr);
  if (Status st = enqueueExchanges(col.plan.spread, col.comm, bytes, stage);
      !st.ok())
    return Status::failure(st.message(), rank, col.instr);
  if ((e = cudaEventRecord(col.done, s)) == cudaSuccess)
    e = cudaStreamWaitEvent(compute, col.done, 0);
  if (e != cudaSuccess)
    return Status::failure(std::string("a collective: ") +
                               cudaGetErrorString(e),
                           rank, col.instr);
  if (!capturing())
    dog->track(int64_t(requests.size()) + col.instr, col.done, -1, group,
               col.instr, Clock::now(), col.posted);
  return Status::success();
}

Status NcclTransport::drain(int32_t rank) {
  cudaSetDevice(device);
  cudaError_t e = cudaStreamSynchronize(compute);
  for (cudaStream_t s : commStreams)
    if (s && e == cudaSuccess)
      e = cudaStreamSynchronize(s);
  const Clock::time_point now = Clock::now();
  longestStep = std::max<Clock::duration>(longestStep, now - lastDrain);
  lastDrain = now;
  if (e != cudaSuccess)
    return Status::failure(std::string("draining the streams: ") +
                               cudaGetErrorString(e),
                           rank);
  return aborted ? abortedStatus(rank) : Status::success();
}

// The world exchanges' copies go through a pinned host buffer, a piece at
// a time: a copy to or from pageable memory returns only once done, and
// queued behind a hung peer's NCCL call it would hold the host past the
// deadline and the watchdog; from pinned memory it returns at once and
// waitWorld bounds it. Pinned memory is scarce (a machine's processes share
// it), so the buffer has one small size whatever the exchange (ZeRO's
// checkpoints all-gather the moments).
static constexpr int64_t kPinnedBytes = int64_t(16) << 20;
// The device buffer's first size: the step's words never grow it, and a
// growth frees the old buffer, which waits for the device.
static constexpr int64_t kWorldDeviceBytes = int64_t(1) << 20;

cudaError_t NcclTransport::worldBuffers(int64_t bytes) {
  cudaError_t e = cudaSetDevice(device);
  if (e == cudaSuccess && bytes > gatherBytes) {
    const int64_t size = std::max({bytes, kWorldDeviceBytes, 2 * gatherBytes});
    if (gatherBuffer)
      cudaFree(gatherBuffer);
    gatherBuffer = nullptr;
    gatherBytes = 0;
    if ((e = cudaMalloc(&gatherBuffer, size_t(size))) == cudaSuccess)
      gatherBytes = size;
  }
  if (e == cudaSuccess && !hostBuffer &&
      (e = cudaMallocHost(&hostBuffer, size_t(kPinnedBytes))) == cudaSuccess)
    hostBytes = kPinnedBytes;
  return e;
}

Status NcclTransport::worldCopy(int32_t rank, void *dst, const void *src,
                                int64_t bytes, bool toDevice, const char *what,
                                Clock::time_point deadline) {
  auto *d = static_cast<uint8_t *>(dst);
  const auto *from = static_cast<const uint8_t *>(src);
  if (bytes > 0 && (!hostBuffer || hostBytes <= 0))
    return Status::failure(std::string(what) + ": no pinned host buffer", rank);
  for (int64_t at = 0; at < bytes; at += hostBytes) {
    const size_t n = size_t(std::min(hostBytes, bytes - at));
    if (toDevice)
      std::memcpy(hostBuffer, from + at, n);
    cudaError_t e =
        toDevice ? cudaMemcpyAsync(d + at, hostBuffer, n,
                                   cudaMemcpyHostToDevice, worldStream)
                 : cudaMemcpyAsync(hostBuffer, from + at, n,
                                   cudaMemcpyDeviceToHost, worldStream);
    if (e != cudaSuccess)
      return Status::failure(std::string(what) + ": " + cudaGetErrorString(e),
                             rank);
    if (Status s = waitWorld(rank, what, deadline); !s.ok())
      return s;
    if (!toDevice)
      std::memcpy(d + at, hostBuffer, n);
  }
  return Status::success();
}

Status NcclTransport::beginWorld(int32_t rank, int64_t bytes,
                                 const char *what) {
  cudaError_t e = worldBuffers(bytes);
  // After the step's device work: NCCL does not promise that kernels of
  // different communicators run at once, so the world's do not overlap
  // the pairs' and groups' (the exchange waits for the slowest rank's end
  // of step anyway).
  if (e == cudaSuccess)
    e = cudaEventRecord(computeMark, compute);
  if (e == cudaSuccess)
    e = cudaStreamWaitEvent(worldStream, computeMark, 0);
  if (e != cudaSuccess)
    return Status::failure(std::string(what) + ": " + cudaGetErrorString(e),
                           rank);
  return Status::success();
}

Status NcclTransport::allGather(int32_t rank, const void *mine, void *all,
                                int64_t bytes, Clock::time_point deadline) {
  if (aborted)
    return abortedStatus(rank);
  const char *what = "the all-gather between the processes";
  const int64_t total = bytes * layout.ranks;
  // This rank's bytes after the gathered ones.
  if (Status s = beginWorld(rank, total + bytes, what); !s.ok())
    return s;
  auto *base = static_cast<uint8_t *>(gatherBuffer);
  if (Status s = worldCopy(rank, base + total, mine, bytes, true, what,
                           deadline);
      !s.ok())
    return s;
  if (Status st = nccl(lib->allGather(base + total, base, size_t(bytes),
                                      ncclUint8, world, worldStream),
                       "ncclAllGather");
      !st.ok())
    return st;
  return worldCopy(rank, all, base, total, false, what, deadline);
}

Status NcclTransport::reduceWorld(int32_t rank, int64_t *data, int64_t count,
                                  WorldOp op, Clock::time_point deadline) {
  if (aborted)
    return abortedStatus(rank);
  const char *what = "the reduction between the processes";
  const int64_t bytes = count * int64_t(sizeof(int64_t));
  if (Status s = beginWorld(rank, bytes, what); !s.ok())
    return s;
  if (Status s = worldCopy(rank, gatherBuffer, data, bytes, true, what,
                           deadline);
      !s.ok())
    return s;
  // Integer sums and maxima: NCCL's ring or tree order cannot change them.
  if (Status st = nccl(lib->allReduce(gatherBuffer, gatherBuffer,
                                      size_t(count), ncclInt64,
                                      op == WorldOp::Sum ? ncclSum : ncclMax,
                                      world, worldStream),
                       "ncclAllReduce");
      !st.ok())
    return st;
  return worldCopy(rank, data, gatherBuffer, bytes, false, what, deadline);
}

// --save and the trace: each rank's bytes to rank 0 over the world
// communicator, one rank at a time through a device buffer the size of the
// largest part (rank 0 never holds two parts on the device at once), freed
// at the end, and the pinned buffer on the host side.
Status NcclTransport::gatherAtRoot(int32_t rank, const void *mine,
                                   int64_t bytes, std::vector<uint8_t> &all,
                                   std::vector<int64_t> &sizes,
                                   Clock::time_point deadline) {
  std::vector<int64_t> every(size_t(layout.ranks), 0);
  if (Status s = allGather(rank, &bytes, every.data(), sizeof bytes, deadline);
      !s.ok())
    return s;
  int64_t most = 1, total = 0;
  for (int64_t b : every) {
    most = std::max(most, b);
    total += b;
  }
  void *buffer = nullptr;
  cudaError_t e = worldBuffers(0); // the pinned buffer
  if (e == cudaSuccess)
    e = cudaMalloc(&buffer, size_t(most));
  Status st = Status::success();
  if (e == cudaSuccess && me == 0) {
    sizes = every;
    all.assign(size_t(total), 0);
    std::memcpy(all.data(), mine, size_t(bytes));
    int64_t at = bytes;
    for (int32_t q = 1; q < layout.ranks && st.ok(); ++q) {
      if (every[size_t(q)] > 0) {
        st = nccl(lib->recv(buffer, size_t(every[size_t(q)]), ncclUint8, q,
                            world, worldStream),
                  "ncclRecv of rank " + std::to_string(q) + "'s part");
        if (st.ok())
          st = worldCopy(rank, all.data() + at, buffer, every[size_t(q)],
                         false, "gathering the parts at rank 0", deadline);
      }
      at += every[size_t(q)];
    }
  } else if (e == cudaSuccess && bytes > 0) {
    all.clear();
    sizes.clear();
    st = worldCopy(rank, buffer, mine, bytes, true,
                   "sending this rank's part to rank 0", deadline);
    if (st.ok())
      st = nccl(lib->send(buffer, size_t(bytes), ncclUint8, 0, world,
                          worldStream),
                "ncclSend of this rank's part to rank 0");
    if (st.ok())
      st = waitWorld(rank, "sending this rank's part to rank 0", deadline);
  }
  if (buffer)
    cudaFree(buffer);
  if (e != cudaSuccess)
    return Status::failure(std::string("gathering at rank 0: ") +
                               cudaGetErrorString(e),
                           rank);
  return st;
}

// The executor's abort (a failed rank thread, a stop): later calls fail at
// once. The communicators are not aborted here: the rank thread may be
// inside an NCCL call on them; the destructor aborts them, and a hung peer
// is the watchdog's, which ends the process.
void NcclTransport::abort(const std::string &reason) {
  std::lock_guard<std::mutex> lock(abortMutex);
  if (aborted)
    return;
  abortReason = reason;
  aborted = true;
}

// The watchdog's end of the process: the message, then exit. Ending the
// process tears NCCL down (its peers see the connections close and their
// own NCCL calls fail); aborting the communicators from this thread could
// free them under the rank thread's feet.
void NcclTransport::terminate(const std::string &why) {
  std::fprintf(stderr, "pipec-run: error: rank %d: %s\n", me, why.c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(1);
}

void NcclTransport::watch() {
  // A thread of its own device context: cudaEventQuery needs none, but
  // keep the rank's device current.
  cudaSetDevice(device);
  std::unique_lock<std::mutex> lock(watcherMutex);
  while (!watcherCv.wait_for(lock, std::chrono::milliseconds(100),
                             [this] { return stopping; })) {
    // The communicators live until the destructor, which stops this
    // thread first.
    for (size_t c = 0; c <= comms.size(); ++c) {
      ncclComm_t comm = c < comms.size() ? comms[c] : world;
      ncclResult_t r = ncclSuccess;
      if (comm && lib->commGetAsyncError(comm, &r) == ncclSuccess &&
          r != ncclSuccess && r != ncclInProgress)
        terminate("NCCL reports '" + ncclFailure(*lib, r) +
                  "' on the " +
                  (c < comms.size() ? commName(int32_t(c))
                                    : std::string("world communicator")) +
                  " (a peer died or its network failed)");
    }
    Watchdog::Op op;
    bool failed = false;
    auto finished = [](void *event) {
      cudaError_t e =
          call::queried(cudaEventQuery(static_cast<cudaEvent_t>(event)));
      return e == cudaSuccess ? 1 : e == cudaErrorNotReady ? 0 : -1;
    };
    if (dog->overdue(finished, Clock::now(), op, failed)) {
      std::string what =
          op.instr == kGraphInstr ? "the step's CUDA graph (--step-graph)"
          : op.instr >= 0 && size_t(op.instr) < stream.instrs.size()
              ? "#" + std::to_string(op.instr) + " " +
                    describe(stream.instrs[size_t(op.instr)])
              : "an operation";
      std::string whom =
          op.instr == kGraphInstr
              ? std::string("the peers of its sends, receives and "
                            "collectives (run without --step-graph to have "
                            "the rank named)")
          : op.peer >= 0 ? "rank " + std::to_string(op.peer)
          : op.group >= 0
              ? "a member of " + commName(layout.groupOf(op.group))
              : std::string("another rank (the world communicator)");
      terminate(what + (failed ? " failed on the device"
                               : " did not finish within the watchdog's " +
                                     std::to_string(std::chrono::duration_cast<
                                                        std::chrono::milliseconds>(
                                                        Clock::now() - op.since)
                                                        .count()) +
                                     " ms") +
                "; waiting on " + whom +
                ", which is dead, hung, or slower than --watchdog-ms");
    }
  }
}

} // namespace

std::string NcclTransport::enableStepGraph(int64_t from) {
  if (lib->version < 20900)
    return "--step-graph: NCCL " + std::to_string(lib->version) + " (" +
           lib->path + ") cannot be captured in a CUDA graph; 2.9 or later "
           "can";
  StepGraph::Member member{context, {}};
  for (cudaStream_t s : commStreams)
    if (s)
      member.others.push_back(s);
  stepGraph = std::make_unique<StepGraph>(std::vector<StepGraph::Member>{member},
                                          device, from, &aborted);
  if (std::string why = stepGraph->init(); !why.empty()) {
    stepGraph.reset();
    return why;
  }
  // A launch's NCCL kernels wait for the peers: a dead one hangs them, and
  // the watchdog ends this rank naming the step's graph.
  stepGraph->beforeLaunch = [this] { dog->forget(graphWatchId); };
  stepGraph->afterLaunch = [this](cudaEvent_t launched) {
    dog->track(graphWatchId, launched, -1, -1, kGraphInstr, Clock::now(),
               nullptr, 2 * longestStep);
  };
  context->stepGraph = stepGraph.get();
  return "";
}

std::string enableNcclStepGraphs(pipert::Transport *transport, int64_t from) {
  auto *t = dynamic_cast<NcclTransport *>(transport);
  return t ? t->enableStepGraph(from)
           : "--step-graph: the transport is not the cuda target's nccl";
}

pipert::Transport *createNccl(const NcclSetup &setup, void *rankState,
                              char *error, int64_t errorBytes) {
  auto t = std::make_unique<NcclTransport>();
  auto *ctx = static_cast<call::Context *>(rankState);
  std::string why = ctx ? t->init(setup, *ctx)
                        : std::string("no device state for this rank");
  if (!why.empty()) {
    if (error && errorBytes > 0)
      std::snprintf(error, size_t(errorBytes), "%s", why.c_str());
    return nullptr;
  }
  return t.release();
}

} // namespace pipert::cuda
