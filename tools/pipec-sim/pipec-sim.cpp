//===- pipec-sim.cpp - replays a compiled plan's streams on the abstract machine ===//
//
// `pipec-sim OUT/ [--trace TRACE.json] [--json]`: reads the plan folder's
// manifest and every rank's stream exactly as pipec-run executes them
// (posted sends and receives, waits, collectives, the optimizer step) and
// runs them together on the abstract machine (compiler/schedule/Machine.h),
// which proves them deadlock-free and times them. Costs: per chunk and
// phase the mean of the warm steps' measured times in a pipec-run trace
// (--log-dir's trace.json: steps after the first, or the first when it is
// the only one), with the optimizer step's and each collective's measured
// own time (the least any member spent in it); without a trace, unit costs
// (F = B = W = 1, communication free). Prints the predicted step time,
// per-rank busy and idle, the bubble and tokens/s, and with a trace the
// measured step time beside it and the error.
//
//===----------------------------------------------------------------------===//

#include "compiler/schedule/Machine.h"
#include "pipert/Manifest.h"
#include "pipert/Stream.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace sched = pipec::schedule;
using json = nlohmann::json;

namespace {

const char kUsage[] =
    "usage: pipec-sim OUT/ [--trace TRACE.json] [--json]\n"
    "\n"
    "Replays the instruction streams of the plan folder OUT/ (what `pipec\n"
    "compile -o OUT/` wrote) on pipec's abstract machine: every rank's\n"
    "stream as pipec-run executes it, with its sends, receives, waits,\n"
    "collectives and optimizer step. Prints the predicted step time, each\n"
    "rank's busy and idle time, the bubble and tokens/s.\n"
    "\n"
    "  --trace FILE  costs measured by a run of the same plan (pipec-run\n"
    "                --log-dir DIR writes DIR/trace.json): per chunk, the mean\n"
    "                time of F, B and W over the traced steps after the first\n"
    "                (the first alone when only one was traced); the\n"
    "                optimizer step's mean; each collective's own time (the\n"
    "                least any member spent in it). The measured step time is\n"
    "                printed beside the prediction. Without it: unit costs\n"
    "                (F = B = W = 1, communication free).\n"
    "  --json        one JSON object instead of text: step_time_s,\n"
    "                bubble, tokens_per_s, ranks (busy_s, idle_share),\n"
    "                measured_step_time_s and error when traced\n"
    "  --help        this text\n";

int fail(const std::string &why) {
  std::fprintf(stderr, "pipec-sim: error: %s\n", why.c_str());
  return 1;
}

/// What the trace says a plan's instructions cost.
struct Measured {
  sched::Costs costs;
  double stepTime = 0; ///< mean wall time of the steps used
  int64_t steps = 0;   ///< how many
};

/// Reads `path` (pipec-run's trace.json) for `streams`: per chunk the
/// mean F, B and W over the warm steps, the optimizer step's mean, each
/// collective's least duration, and the measured step time. "" or why not.
std::string readTrace(const std::string &path,
                      const std::vector<pipert::Stream> &streams,
                      int32_t chunks, Measured &out) {
  std::ifstream in(path);
  if (!in)
    return "cannot open --trace " + path;
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("traceEvents") ||
      !j["traceEvents"].is_array())
    return path + ": not a pipec-run trace (no traceEvents array)";
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
  std::map<std::pair<int32_t, int32_t>, double> collective; // least
  std::map<int64_t, std::pair<double, double>> span;        // step -> [lo, hi]
  for (const Event &e : events) {
    if (e.step < first)
      continue;
    const double s = e.dur * 1e-6; // the trace's microseconds
    auto &sp = span.try_emplace(e.step, e.ts, e.ts + e.dur).first->second;
    sp.first = std::min(sp.first, e.ts);
    sp.second = std::max(sp.second, e.ts + e.dur);
    const pipert::Instr &in =
        streams[size_t(e.rank)].instrs[size_t(e.instr)];
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
      auto key = std::make_pair(in.chunk, in.mb);
      auto it = collective.find(key);
      if (it == collective.end() || s < it->second)
        collective[key] = s;
    }
  }
  std::vector<double> *phase[3] = {&out.costs.f, &out.costs.b, &out.costs.w};
  for (int k = 0; k < 3; ++k) {
    phase[k]->assign(size_t(chunks), 0);
    for (int32_t c = 0; c < chunks; ++c)
      if (n[k][size_t(c)] > 0)
        (*phase[k])[size_t(c)] = sum[k][size_t(c)] / n[k][size_t(c)];
  }
  out.costs.optStep = optN > 0 ? optSum / optN : 0;
  for (auto &[key, s] : collective) {
    auto [g, bucket] = key;
    if (size_t(g) >= out.costs.collective.size())
      out.costs.collective.resize(size_t(g) + 1);
    auto &v = out.costs.collective[size_t(g)];
    if (size_t(bucket) >= v.size())
      v.resize(size_t(bucket) + 1, 0.0);
    v[size_t(bucket)] = s;
  }
  // The mean, as the costs are means over the same steps: on one rank the
  // replay then gives back exactly the measured time.
  double walls = 0;
  for (auto &[step, sp] : span)
    walls += (sp.second - sp.first) * 1e-6;
  out.stepTime = walls / double(span.size());
  return "";
}

} // namespace

int main(int argc, char **argv) {
  std::string dir, trace;
  bool asJson = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--json") {
      asJson = true;
    } else if (a == "--trace") {
      if (i + 1 >= argc)
        return fail("--trace needs a file (pipec-run --log-dir DIR writes "
                    "DIR/trace.json)");
      trace = argv[++i];
    } else if (!a.empty() && a[0] == '-') {
      return fail("unknown option " + a + " (pipec-sim --help)");
    } else if (dir.empty()) {
      dir = a;
    } else {
      return fail("one plan folder only, got " + dir + " and " + a);
    }
  }
  if (dir.empty())
    return fail("give the plan folder (pipec-sim --help)");
  pipert::Manifest m;
  if (pipert::Status s = pipert::readManifestFile(dir + "/manifest.json", m);
      !s.ok())
    return fail(s.message());
  std::vector<pipert::Stream> streams(size_t(m.ranks));
  for (int32_t r = 0; r < m.ranks; ++r)
    if (pipert::Status s = pipert::readStreamFile(
            dir + "/" + m.rankInfo[size_t(r)].stream, streams[size_t(r)]);
        !s.ok())
      return fail(s.message());

  // The streams as the schedule library holds them: the runtime's opcodes
  // are the library's (PlanAbi.h), the placement replica 0's.
  sched::Schedule s;
  s.microbatches = m.microbatches;
  s.chunksPerRank = m.chunksPerRank;
  s.replicas = m.replicas;
  s.placement.ranks = m.pipelineRanks();
  s.placement.chunks = int32_t(m.chunkRank.size());
  s.placement.rankOf = m.chunkRank;
  s.groups = m.groups;
  for (const pipert::Stream &st : streams) {
    s.streams.emplace_back();
    for (const pipert::Instr &in : st.instrs)
      s.streams.back().push_back(
          {in.op, in.sub, in.peer, in.chunk, in.mb, in.req});
  }
  const int32_t C = s.placement.chunks;
  Measured measured;
  if (!trace.empty()) {
    if (std::string why = readTrace(trace, streams, C, measured); !why.empty())
      return fail(why);
  } else {
    measured.costs = sched::Costs::uniform(C, 1, 1, 1);
  }
  sched::MachineResult r = sched::runMachine(s, measured.costs);
  if (r.verdict != sched::Verdict::Completed)
    return fail(std::string("the streams do not complete: ") +
                sched::verdictName(r.verdict) + ": " + r.message);
  const double tokens =
      double(m.tokensPerMicrobatch) * m.microbatches * m.replicas;
  const bool seconds = !trace.empty();
  if (asJson) {
    json out = {{"plan", dir},
                {"costs", seconds ? "trace" : "unit"},
                {"step_time_s", r.stepTime},
                {"bubble", r.bubbleFraction},
                {"tokens_per_s", seconds && r.stepTime > 0
                                     ? tokens / r.stepTime
                                     : 0.0}};
    json ranks = json::array();
    for (size_t q = 0; q < r.busy.size(); ++q)
      ranks.push_back({{"rank", q},
                       {"busy_s", r.busy[q]},
                       {"idle_share",
                        r.stepTime > 0 ? 1 - r.busy[q] / r.stepTime : 0}});
    out["ranks"] = ranks;
    if (seconds) {
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
              dir.c_str(), m.ranks, m.pipelineRanks(), m.replicas,
              m.microbatches, m.scheduleKind.c_str(),
              seconds ? trace.c_str() : "none (F = B = W = 1)");
  std::printf("step time %.6g%s, bubble %.4f", r.stepTime, unit,
              r.bubbleFraction);
  if (seconds)
    std::printf(", %.0f tokens/s", tokens / r.stepTime);
  std::printf("\n");
  for (size_t q = 0; q < r.busy.size(); ++q)
    std::printf("  rank %zu: busy %.6g%s, idle %.3f\n", q, r.busy[q], unit,
                r.stepTime > 0 ? 1 - r.busy[q] / r.stepTime : 0.0);
  if (seconds)
    std::printf("measured: step time %.6g s (mean of %lld traced steps); "
                "prediction %+.1f%%\n",
                measured.stepTime, (long long)measured.steps,
                100 * (r.stepTime - measured.stepTime) / measured.stepTime);
  return 0;
}
