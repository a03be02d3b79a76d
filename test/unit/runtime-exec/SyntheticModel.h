//===- SyntheticModel.h - a real model for executor tests -*- C++ -*-===//
//
// A chain of L layers y = gelu(x W + b) on random data, cut into S x V
// chunks placed by a schedule kind, with a squared-error loss after the last
// layer, backward split into B and W, global-norm clipping through an
// all-reduce and AdamW in the arena. The plan (buffer offsets, per-rank
// streams from compiler/schedule, each instruction's reads with their
// expected writers) is built here the way the compiler's memory planner and
// stream writer will, so the executor is proven before the emitter exists.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_TEST_RUNTIME_EXEC_SYNTHETICMODEL_H
#define PIPEC_TEST_RUNTIME_EXEC_SYNTHETICMODEL_H

#include "compiler/schedule/Schedule.h"
#include "pipert/Executor.h"

#include <string>
#include <vector>

namespace pipec::testing {

/// Sizes of the synthetic model.
struct ModelShape {
  int32_t layers = 8;
  int32_t width = 16; ///< D: every layer is D x D
  int32_t rows = 4;   ///< rows of a micro-batch
};

/// Which plan to build, and the plan bugs tests inject.
struct PlanOptions {
  pipec::schedule::Kind kind = pipec::schedule::Kind::OneFOneB;
  int32_t stages = 1;
  int32_t microbatches = 8;
  ModelShape shape;
  /// Give mb 1's first pre-activation the arena bytes of mb 0's (a memory
  /// plan that overlaps two live buffers).
  bool aliasBug = false;
  /// Reserve 64 bytes no instruction touches (peak != what runs).
  bool slackBug = false;
  /// One-rank gpipe only: run the last two W steps in descending
  /// micro-batch order (a valid plan that accumulates differently).
  bool reorderLastW = false;
};

/// A placed buffer.
struct Buf {
  int32_t rank = 0;
  int64_t offset = 0, bytes = 0;
};

/// Everything the kernels need to find their data, plus the plan itself.
struct SyntheticPlan {
  PlanOptions options;
  int32_t chunks = 1;
  std::vector<int32_t> firstLayer; ///< per chunk, plus the end
  std::vector<int32_t> layerRank;
  // Per layer: parameters and their state.
  std::vector<Buf> w, b, dw, db, mw, vw, mbias, vbias;
  // Per (layer, mb): pre-activation, output, output gradient, pre-act grad.
  std::vector<Buf> h, a, da, dh;
  // Per (chunk, mb): chunk input (received, loaded or aliased) and the
  // gradient of the chunk output (received, from the loss or aliased).
  std::vector<Buf> in, dout;
  /// Per (chunk, mb): the gradient of the chunk input as its B writes it
  /// (the previous chunk's dout when that chunk is on the same rank).
  std::vector<Buf> din;
  std::vector<Buf> lossSlot;   ///< per rank (valid on the last chunk's rank)
  std::vector<Buf> normBuf;    ///< per rank: double[2 L], per-tensor squares
  std::vector<Buf> normSlot;   ///< per rank: the global norm (double)
  pipec::schedule::Schedule schedule;
  double modeledBubble = 0;
  pipert::Manifest manifest;
  std::vector<pipert::Stream> streams;

  int64_t lm(int32_t layer, int32_t mb) const {
    return int64_t(layer) * options.microbatches + mb;
  }
  int64_t cm(int32_t chunk, int32_t mb) const {
    return int64_t(chunk) * options.microbatches + mb;
  }
};

/// Builds the plan; returns "" or why not (the schedule library's message).
std::string buildPlan(const PlanOptions &options, SyntheticPlan &plan);

/// Writes the plan's streams and manifest.json into `dir`, as pipec compile
/// would lay out a plan folder's files the executor reads.
pipert::Status writePlanFiles(const SyntheticPlan &plan,
                              const std::string &dir);

/// The compute of the synthetic model on the CPU kernels.
class SyntheticKernels : public pipert::ChunkKernels {
public:
  explicit SyntheticKernels(const SyntheticPlan &plan) : plan(plan) {}
  pipert::Status fwd(const pipert::RankContext &ctx, int32_t chunk,
                     int32_t mb) override;
  pipert::Status bwdB(const pipert::RankContext &ctx, int32_t chunk,
                      int32_t mb) override;
  pipert::Status bwdW(const pipert::RankContext &ctx, int32_t chunk,
                      int32_t mb) override;
  pipert::Status prepareAllReduce(const pipert::RankContext &ctx,
                                  int32_t group, int32_t bucket, uint8_t *data,
                                  int64_t bytes) override;
  pipert::Status optStep(const pipert::RankContext &ctx) override;
  /// Makes fwd also write 4 bytes into a buffer it does not own.
  bool strayWrite = false;
  /// Makes bwd_w of this (chunk, mb) fail, in step 1.
  int32_t failChunk = -1, failMb = -1;

private:
  const SyntheticPlan &plan;
};

/// What the shadow mode says of SyntheticKernels::strayWrite: rank 0's
/// first F changed 4 bytes it does not own (its norm slot's first).
std::string strayWriteReport(const SyntheticPlan &plan);

/// Arenas in host memory that the executor treats as a device's: reached
/// through the allocator's copy (a memcpy) only.
pipert::ArenaAllocator hostBackedDeviceArenas();

/// Appends every parameter's bytes, in the manifest's order, to `params`
/// (through readArena: host or device arenas alike).
pipert::Status readParameters(const pipert::Executor &exec,
                              std::vector<uint8_t> &params);

/// Trains `plan` `steps` steps with SyntheticKernels (2 cores, 5 s
/// deadlines), its arenas from `allocator` (null: host memory) and the
/// messages moved by `queues` (null: by the transport); appends each
/// step's loss and norm to `metrics` and every parameter's bytes, in the
/// manifest's order, to `params`.
pipert::Status trainForBits(const SyntheticPlan &plan,
                            const pipert::ArenaAllocator *allocator,
                            pipert::DeviceQueues *queues, int64_t steps,
                            std::vector<double> &metrics,
                            std::vector<uint8_t> &params);

} // namespace pipec::testing

#endif // PIPEC_TEST_RUNTIME_EXEC_SYNTHETICMODEL_H
