//===- PlanFiles.h - a plan folder compiled for pipec-sim, and read -*- C++ -*-===//
//
// pipec-sim's access to plans: a model file compiled into a temporary plan
// folder by the pipec beside it (`pipec compile --emit-only`), and a plan
// folder's manifest and streams read as the schedule library holds them.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_TOOLS_PIPEC_SIM_PLANFILES_H
#define PIPEC_TOOLS_PIPEC_SIM_PLANFILES_H

#include "compiler/schedule/Schedule.h"
#include "pipert/Manifest.h"
#include "pipert/Stream.h"

#include <string>
#include <vector>

namespace pipec::sim {

/// A plan folder pipec-sim compiled for a model file, removed with it.
struct TempPlan {
  std::string dir;
  TempPlan() = default;
  TempPlan(const TempPlan &) = delete;
  TempPlan &operator=(const TempPlan &) = delete;
  ~TempPlan();
};

/// Compiles `model` with `args` (--stages, --microbatches, ...) by the
/// pipec beside the executable `argv0` into a new temporary folder
/// (`--emit-only`: the streams, manifest, kernel_calls.json and
/// work.json; no build). "" or why not (pipec's own message).
std::string compileModel(const char *argv0, const std::string &model,
                         const std::vector<std::string> &args, TempPlan &out);

/// Reads the plan folder `dir`: its manifest, every rank's stream, and the
/// streams as the schedule library holds them (the runtime's opcodes are
/// the library's, PlanAbi.h; the placement replica 0's). "" or why not.
std::string loadPlan(const std::string &dir, pipert::Manifest &m,
                     std::vector<pipert::Stream> &streams,
                     schedule::Schedule &s);

} // namespace pipec::sim

#endif // PIPEC_TOOLS_PIPEC_SIM_PLANFILES_H
