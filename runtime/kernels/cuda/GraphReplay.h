//===- GraphReplay.h - a generated function's launches as one CUDA graph -*- C++ -*-===//
//
// pipec-plan --cuda-graphs (issue 19 item 3, its first part): the launches
// of each generated function (a chunk's F, B or W for one micro-batch's
// regions, a rank's all-reduce operands, its optimizer step) are captured
// the first time the function runs with those arguments and replayed as
// one graph launch afterwards, instead of one launch per kernel: what the
// host spends launching a small model's hundreds of kernels a phase goes.
// The host's copies into the arena (the token batch, the loss scale, the
// step) stay outside the graph, before it, so every value that changes per
// step reaches the kernels through device memory, where they read it
// (part 1's design); the arena, the regions and the GEMM workspace do not
// move, so a captured launch is the same launch. A replay runs the same
// kernels with the same arguments in the same order: the same bits.
// Under --profile (or --trace-kernels) the timed steps run uncaptured,
// each call between its events.
//
// Each function's first call with a set of arguments runs uncaptured, so
// that lazy module loading, cuBLASLt's planning and pinned allocations
// happen outside any capture; the second captures, later ones replay.
//
// The generated function reads:
//   Replay replay(C, "chunk 0 F", {A, R[0], ...});
//   if (!replay.replaying()) { ...the kernel calls... }
//   if (Status s = replay.finish(); !s.ok()) return s;
//   ...synchronize...
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_GRAPHREPLAY_H
#define PIPERT_KERNELS_CUDA_GRAPHREPLAY_H

#include "kernels/cpu/Status.h"

#include <cuda_runtime_api.h>

#include <initializer_list>
#include <map>
#include <set>
#include <string>

namespace pipert::cuda {

/// One rank's instantiated graphs, by function and arguments.
class GraphCache {
public:
  GraphCache() = default;
  ~GraphCache();
  GraphCache(const GraphCache &) = delete;
  GraphCache &operator=(const GraphCache &) = delete;

  /// The graph of `key`, or null.
  cudaGraphExec_t find(const std::string &key) const;
  void add(const std::string &key, cudaGraphExec_t exec);
  size_t size() const { return execs.size(); }
  /// True the first time `key` is asked: that call runs uncaptured.
  bool firstRun(const std::string &key) { return warm.insert(key).second; }
  /// A replayed whole step (StepGraph.h): every function skips its
  /// launches, which the step's graph makes.
  bool skipping = false;

private:
  std::map<std::string, cudaGraphExec_t> execs;
  std::set<std::string> warm;
};

/// One run of a generated function under a GraphCache (null: no graphs).
class Replay {
public:
  /// Replays the graph of (`what`, `args`) on `stream` if there is one;
  /// otherwise, unless `cache` is null or `uncaptured` (the kernels are
  /// being timed), the first call with these arguments runs as it is (it
  /// loads the kernels' modules, plans the GEMM shapes, makes rope's
  /// pinned tables: nothing of that happens during a capture) and the
  /// second captures its launches.
  Replay(GraphCache *cache, cudaStream_t stream, const char *what,
         std::initializer_list<const void *> args, bool uncaptured);
  ~Replay();
  Replay(const Replay &) = delete;
  Replay &operator=(const Replay &) = delete;

  /// True when the graph was launched: the function skips its calls.
  bool replaying() const { return replayed; }
  /// After the calls: ends a capture, instantiates the graph, keeps it and
  /// launches it (a captured launch does not run); the first error of the
  /// whole, named with `what`.
  pipert::cpu::Status finish();

private:
  GraphCache *cache;
  cudaStream_t stream;
  const char *what;
  std::string key;
  bool replayed = false, capturing = false;
  cudaError_t error = cudaSuccess;
  const char *stage = ""; ///< what `error` came from
};

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_GRAPHREPLAY_H
