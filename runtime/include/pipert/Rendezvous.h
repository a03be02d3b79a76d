//===- Rendezvous.h - where a process stands in its job, and a shared id -*- C++ -*-===//
//
// One process per GPU needs three facts before its first NCCL call: its
// rank, the job's size and its rank on its machine (the GPU it takes), and
// one blob every process must hold (NCCL's unique id, made by rank 0). The
// launchers already know the first three:
//
//   pipec-run --transport nccl   PIPEC_RANK, PIPEC_WORLD_SIZE,
//                                PIPEC_LOCAL_RANK, PIPEC_JOB_ID,
//                                PIPEC_RENDEZVOUS (it starts the processes)
//   Slurm's srun                 SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
//                                SLURM_JOB_ID.SLURM_STEP_ID, the step's
//                                host list (rank 0 runs on its first host)
//   Open MPI's mpirun            OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK,
//                                PMIX_NAMESPACE (the job)
//   MPICH / Hydra (PMI)          PMI_RANK, PMI_SIZE, MPI_LOCALRANKID
//
// The blob travels through a rendezvous, named by --rendezvous or
// PIPEC_RENDEZVOUS:
//
//   file:PATH       rank 0 writes PATH (atomically) on a path every machine
//                   sees; the others poll until it holds this job's blob.
//   tcp:HOST:PORT   rank 0 serves the blob on PORT; the others connect to
//                   HOST:PORT (retrying until rank 0 listens).
//
// Without one, srun's jobs use tcp on the step's first host and a port
// derived from the job id; mpirun's must name one (the plan does not link
// MPI, so that a cuda plan runs where MPI is not installed). Every blob is
// tagged with the job's key (launcher job id and plan id): a file left by
// an earlier job, or a process of another job that reaches the port, is
// never taken for this one's.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_RENDEZVOUS_H
#define PIPERT_RENDEZVOUS_H

#include "pipert/Status.h"
#include "pipert/Transport.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace pipert {

/// This process's place in the job, as its launcher set the environment.
struct LaunchEnv {
  /// "pipec-run", "srun", "mpirun", "pmi", or "" (no launcher: one process).
  std::string launcher;
  int32_t rank = 0, size = 1, localRank = 0;
  /// The launcher's id of this job (and step); "" when it gives none.
  std::string jobId;
  /// srun: the step's hosts, expanded; rank 0 runs on the first.
  std::vector<std::string> hosts;
  /// PIPEC_RENDEZVOUS, or "".
  std::string rendezvous;
};

/// Reads the launcher's variables through `getenv` (std::getenv in a
/// plan). Fails on a variable that is set but not a number in range.
Status readLaunchEnv(const std::function<const char *(const char *)> &getenv,
                     LaunchEnv &out);

/// Expands a Slurm host list: "gpu[01-03,7],login" -> gpu01 gpu02 gpu03
/// gpu7 login (zero padding kept). Fails on unbalanced brackets or a
/// descending range.
Status expandHostList(const std::string &list, std::vector<std::string> &out);

/// The rendezvous this job uses: `given` (--rendezvous) when not empty,
/// else PIPEC_RENDEZVOUS, else srun's default; fails for a launcher that
/// needs one named, or a malformed one.
Status chooseRendezvous(const LaunchEnv &env, const std::string &given,
                        std::string &out);

/// Gives every process rank 0's `blob`: rank 0 passes it in, the others
/// get it. `jobKey` (the launcher's job id; "" when there is none) must be
/// the same in every process of the job and differ between jobs; a file or
/// a server of another job is never taken for this one's. `planId` is the
/// plan the process runs: a process of the job given another plan than
/// rank 0's fails at once, naming both, and so does rank 0 over tcp (over
/// a file, rank 0 never hears of it; without a job id, a file of another
/// plan may be an earlier run's, and is waited past). Blocks until the
/// blob is had (every other rank served, at rank 0 over tcp) or
/// `deadline`; the failure says what was missing.
Status shareBlob(const LaunchEnv &env, const std::string &rendezvous,
                 const std::string &jobKey, const std::string &planId,
                 std::vector<uint8_t> &blob, Clock::time_point deadline);

} // namespace pipert

#endif // PIPERT_RENDEZVOUS_H
