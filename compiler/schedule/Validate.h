//===- Validate.h - checks and proofs of instruction streams ----*- C++ -*-===//
//
// validateStreams checks what each rank's stream says on its own and how the
// streams pair up: every field in range, every compute step on the rank that
// holds its chunk, every input present before use (received and waited, or
// computed here), every F, B and W exactly once, every post waited exactly
// once, every send paired with exactly one recv (peer, message, order), a
// valid group table, and every collective posted by members of its group
// only, each member posting the same sequence of buckets per group.
// verifySchedule adds the abstract machine's deadlock proof.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_SCHEDULE_VALIDATE_H
#define PIPEC_COMPILER_SCHEDULE_VALIDATE_H

#include "compiler/schedule/Machine.h"
#include "compiler/schedule/Schedule.h"

#include <string>

namespace pipec::schedule {

/// Static checks; returns an empty string or a message that names the rank
/// and the instruction (index and text) at fault.
std::string validateStreams(const Schedule &schedule);

/// Static checks, then the abstract machine with the given costs. On success
/// `result` holds the machine's timing; returns an empty string or the
/// reason the schedule is rejected.
std::string verifySchedule(const Schedule &schedule, const Costs &costs,
                           MachineResult &result, bool recordSpans = false);

} // namespace pipec::schedule

#endif // PIPEC_COMPILER_SCHEDULE_VALIDATE_H
