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

/// Plans of more ranks than this are replayed as two of their replicas.
constexpr int64_t kWholeReplayRanks = 4096;

/// Reads the plan folder `dir`: its manifest, every rank's stream, and the
/// streams as the schedule library holds them (the runtime's opcodes are
/// the library's, PlanAbi.h; the placement replica 0's). "" or why not.
///
/// A plan of more than kWholeReplayRanks ranks and more than two replicas
/// is read as its first two replicas, numbered as a plan of two
/// (Replicate.h: the data-parallel group D G + s becomes 2 G + s;
/// s.replicas == 2, m keeps the plan's D): every replica runs replica 0's
/// streams moved into it, so two replayed stand for all D (the symmetry
/// --replicas prices with; docs/SCHEDULES.md "Proving D replicas by
/// proving one"), and 221,184 ranks of about 80 kB of stream each would
/// not fit in memory whole.
std::string loadPlan(const std::string &dir, pipert::Manifest &m,
                     std::vector<pipert::Stream> &streams,
                     schedule::Schedule &s);

} // namespace pipec::sim

#endif // PIPEC_TOOLS_PIPEC_SIM_PLANFILES_H
