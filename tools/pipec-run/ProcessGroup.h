//===- ProcessGroup.h - one process per rank on this machine ----*- C++ -*-===//
//
// `pipec-run --transport nccl` on one machine: what srun or mpirun do for
// a job of many, for one machine and without either. Starts RANKS copies
// of the plan runner with the variables the runner reads
// (pipert/Rendezvous.h: PIPEC_RANK, PIPEC_WORLD_SIZE, PIPEC_LOCAL_RANK,
// PIPEC_JOB_ID, PIPEC_RENDEZVOUS on a free local port), forwards SIGINT
// and SIGTERM to all of them, and when one fails ends the others (SIGTERM,
// then SIGKILL after 10 s), so a dead rank never leaves the rest waiting.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_TOOLS_PIPEC_RUN_PROCESSGROUP_H
#define PIPEC_TOOLS_PIPEC_RUN_PROCESSGROUP_H

#include <cstdint>
#include <string>
#include <vector>

namespace pipecrun {

/// Runs `ranks` processes of `program` with `args` (args[0] the program)
/// and waits for all; the exit code of the first that failed (128 + N for
/// a signal), 0 when all succeeded. `error` says why none could start.
int runProcessGroup(const std::string &program,
                    const std::vector<std::string> &args, int32_t ranks,
                    std::string &error);

} // namespace pipecrun

#endif // PIPEC_TOOLS_PIPEC_RUN_PROCESSGROUP_H
