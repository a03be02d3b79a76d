//===- EmitCpu.h - the cpu target: sources, streams, manifest ---*- C++ -*-===//
//
// `--target=cpu` of `pipec compile`: from a module that went through the
// training pipeline (nn-autodiff, pipe-partition, pipe-schedule,
// pipe-plan-memory) writes into OUT/ one C++ source per chunk (its F, B and
// W as kernel calls on arena pointers), kernels.cpp (each kernel
// instantiation the chunks call, once), plan.cpp (the
// ChunkKernels of the plan: data, all-reduce operands, optimizer), one
// stream file per rank and manifest.json (docs/EMIT.md, docs/RUNTIME.md).
// BuildPlan.h compiles them into OUT/pipec-plan.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_EMIT_EMITCPU_H
#define PIPEC_COMPILER_EMIT_EMITCPU_H

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace pipec::emit {

/// What the emitter wrote.
struct EmittedPlan {
  /// Chunk sources (file names relative to the output directory), one per
  /// chunk, compiled once per distinct content.
  std::vector<std::string> chunkSources;
  /// Every kernel instantiation the chunks call, once (kernels.cpp).
  std::string kernelSource;
  /// The plan's own source (schedule-dependent tables and the optimizer).
  std::string planSource;
  /// Per rank: the arena (`pipe.arena_bytes` of --pipe-plan-memory, which
  /// placed every region) and the most bytes live at one instruction
  /// (`pipe.peak_live_bytes`; the arena exceeds it by fragmentation only).
  std::vector<int64_t> arenaBytes, peakLiveBytes;
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
};

/// Emits the plan of `module` into `outDir` (which must exist). On failure
/// returns false with `error` naming what and where.
bool emitCpuPlan(mlir::ModuleOp module, const std::string &outDir,
                 EmittedPlan &plan, std::string &error,
                 const EmitOptions &options = {});

} // namespace pipec::emit

#endif // PIPEC_COMPILER_EMIT_EMITCPU_H
