//===- Goodput.cpp - failures, checkpoints and the useful fraction --------===//

#include "compiler/schedule/Goodput.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace pipec::schedule {

double jobMtbfSeconds(const FailureModel &f) {
  return 3600.0 / (f.failuresPerGpuHour * double(f.gpus));
}

double usefulFraction(const FailureModel &f, double intervalSeconds) {
  const double m = jobMtbfSeconds(f);
  const double r = f.restartSeconds / m;
  const double s = (intervalSeconds + f.checkpointSeconds) / m;
  // Beyond e^700 a double overflows: the segment then practically never
  // completes.
  if (r + s > 700)
    return 0;
  // expm1 keeps the failure-free limit tau / (tau + delta) exact to
  // rounding when M is large.
  const double wall = m * std::exp(r) * std::expm1(s);
  return intervalSeconds / wall;
}

Goodput bestGoodput(const FailureModel &f, double stepSeconds) {
  Goodput g;
  g.mtbfSeconds = jobMtbfSeconds(f);
  g.youngSeconds = std::sqrt(2 * f.checkpointSeconds * g.mtbfSeconds);
  // The fraction is unimodal in the interval; search log(interval) over
  // one step to a hundred MTBFs (beyond, the fraction only falls).
  auto at = [&](double logTau) { return usefulFraction(f, std::exp(logTau)); };
  double lo = std::log(stepSeconds),
         hi = std::max(lo, std::log(100.0) + std::log(g.mtbfSeconds));
  const double phi = (std::sqrt(5.0) - 1) / 2;
  for (int it = 0; it < 200 && hi - lo > 1e-9; ++it) {
    const double a = hi - phi * (hi - lo), b = lo + phi * (hi - lo);
    if (at(a) < at(b))
      lo = a;
    else
      hi = b;
  }
  // Whole steps, within what an int64 holds (a step of a nanosecond
  // against 100 MTBFs of 1e9 hours stays far below).
  const double best =
      std::min(std::exp((lo + hi) / 2) / stepSeconds, 1e15);
  g.usefulFraction = -1;
  for (double k : {std::floor(best), std::ceil(best)}) {
    const double seconds = std::max(1.0, k) * stepSeconds;
    if (const double u = usefulFraction(f, seconds); u > g.usefulFraction) {
      g.usefulFraction = u;
      g.intervalSteps = int64_t(std::max(1.0, k));
      g.intervalSeconds = seconds;
    }
  }
  return g;
}

std::string parseFailureModel(const std::string &text, FailureModel &f) {
  const std::string why =
      "--goodput must be GPUS,FAILURES_PER_GPU_HOUR,CHECKPOINT_S,RESTART_S "
      "(a whole number of GPUs from 1, failures per GPU-hour above 0, "
      "seconds to write a checkpoint and to restart, 0 or more), e.g. "
      "16384,1.97e-5,60,600; not '" +
      text + "'";
  std::vector<double> v;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string part = text.substr(
        start, comma == std::string::npos ? std::string::npos : comma - start);
    char *end = nullptr;
    errno = 0;
    const double x = std::strtod(part.c_str(), &end);
    if (part.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(x))
      return why;
    v.push_back(x);
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  if (v.size() != 4 || v[0] < 1 || v[0] > 1e9 || v[0] != std::floor(v[0]) ||
      !(v[1] > 0) || v[2] < 0 || v[3] < 0 || v[2] > 1e9 || v[3] > 1e9)
    return why;
  // Below one job failure in a billion hours the run never fails; the
  // search's bounds (100 MTBFs) would leave the doubles.
  if (v[0] * v[1] < 1e-9) {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "--goodput: %.0f GPUs at %g failures per GPU-hour fail "
                  "less than once in 1e9 hours: give a rate of at least "
                  "1e-9 per hour for the job",
                  v[0], v[1]);
    return buf;
  }
  f.gpus = int64_t(v[0]);
  f.failuresPerGpuHour = v[1];
  f.checkpointSeconds = v[2];
  f.restartSeconds = v[3];
  return "";
}

} // namespace pipec::schedule
