//===- Main.cpp - main() of every compiled plan (OUT/pipec-plan) ----------===//
//
// Loads the manifest and streams next to the executable (or --plan DIR),
// checks them against the plan compiled in and the data, runs every rank
// as a thread of this process (or, with --transport mpi under `mpirun -np
// RANKS`, the process's own rank), writes metrics.jsonl and trace.json into
// --log-dir, and with --sample N prints N tokens the trained model
// generates. Everything is validated before the first step, so a bad input
// leaves no partial output.
//
//===----------------------------------------------------------------------===//

#include "runtime/runner/Help.h"
#include "runtime/runner/Runner.h"

#include "pipert/StopSignal.h"
#ifdef PIPEC_PLAN_MPI
#include "pipert/MpiTransport.h"
#endif

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <stdexcept>

using namespace pipecrun;

static int planMain(int argc, char **argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kRunHelp, stdout);
      return 0;
    }
  Args a;
  std::string error;
  bool mpi = false;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--transport") == 0 &&
        std::strcmp(argv[i + 1], "mpi") == 0)
      mpi = true;
#ifdef PIPEC_PLAN_MPI
  if (mpi) {
    if (pipert::Status s = pipert::MpiSession::init(&argc, &argv); !s.ok())
      return fail("--transport mpi: " + s.message());
  }
#endif
  // Under mpirun, argument errors are printed by rank 0 alone.
  bool quietRank = false;
#ifdef PIPEC_PLAN_MPI
  quietRank = mpi && pipert::MpiSession::rank() != 0;
#endif
  if (!parseArgs(argc, argv, a, error)) {
    if (!quietRank) {
      std::fputs(kUsage, stderr);
      fail(error);
    }
#ifdef PIPEC_PLAN_MPI
    pipert::MpiSession::finalize();
#endif
    return 1;
  }
  if (a.plan.empty())
    a.plan = std::filesystem::path(argv[0]).parent_path().string();
  if (a.plan.empty())
    a.plan = ".";
  if (a.transport == "nccl")
    return runNccl(a);
  if (!mpi)
    return runLocal(a);
#ifdef PIPEC_PLAN_MPI
  int code = runMpi(a);
  pipert::MpiSession::finalize();
  return code;
#else
  return fail("--transport mpi: this plan was built by a pipec without MPI "
              "(install openmpi-bin and libopenmpi-dev, reconfigure and "
              "rebuild pipec, then compile the plan again)");
#endif
}

int main(int argc, char **argv) {
  pipert::installStopSignals("pipec-run");
  // The runtime returns errors; whatever still throws (an allocation that
  // fails) becomes a message and an exit code, never an abort.
  try {
    return planMain(argc, argv);
  } catch (const std::bad_alloc &) {
    return fail("out of memory");
  } catch (const std::exception &e) {
    return fail(std::string("unexpected error: ") + e.what());
  }
}

