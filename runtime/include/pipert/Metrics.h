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

/// The JSON line of one step, without the newline.
std::string formatMetricsLine(const StepMetrics &metrics);

/// Appends step lines to DIR/metrics.jsonl.
class MetricsWriter {
public:
  MetricsWriter() = default;
  MetricsWriter(const MetricsWriter &) = delete;
  MetricsWriter &operator=(const MetricsWriter &) = delete;
  ~MetricsWriter();

  /// Creates `dir` (and its parents) and truncates DIR/metrics.jsonl.
  bool open(const std::string &dir, std::string &error);

  /// Writes one line and flushes it, so a killed run keeps its log.
  bool write(const StepMetrics &metrics, std::string &error);

  /// The file's path once open.
  const std::string &path() const { return filePath; }

private:
  std::FILE *file = nullptr;
  std::string filePath;
};

} // namespace pipert

#endif // PIPERT_METRICS_H
