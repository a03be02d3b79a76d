//===- ExecTest.cpp - the executor on a real model, every schedule kind ---===//
//
// Every kind at 1, 2 and 4 ranks must train the synthetic model to the same
// bits as one rank: losses, gradient norms and final parameters over three
// steps, with the shadow-memory checks on. Broken streams and broken plans
// must fail with the rank and instruction, within the deadline.
//
//===----------------------------------------------------------------------===//

#include "SyntheticModel.h"
#include "TestUtil.h"

#include "compiler/schedule/Validate.h"
#include "kernels/cpu/Matmul.h"
#include "pipert/Executor.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace pipec::testing;
namespace sch = pipec::schedule;

namespace {

/// What a run leaves behind to compare.
struct Outcome {
  std::vector<double> losses, norms;
  std::map<std::string, std::vector<uint32_t>> params; ///< bit patterns
  pipert::RunResult result;
};

/// Writes the plan's files, loads them back through the readers and runs.
pipert::Status runPlan(const SyntheticPlan &plan, const std::string &dir,
                       pipert::RunOptions opt, Outcome &out,
                       bool strayWrite = false, int32_t failChunk = -1,
                       int32_t failMb = -1, int64_t firstSteps = 0) {
  if (pipert::Status st = writePlanFiles(plan, dir); !st.ok())
    return st;
  std::unique_ptr<pipert::Executor> exec;
  if (pipert::Status st = pipert::Executor::load(dir, exec); !st.ok())
    return st;
  SyntheticKernels kernels(plan);
  kernels.strayWrite = strayWrite;
  kernels.failChunk = failChunk;
  kernels.failMb = failMb;
  if (opt.outDir.empty())
    opt.outDir = dir;
  if (firstSteps > 0) {
    // Two runs back to back: the second continues the step count.
    pipert::RunOptions first = opt;
    first.steps = firstSteps;
    opt.steps -= firstSteps;
    pipert::Status st = exec->run(kernels, first, out.result);
    if (!st.ok())
      return st;
    for (const pipert::StepRecord &r : out.result.steps) {
      out.losses.push_back(r.loss);
      out.norms.push_back(r.gradNorm);
    }
  }
  pipert::Status st = exec->run(kernels, opt, out.result);
  if (!st.ok())
    return st;
  for (const pipert::StepRecord &r : out.result.steps) {
    out.losses.push_back(r.loss);
    out.norms.push_back(r.gradNorm);
  }
  for (const pipert::ParamInfo &p : exec->manifest().params) {
    std::vector<uint32_t> bits(size_t(p.bytes / 4));
    std::memcpy(bits.data(), exec->arena(p.rank) + p.offset, size_t(p.bytes));
    out.params[p.name] = bits;
  }
  return st;
}

pipert::RunOptions options(bool shadow) {
  pipert::RunOptions o;
  o.steps = 3;
  o.shadow = shadow;
  o.timeout = std::chrono::milliseconds(5000);
  o.cores = 2;
  o.blasThreads = 1;
  o.setBlasThreads = pipert::cpu::setBlasThreadCount;
  o.setRankThreads = pipert::cpu::setOmpThreadCount;
  return o;
}

/// The one-rank run every layout is compared with (computed once).
const Outcome &reference() {
  static Outcome ref = [] {
    SyntheticPlan plan;
    PlanOptions po;
    po.kind = sch::Kind::GPipe;
    po.stages = 1;
    EXPECT_EQ(buildPlan(po, plan), "");
    TempDir dir("ref");
    Outcome out;
    pipert::Status st = runPlan(plan, dir.path, options(false), out);
    EXPECT_TRUE(st.ok()) << st.message();
    return out;
  }();
  return ref;
}

/// A stream without the instructions in `drop` (expected writers that
/// pointed at them become the host; the test runs without shadow checks).
pipert::Stream without(const pipert::Stream &s, const std::set<size_t> &drop) {
  std::vector<int32_t> newIndex(s.instrs.size(), -1);
  int32_t next = 0;
  for (size_t i = 0; i < s.instrs.size(); ++i)
    if (!drop.count(i))
      newIndex[i] = next++;
  pipert::Stream out = s;
  out.instrs.clear();
  out.accesses.clear();
  for (size_t i = 0; i < s.instrs.size(); ++i) {
    if (drop.count(i))
      continue;
    const pipert::Instr &in = s.instrs[i];
    std::vector<pipert::Access> acc(s.accesses.begin() + in.firstAccess,
                                    s.accesses.begin() + in.firstAccess +
                                        in.accessCount);
    for (pipert::Access &a : acc)
      if (!a.write && a.writer >= 0)
        a.writer = newIndex[size_t(a.writer)] >= 0 ? newIndex[size_t(a.writer)]
                                                   : pipert::kHostWriter;
    out.append(in, acc);
  }
  return out;
}

/// Index of the k-th (0-based; -1: last) instruction of rank `r` with `op`.
size_t findOp(const pipert::Stream &s, pipert::Opcode op, int k) {
  std::vector<size_t> hits;
  for (size_t i = 0; i < s.instrs.size(); ++i)
    if (s.instrs[i].op == op)
      hits.push_back(i);
  return k < 0 ? hits.back() : hits[size_t(k)];
}

/// The wait of the post at `post`.
size_t findWait(const pipert::Stream &s, size_t post) {
  for (size_t i = post + 1; i < s.instrs.size(); ++i)
    if (s.instrs[i].op == pipert::Opcode::Wait &&
        s.instrs[i].req == s.instrs[post].req)
      return i;
  return s.instrs.size();
}

struct Case {
  sch::Kind kind;
  int32_t stages;
};

class EveryKind : public ::testing::TestWithParam<Case> {};

} // namespace

// Tests that every kind at 1, 2 and 4 ranks trains to the bits of one rank,
// with every shadow-memory check passing and the plan's peak reached.
TEST_P(EveryKind, BitwiseEqualToOneRankUnderShadowMemory) {
  const Outcome &ref = reference();
  ASSERT_EQ(ref.losses.size(), 3u);
  SyntheticPlan plan;
  PlanOptions po;
  po.kind = GetParam().kind;
  po.stages = GetParam().stages;
  std::string err = buildPlan(po, plan);
  ASSERT_EQ(err, "");
  TempDir dir(std::string("kind-") + sch::kindName(po.kind) + "-" +
              std::to_string(po.stages));
  Outcome out;
  pipert::Status st = runPlan(plan, dir.path, options(true), out);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(out.losses.size(), 3u);
  for (size_t s = 0; s < 3; ++s) {
    EXPECT_EQ(std::memcmp(&out.losses[s], &ref.losses[s], 8), 0)
        << "step " << s << " loss " << out.losses[s] << " vs " << ref.losses[s];
    EXPECT_EQ(std::memcmp(&out.norms[s], &ref.norms[s], 8), 0)
        << "step " << s << " grad norm " << out.norms[s] << " vs "
        << ref.norms[s];
  }
  // Training moved: the loss changed and the parameters are not the start.
  EXPECT_NE(out.losses[0], out.losses[2]);
  ASSERT_EQ(out.params.size(), ref.params.size());
  for (const auto &[name, bits] : ref.params)
    EXPECT_EQ(out.params.at(name), bits) << name;
  for (int32_t r = 0; r < po.stages; ++r)
    EXPECT_EQ(out.result.highWater[size_t(r)],
              plan.manifest.rankInfo[size_t(r)].peakBytes);
}

static std::string caseName(const ::testing::TestParamInfo<Case> &info) {
  std::string k = sch::kindName(info.param.kind);
  for (char &c : k)
    if (c == '-')
      c = '_';
  return k + "_S" + std::to_string(info.param.stages);
}

INSTANTIATE_TEST_SUITE_P(
    Schedules, EveryKind,
    ::testing::Values(Case{sch::Kind::GPipe, 1}, Case{sch::Kind::GPipe, 2},
                      Case{sch::Kind::GPipe, 4}, Case{sch::Kind::OneFOneB, 1},
                      Case{sch::Kind::OneFOneB, 2},
                      Case{sch::Kind::OneFOneB, 4},
                      Case{sch::Kind::Interleaved, 1},
                      Case{sch::Kind::Interleaved, 2},
                      Case{sch::Kind::Interleaved, 4},
                      Case{sch::Kind::ZBH1, 1}, Case{sch::Kind::ZBH1, 2},
                      Case{sch::Kind::ZBH1, 4}, Case{sch::Kind::ZBV, 1},
                      Case{sch::Kind::ZBV, 2}, Case{sch::Kind::ZBV, 4},
                      Case{sch::Kind::DualPipeV, 1},
                      Case{sch::Kind::DualPipeV, 2},
                      Case{sch::Kind::DualPipeV, 4}),
    caseName);

// Tests that metrics.jsonl has one line per step with every field and the
// exact loss, and that trace.json is a Chrome trace with a track per rank.
TEST(Executor, WritesMetricsAndTrace) {
  SyntheticPlan plan;
  PlanOptions po;
  po.stages = 2;
  ASSERT_EQ(buildPlan(po, plan), "");
  TempDir dir("metrics");
  Outcome out;
  pipert::RunOptions o = options(false);
  std::FILE *progress = std::tmpfile();
  ASSERT_NE(progress, nullptr);
  o.progress = progress;
  pipert::Status st = runPlan(plan, dir.path, o, out);
  ASSERT_TRUE(st.ok()) << st.message();
  std::rewind(progress);
  char buf[4096] = {0};
  size_t got = std::fread(buf, 1, sizeof(buf) - 1, progress);
  std::fclose(progress);
  std::string text(buf, got);
  EXPECT_NE(text.find("step 1/3  loss "), std::string::npos) << text;
  EXPECT_NE(text.find("step 3/3  loss "), std::string::npos) << text;
  EXPECT_NE(text.find("tokens/s  ETA 00:00:00"), std::string::npos) << text;
  std::ifstream in(dir.path + "/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    for (const char *k : {"step", "loss", "lr", "grad_norm", "tokens_per_s",
                          "step_time_s"})
      EXPECT_TRUE(j.contains(k)) << k << " missing in " << line;
    EXPECT_EQ(j["step"].get<int>(), lines);
    EXPECT_EQ(j["loss"].get<double>(), out.losses[size_t(lines)]);
    EXPECT_GT(j["tokens_per_s"].get<double>(), 0);
    ++lines;
  }
  EXPECT_EQ(lines, 3);
  std::ifstream tin(dir.path + "/trace.json");
  std::stringstream ss;
  ss << tin.rdbuf();
  nlohmann::json trace = nlohmann::json::parse(ss.str(), nullptr, false);
  ASSERT_FALSE(trace.is_discarded());
  std::set<int> tids;
  size_t slices = 0;
  for (const auto &e : trace["traceEvents"])
    if (e["ph"] == "X") {
      tids.insert(e["tid"].get<int>());
      ++slices;
    }
  EXPECT_EQ(tids, (std::set<int>{0, 1}));
  EXPECT_EQ(slices, 3 * (plan.streams[0].instrs.size() +
                         plan.streams[1].instrs.size()));
}

// Tests that a send dropped with its wait at the end of a channel turns the
// receiver's hang into an error naming the rank and instruction, within
// the deadline.
TEST(Executor, DroppedLastSendTimesOut) {
  SyntheticPlan plan;
  PlanOptions po;
  po.stages = 2;
  ASSERT_EQ(buildPlan(po, plan), "");
  pipert::Stream &s0 = plan.streams[0];
  size_t post = findOp(s0, pipert::Opcode::SendAct, -1);
  s0 = without(s0, {post, findWait(s0, post)});
  TempDir dir("dropped-last");
  Outcome out;
  pipert::RunOptions o = options(false);
  o.timeout = std::chrono::milliseconds(300);
  auto t0 = std::chrono::steady_clock::now();
  pipert::Status st = runPlan(plan, dir.path, o, out);
  double seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - t0)
                       .count();
  ASSERT_FALSE(st.ok());
  std::printf("%s\n(after %.2f s)\n", st.message().c_str(), seconds);
  EXPECT_LT(seconds, 5.0);
  EXPECT_GE(st.rank(), 0);
  EXPECT_GE(st.instr(), 0);
  EXPECT_NE(st.message().find("timed out"), std::string::npos) << st.message();
  // The receiver's stuck wait is named, wherever the first timeout fell.
  EXPECT_NE(st.message().find("rank 1 "), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("wait(recv_act from 0, chunk 0, mb 7)"),
            std::string::npos)
      << st.message();
}

// Tests that a send dropped early makes the next message of the channel
// meet the wrong recv (posting-order matching): a mismatch naming both
// ranks and instructions, at once rather than at the deadline.
TEST(Executor, DroppedFirstSendIsAMismatch) {
  SyntheticPlan plan;
  PlanOptions po;
  po.stages = 2;
  ASSERT_EQ(buildPlan(po, plan), "");
  pipert::Stream &s0 = plan.streams[0];
  size_t post = findOp(s0, pipert::Opcode::SendAct, 0);
  s0 = without(s0, {post, findWait(s0, post)});
  TempDir dir("dropped-first");
  Outcome out;
  pipert::RunOptions o = options(false);
  o.timeout = std::chrono::milliseconds(20000);
  auto t0 = std::chrono::steady_clock::now();
  pipert::Status st = runPlan(plan, dir.path, o, out);
  double seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - t0)
                       .count();
  ASSERT_FALSE(st.ok());
  std::printf("%s\n(after %.2f s)\n", st.message().c_str(), seconds);
  EXPECT_LT(seconds, 10.0);
  EXPECT_NE(st.message().find("mismatched message: rank 0 #"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("sent chunk 0 mb 1"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("received as chunk 0 mb 0"), std::string::npos)
      << st.message();
}

// Tests that a wait whose post was dropped is refused before anything runs.
TEST(Executor, WaitWithoutPostIsRefusedAtLoad) {
  SyntheticPlan plan;
  PlanOptions po;
  po.stages = 2;
  ASSERT_EQ(buildPlan(po, plan), "");
  pipert::Stream &s1 = plan.streams[1];
  size_t post = findOp(s1, pipert::Opcode::RecvAct, 2);
  int32_t req = s1.instrs[post].req;
  s1 = without(s1, {post});
  TempDir dir("no-post");
  Outcome out;
  pipert::Status st = runPlan(plan, dir.path, options(false), out);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.rank(), 1);
  EXPECT_NE(st.message().find("request " + std::to_string(req) +
                              " was not posted before"),
            std::string::npos)
      << st.message();
}

// Tests that a process of one rank reads its own stream and no other: with
// the other ranks' files gone it loads, holds its arena and its stream
// (the communicators with it), while a load of every rank names the
// missing file.
TEST(Executor, OneRankLoadsItsOwnStreamOnly) {
  SyntheticPlan plan;
  PlanOptions po;
  po.stages = 3;
  po.shape.layers = 6;
  ASSERT_EQ(buildPlan(po, plan), "");
  TempDir dir("own-stream");
  ASSERT_TRUE(writePlanFiles(plan, dir.path).ok());
  for (int32_t r : {0, 2})
    ASSERT_EQ(std::remove((dir.path + "/" +
                           plan.manifest.rankInfo[size_t(r)].stream)
                              .c_str()),
              0);
  std::unique_ptr<pipert::Executor> exec;
  pipert::Status st = pipert::Executor::load(dir.path, exec, 1);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_TRUE(exec->holds(1));
  EXPECT_FALSE(exec->holds(0));
  EXPECT_EQ(exec->stream(1).instrs.size(), plan.streams[1].instrs.size());
  EXPECT_EQ(exec->stream(1).comms.size(), plan.streams[1].comms.size());
  EXPECT_GE(exec->stream(1).comms.size(), 4u); // two neighbours, two ways
  EXPECT_TRUE(exec->stream(0).instrs.empty());
  EXPECT_TRUE(exec->stream(2).instrs.empty());
  st = pipert::Executor::load(dir.path, exec);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("rank0.pstream"), std::string::npos)
      << st.message();
}

// Tests that a memory plan overlapping two live buffers is caught by the
// shadow memory at the read that sees the wrong writer, and that without
// the checks the same plan silently trains to other numbers.
TEST(Shadow, OverlappingLiveBuffersAreCaught) {
  SyntheticPlan plan;
  PlanOptions po;
  po.stages = 2;
  po.aliasBug = true;
  ASSERT_EQ(buildPlan(po, plan), "");
  TempDir dir("alias");
  Outcome out;
  pipert::Status st = runPlan(plan, dir.path, options(true), out);
  ASSERT_FALSE(st.ok());
  std::printf("%s\n", st.message().c_str());
  EXPECT_EQ(st.rank(), 0);
  EXPECT_NE(st.message().find("shadow memory: rank 0 #"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("bwd_b(chunk 0, mb 0): reads"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("was last written by #"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("fwd(chunk 0, mb 1)"), std::string::npos)
      << st.message();

  Outcome silent;
  TempDir dir2("alias-silent");
  st = runPlan(plan, dir2.path, options(false), silent);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_NE(silent.params.at("layer0.weight"),
            reference().params.at("layer0.weight"));
}

// Tests that a kernel writing outside the regions the plan gives it is
// caught by comparing the arena with its snapshot.
TEST(Shadow, StrayWriteIsCaught) {
  SyntheticPlan plan;
  PlanOptions po;
  po.stages = 2;
  ASSERT_EQ(buildPlan(po, plan), "");
  TempDir dir("stray");
  Outcome out;
  pipert::Status st = runPlan(plan, dir.path, options(true), out, true);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(strayWriteReport(plan)), std::string::npos)
      << st.message();
}

// Tests that a plan whose peak exceeds what the instructions touch fails
// the high-water check.
TEST(Shadow, HighWaterMarkMustEqualThePlansPeak) {
  SyntheticPlan plan;
  PlanOptions po;
  po.stages = 2;
  po.slackBug = true;
  ASSERT_EQ(buildPlan(po, plan), "");
  TempDir dir("slack");
  Outcome out;
  pipert::Status st = runPlan(plan, dir.path, options(true), out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("but the plan's peak is " +
                              std::to_string(plan.streams[0].arenaBytes)),
            std::string::npos)
      << st.message();
}

// Measures the idle share of each rank against the schedule's modelled
// bubble (1f1b, 2 ranks, 8 micro-batches, wider layers so compute
// dominates). Reported, and checked only for sanity: timing on a shared
// machine is noisy.
TEST(Executor, IdleShareAgainstModelledBubble) {
  SyntheticPlan plan;
  PlanOptions po;
  po.stages = 2;
  po.shape.width = 256;
  po.shape.rows = 64;
  ASSERT_EQ(buildPlan(po, plan), "");
  TempDir dir("idle");
  Outcome out;
  pipert::RunOptions o = options(false);
  o.steps = 4;
  pipert::Status st = runPlan(plan, dir.path, o, out);
  ASSERT_TRUE(st.ok()) << st.message();
  std::printf("1f1b S=2 M=8: modelled bubble %.4f; wall %.4f s\n",
              plan.modeledBubble, out.result.wallS);
  // Time per rank and instruction kind, from the trace (first 3 steps).
  std::ifstream tin(dir.path + "/trace.json");
  std::stringstream ss;
  ss << tin.rdbuf();
  nlohmann::json trace = nlohmann::json::parse(ss.str(), nullptr, false);
  ASSERT_FALSE(trace.is_discarded());
  std::map<std::pair<int, char>, double> ms;
  std::vector<double> postUs;
  for (const auto &e : trace["traceEvents"])
    if (e["ph"] == "X") {
      char kind = e["name"].get<std::string>()[0];
      ms[{e["tid"].get<int>(), kind}] += e["dur"].get<double>() * 1e-3;
      if (kind == '<' || kind == '>')
        postUs.push_back(e["dur"].get<double>());
    }
  std::sort(postUs.begin(), postUs.end());
  ASSERT_FALSE(postUs.empty());
  std::printf("  post time over %zu posts: median %.1f us, max %.1f us\n",
              postUs.size(), postUs[postUs.size() / 2], postUs.back());
  for (size_t r = 0; r < out.result.idleShare.size(); ++r) {
    std::printf("  rank %zu: busy %.4f s, idle share %.4f; first 3 steps, "
                "ms: F %.2f B %.2f W %.2f OPT %.2f wait %.2f allreduce %.2f\n",
                r, out.result.busyS[r], out.result.idleShare[r],
                ms[{int(r), 'F'}], ms[{int(r), 'B'}], ms[{int(r), 'W'}],
                ms[{int(r), 'O'}], ms[{int(r), '~'}], ms[{int(r), 'A'}]);
    EXPECT_GT(out.result.idleShare[r], 0.0);
    EXPECT_LT(out.result.idleShare[r], 1.0);
  }
  // The machine again, with the measured mean F, B, W per chunk and the
  // measured optimizer step: what the model predicts for these costs.
  const int32_t M = po.microbatches;
  sch::Costs costs = sch::Costs::uniform(plan.chunks, 1, 1, 1);
  for (int32_t c = 0; c < plan.chunks; ++c) {
    int r = plan.manifest.chunkRank[size_t(c)];
    costs.f[size_t(c)] = ms[{r, 'F'}] / (3 * M);
    costs.b[size_t(c)] = ms[{r, 'B'}] / (3 * M);
    costs.w[size_t(c)] = ms[{r, 'W'}] / (3 * M);
  }
  costs.optStep = (ms[{0, 'O'}] + ms[{1, 'O'}]) / 6;
  sch::MachineResult timing;
  ASSERT_EQ(sch::verifySchedule(plan.schedule, costs, timing), "");
  double mean = 0;
  for (double x : out.result.idleShare)
    mean += x / double(out.result.idleShare.size());
  std::printf("  measured idle (mean over ranks) %.4f; modelled with the "
              "measured costs %.4f\n",
              mean, timing.bubbleFraction);
}

// Tests that the bitwise comparison can fail: a valid one-rank plan that
// accumulates the last two weight gradients in descending micro-batch order
// passes every shadow check yet ends with other parameter bits.
TEST(Executor, AccumulationOrderChangesTheBits) {
  SyntheticPlan plan;
  PlanOptions po;
  po.kind = sch::Kind::GPipe;
  po.reorderLastW = true;
  ASSERT_EQ(buildPlan(po, plan), "");
  TempDir dir("reorder");
  Outcome out;
  pipert::Status st = runPlan(plan, dir.path, options(true), out);
  ASSERT_TRUE(st.ok()) << st.message();
  const Outcome &ref = reference();
  EXPECT_EQ(out.losses[0], ref.losses[0]); // the first forward is the same
  int differing = 0;
  for (const auto &[name, bits] : ref.params)
    differing += out.params.at(name) != bits;
  EXPECT_GT(differing, 0);
}

// Tests that a failing kernel stops every rank and is reported with its
// rank, instruction and message.
TEST(Executor, KernelFailureNamesRankAndInstruction) {
  SyntheticPlan plan;
  PlanOptions po;
  po.kind = sch::Kind::ZBH1;
  po.stages = 4;
  ASSERT_EQ(buildPlan(po, plan), "");
  TempDir dir("kernel-failure");
  Outcome out;
  pipert::Status st =
      runPlan(plan, dir.path, options(false), out, false, 2, 5);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.rank(), 2);
  EXPECT_EQ(plan.streams[2].instrs[size_t(st.instr())].op,
            pipert::Opcode::BwdW);
  EXPECT_EQ(st.message().rfind("rank 2 #" + std::to_string(st.instr()) +
                                   " bwd_w(chunk 2, mb 5): injected failure",
                               0),
            0u)
      << st.message();
}

// Tests that a run continued by a second run (1 step, then 2) has the bits
// of one 3-step run: the step count, learning rate and AdamW state carry on.
TEST(Executor, SecondRunContinuesTheFirst) {
  SyntheticPlan plan;
  PlanOptions po;
  po.kind = sch::Kind::DualPipeV;
  po.stages = 2;
  ASSERT_EQ(buildPlan(po, plan), "");
  TempDir dir("resume");
  Outcome out;
  pipert::Status st =
      runPlan(plan, dir.path, options(false), out, false, -1, -1, 1);
  ASSERT_TRUE(st.ok()) << st.message();
  const Outcome &ref = reference();
  ASSERT_EQ(out.losses.size(), 3u);
  EXPECT_EQ(out.result.steps[0].step, 1);
  for (size_t s = 0; s < 3; ++s)
    EXPECT_EQ(std::memcmp(&out.losses[s], &ref.losses[s], 8), 0) << s;
  for (const auto &[name, bits] : ref.params)
    EXPECT_EQ(out.params.at(name), bits) << name;
}

namespace {
/// The synthetic kernels, throwing from rank 1's B in the second step (a
/// kernel library's exception, an allocation that fails).
class ThrowingKernels : public SyntheticKernels {
public:
  using SyntheticKernels::SyntheticKernels;
  pipert::Status bwdB(const pipert::RankContext &ctx, int32_t chunk,
                      int32_t mb) override {
    if (ctx.rank == 1 && ctx.step == 1)
      throw std::runtime_error("the kernel library gave up");
    return SyntheticKernels::bwdB(ctx, chunk, mb);
  }
};
} // namespace

// Tests that an exception thrown in a rank's thread fails the run naming
// the rank, and the other ranks stop (no std::terminate, no hang).
TEST(Executor, ARankThatThrowsStopsItsPeers) {
  SyntheticPlan plan;
  PlanOptions po;
  po.kind = sch::Kind::OneFOneB;
  po.stages = 4;
  ASSERT_EQ(buildPlan(po, plan), "");
  std::unique_ptr<pipert::Executor> exec;
  ASSERT_TRUE(
      pipert::Executor::create(plan.manifest, plan.streams, exec).ok());
  ThrowingKernels kernels(plan);
  pipert::RunOptions o;
  o.steps = 3;
  o.cores = 2;
  o.timeout = std::chrono::milliseconds(30000);
  pipert::RunResult result;
  auto t0 = std::chrono::steady_clock::now();
  pipert::Status st = exec->run(kernels, o, result);
  double seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - t0)
                       .count();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.rank(), 1);
  EXPECT_EQ(st.message().rfind("rank 1: unexpected error: the kernel library "
                               "gave up",
                               0),
            0u)
      << st.message();
  EXPECT_LT(seconds, 10.0) << "the peers waited for their deadline";
  EXPECT_EQ(result.steps.size(), 1u);
}
