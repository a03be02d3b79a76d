//===- Csv.h - torch.distributed.pipelining compute-only CSV files -*- C++ -*-===//
//
// One row per rank, comma-separated actions `<stage><type><micro-batch>`:
// F forward, I input-gradient backward (pipec's B), W weight-gradient
// backward, B both (pipec's full backward: B, W, then the gradient is sent).
// Empty cells and `None` are idle slots. The stage count and placement come
// from the file: stage s is the chunk s, placed on the rank whose row runs it.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_SCHEDULE_CSV_H
#define PIPEC_COMPILER_SCHEDULE_CSV_H

#include "compiler/schedule/Schedule.h"

#include <string>

namespace pipec::schedule {

/// Reads a schedule file's text; "" on success, else a message. A path
/// that is not a regular file (a directory, or a FIFO whose open would
/// block) is refused before it is opened.
std::string readCsvFile(const std::string &path, std::string &text);

/// Parses and checks a CSV schedule. `microbatches` 0 takes the count from
/// the file; otherwise the file must use exactly 0..microbatches-1. Returns an
/// empty string, or `NAME:LINE:COL: message` (or `NAME: message`).
std::string readCsvPlan(const std::string &text, const std::string &name,
                        int32_t microbatches, ComputePlan &plan);

/// Writes a plan back in the same format (round trip, and a way to export
/// pipec's own schedules to torch).
std::string writeCsvPlan(const ComputePlan &plan);

} // namespace pipec::schedule

#endif // PIPEC_COMPILER_SCHEDULE_CSV_H
