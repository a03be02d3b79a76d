//===- StepGraph.cpp - a process's whole step as one CUDA graph -----------===//

#include "kernels/cuda/StepGraph.h"

#include "kernels/cuda/Calls.h"

#include <algorithm>
#include <chrono>

namespace pipert::cuda {
namespace {

std::string failed(const char *what, cudaError_t e) {
  return std::string("whole-step CUDA graph: ") + what + ": " +
         cudaGetErrorString(e);
}

} // namespace

StepGraph::StepGraph(std::vector<Member> members, int device, int64_t from,
                     const std::atomic<bool> *abandoned)
    : members(std::move(members)), device(device), from(from),
      abandoned(abandoned) {
  skipping.skipping = true;
}

StepGraph::~StepGraph() {
  cudaSetDevice(device);
  if (capturing) {
    // A run that failed inside the capture step: end it before the
    // stream goes.
    cudaGraph_t graph = nullptr;
    cudaStreamEndCapture(origin, &graph);
    if (graph)
      cudaGraphDestroy(graph);
    cudaGetLastError();
  }
  if (exec)
    cudaGraphExecDestroy(exec);
  for (cudaEvent_t e : joins)
    if (e)
      cudaEventDestroy(e);
  if (forked)
    cudaEventDestroy(forked);
  if (launched)
    cudaEventDestroy(launched);
  if (origin)
    cudaStreamDestroy(origin);
}

std::string StepGraph::init() {
  cudaError_t e = cudaSetDevice(device);
  if (e == cudaSuccess)
    e = cudaStreamCreateWithFlags(&origin, cudaStreamNonBlocking);
  for (cudaEvent_t *ev : {&forked, &launched})
    if (e == cudaSuccess)
      e = cudaEventCreateWithFlags(ev, cudaEventDisableTiming);
  size_t streams = 0;
  for (const Member &m : members)
    streams += 1 + m.others.size();
  joins.assign(streams, nullptr);
  for (cudaEvent_t &ev : joins)
    if (e == cudaSuccess)
      e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
  return e == cudaSuccess ? "" : failed("its stream and events", e);
}

template <typename Last> std::string StepGraph::meet(Last &&last) {
  std::unique_lock<std::mutex> lock(mu);
  const int64_t mine = generation;
  if (++arrived == int32_t(members.size())) {
    error = last();
    arrived = 0;
    ++generation;
    cv.notify_all();
    return error;
  }
  // A rank that failed never comes: the abandoned run ends the wait.
  while (generation == mine) {
    if (abandoned && abandoned->load(std::memory_order_acquire))
      return "whole-step CUDA graph: abandoned while waiting for the other "
             "ranks (another rank failed)";
    cv.wait_for(lock, std::chrono::milliseconds(1));
  }
  return error;
}

std::string StepGraph::beginStep(call::Context &c, int64_t step,
                                 bool &replayed) {
  replayed = false;
  Phase phase;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (firstStep < 0)
      firstStep = step;
    phase = step < firstStep + std::max<int64_t>(1, from) ? Phase::Warm
            : exec                                       ? Phase::Replay
                                                         : Phase::Capture;
  }
  c.stepPhase = int(phase);
  if (phase == Phase::Warm) {
    c.inputs->countStep(); // the replayed steps' slots are counted here
    return "";
  }
  // The step's pinned input slots (made at the capture step, before it
  // opens: no allocation while a capture is open).
  if (cudaError_t e = c.inputs->beginGraphStep(phase == Phase::Replay);
      e != cudaSuccess)
    return failed("the step's pinned input slots", e);
  if (phase == Phase::Replay) {
    c.graphs = &skipping; // the functions skip their launches
    replayed = true;
    return "";
  }
  // Every rank has finished its warm steps (their synchronizes, lazy
  // module loads and drains) before the last to arrive opens the capture.
  c.graphs = nullptr; // no capture of a function inside the step's
  if (std::string why = meet([&]() -> std::string {
        cudaError_t e = cudaSetDevice(device);
        if (e == cudaSuccess)
          e = cudaStreamBeginCapture(origin, cudaStreamCaptureModeRelaxed);
        if (e != cudaSuccess)
          return failed("beginning the capture", e);
        capturing = true;
        if ((e = cudaEventRecord(forked, origin)) != cudaSuccess)
          return failed("beginning the capture", e);
        return "";
      });
      !why.empty())
    return why;
  if (cudaError_t e = cudaStreamWaitEvent(c.stream, forked, 0);
      e != cudaSuccess)
    return failed("joining the capture", e);
  return "";
}

std::string StepGraph::endCapture() {
  // Every stream the capture reached joins back into the origin: the
  // compute streams (joined at the step's start) and each transfer stream
  // that a captured event reached.
  cudaError_t e = cudaSetDevice(device);
  size_t next = 0;
  for (size_t m = 0; m < members.size() && e == cudaSuccess; ++m) {
    std::vector<cudaStream_t> streams = members[m].others;
    streams.insert(streams.begin(), members[m].context->stream);
    for (cudaStream_t stream : streams) {
      cudaEvent_t join = joins[next++];
      cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
      if (e != cudaSuccess || !stream ||
          (e = cudaStreamIsCapturing(stream, &status)) != cudaSuccess ||
          status != cudaStreamCaptureStatusActive)
        continue;
      if ((e = cudaEventRecord(join, stream)) == cudaSuccess)
        e = cudaStreamWaitEvent(origin, join, 0);
    }
  }
  cudaGraph_t graph = nullptr;
  cudaError_t ended = cudaStreamEndCapture(origin, &graph);
  capturing = false;
  if (e != cudaSuccess) {
    if (graph)
      cudaGraphDestroy(graph);
    return failed("joining the streams back", e);
  }
  if (ended != cudaSuccess)
    return failed("ending the capture (a call in the step cannot be "
                  "captured; run without --step-graph)",
                  ended);
  e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    exec = nullptr;
    return failed("instantiating the graph", e);
  }
  return "";
}

std::string StepGraph::launch() {
  if (beforeLaunch)
    beforeLaunch();
  cudaError_t e = cudaSetDevice(device);
  if (e == cudaSuccess)
    e = cudaGraphLaunch(exec, origin);
  if (e == cudaSuccess)
    e = cudaEventRecord(launched, origin);
  if (e != cudaSuccess)
    return failed("launching the graph", e);
  if (afterLaunch)
    afterLaunch(launched);
  return "";
}

std::string StepGraph::endStep(call::Context &c) {
  const auto phase = Phase(c.stepPhase);
  if (phase == Phase::Warm)
    return "";
  c.graphs = nullptr;
  c.stepPhase = int(Phase::Warm); // outside a step, calls run as always
  if (cudaError_t e = c.inputs->endGraphStep(); e != cudaSuccess)
    return failed("the step gave fewer host inputs than the captured one",
                  e);
  std::string why = meet([&]() -> std::string {
    if (phase == Phase::Capture)
      if (std::string e = endCapture(); !e.empty())
        return e;
    return launch();
  });
  if (!why.empty())
    return why;
  // The executor's drain of this rank waits for the graph.
  if (cudaError_t e = cudaStreamWaitEvent(c.stream, launched, 0);
      e != cudaSuccess)
    return failed("waiting for the launch", e);
  return "";
}

} // namespace pipert::cuda
