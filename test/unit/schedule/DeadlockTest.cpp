//===- DeadlockTest.cpp - machine verdicts confirmed on threads ---------===//
//
// Random mutations of valid streams (a dropped, swapped or duplicated
// communication instruction) are judged by the abstract machine; running
// the same streams on threads over the rendezvous transport, with a short
// timeout, must reach the same verdict. Whatever verifySchedule accepts
// must complete on threads: never accepted and then a hang.
//
//===----------------------------------------------------------------------===//

#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"
#include "test/unit/schedule/Rendezvous.h"
#include "compiler/schedule/Validate.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

using namespace pipec::schedule;

namespace {

constexpr std::chrono::milliseconds kTimeout{100};

static Schedule make(Kind kind, int32_t p, int32_t m) {
  ComputePlan plan;
  GenerateOptions opt{kind, p, m, 0, 0};
  EXPECT_EQ(generatePlan(opt, plan), "");
  return lowerPlan(plan);
}

/// Index of the wait that names request `req`, or npos.
static size_t waitOf(const std::vector<Instr> &st, int32_t req) {
  for (size_t i = 0; i < st.size(); ++i)
    if (st[i].op == Op::Wait && st[i].req == req)
      return i;
  return std::string::npos;
}

/// True if every wait comes after its post (the mutant is well formed, so
/// both the machine and the threads can run it).
static bool wellFormed(const std::vector<Instr> &st) {
  std::map<int32_t, int> seen;
  for (const Instr &in : st) {
    if (isPost(in.op) && seen[in.req]++)
      return false;
    if (in.op == Op::Wait && !seen.count(in.req))
      return false;
  }
  return true;
}

/// Applies one random mutation to one rank; returns false if it did not
/// produce a well-formed different schedule.
static bool mutate(Schedule &s, std::mt19937 &rng, std::string &what) {
  int32_t r = std::uniform_int_distribution<int32_t>(0, s.ranks() - 1)(rng);
  auto &st = s.streams[r];
  std::vector<size_t> comm;
  for (size_t i = 0; i < st.size(); ++i)
    if (isPost(st[i].op) || st[i].op == Op::Wait)
      comm.push_back(i);
  if (comm.size() < 2)
    return false;
  auto pick = [&] {
    return comm[std::uniform_int_distribution<size_t>(0, comm.size() - 1)(rng)];
  };
  int kind = std::uniform_int_distribution<int>(0, 3)(rng);
  size_t i = pick();
  if (kind == 0) { // drop a post and its wait
    if (!isPost(st[i].op))
      return false;
    size_t w = waitOf(st, st[i].req);
    what = "drop rank " + std::to_string(r) + " " + describe(st[i]);
    st.erase(st.begin() + w);
    st.erase(st.begin() + i);
  } else if (kind == 1) { // swap two communication instructions
    size_t j = pick();
    if (i == j)
      return false;
    what = "swap rank " + std::to_string(r) + " " + describe(st[i]) +
           " with " + describe(st[j]);
    std::swap(st[i], st[j]);
  } else if (kind == 3) { // delay a wait past later instructions
    if (st[i].op != Op::Wait || i + 1 >= st.size())
      return false;
    size_t to = std::uniform_int_distribution<size_t>(i + 1, st.size() - 1)(rng);
    what = "delay rank " + std::to_string(r) + " " + describe(st[i]) +
           " to #" + std::to_string(to);
    Instr w = st[i];
    st.erase(st.begin() + i);
    st.insert(st.begin() + to, w);
  } else { // duplicate a post, with its own wait after the original wait
    if (!isPost(st[i].op))
      return false;
    size_t w = waitOf(st, st[i].req);
    Instr post = st[i], wait = st[w];
    int32_t fresh = 0;
    for (const Instr &in : st)
      fresh = std::max(fresh, in.req + 1);
    post.req = wait.req = fresh;
    what = "duplicate rank " + std::to_string(r) + " " + describe(st[i]);
    st.insert(st.begin() + w + 1, wait);
    st.insert(st.begin() + i + 1, post);
  }
  return wellFormed(st);
}

TEST(Deadlock, ValidStreamsCompleteOnThreads) {
  for (Kind k : {Kind::OneFOneB, Kind::Interleaved, Kind::ZBV,
                 Kind::DualPipeV})
    EXPECT_EQ(runOnThreads(make(k, 2, 4), kTimeout), Verdict::Completed)
        << kindName(k);
}

TEST(Deadlock, MutantVerdictsAreConfirmedOnThreads) {
  std::mt19937 rng(20250611);
  const std::vector<std::pair<Kind, int32_t>> bases = {
      {Kind::OneFOneB, 3}, {Kind::GPipe, 2}, {Kind::ZBH1, 3},
      {Kind::ZBV, 2},      {Kind::Interleaved, 2}, {Kind::DualPipeV, 2}};
  std::map<Verdict, int> counts;
  int mutants = 0, accepted = 0;
  while (mutants < 50) {
    auto [kind, p] = bases[mutants % bases.size()];
    Schedule s = make(kind, p, 2 * p);
    std::string what;
    if (!mutate(s, rng, what))
      continue;
    ++mutants;
    MachineResult machine = runMachine(s, Costs::uniform(s.placement.chunks, 1, 1, 1));
    Verdict threads = runOnThreads(s, kTimeout);
    EXPECT_EQ(verdictName(machine.verdict), std::string(verdictName(threads)))
        << kindName(kind) << ": " << what << "\n" << machine.message;
    counts[machine.verdict]++;
    // The full check never accepts a schedule that hangs.
    MachineResult res;
    if (verifySchedule(s, Costs::uniform(s.placement.chunks, 1, 1, 1), res)
            .empty()) {
      ++accepted;
      EXPECT_EQ(threads, Verdict::Completed) << what;
    } else if (machine.verdict == Verdict::Deadlock) {
      EXPECT_NE(machine.message.find("rank "), std::string::npos);
    }
  }
  // The mutations must exercise every verdict, or the test proves little.
  EXPECT_GT(counts[Verdict::Deadlock], 3);
  EXPECT_GT(counts[Verdict::Mismatch], 3);
  EXPECT_GT(counts[Verdict::Completed], 0);
  std::printf("50 mutants: %d deadlock, %d mismatch, %d complete (%d of "
              "them accepted by the full check)\n",
              counts[Verdict::Deadlock], counts[Verdict::Mismatch],
              counts[Verdict::Completed], accepted);
}

TEST(Deadlock, RendezvousCopiesBytesAtTheMatch) {
  RendezvousTransport t(2);
  float src[4] = {1.5f, -2.25f, 3.125f, 7.0f}, dst[4] = {0, 0, 0, 0};
  auto deadline = RendezvousTransport::Clock::now() + kTimeout;
  int64_t s = t.postSend(0, 1, 0, Payload{0, 0, src, sizeof src});
  // Rendezvous: the send cannot complete before its recv is posted.
  EXPECT_FALSE(t.wait(s, RendezvousTransport::Clock::now() +
                             std::chrono::milliseconds(20)));
  int64_t r = t.postRecv(1, 0, 0, Payload{0, 0, dst, sizeof dst});
  EXPECT_TRUE(t.wait(s, deadline));
  EXPECT_TRUE(t.wait(r, deadline));
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(dst[i], src[i]);
  EXPECT_EQ(t.mismatch(), "");
}

} // namespace
