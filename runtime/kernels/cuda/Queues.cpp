//===- Queues.cpp - the cuda-local transport's streams and events ---------===//
//
// pipert::DeviceQueues on CUDA: each rank's compute stream is its Context's
// (createRank, Target.cpp); its transfer stream, where the messages it
// receives are copied, is made here on the rank's device. Events carry no
// timing (cudaEventDisableTiming: the cheapest kind). The collectives'
// staging is cudaMalloc'ed here, before the first step, and their sums are
// OrderedSum.cu's kernel on the member's compute stream. A message between
// two devices is one cudaMemcpyAsync with cudaMemcpyDefault (unified
// addressing routes it peer to peer, or through the host where the devices
// cannot reach each other); events recorded on one device may be waited
// on by another device's stream. A drain polls the streams (PollWait.h)
// and the ranks' synchronizes do too, so that once the run is abandoned
// no host thread waits for an event a faulted device will never complete.
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/Target.h"

#include "kernels/cuda/Calls.h"
#include "kernels/cuda/OrderedSum.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace pipert::cuda {
namespace {

pipert::Status failed(const char *what, cudaError_t e, int32_t rank = -1) {
  return pipert::Status::failure(
      std::string(what) + ": " + cudaGetErrorString(e), rank);
}

/// Makes `device` current for the scope, and the caller's device again
/// after it: a rank's thread enqueues on its peer's transfer stream when
/// its post completes a match.
class OnDevice {
public:
  explicit OnDevice(int device) {
    if ((error = cudaGetDevice(&previous)) == cudaSuccess && previous != device)
      error = cudaSetDevice(device);
  }
  ~OnDevice() {
    int now = -1;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous)
      cudaSetDevice(previous);
  }
  cudaError_t error = cudaSuccess;

private:
  int previous = 0;
};

class CudaQueues final : public pipert::DeviceQueues {
public:
  struct Rank {
    int device = -1;
    cudaStream_t compute = nullptr, transfer = nullptr;
  };

  ~CudaQueues() override {
    for (call::Context *c : contexts)
      if (c)
        c->stepGraph = nullptr, c->abandoned = nullptr;
    stepGraph.reset();
    for (Rank &r : ranks)
      if (r.transfer) {
        OnDevice on(r.device);
        if (!abandoned) // it may wait for ever on a faulted device
          cudaStreamSynchronize(r.transfer);
        cudaStreamDestroy(r.transfer);
      }
  }

  /// The queues of the ranks whose Contexts `states` holds; "" or why not.
  /// Their synchronizes poll from now on, and give up once the run is
  /// abandoned.
  std::string init(void *const *states, int32_t count) {
    ranks.resize(size_t(count));
    contexts.assign(size_t(count), nullptr);
    for (int32_t r = 0; r < count; ++r) {
      if (!states[r])
        continue; // a rank of another process
      auto *c = static_cast<call::Context *>(states[r]);
      c->abandoned = &abandoned;
      contexts[size_t(r)] = c;
      Rank &q = ranks[size_t(r)];
      q.device = c->device;
      q.compute = c->stream;
      OnDevice on(q.device);
      cudaError_t e = on.error;
      if (e == cudaSuccess)
        e = cudaStreamCreateWithFlags(&q.transfer, cudaStreamNonBlocking);
      if (e != cudaSuccess)
        return "rank " + std::to_string(r) +
               ": its transfer stream: " + cudaGetErrorString(e);
    }
    enablePeers();
    return "";
  }

  int32_t deviceOf(int32_t rank) const override {
    return rank >= 0 && size_t(rank) < ranks.size() ? ranks[size_t(rank)].device
                                                    : -1;
  }

  pipert::Status createEvent(int32_t device, Event &out) override {
    OnDevice on(device);
    cudaEvent_t e = nullptr;
    cudaError_t err = on.error;
    if (err == cudaSuccess)
      err = cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
    if (err != cudaSuccess)
      return failed(("an event on device " + std::to_string(device)).c_str(),
                    err);
    out = e;
    return pipert::Status::success();
  }

  void destroyEvent(Event event) override {
    cudaEventDestroy(static_cast<cudaEvent_t>(event));
  }

  pipert::Status recordCompute(int32_t rank, Event event) override {
    return onRank(rank, "cudaEventRecord", [&](const Rank &q) {
      return cudaEventRecord(static_cast<cudaEvent_t>(event), q.compute);
    });
  }

  pipert::Status transfer(int32_t rank, const Event *after, int32_t afterCount,
                          void *dst, const void *src, int64_t bytes,
                          const Event *done, int32_t doneCount) override {
    std::string what = "a transfer of " + std::to_string(bytes) + " bytes";
    return onRank(rank, what.c_str(), [&](const Rank &q) {
      cudaError_t e = cudaSuccess;
      for (int32_t i = 0; i < afterCount && e == cudaSuccess; ++i)
        e = cudaStreamWaitEvent(q.transfer, static_cast<cudaEvent_t>(after[i]),
                                0);
      if (e == cudaSuccess)
        e = cudaMemcpyAsync(dst, src, size_t(bytes), cudaMemcpyDefault,
                            q.transfer);
      for (int32_t i = 0; i < doneCount && e == cudaSuccess; ++i)
        e = cudaEventRecord(static_cast<cudaEvent_t>(done[i]), q.transfer);
      return e;
    });
  }

  pipert::Status computeWaits(int32_t rank, Event event) override {
    return onRank(rank, "cudaStreamWaitEvent", [&](const Rank &q) {
      return cudaStreamWaitEvent(q.compute, static_cast<cudaEvent_t>(event), 0);
    });
  }

  pipert::Status drain(int32_t rank) override {
    bool gaveUp = false;
    pipert::Status s =
        onRank(rank, "synchronizing the rank's streams", [&](const Rank &q) {
          cudaError_t e = cudaSuccess;
          for (cudaStream_t stream : {q.compute, q.transfer}) {
            Polled p = call::pollStream(stream, &abandoned, e);
            if (p == Polled::NotReady)
              gaveUp = true;
            if (p != Polled::Done)
              return gaveUp ? cudaSuccess : e;
          }
          return cudaSuccess;
        });
    if (gaveUp)
      return pipert::Status::failure(
          "abandoned while waiting for the device (another rank failed)",
          rank);
    return s;
  }

  void abandon() override {
    abandoned.store(true, std::memory_order_release);
  }

  /// Every rank of the process captures its step into one graph (all on
  /// one device: a graph's stream capture stays on its device). "" or why
  /// not.
  std::string enableStepGraphs(int64_t from) {
    std::vector<StepGraph::Member> members;
    int device = -1;
    for (size_t r = 0; r < ranks.size(); ++r) {
      const Rank &q = ranks[r];
      if (!q.transfer)
        continue;
      if (device >= 0 && q.device != device)
        return "--step-graph: the ranks run on GPUs " +
               std::to_string(device) + " and " + std::to_string(q.device) +
               "; one graph covers the ranks of one GPU (make one GPU "
               "visible, or run without --step-graph)";
      device = q.device;
      members.push_back({contexts[r], {q.transfer}});
    }
    if (members.empty())
      return "--step-graph: no rank runs in this process";
    stepGraph = std::make_unique<StepGraph>(std::move(members), device, from,
                                            &abandoned);
    if (std::string why = stepGraph->init(); !why.empty()) {
      stepGraph.reset();
      return why;
    }
    for (call::Context *c : contexts)
      if (c)
        c->stepGraph = stepGraph.get();
    return "";
  }

  pipert::Status allocate(int32_t rank, int64_t bytes, void *&out) override {
    out = nullptr;
    std::string what = "cudaMalloc of " + std::to_string(bytes) +
                       " bytes of a collective's staging";
    return onRank(rank, what.c_str(), [&](const Rank &) {
      return bytes > 0 ? cudaMalloc(&out, size_t(bytes)) : cudaSuccess;
    });
  }

  void release(int32_t rank, void *memory) override {
    if (const Rank *q = held(rank); q && memory) {
      OnDevice on(q->device);
      cudaFree(memory);
    }
  }

  pipert::Status sum(int32_t rank, pipert::DType dtype, void *operand,
                     const void *staging, const pipert::OrderedSum &s,
                     int32_t members, int32_t me) override {
    return onRank(rank, "a collective's ordered sum", [&](const Rank &q) {
      return launchOrderedSum(q.compute, dtype, operand, staging, s, members,
                              me);
    });
  }

private:
  /// Lets each device the ranks use read and write the others' memory
  /// where the hardware can (NVLink or PCIe peer to peer): a transfer
  /// between two of them is then one copy, not two through the host.
  /// Where it cannot, cudaMemcpyDefault still routes the bytes; that is
  /// said once, since the run is correct but slower.
  void enablePeers() {
    std::vector<int> devices;
    for (const Rank &q : ranks)
      if (q.transfer &&
          std::find(devices.begin(), devices.end(), q.device) == devices.end())
        devices.push_back(q.device);
    for (int a : devices)
      for (int b : devices) {
        if (a == b)
          continue;
        int can = 0;
        if (cudaDeviceCanAccessPeer(&can, a, b) != cudaSuccess || !can) {
          std::fprintf(stderr,
                       "cuda-local: GPU %d cannot reach GPU %d directly; "
                       "their messages go through the host\n",
                       a, b);
          continue;
        }
        OnDevice on(a);
        cudaError_t e = on.error == cudaSuccess
                            ? cudaDeviceEnablePeerAccess(b, 0)
                            : on.error;
        if (e != cudaSuccess)
          cudaGetLastError(); // not a kernel's error: cleared here
        if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled)
          std::fprintf(stderr,
                       "cuda-local: peer access from GPU %d to GPU %d: %s; "
                       "their messages go through the host\n",
                       a, b, cudaGetErrorString(e));
      }
  }

  const Rank *held(int32_t rank) const {
    return rank >= 0 && size_t(rank) < ranks.size() &&
                   ranks[size_t(rank)].transfer
               ? &ranks[size_t(rank)]
               : nullptr;
  }
  /// `body` (the CUDA calls of one operation) on `rank`'s device; its
  /// error named by `what`.
  template <typename Body>
  pipert::Status onRank(int32_t rank, const char *what, Body body) {
    const Rank *q = held(rank);
    if (!q)
      return pipert::Status::failure("rank " + std::to_string(rank) +
                                     " has no streams in this process");
    OnDevice on(q->device);
    cudaError_t e = on.error;
    if (e == cudaSuccess)
      e = body(*q);
    return e == cudaSuccess ? pipert::Status::success() : failed(what, e, rank);
  }

  std::vector<Rank> ranks;
  std::vector<call::Context *> contexts; ///< per rank, null: another process
  std::atomic<bool> abandoned{false};
  std::unique_ptr<StepGraph> stepGraph;
};

} // namespace

std::string enableQueueStepGraphs(pipert::DeviceQueues *queues,
                                  int64_t from) {
  auto *q = dynamic_cast<CudaQueues *>(queues);
  return q ? q->enableStepGraphs(from)
           : "--step-graph: the queues are not the cuda target's";
}

pipert::DeviceQueues *createQueues(void *const *states, int32_t ranks,
                                   char *error, int64_t errorBytes) {
  auto *q = new CudaQueues;
  if (std::string why = q->init(states, ranks); !why.empty()) {
    if (error && errorBytes > 0)
      std::snprintf(error, size_t(errorBytes), "%s", why.c_str());
    delete q;
    return nullptr;
  }
  return q;
}

} // namespace pipert::cuda
