//===- BuildPlan.h - compiles emitted sources into OUT/pipec-plan -*- C++ -*-===//
//
// Runs the system C++ compiler on the sources the cpu emitter wrote
// (-O3 -march=native -ffp-contract=off -fopenmp, the numerics contract of
// runtime/kernels/cpu) and links them with the fixed main
// (tools/pipec-run/PlanMain.cpp) and the runtime libraries built with
// pipec. Objects are cached by a hash of their source text and flags, so
// a chunk compiles once whatever plan or schedule it appears in.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_EMIT_BUILDPLAN_H
#define PIPEC_COMPILER_EMIT_BUILDPLAN_H

#include "compiler/emit/EmitPlan.h"

#include <string>

namespace pipec::emit {

/// How compiling went.
struct BuildStats {
  int compiled = 0; ///< objects compiled now
  int cached = 0;   ///< objects found in the cache
};

/// Compiles `plan` (written into `outDir`) into outDir/pipec-plan. The
/// cache is $PIPEC_CACHE_DIR, else outDir/../.pipec-cache.
bool buildPlan(const std::string &outDir, const EmittedPlan &plan,
               BuildStats &stats, std::string &error);

} // namespace pipec::emit

#endif // PIPEC_COMPILER_EMIT_BUILDPLAN_H
