//===- EmitLayout.h - arenas of a compiled plan, per rank -------*- C++ -*-===//
//
// Where every byte of a compiled plan lives (docs/EMIT.md): the value
// layout of compiler/analysis/ValueLayout.h (per rank the static blocks, per
// (chunk, micro-batch) six regions), placed where --pipe-plan-memory packed
// them, plus what the emitter alone needs (learning-rate schedule,
// programs, manifest).
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_EMIT_EMITLAYOUT_H
#define PIPEC_COMPILER_EMIT_EMITLAYOUT_H

#include "compiler/analysis/ValueLayout.h"
#include "dialects/nn/NNOps.h"
#include "dialects/pipe/PipeOps.h"
#include "pipert/LrSchedule.h"
#include "pipert/Manifest.h"
#include "pipert/Stream.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

#include <map>
#include <tuple>
#include <string>
#include <vector>

namespace pipec::emit {

// The value layout is shared with --pipe-plan-memory (ValueLayout.h).
using layout::align64;
using layout::ChunkLayout;
using layout::Copy;
using layout::HostInput;
using layout::ParamLayout;
using layout::Place;
using layout::RankLayout;
using layout::Region;
using layout::SlotRegion;
using layout::TiedGroup;
using layout::TiedSegment;
using layout::kInAct;
using layout::kInGrad;
using layout::kOutAct;
using layout::kOutGrad;
using layout::kData;
using layout::kBData;
using layout::kRegions;

/// Everything the emitter prints: the value layout, with the slots and
/// arena sizes of the memory plan, the schedule and the manifest.
struct PlanLayout : layout::ValueLayout {
  int32_t chunksPerRank = 1;
  /// Data-parallel replicas (pipe.schedule replicas): the plan has
  /// replicas x stages ranks, each replica laid out as replica 0.
  int32_t replicas = 1;
  pipert::LrSchedule lr;
  bool debugOneSlot = false; ///< EmitOptions::debugOneSlot
  /// The module laid out, for diagnostics (mutable: an op handle, and
  /// reporting at it changes nothing of the layout).
  mutable mlir::ModuleOp module;
  pipe::ScheduleOp schedule;
  std::vector<pipe::ProgramOp> programs;
  /// pipe.group symbol -> the tied parameter it all-reduces (pipe.param).
  std::map<std::string, std::string> groupParam;
  pipert::Manifest manifest;
};

/// Lays out the plan of a module that went through the training pipeline;
/// fails with an error at the module or the op that does not fit.
mlir::LogicalResult buildPlanLayout(mlir::ModuleOp module, PlanLayout &layout);

/// Slots per (chunk, micro-batch), their offsets and the arena sizes, read
/// from the memory plan on the programs (pipe.buffers, pipe.slots,
/// pipe.arena_bytes of --pipe-plan-memory); fails when the plan's buffers
/// are not the layout's regions, with an error at the program
/// (MemoryPlanReader.cpp).
mlir::LogicalResult readMemoryPlan(PlanLayout &layout);

/// The manifest of the laid-out plan (ManifestWriter.cpp).
void fillManifest(PlanLayout &layout);

/// The runtime streams of every rank (StreamWriter.cpp); an error at the
/// program whose stream cannot be written.
mlir::LogicalResult buildStreams(const PlanLayout &layout,
                                 std::vector<pipert::Stream> &out);

} // namespace pipec::emit

#endif // PIPEC_COMPILER_EMIT_EMITLAYOUT_H
