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

std::string nonFiniteStep(int64_t step, double loss, double gradNorm) {
  if (std::isfinite(loss) && std::isfinite(gradNorm))
    return "";
  return "step " + std::to_string(step) + ": the " +
         (!std::isfinite(loss) ? "loss is " + formatNumber(loss)
                               : "gradient norm is " + formatNumber(gradNorm)) +
         ": training stopped (the weights are not finite any more; lower the "
         "learning rate or check the data and --init)";
}

std::string formatMetricsLine(const StepMetrics &m) {
  return "{\"step\": " + std::to_string(m.step) +
         ", \"loss\": " + formatNumber(m.loss) +
         ", \"lr\": " + formatNumber(m.lr) +
         ", \"grad_norm\": " + formatNumber(m.gradNorm) +
         ", \"ms\": " + formatNumber(m.ms) + "}";
}

MetricsWriter::~MetricsWriter() {
  std::string error;
  close(error);
}

bool MetricsWriter::open(const std::string &dir, std::string &error) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    error = dir + ": cannot create the log directory: " + ec.message();
    return false;
  }
  filePath = (std::filesystem::path(dir) / "metrics.jsonl").string();
  if (Status s = file.open(filePath); !s.ok()) {
    error = s.message();
    return false;
  }
  return true;
}

bool MetricsWriter::write(const StepMetrics &metrics, std::string &error) {
  if (Status s = file.write(formatMetricsLine(metrics) + "\n"); !s.ok()) {
    error = s.message();
    return false;
  }
  return true;
}

bool MetricsWriter::close(std::string &error) {
  if (!file.isOpen())
    return true;
  if (Status s = file.commit(); !s.ok()) {
    error = s.message();
    return false;
  }
  return true;
}

} // namespace pipert
