//===- RunLog.cpp - metrics.jsonl and the Chrome trace of a run -----------===//

#include "pipert/RunLog.h"

#include "pipert/Manifest.h"
#include "pipert/Metrics.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

namespace pipert {

std::string formatStepLine(const StepRecord &r) {
  return "{\"step\": " + std::to_string(r.step) +
         ", \"loss\": " + formatNumber(r.loss) +
         ", \"lr\": " + formatNumber(r.lr) +
         ", \"grad_norm\": " + formatNumber(r.gradNorm) +
         ", \"tokens_per_s\": " + formatNumber(r.tokensPerS) +
         ", \"step_time_s\": " + formatNumber(r.stepTimeS) + "}";
}

MetricsLog::~MetricsLog() { (void)close(); }

Status MetricsLog::open(const std::string &dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return Status::failure("cannot create " + dir + ": " + ec.message());
  return file.open(dir + "/metrics.jsonl");
}

Status MetricsLog::close() {
  return file.isOpen() ? file.commit() : Status::success();
}

/// %.17g, or the NaN / Infinity spellings formatNumber uses, into `out`.
static void numberInto(char *out, size_t size, double v) {
  if (std::isnan(v))
    std::snprintf(out, size, "NaN");
  else if (std::isinf(v))
    std::snprintf(out, size, v > 0 ? "Infinity" : "-Infinity");
  else
    std::snprintf(out, size, "%.17g", v);
}

Status MetricsLog::write(const StepRecord &r) {
  if (!file.isOpen())
    return Status::failure("metrics log is not open");
  // Formatted on the stack: the log is written while ranks train, and the
  // training loop allocates nothing.
  char v[5][40];
  numberInto(v[0], sizeof v[0], r.loss);
  numberInto(v[1], sizeof v[1], r.lr);
  numberInto(v[2], sizeof v[2], r.gradNorm);
  numberInto(v[3], sizeof v[3], r.tokensPerS);
  numberInto(v[4], sizeof v[4], r.stepTimeS);
  char line[320];
  int n = std::snprintf(line, sizeof line,
                        "{\"step\": %lld, \"loss\": %s, \"lr\": %s, "
                        "\"grad_norm\": %s, \"tokens_per_s\": %s, "
                        "\"step_time_s\": %s}\n",
                        (long long)r.step, v[0], v[1], v[2], v[3], v[4]);
  if (n < 0 || size_t(n) >= sizeof line)
    return Status::failure("cannot format the metrics line of step " +
                           std::to_string(r.step));
  return file.write(line, size_t(n));
}

std::string traceName(const Instr &in) {
  auto msg = [&](Opcode op) {
    bool send = op == Opcode::SendAct || op == Opcode::SendGrad;
    bool act = op == Opcode::SendAct || op == Opcode::RecvAct;
    return std::string(send ? ">" : "<") + (act ? "A" : "G") +
           std::to_string(in.peer) + ":" + std::to_string(in.chunk) + "." +
           std::to_string(in.mb);
  };
  switch (in.op) {
  case Opcode::Fwd:
    return "F" + std::to_string(in.chunk) + "." + std::to_string(in.mb);
  case Opcode::BwdB:
    return "B" + std::to_string(in.chunk) + "." + std::to_string(in.mb);
  case Opcode::BwdW:
    return "W" + std::to_string(in.chunk) + "." + std::to_string(in.mb);
  case Opcode::Wait:
    return "~" + msg(in.sub);
  case Opcode::AllReduce:
    return "AR" + std::to_string(in.chunk) + "." + std::to_string(in.mb);
  case Opcode::ReduceScatter:
    return "RS" + std::to_string(in.chunk) + "." + std::to_string(in.mb);
  case Opcode::AllGather:
    return "AG" + std::to_string(in.chunk) + "." + std::to_string(in.mb);
  case Opcode::OptStep:
    return "OPT";
  default:
    return msg(in.op);
  }
}

Status writeChromeTrace(
    const std::string &path, const std::vector<Stream> &streams,
    const std::vector<const std::vector<TraceEvent> *> &events) {
  // Built in memory, then written whole (AtomicFile.h); reserved once, so
  // the allocations do not depend on the number of events.
  size_t count = 0;
  for (const std::vector<TraceEvent> *e : events)
    count += e->size() + 1;
  std::string text;
  text.reserve(256 * count + 64);
  // The plan it is a run of: pipec-sim --trace replays only that plan.
  text += "{\"displayTimeUnit\": \"ms\", ";
  if (!streams.empty() && streams[0].planId != 0)
    text += "\"pipec_plan\": \"" + planIdText(streams[0].planId) + "\", ";
  text += "\"traceEvents\": [\n";
  char buf[512];
  bool first = true;
  for (size_t r = 0; r < events.size(); ++r) {
    std::snprintf(buf, sizeof buf,
                  "%s{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 0, "
                  "\"tid\": %zu, \"args\": {\"name\": \"rank %zu\"}}",
                  first ? "" : ",\n", r, r);
    text += buf;
    first = false;
    for (const TraceEvent &e : *events[r]) {
      const Instr &in = streams[r].instrs[size_t(e.instr)];
      const bool compute = in.op == Opcode::Fwd || in.op == Opcode::BwdB ||
                           in.op == Opcode::BwdW || in.op == Opcode::OptStep;
      const char *cat = compute ? "compute" : "comm";
      std::snprintf(buf, sizeof buf,
                    ",\n{\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", "
                    "\"pid\": 0, \"tid\": %zu, \"ts\": %.3f, \"dur\": %.3f, "
                    "\"args\": {\"step\": %lld, \"instr\": %lld",
                    traceName(in).c_str(), cat, r, double(e.startNs) * 1e-3,
                    double(e.endNs - e.startNs) * 1e-3, (long long)e.step,
                    (long long)e.instr);
      text += buf;
      // A message's size, for fitting a link model (pipec-sim --link-from).
      if (!compute && in.bytes > 0) {
        std::snprintf(buf, sizeof buf, ", \"bytes\": %lld",
                      (long long)in.bytes);
        text += buf;
      }
      text += "}}";
    }
  }
  text += "\n]}\n";
  return writeFileAtomically(path, text);
}

Status writeKernelTimes(const std::string &path,
                        const char *const *kernelNames,
                        const std::vector<const KernelTimes *> &ranks,
                        int64_t steps, int32_t threads) {
  // The names are the plan's own wrapper names (identifiers): no escaping.
  std::string text = "{\"format\": 1, \"steps\": " + std::to_string(steps) +
                     ", \"threads_per_rank\": " + std::to_string(threads) +
                     ", \"ranks\": [";
  char buf[512];
  for (size_t r = 0; r < ranks.size(); ++r) {
    text += (r ? ",\n  " : "\n  ") + std::string("{\"rank\": ") +
            std::to_string(r) + ", \"kernels\": [";
    bool first = true;
    const KernelTimes &t = *ranks[r];
    for (size_t k = 0; k < t.calls.size() && kernelNames[k]; ++k) {
      if (t.calls[k] == 0)
        continue;
      std::snprintf(buf, sizeof buf,
                    "%s\n    {\"name\": \"%s\", \"calls\": %lld, "
                    "\"seconds\": %.9g}",
                    first ? "" : ",", kernelNames[k], (long long)t.calls[k],
                    t.seconds[k]);
      text += buf;
      first = false;
    }
    text += "]}";
  }
  text += "\n]}\n";
  return writeFileAtomically(path, text);
}

} // namespace pipert
