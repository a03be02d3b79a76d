//===- Goodput.h - the share of a long run's wall time that trains -*- C++ -*-===//
//
// A step time says what a cluster does while nothing fails; at scale
// something always does (Llama 3: 419 unexpected interruptions in 54 days
// on 16,384 GPUs). This is the goodput layer of pipec-sim (issue 21):
// failures arrive at random (exponential inter-arrival times), the job
// stops when any GPU fails, a checkpoint written every `interval` seconds
// of training pauses it for `checkpoint` seconds, and after a failure a
// restart (rescheduling, loading the last checkpoint) takes `restart`
// seconds and the work since that checkpoint is done again.
//
// Under that model the expected wall time of one segment (interval seconds
// of work, then its checkpoint) is exactly
//     M e^{R/M} (e^{(tau + delta)/M} - 1)
// with M the job's mean time between failures, R the restart, tau the
// interval and delta the checkpoint (Daly, "A higher order estimate of the
// optimum checkpoint interval for restart dumps", FGCS 22 (2006), eq. 12,
// whose assumptions these are: failures may strike during checkpoints and
// restarts too). The useful fraction is tau over that. It tends to
// tau / (tau + delta) when failures vanish, and its best interval to
// Young's sqrt(2 delta M) when delta << M.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_SCHEDULE_GOODPUT_H
#define PIPEC_COMPILER_SCHEDULE_GOODPUT_H

#include <cstdint>
#include <string>

namespace pipec::schedule {

/// What failures and recovery cost a job.
struct FailureModel {
  int64_t gpus = 1;
  double failuresPerGpuHour = 0; ///< > 0
  double checkpointSeconds = 0;  ///< >= 0: writing one, training paused
  double restartSeconds = 0;     ///< >= 0: from a failure to training again
};

/// The job's mean time between failures in seconds: one GPU's failure
/// rate times the GPUs, inverted.
double jobMtbfSeconds(const FailureModel &f);

/// The expected share of wall time spent on new work with a checkpoint
/// every `intervalSeconds` (> 0) of training: Daly's exact expression
/// above, 0 where the restart alone outlasts failures by far.
double usefulFraction(const FailureModel &f, double intervalSeconds);

/// The best checkpoint interval in whole steps (checkpoints fall between
/// steps) and what it gives.
struct Goodput {
  double mtbfSeconds = 0;
  int64_t intervalSteps = 0;
  double intervalSeconds = 0; ///< intervalSteps x the step time
  double usefulFraction = 0;
  double youngSeconds = 0; ///< sqrt(2 delta M), the first-order optimum
};

/// The interval of whole steps of `stepSeconds` (> 0) that maximises the
/// useful fraction (the fraction is unimodal in the interval: the best
/// real interval is found by golden-section search, then the whole step
/// counts on either side compared).
Goodput bestGoodput(const FailureModel &f, double stepSeconds);

/// Parses GPUS,FAILURES_PER_GPU_HOUR,CHECKPOINT_S,RESTART_S (pipec-sim
/// --goodput). Returns why not, or "".
std::string parseFailureModel(const std::string &text, FailureModel &f);

} // namespace pipec::schedule

#endif // PIPEC_COMPILER_SCHEDULE_GOODPUT_H
