//===- EmitPlan.h - a plan's sources, streams and manifest ------*- C++ -*-===//
//
// `pipec compile`: from a module that went through the training pipeline
// (nn-autodiff, pipe-partition, pipe-schedule, nn-lower-to-kernels,
// pipe-plan-memory) writes into OUT/ one source per chunk (its F, B and W
// as kernel calls on arena pointers), plan.cpp / plan.cu (the chunk table,
// all-reduce operands, optimizer and, on cuda, the target's hooks), one
// stream file per rank and manifest.json (docs/EMIT.md, docs/RUNTIME.md).
// The target is the module's kernel.target: cpu chunks are .cpp files
// calling the instantiations of kernels.cpp; cuda chunks are .cu files
// calling runtime/kernels/cuda/Calls.h on the rank's stream (docs/CUDA.md).
// BuildPlan.h compiles them into OUT/pipec-plan.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_EMIT_EMITPLAN_H
#define PIPEC_COMPILER_EMIT_EMITPLAN_H

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace pipec::emit {

/// What the emitter wrote.
struct EmittedPlan {
  /// Chunk sources (file names relative to the output directory), one per
  /// chunk, compiled once per distinct content.
  std::vector<std::string> chunkSources;
  /// Every kernel instantiation the chunks call, once (kernels.cpp; none
  /// on cuda, whose chunks call the library's launchers).
  std::string kernelSource;
  /// The kernel library the plan calls: cpu or cuda.
  std::string target = "cpu";
  /// The plan's own source (schedule-dependent tables and the optimizer).
  std::string planSource;
  /// Per rank: the arena (`pipe.arena_bytes` of --pipe-plan-memory, which
  /// placed every region) and the most bytes live at one instruction
  /// (`pipe.peak_live_bytes`; the arena exceeds it by fragmentation only).
  std::vector<int64_t> arenaBytes, peakLiveBytes;
  /// Per rank: the bytes of its AdamW moments (m and v; with ZeRO-1 the
  /// largest replica's parts) and of the whole moments it would keep
  /// without ZeRO.
  std::vector<int64_t> momentBytes, wholeMomentBytes;
  /// The plan's identity (manifest.json "plan_id").
  std::string planId;
};

/// Debug switches of the emitter.
struct EmitOptions {
  /// Puts the data region of every micro-batch of a chunk in one slot, a
  /// deliberately wrong layout that the runtime's shadow mode must reject
  /// (the negative control of the e2e tests).
  bool debugOneSlot = false;
  /// Multiplies the B gradients of every `nn.OP` op by 1 + 1e-3 as
  /// `pipec reference-train --debug-perturb-vjp=OP` does (empty: off), so
  /// a comparison of compiled plans can be shown to fail.
  std::string debugPerturbVjp;
  /// What the plan is compiled from besides its module (the model file's
  /// bytes and the compile options): the first part of the plan id.
  std::string identity;
  /// The model's FLOPs of one micro-batch's training step (3 x
  /// analysis::forwardFlops of the imported @forward), for the manifest;
  /// 0 unknown.
  int64_t trainFlopsPerMicrobatch = 0;
};

/// Emits the plan of `module` into `outDir` (which must exist). Fails with
/// an error diagnostic at the op it cannot emit (or at the module: a file
/// it cannot write, a plan that does not fit the module).
mlir::LogicalResult emitPlan(mlir::ModuleOp module, const std::string &outDir,
                             EmittedPlan &plan,
                             const EmitOptions &options = {});

/// work.json: per chunk the FLOPs, bytes and kernels of its F, B and W by
/// kernel class (the partition's pipe.work), per pipeline rank the bytes
/// of the parameters its optimizer updates (WorkJson.cpp).
std::string workJson(mlir::ModuleOp module, int32_t ranks);

} // namespace pipec::emit

#endif // PIPEC_COMPILER_EMIT_EMITPLAN_H
