//===- Metrics.cpp - the metrics.jsonl log of a training run --------------===//

#include "pipert/Metrics.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace pipert {

std::string formatNumber(double value) {
  if (std::isnan(value))
    return "NaN";
  if (std::isinf(value))
    return value > 0 ? "Infinity" : "-Infinity";
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", value);
  return buf;
}

std::string formatMetricsLine(const StepMetrics &m) {
  return "{\"step\": " + std::to_string(m.step) +
         ", \"loss\": " + formatNumber(m.loss) +
         ", \"lr\": " + formatNumber(m.lr) +
         ", \"grad_norm\": " + formatNumber(m.gradNorm) +
         ", \"ms\": " + formatNumber(m.ms) + "}";
}

MetricsWriter::~MetricsWriter() {
  if (file)
    std::fclose(file);
}

bool MetricsWriter::open(const std::string &dir, std::string &error) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    error = dir + ": cannot create the log directory: " + ec.message();
    return false;
  }
  filePath = (std::filesystem::path(dir) / "metrics.jsonl").string();
  file = std::fopen(filePath.c_str(), "w");
  if (!file) {
    error = filePath + ": cannot create the file: " + std::strerror(errno);
    return false;
  }
  return true;
}

bool MetricsWriter::write(const StepMetrics &metrics, std::string &error) {
  std::string line = formatMetricsLine(metrics) + "\n";
  if (!file || std::fputs(line.c_str(), file) < 0 || std::fflush(file) != 0) {
    error = filePath + ": cannot write the metrics";
    return false;
  }
  return true;
}

} // namespace pipert
