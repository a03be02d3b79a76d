//===- PlanFolder.h - a plan folder that rebuilds on its own ----*- C++ -*-===//
//
// What a GPU machine without MLIR needs to build a plan: beside the emitted
// sources, streams and manifest, OUT/ gets the runtime's sources
// (runtime/: libpipert, the executor and transports, the plan runner, the
// kernel library), the JSON library's headers (third_party/nlohmann) and a
// CMakeLists.txt, so that `cmake -G Ninja -S OUT -B B && ninja -C B` builds
// B/pipec-plan with the target's toolchain alone (docs/EMIT.md).
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_EMIT_PLANFOLDER_H
#define PIPEC_COMPILER_EMIT_PLANFOLDER_H

#include "compiler/emit/EmitPlan.h"

#include <string>

namespace pipec::emit {

/// Copies the runtime and writes OUT/CMakeLists.txt for `plan`. On failure
/// returns false with `error` naming the file.
bool writePlanFolder(const std::string &outDir, const EmittedPlan &plan,
                     std::string &error);

} // namespace pipec::emit

#endif // PIPEC_COMPILER_EMIT_PLANFOLDER_H
