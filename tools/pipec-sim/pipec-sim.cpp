//===- pipec-sim.cpp - replays a compiled plan's streams on the abstract machine
//===//
//
// `pipec-sim OUT/ [--trace TRACE.json] [--calibrate KERNEL_TIMES.json]
// [--trace-out F] [--diff] [--json]`:
// reads the plan folder's
// manifest and every rank's stream exactly as pipec-run executes them
// (posted sends and receives, waits, collectives, the optimizer step) and
// runs them together on the abstract machine (compiler/schedule/Machine.h),
// which proves them deadlock-free and times them. Costs: per chunk and
// phase the mean of the warm steps' measured times in a pipec-run trace
// (--log-dir's trace.json: steps after the first, or the first when it is
// the only one), with the optimizer step's and each collective's measured
// own time (the least any member spent in it, averaged over the steps);
// without a trace, unit costs
// (F = B = W = 1, communication free); with --calibrate, each chunk phase
// priced as the sum of its kernel calls' means measured on any plan of the
// same model (kernel_calls.json x kernel_times.json). Prints the predicted
// step time,
// per-rank busy and idle, the bubble and tokens/s, and with a trace the
// measured step time beside it and the error; --trace-out writes the
// predicted step as a trace in pipec-run's format (open both side by side),
// --diff the predicted and measured time of each rank per instruction kind.
// On a GPU cluster described as data (--cluster: ClusterPricing.h), the
// costs come from the plan's work.json and the cluster; --replicas prices
// D replicas by symmetry, --jitter and --stragglers replay every one
// (VariedReplay.h), --search looks for the best plans (Search.h).
//
//===----------------------------------------------------------------------===//

#include "ClusterPricing.h"
#include "PlanFiles.h"
#include "Search.h"
#include "Usage.h"
#include "VariedReplay.h"
#include "compiler/schedule/Goodput.h"
#include "compiler/schedule/ReplicaReplay.h"
#include "compiler/schedule/Machine.h"
#include "pipert/Manifest.h"
#include "pipert/RunLog.h"
#include "pipert/Stream.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace fs = std::filesystem;
namespace sched = pipec::schedule;
using json = nlohmann::json;

namespace {

/// --link ALPHA,BANDWIDTH: seconds per message (>= 0) and bytes per second
/// (> 0). Returns why not, or "".
std::string parseLink(const std::string &v, double &alpha, double &bandwidth) {
  const size_t comma = v.find(',');
  const std::string why = "--link must be ALPHA,BANDWIDTH: seconds per "
                          "message (0 or more) and bytes per second (more "
                          "than 0), e.g. 5e-6,1e11; not '" +
                          v + "'";
  if (comma == std::string::npos)
    return why;
  const std::string a = v.substr(0, comma), b = v.substr(comma + 1);
  char *end = nullptr;
  alpha = std::strtod(a.c_str(), &end);
  if (a.empty() || *end != '\0' || !(alpha >= 0) || !std::isfinite(alpha))
    return why;
  bandwidth = std::strtod(b.c_str(), &end);
  if (b.empty() || *end != '\0' || !(bandwidth > 0) ||
      !std::isfinite(bandwidth))
    return why;
  return "";
}

/// Parses `path`, a pipec-run trace.json given to `option`, into j.
/// Returns why not, or "".
std::string readTraceJson(const std::string &path, const char *option,
                          json &j) {
  std::ifstream in(path);
  if (!in)
    return std::string("cannot open ") + option + " " + path;
  j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("traceEvents") ||
      !j["traceEvents"].is_array())
    return path + ": not a pipec-run trace (no traceEvents array)";
  return "";
}

/// What --link-from measured: the link model and the messages behind it.
struct LinkFit {
  double alpha = 0, bandwidth = 0; ///< bandwidth +inf: one message size
  int64_t samples = 0, sizes = 0;
  int64_t bytesLo = 0, bytesHi = 0;
};

/// --link-from TRACE: fits alpha and bandwidth to the point-to-point
/// messages of a pipec-run trace (any plan; the posts carry their bytes).
/// A message's time is what the machine charges it: from when both its
/// send and its recv were posted to when the receiver's wait returned,
/// taken only where the receiver waited (its wait returned on the message,
/// not on its own arrival), on the steps after the first. The medians per
/// size, fitted by a line (alpha, 1 / bandwidth); one size fits alpha
/// alone. Returns why not, or "".
std::string fitLink(const std::string &path, LinkFit &fit) {
  json j;
  if (std::string why = readTraceJson(path, "--link-from", j); !why.empty())
    return why;
  struct Msg {
    double sendPost = -1, recvPost = -1, waitStart = -1, waitEnd = -1;
    int64_t bytes = -1;
  };
  // (step, kind, src, dst, chunk, mb) -> its posts and the receiver's wait.
  std::map<std::tuple<int64_t, char, int64_t, int64_t, int64_t, int64_t>, Msg>
      msgs;
  int64_t lastStep = -1;
  for (const json &e : j["traceEvents"]) {
    if (!e.is_object() || e.value("cat", "") != "comm" ||
        !e.contains("name") || !e["name"].is_string() || !e.contains("args") ||
        !e["args"].is_object() || !e.contains("tid") || !e.contains("ts") ||
        !e.contains("dur"))
      continue;
    // ">A1:0.3" (post a send of an activation to rank 1, chunk 0, micro-
    // batch 3), "<G1:1.0", and with a leading '~' the wait on it.
    const std::string name = e["name"].get<std::string>();
    const bool wait = !name.empty() && name[0] == '~';
    const size_t p = wait ? 1 : 0;
    if (name.size() < p + 3 || (name[p] != '>' && name[p] != '<') ||
        (name[p + 1] != 'A' && name[p + 1] != 'G'))
      continue;
    long long peer = 0, chunk = 0, mb = 0;
    if (std::sscanf(name.c_str() + p + 2, "%lld:%lld.%lld", &peer, &chunk,
                    &mb) != 3)
      continue;
    const bool send = name[p] == '>';
    const int64_t tid = e["tid"].get<int64_t>();
    const int64_t step = e["args"].value("step", int64_t(-1));
    lastStep = std::max(lastStep, step);
    Msg &m = msgs[{step, name[p + 1], send ? tid : peer, send ? peer : tid,
                   chunk, mb}];
    const double ts = e["ts"].get<double>() * 1e-6,
                 dur = e["dur"].get<double>() * 1e-6;
    if (!wait) {
      (send ? m.sendPost : m.recvPost) = ts;
      if (e["args"].contains("bytes"))
        m.bytes = e["args"]["bytes"].get<int64_t>();
    } else if (!send) {
      m.waitStart = ts;
      m.waitEnd = ts + dur;
    }
  }
  // A wait shorter than this returned on a message already there.
  constexpr double kBlocked = 2e-6;
  const int64_t first = lastStep >= 1 ? 1 : 0;
  std::map<int64_t, std::vector<double>> bySize;
  for (const auto &[key, m] : msgs) {
    if (std::get<0>(key) < first || m.bytes < 0 || m.sendPost < 0 ||
        m.recvPost < 0 || m.waitStart < 0 || m.waitEnd - m.waitStart < kBlocked)
      continue;
    const double ready = std::max(m.sendPost, m.recvPost);
    if (m.waitEnd > ready) {
      bySize[m.bytes].push_back(m.waitEnd - ready);
      ++fit.samples;
    }
  }
  if (bySize.empty())
    return path + ": no receive waited for its message (a trace of one "
                  "rank, or one without message sizes, written before "
                  "pipec-run recorded them?): nothing to fit a link to";
  std::vector<std::pair<double, double>> points; // (bytes, median seconds)
  for (auto &[bytes, v] : bySize) {
    std::sort(v.begin(), v.end());
    points.push_back({double(bytes), v[v.size() / 2]});
  }
  fit.sizes = int64_t(points.size());
  fit.bytesLo = bySize.begin()->first;
  fit.bytesHi = bySize.rbegin()->first;
  double slope = 0;
  if (points.size() >= 2) {
    double mx = 0, my = 0;
    for (auto [x, y] : points)
      mx += x, my += y;
    mx /= double(points.size());
    my /= double(points.size());
    double sxy = 0, sxx = 0;
    for (auto [x, y] : points)
      sxy += (x - mx) * (y - my), sxx += (x - mx) * (x - mx);
    slope = sxx > 0 ? sxy / sxx : 0;
    fit.alpha = my - slope * mx;
    if (!(slope > 0) || fit.alpha < 0) {
      // No line with a positive bandwidth and latency fits: a constant.
      slope = 0;
      fit.alpha = my;
    }
  } else {
    fit.alpha = points[0].second;
  }
  fit.bandwidth = slope > 0 ? 1 / slope : INFINITY;
  return "";
}

/// --link: each chunk's activation and gradient messages priced as alpha
/// plus their bytes over the bandwidth (the largest message a chunk's
/// sends name, which in a pipeline is every one of them). Returns the
/// line that says what they cost.
std::string priceMessages(const std::vector<pipert::Stream> &streams,
                          int32_t chunks, double alpha, double bandwidth,
                          sched::Costs &costs) {
  std::vector<int64_t> act(size_t(chunks), -1), grad(size_t(chunks), -1);
  for (const pipert::Stream &st : streams)
    for (const pipert::Instr &in : st.instrs) {
      const bool isAct = in.op == pipert::Opcode::SendAct ||
                         in.op == pipert::Opcode::RecvAct;
      const bool isGrad = in.op == pipert::Opcode::SendGrad ||
                          in.op == pipert::Opcode::RecvGrad;
      if ((!isAct && !isGrad) || in.chunk < 0 || in.chunk >= chunks)
        continue;
      int64_t &bytes = (isAct ? act : grad)[size_t(in.chunk)];
      bytes = std::max(bytes, in.bytes);
    }
  auto price = [&](const std::vector<int64_t> &bytes, double fallback) {
    std::vector<double> out(size_t(chunks), fallback);
    for (size_t c = 0; c < bytes.size(); ++c)
      if (bytes[c] >= 0)
        out[c] = alpha + double(bytes[c]) / bandwidth;
    return out;
  };
  costs.actCommOf = price(act, costs.actComm);
  costs.gradCommOf = price(grad, costs.gradComm);
  // "activations 65536 bytes, 2.5e-05 each" (a range where chunks differ).
  auto describe = [&](const char *what, const std::vector<int64_t> &bytes) {
    int64_t lo = -1, hi = -1;
    for (int64_t b : bytes)
      if (b >= 0) {
        lo = lo < 0 ? b : std::min(lo, b);
        hi = std::max(hi, b);
      }
    if (lo < 0)
      return std::string(what) + " none";
    const double tLo = alpha + double(lo) / bandwidth,
                 tHi = alpha + double(hi) / bandwidth;
    char sizes[64], times[64], buf[160];
    if (lo == hi)
      std::snprintf(sizes, sizeof sizes, "%lld", (long long)lo);
    else
      std::snprintf(sizes, sizeof sizes, "%lld-%lld", (long long)lo,
                    (long long)hi);
    if (tLo == tHi)
      std::snprintf(times, sizeof times, "%.6g", tLo);
    else
      std::snprintf(times, sizeof times, "%.6g-%.6g", tLo, tHi);
    std::snprintf(buf, sizeof buf, "%s %s bytes, %s each", what, sizes, times);
    return std::string(buf);
  };
  char head[120];
  if (std::isinf(bandwidth))
    std::snprintf(head, sizeof head, "messages: %.6g s each, whatever their "
                  "size: ", alpha);
  else
    std::snprintf(head, sizeof head, "messages (--link): %.6g + bytes / %.6g: ",
                  alpha, bandwidth);
  return head + describe("activations", act) + "; " +
         describe("gradients", grad);
}

/// The kind --diff groups an instruction under.
std::string kindOf(pipert::Opcode op) {
  switch (op) {
  case pipert::Opcode::Fwd:
    return "F";
  case pipert::Opcode::BwdB:
    return "B";
  case pipert::Opcode::BwdW:
    return "W";
  case pipert::Opcode::OptStep:
    return "OPT";
  case pipert::Opcode::AllReduce:
  case pipert::Opcode::ReduceScatter:
  case pipert::Opcode::AllGather:
    return "collective";
  default:
    return "post/wait";
  }
}

int fail(const std::string &why) {
  std::fprintf(stderr, "pipec-sim: error: %s\n", why.c_str());
  return 1;
}

/// What the trace says a plan's instructions cost.
struct Measured {
  sched::Costs costs;
  /// Per rank, seconds per step in each kind (kKinds), over the steps used.
  std::vector<std::map<std::string, double>> perKind;
  double stepTime = 0; ///< mean wall time of the steps used
  int64_t steps = 0;   ///< how many
};

/// Reads `path` (pipec-run's trace.json) for `streams`: per chunk the
/// mean F, B and W over the warm steps, the optimizer step's mean, each
/// collective's least duration, and the measured step time. "" or why not.
std::string readTrace(const std::string &path,
                      const std::vector<pipert::Stream> &streams,
                      int32_t chunks, Measured &out) {
  json j;
  if (std::string why = readTraceJson(path, "--trace", j); !why.empty())
    return why;
  // A run of another plan (traces since 2026-12-08 name theirs) measured
  // other chunks: its times would be charged to this plan's.
  if (j.contains("pipec_plan") && j["pipec_plan"].is_string() &&
      !streams.empty() && streams[0].planId != 0 &&
      j["pipec_plan"].get<std::string>() !=
          pipert::planIdText(streams[0].planId))
    return path + ": a trace of plan " + j["pipec_plan"].get<std::string>() +
           ", not of this plan (" + pipert::planIdText(streams[0].planId) +
           "): --trace replays a run of the same plan (--calibrate prices "
           "any plan of the model from a run's kernel_times.json)";
  struct Event {
    int32_t rank;
    int64_t instr, step;
    double ts, dur;
  };
  std::vector<Event> events;
  int64_t lastStep = -1;
  for (const json &e : j["traceEvents"]) {
    if (!e.is_object() || e.value("ph", "") != "X")
      continue;
    if (!e.contains("args") || !e["args"].is_object() || !e.contains("tid") ||
        !e.contains("ts") || !e.contains("dur"))
      return path + ": an event without tid, ts, dur or args";
    Event ev{e["tid"].get<int32_t>(), e["args"].value("instr", int64_t(-1)),
             e["args"].value("step", int64_t(-1)), e["ts"].get<double>(),
             e["dur"].get<double>()};
    if (ev.rank < 0 || size_t(ev.rank) >= streams.size() || ev.instr < 0 ||
        size_t(ev.instr) >= streams[size_t(ev.rank)].instrs.size() ||
        ev.step < 0)
      return path + ": an event of rank " + std::to_string(ev.rank) +
             ", instruction " + std::to_string(ev.instr) +
             " that this plan's streams do not have (a trace of another "
             "plan?)";
    events.push_back(ev);
    lastStep = std::max(lastStep, ev.step);
  }
  if (events.empty())
    return path + ": no events (was the run traced? pipec-run --log-dir)";
  const int64_t first = lastStep >= 1 ? 1 : 0;
  out.steps = lastStep - first + 1;
  std::vector<double> sum[3], n[3];
  for (int k = 0; k < 3; ++k)
    sum[k].assign(size_t(chunks), 0), n[k].assign(size_t(chunks), 0);
  double optSum = 0, optN = 0;
  // (group, bucket, step) -> the least any member spent in it.
  std::map<std::tuple<int32_t, int32_t, int64_t>, double> collective;
  std::map<int64_t, std::pair<double, double>> span; // step -> [lo, hi]
  out.perKind.assign(streams.size(), {});
  for (const Event &e : events) {
    if (e.step < first)
      continue;
    const double s = e.dur * 1e-6; // the trace's microseconds
    auto &sp = span.try_emplace(e.step, e.ts, e.ts + e.dur).first->second;
    sp.first = std::min(sp.first, e.ts);
    sp.second = std::max(sp.second, e.ts + e.dur);
    const pipert::Instr &in = streams[size_t(e.rank)].instrs[size_t(e.instr)];
    out.perKind[size_t(e.rank)][kindOf(in.op)] += s;
    const int k = in.op == pipert::Opcode::Fwd    ? 0
                  : in.op == pipert::Opcode::BwdB ? 1
                  : in.op == pipert::Opcode::BwdW ? 2
                                                  : -1;
    if (k >= 0 && in.chunk >= 0 && in.chunk < chunks) {
      sum[k][size_t(in.chunk)] += s;
      n[k][size_t(in.chunk)] += 1;
    } else if (in.op == pipert::Opcode::OptStep) {
      optSum += s, optN += 1;
    } else if (pipert::isCollectiveOp(in.op)) {
      auto key = std::make_tuple(in.chunk, in.mb, e.step);
      auto it = collective.find(key);
      if (it == collective.end() || s < it->second)
        collective[key] = s;
    }
  }
  // Every rank's compute must have been measured: a chunk left at no
  // cost would replay as free (a trace of another plan whose instruction
  // numbers happen to fit this one's streams).
  for (size_t r = 0; r < streams.size(); ++r)
    for (const pipert::Instr &in : streams[r].instrs)
      if (in.op == pipert::Opcode::Fwd && in.chunk >= 0 && in.chunk < chunks &&
          n[0][size_t(in.chunk)] == 0)
        return path + ": rank " + std::to_string(r) + "'s chunk " +
               std::to_string(in.chunk) +
               " has no forward in the trace's steps (a trace of another "
               "plan, or of too few steps?)";
  std::vector<double> *phase[3] = {&out.costs.f, &out.costs.b, &out.costs.w};
  for (int k = 0; k < 3; ++k) {
    phase[k]->assign(size_t(chunks), 0);
    for (int32_t c = 0; c < chunks; ++c)
      if (n[k][size_t(c)] > 0)
        (*phase[k])[size_t(c)] = sum[k][size_t(c)] / n[k][size_t(c)];
  }
  out.costs.optStep = optN > 0 ? optSum / optN : 0;
  // Each collective's own time: its least member's, averaged over steps.
  std::map<std::pair<int32_t, int32_t>, std::pair<double, double>> own;
  for (auto &[key, s] : collective) {
    auto &acc = own[{std::get<0>(key), std::get<1>(key)}];
    acc.first += s, acc.second += 1;
  }
  for (auto &[key, acc] : own) {
    auto [g, bucket] = key;
    if (size_t(g) >= out.costs.collective.size())
      out.costs.collective.resize(size_t(g) + 1);
    auto &v = out.costs.collective[size_t(g)];
    if (size_t(bucket) >= v.size())
      v.resize(size_t(bucket) + 1, 0.0);
    v[size_t(bucket)] = acc.first / acc.second;
  }
  // The mean, as the costs are means over the same steps: on one rank the
  // replay then gives back exactly the measured time.
  double walls = 0;
  for (auto &[step, sp] : span)
    walls += (sp.second - sp.first) * 1e-6;
  out.stepTime = walls / double(span.size());
  for (auto &kinds : out.perKind)
    for (auto &[kind, t] : kinds)
      t /= double(out.steps);
  return "";
}

/// Per kernel instantiation, the mean seconds of one call in a
/// kernel_times.json (pipec-run --trace-kernels), over every rank of it.
struct KernelCosts {
  std::map<std::string, double> perCall;
  int64_t threads = 0; ///< the calibration run's OpenMP team per rank
};

/// f(), or what is wrong with `path` when its JSON has the wrong shape
/// somewhere f reads it (nlohmann's accessors throw).
template <typename F>
std::string guardedJson(const std::string &path, const char *what, F f) {
  try {
    return f();
  } catch (const json::exception &e) {
    return path + ": not a " + what + " (" + e.what() + ")";
  }
}

std::string readKernelTimes(const std::string &path, KernelCosts &out) {
  std::ifstream in(path);
  if (!in)
    return "cannot open --calibrate " + path;
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", 0) != 1 ||
      !j.contains("ranks") || !j["ranks"].is_array())
    return path + ": not a kernel_times.json (pipec-run --trace-kernels "
                  "--log-dir DIR writes DIR/kernel_times.json)";
  if (j.value("steps", int64_t(0)) < 1)
    return path + ": no timed step (the first step is not timed: run at "
                  "least 2)";
  out.threads = j.value("threads_per_rank", int64_t(0));
  std::map<std::string, std::pair<double, double>> sum;
  for (const json &rank : j["ranks"]) {
    if (!rank.is_object() || !rank.contains("kernels") ||
        !rank["kernels"].is_array())
      return path + ": a rank without a kernels array";
    for (const json &k : rank["kernels"]) {
      if (!k.is_object() || !k.contains("name") || !k["name"].is_string() ||
          !k.contains("calls") || !k["calls"].is_number_integer() ||
          !k.contains("seconds") || !k["seconds"].is_number())
        return path + ": a kernel entry without name, calls or seconds";
      auto &acc = sum[k["name"].get<std::string>()];
      acc.first += k["seconds"].get<double>();
      acc.second += double(k["calls"].get<int64_t>());
    }
  }
  for (auto &[name, acc] : sum)
    if (acc.second > 0)
      out.perCall[name] = acc.first / acc.second;
  return "";
}

/// What --calibrate priced besides the chunks: per rank its all-reduce
/// preparation and its optimizer step; whether the plan's calls were all
/// timed wrappers.
struct Calibrated {
  std::vector<double> prepare, step;
  bool complete = true;
};

/// Prices the plan's chunks and optimizer steps with `kc`: each phase the
/// sum of its calls' means (kernel_calls.json lists them), the optimizer
/// step the slowest rank's (the machine takes one cost for every rank),
/// each rank's all-reduce preparation into `out`.
std::string calibrate(const std::string &dir, int32_t chunks,
                      const KernelCosts &kc, sched::Costs &costs,
                      Calibrated &out) {
  const std::string path = dir + "/kernel_calls.json";
  std::ifstream in(path);
  if (!in)
    return "cannot open " + path +
           " (a cpu plan compiled by this pipec "
           "writes it; cuda plans have none)";
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", 0) != 1 ||
      !j.contains("chunks") || !j["chunks"].is_array() ||
      !j.contains("optimizer") || !j["optimizer"].is_array())
    return path + ": not a kernel_calls.json";
  out.complete = j.value("complete", true);
  std::vector<std::string> missing;
  auto price = [&](const json &names, double &total) -> bool {
    if (!names.is_array())
      return false;
    for (const json &n : names) {
      if (!n.is_string())
        return false;
      auto it = kc.perCall.find(n.get<std::string>());
      if (it == kc.perCall.end()) {
        if (std::find(missing.begin(), missing.end(), n.get<std::string>()) ==
            missing.end())
          missing.push_back(n.get<std::string>());
        continue;
      }
      total += it->second;
    }
    return true;
  };
  costs.f.assign(size_t(chunks), 0);
  costs.b.assign(size_t(chunks), 0);
  costs.w.assign(size_t(chunks), 0);
  std::vector<char> seen(size_t(chunks), 0);
  for (const json &c : j["chunks"]) {
    if (!c.is_object())
      return path + ": a chunk entry that is not an object";
    const int64_t id = c.value("chunk", int64_t(-1));
    if (id < 0 || id >= chunks || seen[size_t(id)])
      return path + ": chunk " + std::to_string(id) +
             " is not one of this plan's, or is listed twice";
    seen[size_t(id)] = 1;
    if (!price(c.value("F", json()), costs.f[size_t(id)]) ||
        !price(c.value("B", json()), costs.b[size_t(id)]) ||
        !price(c.value("W", json()), costs.w[size_t(id)]))
      return path + ": chunk " + std::to_string(id) +
             " without F, B and W lists of names";
  }
  for (int32_t c = 0; c < chunks; ++c)
    if (!seen[size_t(c)])
      return path + ": chunk " + std::to_string(c) + " is not listed";
  out.prepare.clear();
  out.step.clear();
  for (const json &r : j["optimizer"]) {
    double prep = 0, step = 0;
    if (!r.is_object() || !price(r.value("prepare", json::array()), prep) ||
        !price(r.value("calls", json()), step))
      return path + ": an optimizer entry without prepare and calls lists";
    out.prepare.push_back(prep);
    out.step.push_back(step);
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 4; ++i)
      list += (i ? ", " : "") + missing[i];
    return std::to_string(missing.size()) +
           " kernel instantiation(s) of this plan were not timed in the "
           "--calibrate run (" +
           list + (missing.size() > 4 ? ", ..." : "") +
           "): calibrate on a plan of the same model, micro-batch size and "
           "options";
  }
  costs.optStep = out.step.empty()
                      ? 0
                      : *std::max_element(out.step.begin(), out.step.end());
  return "";
}

/// The host model of --cores C (R ranks sharing C cores, R > C): a rank
/// computes at full speed while at most C ranks compute, at C / n of it
/// while n > C do (the operating system shares the cores evenly). Each
/// compute span's slowdown is its time over the work it did (the integral
/// of min(1, C / n(t)) over it), n(t) read from the replay's own spans; a chunk
/// phase's cost (and the optimizer step's) becomes its unshared cost times the
/// mean slowdown of its spans, and the replay runs again until the costs settle
/// (damped fixed point). Returns the iterations it took.
int shareCores(const sched::Schedule &s, const sched::Costs &base,
               int32_t cores, sched::Costs &costs) {
  auto isCompute = [](sched::Op op) {
    return op == sched::Op::Fwd || op == sched::Op::BwdB ||
           op == sched::Op::BwdW || op == sched::Op::OptStep;
  };
  costs = base;
  for (int iter = 1; iter <= 50; ++iter) {
    sched::MachineResult r = sched::runMachine(s, costs, true);
    if (r.verdict != sched::Verdict::Completed)
      return iter;
    // n(t): +1 at each compute span's start, -1 at its end.
    std::vector<std::pair<double, int>> edges;
    for (const sched::Span &sp : r.spans)
      if (isCompute(sp.op) && sp.end > sp.start) {
        edges.push_back({sp.start, +1});
        edges.push_back({sp.end, -1});
      }
    std::sort(edges.begin(), edges.end());
    // Pieces [t_i, t_{i+1}) of constant n, and the prefix integral of the
    // speed min(1, C / n) over them (the work done).
    std::vector<double> at, integral{0};
    int n = 0;
    for (size_t i = 0; i < edges.size(); ++i) {
      n += edges[i].second;
      if (i + 1 < edges.size()) {
        at.push_back(edges[i].first);
        integral.push_back(integral.back() +
                           (edges[i + 1].first - edges[i].first) *
                               std::min(1.0, double(cores) / std::max(n, 1)));
      }
    }
    if (!edges.empty())
      at.push_back(edges.back().first);
    auto workTo = [&](double t) {
      // The integral of the speed from the first edge to t.
      size_t k = size_t(std::upper_bound(at.begin(), at.end(), t) - at.begin());
      if (k == 0)
        return 0.0;
      if (k >= at.size())
        return integral.back();
      const double piece = at[k] - at[k - 1];
      const double frac = piece > 0 ? (t - at[k - 1]) / piece : 0;
      return integral[k - 1] + frac * (integral[k] - integral[k - 1]);
    };
    std::vector<double> sum[3], cnt[3];
    for (int k = 0; k < 3; ++k)
      sum[k].assign(base.f.size(), 0), cnt[k].assign(base.f.size(), 0);
    double optSum = 0, optCnt = 0;
    for (const sched::Span &sp : r.spans) {
      if (!isCompute(sp.op) || sp.end <= sp.start)
        continue;
      // The span took (end - start) at the speeds it met and did the work
      // their integral says: its slowdown is time over work.
      const double work = workTo(sp.end) - workTo(sp.start);
      const double slow = work > 0 ? (sp.end - sp.start) / work : 1.0;
      const int k = sp.op == sched::Op::Fwd    ? 0
                    : sp.op == sched::Op::BwdB ? 1
                    : sp.op == sched::Op::BwdW ? 2
                                               : -1;
      if (k < 0) {
        optSum += slow, optCnt += 1;
      } else if (sp.chunk >= 0 && size_t(sp.chunk) < base.f.size()) {
        sum[k][size_t(sp.chunk)] += slow;
        cnt[k][size_t(sp.chunk)] += 1;
      }
    }
    double change = 0;
    auto settle = [&](double baseCost, double slow, double &cost) {
      // Damped: half the way to the new cost each iteration.
      const double next = 0.5 * cost + 0.5 * baseCost * slow;
      if (cost > 0)
        change = std::max(change, std::abs(next - cost) / cost);
      cost = next;
    };
    std::vector<double> *phase[3] = {&costs.f, &costs.b, &costs.w};
    const std::vector<double> *basePhase[3] = {&base.f, &base.b, &base.w};
    for (int k = 0; k < 3; ++k)
      for (size_t c = 0; c < base.f.size(); ++c)
        if (cnt[k][c] > 0)
          settle((*basePhase[k])[c], sum[k][c] / cnt[k][c], (*phase[k])[c]);
    if (optCnt > 0)
      settle(base.optStep, optSum / optCnt, costs.optStep);
    if (change < 1e-4)
      return iter;
  }
  return 50;
}


/// The predicted step in pipec-run's trace format (RunLog.cpp): a track per
/// rank, an event per compute instruction and collective, microseconds.
/// A span's name in the runtime's trace (F0.3, AR4.1, OPT): a span is its
/// instruction's op with chunk and micro-batch (group and bucket).
std::string spanName(const sched::Span &sp) {
  pipert::Instr in;
  in.op = in.sub = sp.op;
  in.chunk = sp.chunk;
  in.mb = sp.mb;
  return pipert::traceName(in);
}

std::string predictedTrace(const sched::MachineResult &r, int32_t ranks) {
  std::string text = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
  char buf[512];
  for (int32_t q = 0; q < ranks; ++q) {
    std::snprintf(buf, sizeof buf,
                  "%s{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 0, "
                  "\"tid\": %d, \"args\": {\"name\": \"rank %d (predicted)\"}}",
                  q ? ",\n" : "", q, q);
    text += buf;
  }
  for (const sched::Span &sp : r.spans) {
    const std::string name = spanName(sp);
    std::snprintf(buf, sizeof buf,
                  ",\n{\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", "
                  "\"pid\": 0, \"tid\": %d, \"ts\": %.3f, \"dur\": %.3f, "
                  "\"args\": {\"step\": 0}}",
                  name.c_str(),
                  pipert::isCollectiveOp(sp.op) ? "comm" : "compute", sp.rank,
                  sp.start * 1e6, (sp.end - sp.start) * 1e6);
    text += buf;
  }
  return text + "\n]}\n";
}

} // namespace

int main(int argc, char **argv) {
  std::string dir, trace, traceOut, calibration;
  int32_t cores = 0;
  double peakGflops = 0;
  sched::FailureModel failures;
  bool goodput = false;
  double linkAlpha = -1, linkBandwidth = 0; // --link; alpha < 0: none
  std::string linkFrom;
  std::string clusterPath;
  pipec::sim::ClusterRun clusterRun;
  bool placementGiven = false;
  int64_t searchGpus = 0, top = 5;
  double jitter = 0, stragglerFactor = 1;
  int64_t stragglerCount = 0;
  std::vector<pipec::sim::RankFailure> failAt; // --fail
  double watchdogSeconds = 20;                 // --watchdog-s
  bool watchdogGiven = false;
  uint64_t seed = 1;
  double globalBatch = 0;
  std::vector<std::string> compileArgs;
  bool asJson = false, diff = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(pipec::sim::kUsage, stdout);
      return 0;
    }
    if (a == "--json") {
      asJson = true;
    } else if (a == "--diff") {
      diff = true;
    } else if (a == "--trace-out") {
      if (i + 1 >= argc)
        return fail("--trace-out needs a file name");
      traceOut = argv[++i];
    } else if (a == "--cores") {
      if (i + 1 >= argc)
        return fail("--cores needs the number of cores the ranks share");
      std::string v = argv[++i];
      char *end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 1 || n > 1000000)
        return fail("--cores must be a whole number from 1 to 1000000, not '" +
                    v + "'");
      cores = int32_t(n);
    } else if (a == "--link") {
      if (i + 1 >= argc)
        return fail("--link needs ALPHA,BANDWIDTH (seconds per message, "
                    "bytes per second), e.g. 5e-6,1e11");
      if (std::string why = parseLink(argv[++i], linkAlpha, linkBandwidth);
          !why.empty())
        return fail(why);
    } else if (a == "--link-from") {
      if (i + 1 >= argc)
        return fail("--link-from needs a trace (pipec-run --log-dir DIR "
                    "writes DIR/trace.json)");
      linkFrom = argv[++i];
    } else if (a == "--cluster") {
      if (i + 1 >= argc)
        return fail("--cluster needs a cluster description (clusters/*.json)");
      clusterPath = argv[++i];
    } else if (a == "--placement") {
      if (i + 1 >= argc ||
          !pipec::cluster::parsePlacement(argv[i + 1], clusterRun.placement))
        return fail(std::string("--placement must be pipeline-major or "
                                "replica-major") +
                    (i + 1 < argc ? std::string(", not '") + argv[i + 1] + "'"
                                  : std::string()));
      ++i;
      placementGiven = true;
    } else if (a == "--jitter" || a == "--seed") {
      if (i + 1 >= argc)
        return fail(a + " needs a number");
      std::string v = argv[++i];
      char *end = nullptr;
      const double n = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(n >= 0) ||
          n > (a == "--jitter" ? 2.0 : 1e18) ||
          (a == "--seed" && n != std::floor(n)))
        return fail(a == "--jitter"
                        ? "--jitter must be a sigma from 0 to 2, not '" + v +
                              "'"
                        : "--seed must be a whole number, not '" + v + "'");
      if (a == "--jitter")
        jitter = n;
      else
        seed = uint64_t(n);
    } else if (a == "--fail") {
      // RANK@SECONDS[,RANK@SECONDS...]
      if (i + 1 >= argc)
        return fail("--fail needs RANK@SECONDS, e.g. 1234@0.5");
      std::string v = argv[++i];
      size_t at = 0;
      while (at <= v.size()) {
        size_t comma = v.find(',', at);
        std::string one = v.substr(at, comma == std::string::npos
                                            ? std::string::npos
                                            : comma - at);
        char *end = nullptr;
        const long long rank = std::strtoll(one.c_str(), &end, 10);
        double t = -1;
        if (end != one.c_str() && *end == '@')
          t = std::strtod(end + 1, &end);
        if (one.empty() || *end != '\0' || rank < 0 || !(t >= 0) ||
            !std::isfinite(t))
          return fail("--fail must be RANK@SECONDS (a rank, 0 or more, "
                      "failing SECONDS into the step), comma-separated, "
                      "not '" + v + "'");
        failAt.push_back({rank, t});
        if (comma == std::string::npos)
          break;
        at = comma + 1;
      }
    } else if (a == "--watchdog-s") {
      if (i + 1 >= argc)
        return fail("--watchdog-s needs seconds");
      std::string v = argv[++i];
      char *end = nullptr;
      watchdogSeconds = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(watchdogSeconds >= 0) ||
          watchdogSeconds > 1e6)
        return fail("--watchdog-s must be seconds from 0 to 1e6, not '" + v +
                    "'");
      watchdogGiven = true;
    } else if (a == "--stragglers") {
      if (i + 1 >= argc)
        return fail("--stragglers needs N,FACTOR, e.g. 4,1.5");
      std::string v = argv[++i];
      char *end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      double factor = 0;
      if (*end == ',')
        factor = std::strtod(end + 1, &end);
      if (v.empty() || *end != '\0' || n < 1 || n > (1LL << 30) ||
          !(factor >= 1) || factor > 100)
        return fail("--stragglers must be N,FACTOR: N ranks (1 or more) "
                    "FACTOR times slower (1 to 100), not '" + v + "'");
      stragglerCount = n;
      stragglerFactor = factor;
    } else if (a == "--search" || a == "--top" || a == "--global-batch") {
      if (i + 1 >= argc)
        return fail(a + " needs a number");
      std::string v = argv[++i];
      char *end = nullptr;
      double n = std::strtod(v.c_str(), &end);
      const bool whole = a != "--global-batch";
      if (v.empty() || *end != '\0' || !(n >= 1) || n > 1e15 ||
          (whole && n != std::floor(n)))
        return fail(a + " must be a " +
                    (whole ? std::string("whole number") : "number") +
                    " of at least 1, not '" + v + "'");
      if (a == "--search")
        searchGpus = int64_t(n);
      else if (a == "--top")
        top = int64_t(n);
      else
        globalBatch = n;
    } else if (a == "--tp") {
      if (i + 1 >= argc)
        return fail("--tp needs the tensor-parallel degree");
      std::string v = argv[++i];
      char *end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 1 || n > 4096)
        return fail("--tp must be a whole number from 1 to 4096, not '" + v +
                    "'");
      clusterRun.tp = int32_t(n);
    } else if (a == "--replicas") {
      if (i + 1 >= argc)
        return fail("--replicas needs the data-parallel replicas to price");
      std::string v = argv[++i];
      char *end = nullptr;
      long long n = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 1 || n > (1LL << 30))
        return fail("--replicas must be a whole number from 1 to 1073741824, "
                    "not '" + v + "'");
      clusterRun.replicas = n;
    } else if (a == "--goodput") {
      if (i + 1 >= argc)
        return fail("--goodput needs GPUS,FAILURES_PER_GPU_HOUR,CHECKPOINT_S,"
                    "RESTART_S, e.g. 16384,1.97e-5,60,600");
      if (std::string why = sched::parseFailureModel(argv[++i], failures);
          !why.empty())
        return fail(why);
      goodput = true;
    } else if (a == "--peak-gflops") {
      if (i + 1 >= argc)
        return fail("--peak-gflops needs one rank's peak in GFLOP/s");
      std::string v = argv[++i];
      char *end = nullptr;
      double g = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(g > 0) || g > 1e9)
        return fail("--peak-gflops must be a positive number of GFLOP/s, "
                    "not '" +
                    v + "'");
      peakGflops = g;
    } else if (a == "--calibrate") {
      if (i + 1 >= argc)
        return fail("--calibrate needs a file (pipec-run --trace-kernels "
                    "--log-dir DIR writes DIR/kernel_times.json)");
      calibration = argv[++i];
    } else if (a == "--trace") {
      if (i + 1 >= argc)
        return fail("--trace needs a file (pipec-run --log-dir DIR writes "
                    "DIR/trace.json)");
      trace = argv[++i];
    } else if (a == "--stages" || a == "--microbatches" || a == "--schedule" ||
               a == "--dp" || a == "--zero" || a == "--chunks-per-rank" ||
               a == "--target" ||
               a == "--memory-cap" || a == "--recompute" ||
               a == "--schedule-file") {
      // A model file's plan: these go to pipec compile (its planning
      // options, tools/pipec/PlanningOptions.cpp).
      if (i + 1 >= argc)
        return fail(a + " needs a value");
      compileArgs.push_back(a);
      compileArgs.push_back(argv[++i]);
    } else if (a == "--defer-lm-head-w" || a == "--no-fuse") {
      compileArgs.push_back(a);
    } else if (!a.empty() && a[0] == '-') {
      return fail("unknown option " + a + " (pipec-sim --help)");
    } else if (dir.empty()) {
      dir = a;
    } else {
      return fail("one plan folder only, got " + dir + " and " + a);
    }
  }
  if (!clusterPath.empty()) {
    if (std::string why =
            pipec::cluster::readCluster(clusterPath, clusterRun.cluster);
        !why.empty())
      return fail(why);
    if (dir.empty()) {
      std::fputs(pipec::sim::describeCluster(clusterRun.cluster).c_str(),
                 stdout);
      return 0;
    }
    // The cluster prices everything this machine's measurements would.
    for (const auto &[given, what] :
         {std::pair<bool, const char *>{!trace.empty(), "--trace"},
          {!calibration.empty(), "--calibrate"},
          {linkAlpha >= 0, "--link"},
          {!linkFrom.empty(), "--link-from"},
          {cores > 0, "--cores"},
          {peakGflops > 0, "--peak-gflops"},
          {diff, "--diff"}})
      if (given)
        return fail(std::string(what) +
                    " measures this machine; --cluster prices the plan on "
                    "the cluster's GPUs and networks instead: give one");
  } else if (placementGiven || clusterRun.replicas > 0 || jitter > 0 ||
             stragglerCount > 0 || clusterRun.tp > 1 || !failAt.empty()) {
    return fail(std::string(placementGiven        ? "--placement"
                            : clusterRun.replicas ? "--replicas"
                            : jitter > 0          ? "--jitter"
                            : clusterRun.tp > 1   ? "--tp"
                            : !failAt.empty()     ? "--fail"
                                                  : "--stragglers") +
                " places the plan on a cluster: give --cluster");
  }
  if (watchdogGiven && failAt.empty())
    return fail("--watchdog-s is when the ranks --fail stops exit: give "
                "--fail RANK@SECONDS");
  if (searchGpus > 0 || globalBatch > 0) {
    if (searchGpus <= 0 || globalBatch <= 0 || clusterPath.empty())
      return fail("--search GPUS needs --global-batch TOKENS, --cluster and "
                  "a model file");
    if (dir.size() < 5 || dir.compare(dir.size() - 5, 5, ".json") != 0)
      return fail("--search compiles plans of a model file (MODEL.json), "
                  "not " + (dir.empty() ? std::string("nothing") : dir));
    if (clusterRun.replicas > 0)
      return fail("--search chooses the replicas; leave out --replicas");
    for (const char *own :
         {"--stages", "--microbatches", "--schedule", "--dp", "--zero",
          "--target", "--chunks-per-rank", "--schedule-file"})
      if (std::find(compileArgs.begin(), compileArgs.end(), own) !=
          compileArgs.end())
        return fail(std::string("--search chooses ") + own +
                    " itself; leave it out");
    pipec::sim::SearchRequest q;
    q.model = dir;
    q.clusterPath = clusterPath;
    q.run = clusterRun;
    q.gpus = searchGpus;
    q.globalBatchTokens = globalBatch;
    q.top = int32_t(top);
    q.compileArgs = compileArgs;
    q.json = asJson;
    return pipec::sim::runSearch(argv[0], q);
  }
  if (dir.empty())
    return fail("give the plan folder (pipec-sim --help)");
  // MODEL.json: its plan compiled first (pipec compile --emit-only into a
  // temporary folder, removed at the end).
  pipec::sim::TempPlan temp;
  std::string label; // what the output names: the model file, if given
  if (!fs::is_directory(dir) && dir.size() > 5 &&
      dir.compare(dir.size() - 5, 5, ".json") == 0) {
    // This machine's plan (f32 storage), or with --cluster the GPU's:
    // bf16 storage, memory planned for the cluster GPU's memory.
    auto given = [&](const char *option) {
      return std::find(compileArgs.begin(), compileArgs.end(), option) !=
             compileArgs.end();
    };
    if (!given("--target")) {
      compileArgs.push_back("--target");
      compileArgs.push_back(clusterPath.empty() ? "cpu" : "cuda");
    }
    if (!clusterPath.empty() && !given("--memory-cap")) {
      compileArgs.push_back("--memory-cap");
      compileArgs.push_back(std::to_string(
          clusterRun.cluster.gpu.memoryBytes * std::max(1, clusterRun.tp)));
    }
    if (std::string why =
            pipec::sim::compileModel(argv[0], dir, compileArgs, temp);
        !why.empty())
      return fail(why);
    label = dir + " (compiled for this replay)";
    dir = temp.dir;
  } else if (!compileArgs.empty()) {
    return fail(compileArgs[0] +
                " belongs to a model file (pipec-sim "
                "MODEL.json --stages S ...); " +
                dir + " is a plan folder, compiled already");
  }
  if (goodput && trace.empty() && calibration.empty() && clusterPath.empty())
    return fail("--goodput needs step times in seconds: give --trace, "
                "--calibrate or --cluster (with unit costs a step has no "
                "duration)");
  if (diff && trace.empty())
    return fail("--diff compares with a measured run: give --trace");
  pipert::Manifest m;
  std::vector<pipert::Stream> streams;
  sched::Schedule s;
  if (std::string why = pipec::sim::loadPlan(dir, m, streams, s); !why.empty())
    return fail(why);
  // Two of the plan's replicas standing for all (PlanFiles.h): what needs
  // every rank's own cannot be had.
  const bool twoOfMany = s.replicas < m.replicas;
  if (twoOfMany && (!trace.empty() || cores > 0))
    return fail(std::string(!trace.empty() ? "--trace" : "--cores") +
                ": a plan of " + std::to_string(m.ranks) +
                " ranks is replayed as 2 of its " +
                std::to_string(m.replicas) +
                " replicas, which stand for the others by symmetry; " +
                (!trace.empty() ? "a measured trace is compared rank by rank"
                                : "ranks sharing this machine's cores are "
                                  "modelled rank by rank") +
                " (compile it with --dp 2 and price --replicas " +
                std::to_string(m.replicas) + " with --cluster)");
  const int32_t C = s.placement.chunks;
  Measured measured;
  if (!trace.empty()) {
    if (std::string why = readTrace(trace, streams, C, measured); !why.empty())
      return fail(why);
  } else {
    measured.costs = sched::Costs::uniform(C, 1, 1, 1);
  }
  // --calibrate: F, B, W and the optimizer priced kernel by kernel; the
  // collectives keep the trace's own times (none without a trace).
  sched::Costs costs = measured.costs;
  // --cluster: every cost from work.json, the streams and the cluster.
  pipec::sim::ClusterPriced clusterPriced;
  const bool onCluster = !clusterPath.empty();
  if (onCluster) {
    if (std::string why = pipec::sim::priceOnCluster(
            dir, m, streams, clusterRun, s, costs, clusterPriced);
        !why.empty())
      return fail(why);
    peakGflops = clusterRun.cluster.gpu.tensorFlops * 1e-9;
  }
  // The replicas the step stands for: the plan's, or --replicas'.
  const double replicasPriced =
      onCluster && clusterRun.replicas > 0 ? double(clusterRun.replicas)
                                           : double(m.replicas);
  const double gpusPriced =
      double(m.pipelineRanks()) * replicasPriced * std::max(1, clusterRun.tp);
  KernelCosts kernelCosts;
  Calibrated calibrated;
  if (!calibration.empty()) {
    if (std::string why = guardedJson(
            calibration, "kernel_times.json",
            [&] { return readKernelTimes(calibration, kernelCosts); });
        !why.empty())
      return fail(why);
    if (trace.empty())
      costs = sched::Costs{};
    if (std::string why = guardedJson(
            dir + "/kernel_calls.json", "kernel_calls.json",
            [&] { return calibrate(dir, C, kernelCosts, costs, calibrated); });
        !why.empty())
      return fail(why);
    // The preparation of the gradient-norm all-reduce (group 0) runs in
    // that instruction: its own time without a trace (a trace's own time
    // of the collective holds it already).
    if (trace.empty() && !calibrated.prepare.empty()) {
      const double prep = *std::max_element(calibrated.prepare.begin(),
                                            calibrated.prepare.end());
      for (const pipert::Stream &st : streams)
        for (const pipert::Instr &in : st.instrs)
          if (in.op == pipert::Opcode::AllReduce && in.chunk == 0 &&
              in.mb >= 0) {
            if (costs.collective.empty())
              costs.collective.resize(1);
            auto &g0 = costs.collective[0];
            if (size_t(in.mb) >= g0.size())
              g0.resize(size_t(in.mb) + 1, 0.0);
            g0[size_t(in.mb)] = prep;
          }
    }
  }
  std::string linkLine, linkFitLine;
  if (!linkFrom.empty()) {
    if (linkAlpha >= 0)
      return fail("give --link or --link-from, not both");
    LinkFit fit;
    if (std::string why = fitLink(linkFrom, fit); !why.empty())
      return fail(why);
    linkAlpha = fit.alpha;
    linkBandwidth = fit.bandwidth;
    char buf[320];
    if (fit.sizes >= 2)
      std::snprintf(buf, sizeof buf,
                    "link fitted to %s: %lld waited-for messages of %lld "
                    "sizes (%lld-%lld bytes)",
                    linkFrom.c_str(), (long long)fit.samples,
                    (long long)fit.sizes, (long long)fit.bytesLo,
                    (long long)fit.bytesHi);
    else
      std::snprintf(buf, sizeof buf,
                    "link fitted to %s: %lld waited-for messages of one size "
                    "(%lld bytes: a time per message, no bandwidth)",
                    linkFrom.c_str(), (long long)fit.samples,
                    (long long)fit.bytesLo);
    linkFitLine = buf;
  }
  if (linkAlpha >= 0)
    linkLine = priceMessages(streams, C, linkAlpha, linkBandwidth, costs);
  // --cores: ranks beyond the cores share them (the host model).
  int hostIterations = 0;
  if (cores > 0 && m.ranks > cores) {
    const sched::Costs unshared = costs;
    hostIterations = shareCores(s, unshared, cores, costs);
  }
  sched::MachineResult r = sched::runMachine(s, costs, /*recordSpans=*/true);
  if (r.verdict != sched::Verdict::Completed)
    return fail(std::string("the streams do not complete: ") +
                sched::verdictName(r.verdict) + ": " + r.message);
  // --jitter, --stragglers: every replica replayed (ReplicaReplay.h).
  pipec::sim::VariedReplay varied;
  if (onCluster && (jitter > 0 || stragglerCount > 0 || !failAt.empty()))
    if (std::string why = pipec::sim::replayVaried(
            s, costs, int64_t(replicasPriced), jitter, stragglerCount,
            stragglerFactor, seed, varied, failAt);
        !why.empty())
      return fail(why);
  // The critical path: from the span that ends last, each span's
  // predecessor (Machine.h's Span::pred), back to the step's start.
  const std::vector<int32_t> path = sched::criticalPath(r);
  double pathCompute = 0;
  int32_t rankChanges = 0;
  for (size_t i = 0; i < path.size(); ++i) {
    const sched::Span &sp = r.spans[size_t(path[i])];
    pathCompute += sp.end - sp.start;
    if (i > 0 && r.spans[size_t(path[i - 1])].rank != sp.rank)
      ++rankChanges;
  }
  const double tokens =
      double(m.tokensPerMicrobatch) * m.microbatches * replicasPriced;
  // The model's FLOPs of a step (the manifest's, as `pipec stats` counts
  // them) and, against --peak-gflops per rank, the model FLOPs utilisation.
  const double stepFlops =
      double(m.trainFlopsPerMicrobatch) * m.microbatches * replicasPriced;
  if (!traceOut.empty()) {
    std::ofstream f(traceOut);
    f << predictedTrace(r, s.ranks());
    if (!f.flush())
      return fail("cannot write --trace-out " + traceOut);
  }
  // Per rank and kind, the predicted seconds (the machine's spans).
  std::vector<std::map<std::string, double>> predicted(
      static_cast<size_t>(s.ranks()));
  for (const sched::Span &sp : r.spans)
    predicted[size_t(sp.rank)][kindOf(sp.op)] += sp.end - sp.start;
  const bool seconds = !trace.empty() || !calibration.empty() || onCluster;
  const bool hasMeasured = !trace.empty();
  const std::string source =
      onCluster ? "cluster " + clusterRun.cluster.name + " (" + clusterPath +
                      "; work.json at its GPU's rates)"
      : !calibration.empty()
          ? "kernel times of " + calibration +
                (hasMeasured
                     ? " (collectives from " + trace + ")"
                     : " (collectives: their operands' preparation only)")
      : hasMeasured ? trace
                    : std::string("none (F = B = W = 1)");
  sched::Goodput kept;
  if (goodput && r.stepTime > 0)
    kept = sched::bestGoodput(failures, r.stepTime);
  if (asJson) {
    json out = {{"plan", label.empty() ? dir : label},
                {"costs", onCluster              ? "cluster"
                          : !calibration.empty() ? "kernels"
                          : seconds              ? "trace"
                                                 : "unit"},
                {"step_time_s", r.stepTime},
                {"bubble", r.bubbleFraction},
                {"tokens_per_s",
                 seconds && r.stepTime > 0 ? tokens / r.stepTime : 0.0}};
    json ranks = json::array();
    for (size_t q = 0; q < r.busy.size(); ++q)
      ranks.push_back(
          {{"rank", q},
           {"peak_bytes", m.rankInfo[q % m.rankInfo.size()].peakBytes},
           {"busy_s", r.busy[q]},
           {"idle_share", r.stepTime > 0 ? 1 - r.busy[q] / r.stepTime : 0}});
    out["ranks"] = ranks;
    // The ranks replayed: 2 replicas' when they stand for the plan's D.
    out["replicas_replayed"] = s.replicas;
    json cp = json::array();
    for (int32_t i : path) {
      const sched::Span &sp = r.spans[size_t(i)];
      cp.push_back({{"rank", sp.rank},
                    {"name", spanName(sp)},
                    {"start", sp.start},
                    {"end", sp.end}});
    }
    out["critical_path"] = cp;
    if (diff) {
      json d = json::array();
      for (int32_t q = 0; q < m.ranks; ++q)
        for (const char *k : {"F", "B", "W", "OPT", "collective"})
          d.push_back({{"rank", q},
                       {"kind", k},
                       {"predicted_s", predicted[size_t(q)][k]},
                       {"measured_s", measured.perKind[size_t(q)][k]}});
      out["diff"] = d;
    }
    if (!calibration.empty())
      out["calibration_threads_per_rank"] = kernelCosts.threads;
    if (seconds && stepFlops > 0 && r.stepTime > 0) {
      out["model_flops_per_s"] = stepFlops / r.stepTime;
      if (peakGflops > 0)
        out["mfu"] = stepFlops / r.stepTime / (peakGflops * 1e9 * gpusPriced);
    }
    if (cores > 0)
      out["cores"] = cores;
    if (onCluster)
      out["cluster"] = {
          {"name", clusterRun.cluster.name},
          {"file", clusterPath},
          {"gpus", clusterPriced.gpus},
          {"replicas", replicasPriced},
          {"tp", clusterRun.tp},
          {"placement", clusterRun.placement ==
                                pipec::cluster::Placement::PipelineMajor
                            ? "pipeline-major"
                            : "replica-major"},
          {"activation_message_s", clusterPriced.actMessage},
          {"gradient_message_s", clusterPriced.gradMessage},
          {"data_parallel_collective_s", clusterPriced.dataParallel},
          {"optimizer_s", clusterPriced.optimizer},
          {"over_memory_rank", clusterPriced.overMemory}};
    if (goodput && r.stepTime > 0)
      out["goodput"] = {
          {"gpus", failures.gpus},
          {"failures_per_gpu_hour", failures.failuresPerGpuHour},
          {"checkpoint_s", failures.checkpointSeconds},
          {"restart_s", failures.restartSeconds},
          {"mtbf_s", kept.mtbfSeconds},
          {"interval_steps", kept.intervalSteps},
          {"interval_s", kept.intervalSeconds},
          {"young_interval_s", kept.youngSeconds},
          {"useful_fraction", kept.usefulFraction},
          {"tokens_per_s", kept.usefulFraction * tokens / r.stepTime}};
    if (varied.ran) {
      out["varied"] = {{"replicas", varied.replicas},
                       {"jitter", varied.jitter},
                       {"stragglers", varied.stragglers},
                       {"straggler_factor", varied.factor},
                       {"rounds", varied.rounds},
                       {"instructions", varied.instructions},
                       {"wall_s", varied.wallSeconds}};
      // A step with failed ranks does not complete: no time or rate.
      if (varied.failures == 0) {
        out["varied"]["step_time_s"] = varied.stepTime;
        out["varied"]["fastest_replica_s"] = varied.fastestReplica;
        out["varied"]["tokens_per_s"] = tokens / varied.stepTime;
      }
    }
    if (varied.ran && varied.failures > 0)
      out["failure"] = {
          {"failures", varied.failures},
          {"first_failure_s", varied.firstFailure},
          {"stopped_ranks", varied.stopped},
          {"first_stop_s", varied.firstStop},
          {"last_stop_s", varied.lastStop},
          {"last_finish_s", varied.lastFinish},
          {"watchdog_s", watchdogSeconds},
          {"all_exited_s", varied.exitedBy(watchdogSeconds)}};
    if (linkAlpha >= 0)
      out["link"] = {{"alpha_s", linkAlpha},
                     {"bandwidth_bytes_per_s", linkBandwidth}};
    if (hasMeasured) {
      out["measured_step_time_s"] = measured.stepTime;
      out["measured_steps"] = measured.steps;
      out["error"] = (r.stepTime - measured.stepTime) / measured.stepTime;
    }
    std::printf("%s\n", out.dump(1).c_str());
    return 0;
  }
  const char *unit = seconds ? " s" : " (unit costs)";
  std::printf("pipec-sim: %s: %d ranks (%d stages x %d replicas), %d "
              "micro-batches, %s, costs from %s\n",
              (label.empty() ? dir : label).c_str(), m.ranks, m.pipelineRanks(),
              m.replicas, m.microbatches, m.scheduleKind.c_str(),
              source.c_str());
  if (twoOfMany && !onCluster)
    std::printf("symmetry: the plan's first 2 replicas replayed stand for "
                "its %d (more than %lld ranks: every replica runs replica "
                "0's streams)\n",
                m.replicas, (long long)pipec::sim::kWholeReplayRanks);
  if (!calibration.empty())
    std::printf("calibrated with %lld OpenMP thread(s) per rank (the "
                "kernel times hold for ranks with that many)%s\n",
                (long long)kernelCosts.threads,
                calibrated.complete
                    ? ""
                    : "; some optimizer-side calls run outside the timed "
                      "wrappers (variadic sums of tied gradients, ZeRO-1's "
                      "sharded AdamW) and are priced at 0");
  if (!linkFitLine.empty())
    std::printf("%s\n", linkFitLine.c_str());
  if (!linkLine.empty())
    std::printf("%s\n", linkLine.c_str());
  if (onCluster) {
    std::printf("on %s: %lld GPUs (%d stages x %.0f replicas%s, %s); slowest "
                "activation message %.4g s, gradient message %.4g s, "
                "data-parallel collective %.4g s, optimizer step %.4g s\n",
                clusterRun.cluster.name.c_str(),
                (long long)clusterPriced.gpus, m.pipelineRanks(),
                replicasPriced,
                clusterRun.tp > 1
                    ? (" x " + std::to_string(clusterRun.tp) +
                       " tensor-parallel (a model)")
                          .c_str()
                    : "",
                clusterRun.placement == pipec::cluster::Placement::PipelineMajor
                    ? "pipeline-major"
                    : "replica-major",
                clusterPriced.actMessage, clusterPriced.gradMessage,
                clusterPriced.dataParallel, clusterPriced.optimizer);
    if (replicasPriced != s.replicas)
      std::printf("symmetry: %d replicas replayed (%s) stand for %.0f: the "
                  "data-parallel collectives priced with %.0f members; the "
                  "memory is the compiled plan's\n",
                  s.replicas,
                  m.replicas == 1 ? "the plan's one and a second made as the "
                                    "compiler would"
                  : twoOfMany     ? "the plan's first two"
                                  : "the compiled ones",
                  replicasPriced, replicasPriced);
    if (clusterPriced.overMemory >= 0)
      std::printf("warning: rank %d's peak (%lld bytes) exceeds the %s's "
                  "%lld bytes: compile with --memory-cap\n",
                  clusterPriced.overMemory,
                  (long long)m.rankInfo[size_t(clusterPriced.overMemory)]
                      .peakBytes,
                  clusterRun.cluster.gpu.kind.c_str(),
                  (long long)clusterRun.cluster.gpu.memoryBytes);
  }
  if (hostIterations > 0)
    std::printf("host model: %d ranks share %d cores (compute slowed by n / "
                "%d while n > %d ranks compute; %d replays to settle)\n",
                m.ranks, cores, cores, cores, hostIterations);
  std::printf("step time %.6g%s, bubble %.4f", r.stepTime, unit,
              r.bubbleFraction);
  if (seconds)
    std::printf(", %.0f tokens/s", tokens / r.stepTime);
  std::printf("\n");
  if (seconds && stepFlops > 0 && r.stepTime > 0) {
    std::printf("model FLOPs %.4g per step (pipec stats' count), %.4g "
                "GFLOP/s",
                stepFlops, stepFlops / r.stepTime * 1e-9);
    if (peakGflops > 0)
      std::printf(", MFU %.1f%% of %.0f x %g GFLOP/s",
                  100 * stepFlops / r.stepTime / (peakGflops * 1e9 * gpusPriced),
                  gpusPriced, peakGflops);
    std::printf("\n");
  }
  if (varied.ran && varied.failures > 0) {
    const double exited = varied.exitedBy(watchdogSeconds);
    std::printf("failure: %lld rank(s) fail, the first %.6g s into the step: "
                "%lld of %lld ranks stop (the first at %.6g s, the last at "
                "%.6g s: failed, or waiting for what will never come)",
                (long long)varied.failures, varied.firstFailure,
                (long long)varied.stopped,
                (long long)(int64_t(s.placement.ranks) * varied.replicas),
                varied.firstStop, varied.lastStop);
    if (varied.lastFinish > 0)
      std::printf("; the others finish the step by %.6g s and stop at the "
                  "next one's first exchange with them",
                  varied.lastFinish);
    std::printf("; with a %g s watchdog (pipec-run --watchdog-ms) every "
                "rank has exited about %.6g s into the step\n",
                watchdogSeconds, exited);
  }
  // A step in which ranks failed never completes: no step time or
  // throughput is claimed for it (the failure line above says when the
  // ranks stop instead).
  if (varied.ran && varied.failures > 0)
    std::printf("varied: %lld replicas replayed with jitter %g and %lld "
                "straggler(s) %g times slower (seed %llu): the step does not "
                "complete (ranks failed); %d pass(es), %lld instructions, "
                "%.3g s of replay\n",
                (long long)varied.replicas, varied.jitter,
                (long long)varied.stragglers, varied.factor,
                (unsigned long long)seed, varied.rounds,
                (long long)varied.instructions, varied.wallSeconds);
  else if (varied.ran)
    std::printf("varied: %lld replicas replayed with jitter %g and %lld "
                "straggler(s) %g times slower (seed %llu): step %.6g s "
                "(%+.2f%% over the step above), fastest replica %.6g s, "
                "%.0f tokens/s; %d pass(es), %lld instructions, %.3g s "
                "of replay\n",
                (long long)varied.replicas, varied.jitter,
                (long long)varied.stragglers, varied.factor,
                (unsigned long long)seed, varied.stepTime,
                100 * (varied.stepTime - r.stepTime) / r.stepTime,
                varied.fastestReplica, tokens / varied.stepTime,
                varied.rounds, (long long)varied.instructions,
                varied.wallSeconds);
  if (goodput && r.stepTime > 0)
    std::printf("goodput: %lld GPUs at %g failures per GPU-hour fail every "
                "%.4g h; a checkpoint every %lld steps (%.4g s of training; "
                "Young's sqrt(2 x %g s x MTBF): %.4g s) keeps %.2f%% of wall "
                "time training: %.0f tokens/s over a long run\n",
                (long long)failures.gpus, failures.failuresPerGpuHour,
                kept.mtbfSeconds / 3600, (long long)kept.intervalSteps,
                kept.intervalSeconds, failures.checkpointSeconds,
                kept.youngSeconds, 100 * kept.usefulFraction,
                kept.usefulFraction * tokens / r.stepTime);
  for (size_t q = 0; q < r.busy.size(); ++q)
    std::printf("  rank %zu: busy %.6g%s, idle %.3f, peak memory %lld bytes "
                "(the memory plan's)\n",
                q, r.busy[q], unit,
                r.stepTime > 0 ? 1 - r.busy[q] / r.stepTime : 0.0,
                (long long)m.rankInfo[q % m.rankInfo.size()].peakBytes);
  // The path as the runtime's trace names, rank by rank.
  std::printf("critical path: %zu instructions, %d rank change(s); %.6g%s "
              "in its instructions (compute, collectives' own time), "
              "%.6g%s in messages:",
              path.size(), rankChanges, pathCompute, unit,
              r.stepTime - pathCompute, unit);
  for (size_t i = 0; i < path.size(); ++i) {
    const sched::Span &sp = r.spans[size_t(path[i])];
    if (i == 0 || r.spans[size_t(path[i - 1])].rank != sp.rank)
      std::printf("\n    rank %d:", sp.rank);
    std::printf(" %s", spanName(sp).c_str());
  }
  std::printf("\n");
  if (hasMeasured)
    std::printf("measured: step time %.6g s (mean of %lld traced steps); "
                "prediction %+.1f%%\n",
                measured.stepTime, (long long)measured.steps,
                100 * (r.stepTime - measured.stepTime) / measured.stepTime);
  if (diff) {
    std::printf("per step, seconds: rank, kind, predicted, measured, "
                "difference\n");
    for (int32_t q = 0; q < m.ranks; ++q)
      for (const char *k : {"F", "B", "W", "OPT", "collective"}) {
        const double p = predicted[size_t(q)][k],
                     x = measured.perKind[size_t(q)][k];
        if (p == 0 && x == 0)
          continue;
        std::printf("  rank %-3d %-10s %10.6f %10.6f %+7.1f%%\n", q, k, p, x,
                    x > 0 ? 100 * (p - x) / x : 0.0);
      }
  }
  return 0;
}
