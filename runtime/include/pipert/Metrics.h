//===- Metrics.h - the metrics.jsonl log of a training run ------*- C++ -*-===//
//
// One JSON object per line and step: {"step": s, "loss": ..., "lr": ...,
// "grad_norm": ..., "ms": ...}. Numbers are printed with %.17g, which
// round-trips a double exactly, so a comparison with another implementation
// never sees printing error. Non-finite values are written as NaN /
// Infinity / -Infinity (Python's json reads them; strict JSON has none).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_METRICS_H
#define PIPERT_METRICS_H

#include <cstdint>
#include "pipert/AtomicFile.h"

#include <cstdio>
#include <string>

namespace pipert {

/// What one step reports.
struct StepMetrics {
  int64_t step = 0;
  double loss = 0;
  double lr = 0;
  double gradNorm = 0;
  double ms = 0;
};

/// Formats a double with 17 significant digits (JSON, or NaN/Infinity).
std::string formatNumber(double value);

/// Why a step stops a run (docs/RUNTIME.md): "step S: the loss is NaN:
/// training stopped (...)" when its loss or gradient norm is not finite,
/// else "".
std::string nonFiniteStep(int64_t step, double loss, double gradNorm);

/// The JSON line of one step, without the newline.
std::string formatMetricsLine(const StepMetrics &metrics);

/// Writes step lines towards DIR/metrics.jsonl: they go to a temporary
/// file beside it (AtomicFile.h), which close() (or the destructor) renames
/// over metrics.jsonl, so the file is the complete log of one run, never a
/// mix or a torn line; a run killed with SIGKILL leaves the old log and its
/// own lines in metrics.jsonl.tmp.XXXXXX.
class MetricsWriter {
public:
  MetricsWriter() = default;
  MetricsWriter(const MetricsWriter &) = delete;
  MetricsWriter &operator=(const MetricsWriter &) = delete;
  ~MetricsWriter();

  /// Creates `dir` (and its parents) and the temporary file.
  bool open(const std::string &dir, std::string &error);

  /// Writes one line.
  bool write(const StepMetrics &metrics, std::string &error);

  /// Completes DIR/metrics.jsonl; false with `error` when that fails.
  bool close(std::string &error);

  /// The file's path once open.
  const std::string &path() const { return filePath; }

private:
  AtomicFile file;
  std::string filePath;
};

} // namespace pipert

#endif // PIPERT_METRICS_H
