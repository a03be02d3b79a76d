//===- RunLog.h - metrics.jsonl and the Chrome trace of a run -*- C++ -*-===//
//
// metrics.jsonl gets one line per step: step, loss, lr, grad_norm,
// tokens_per_s, step_time_s, numbers printed with 17 significant digits
// (a double round-trips exactly). trace.json is a Chrome trace (open it in
// chrome://tracing or Perfetto) with one track per rank and one slice per
// instruction, named in the compact tokens of `pipec schedule`.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_RUNLOG_H
#define PIPERT_RUNLOG_H

#include "pipert/AtomicFile.h"
#include "pipert/KernelClock.h"
#include "pipert/Status.h"
#include "pipert/Stream.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace pipert {

/// One step as metrics.jsonl reports it.
struct StepRecord {
  int64_t step = 0;
  double loss = 0, lr = 0, gradNorm = 0, tokensPerS = 0, stepTimeS = 0;
};

/// The metrics.jsonl line of a step, without the newline.
std::string formatStepLine(const StepRecord &record);

/// Writes step lines towards DIR/metrics.jsonl through a temporary file
/// that close() (or the destructor) renames over it (AtomicFile.h): the
/// file is always the complete log of one run, also of one that stopped
/// on an error, a NaN or a signal.
class MetricsLog {
public:
  MetricsLog() = default;
  MetricsLog(const MetricsLog &) = delete;
  MetricsLog &operator=(const MetricsLog &) = delete;
  ~MetricsLog();
  /// Creates `dir` and the temporary file.
  Status open(const std::string &dir);
  Status write(const StepRecord &record);
  /// Completes DIR/metrics.jsonl (nothing when not open).
  Status close();

private:
  AtomicFile file;
};

/// One executed instruction: its step, stream index and times (ns from the
/// start of the run).
struct TraceEvent {
  int64_t step, instr, startNs, endNs;
};

/// The short name of an instruction in a trace ("F1.3", "~<A0:0.3", ...).
std::string traceName(const Instr &instr);

/// Writes a Chrome trace with one track (tid) per rank.
Status writeChromeTrace(const std::string &path,
                        const std::vector<Stream> &streams,
                        const std::vector<const std::vector<TraceEvent> *> &events);

/// Writes kernel_times.json (pipec-run --trace-kernels): per rank, each
/// kernel instantiation it called on the `steps` timed steps, with its
/// calls and seconds; `threads` is each rank's OpenMP team. Format:
/// docs/SIMULATION.md.
Status writeKernelTimes(const std::string &path,
                        const char *const *kernelNames,
                        const std::vector<const KernelTimes *> &ranks,
                        int64_t steps, int32_t threads);

} // namespace pipert

#endif // PIPERT_RUNLOG_H
