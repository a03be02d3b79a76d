//===- Profile.cpp - pipec-plan --profile: kernels against the machine ----===//

#include "runtime/runner/Profile.h"

#include "pipert/PlanCode.h"
#include "pipert/AtomicFile.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <thread>

namespace pipecrun {

std::string measureCeilings(int32_t cores, int32_t ranks, Ceilings &out) {
  if (!pipecPlanCode.measureCeilings)
    return "this plan cannot measure its machine's ceilings (compiled "
           "before --profile existed: compile it again)";
  // The executor's split of the cores (Executor.cpp): a rank's team.
  int32_t all = cores > 0 ? cores
                          : int32_t(std::max(1u, std::thread::hardware_concurrency()));
  out.threads = std::max(1, all / std::max(1, ranks));
  char error[512] = {0};
  if (!pipecPlanCode.measureCeilings(out.threads, &out.flopsPerSecond,
                                     &out.bytesPerSecond, error, sizeof error))
    return error;
  if (!(out.flopsPerSecond > 0) || !(out.bytesPerSecond > 0))
    return "measuring the ceilings gave no rate";
  return "";
}

std::string kernelLabel(const std::string &name) {
  std::string s = name.rfind("pipec_k_", 0) == 0 ? name.substr(8) : name;
  size_t hash = s.rfind('_');
  if (hash != std::string::npos)
    s.resize(hash);
  size_t shape = s.rfind('_');
  if (shape != std::string::npos && shape + 1 < s.size() &&
      s.find_first_not_of("0123456789x-", shape + 1) == std::string::npos)
    s[shape] = ' ';
  return s;
}

std::vector<ProfileRow> profileRows(const pipert::RunResult &result,
                                    const char *const *names,
                                    const double *costs) {
  std::vector<ProfileRow> rows;
  if (!names)
    return rows;
  for (size_t k = 0; names[k]; ++k) {
    ProfileRow row;
    row.name = names[k];
    row.label = kernelLabel(row.name);
    if (costs) {
      row.flops = costs[2 * k];
      row.bytes = costs[2 * k + 1];
    }
    for (const pipert::KernelTimes &t : result.kernelTimes)
      if (k < t.calls.size()) {
        row.calls += t.calls[k];
        row.seconds += t.seconds[k];
      }
    if (row.calls > 0)
      rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end(),
            [](const ProfileRow &x, const ProfileRow &y) {
              return x.seconds != y.seconds ? x.seconds > y.seconds
                                            : x.name < y.name;
            });
  return rows;
}

namespace {

/// The time the floor of `calls` calls takes at the ceilings.
double floorSeconds(const ProfileRow &r, const Ceilings &c) {
  double perCall = std::max(r.flops / c.flopsPerSecond,
                            r.bytes / c.bytesPerSecond);
  return perCall * double(r.calls);
}

} // namespace

std::string reportProfile(const std::vector<ProfileRow> &rows,
                          const Ceilings &c, const pipert::RunResult &result,
                          const std::string &jsonPath) {
  const double steps = double(std::max<int64_t>(1, result.timedSteps));
  double total = 0, floorTotal = 0, flops = 0;
  for (const ProfileRow &r : rows) {
    total += r.seconds;
    floorTotal += floorSeconds(r, c);
    flops += r.flops * double(r.calls);
  }
  // The median of the timed steps' wall times, beside the kernels' sum.
  std::vector<double> stepTimes;
  for (size_t i = 1; i < result.steps.size(); ++i)
    stepTimes.push_back(result.steps[i].stepTimeS);
  std::sort(stepTimes.begin(), stepTimes.end());
  const double step =
      stepTimes.empty() ? 0 : stepTimes[stepTimes.size() / 2];

  std::printf("profile: %lld timed steps, %zu rank(s); ceilings measured "
              "now: GEMM %.1f GFLOP/s, memory %.1f GB/s (%d thread(s) a "
              "rank on the cpu)\n",
              (long long)result.timedSteps, result.kernelTimes.size(),
              c.flopsPerSecond * 1e-9, c.bytesPerSecond * 1e-9, int(c.threads));
  std::printf("%7s %9s %8s %9s %9s %8s %7s  %s\n", "share", "ms/step",
              "calls", "us/call", "GFLOP/s", "GB/s", "floor", "kernel");
  const size_t shown = std::min<size_t>(rows.size(), 30);
  for (size_t i = 0; i < shown; ++i) {
    const ProfileRow &r = rows[i];
    const double perCall = r.seconds / double(r.calls);
    std::printf("%6.1f%% %9.3f %8.1f %9.1f %9.1f %8.1f %6.1f%%  %s\n",
                total > 0 ? 100 * r.seconds / total : 0.0,
                1e3 * r.seconds / steps, double(r.calls) / steps, 1e6 * perCall,
                r.flops / perCall * 1e-9, r.bytes / perCall * 1e-9,
                r.seconds > 0 ? 100 * floorSeconds(r, c) / r.seconds : 0.0,
                r.label.c_str());
  }
  if (rows.size() > shown) {
    double rest = 0;
    for (size_t i = shown; i < rows.size(); ++i)
      rest += rows[i].seconds;
    std::printf("%6.1f%% %9.3f  (%zu more kernels)\n",
                total > 0 ? 100 * rest / total : 0.0, 1e3 * rest / steps,
                rows.size() - shown);
  }
  std::printf("kernels: %.3f ms a step summed over the ranks (the median "
              "step took %.3f ms), %.1f GFLOP/s over their time, their "
              "floors %.1f%% of it\n",
              1e3 * total / steps, 1e3 * step,
              total > 0 ? flops / total * 1e-9 : 0.0,
              total > 0 ? 100 * floorTotal / total : 0.0);
  std::fflush(stdout);
  if (jsonPath.empty())
    return "";
  std::string text = "{\"format\": 1, \"timed_steps\": " +
                     std::to_string(result.timedSteps) +
                     ", \"ranks\": " +
                     std::to_string(result.kernelTimes.size());
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                ", \"ceilings\": {\"gemm_flops_per_s\": %.17g, "
                "\"bytes_per_s\": %.17g, \"threads\": %d}, "
                "\"median_step_s\": %.9g, \"kernel_s_per_step\": %.9g, "
                "\"kernels\": [",
                c.flopsPerSecond, c.bytesPerSecond, int(c.threads), step,
                total / steps);
  text += buf;
  for (size_t i = 0; i < rows.size(); ++i) {
    const ProfileRow &r = rows[i];
    // Names and labels are identifiers, digits and 'x': no escaping.
    std::snprintf(buf, sizeof buf,
                  "%s\n  {\"name\": \"%s\", \"kernel\": \"%s\", \"calls\": "
                  "%lld, \"seconds\": %.9g, \"flops_per_call\": %.17g, "
                  "\"bytes_per_call\": %.17g, \"floor_s\": %.17g}",
                  i ? "," : "", r.name.c_str(), r.label.c_str(),
                  (long long)r.calls, r.seconds, r.flops, r.bytes,
                  floorSeconds(r, c));
    text += buf;
  }
  text += "\n]}\n";
  pipert::Status s = pipert::writeFileAtomically(jsonPath, text);
  return s.ok() ? "" : s.message();
}

} // namespace pipecrun
