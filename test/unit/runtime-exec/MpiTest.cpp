//===- MpiTest.cpp - the mpi transport against the local one, under mpirun ===//
//
// Run by ctest as `mpirun -np N pipec-runtime-mpi-unittests` (N = 2 and 4): every
// process builds the same synthetic plan for N ranks, runs it once with all
// ranks as threads (local transport) and once as its own rank over the mpi
// transport, and compares the bits: losses and gradient norms of every step
// (each process receives them all) and the final parameters of its rank,
// with the shadow-memory checks on. The all-reduce is checked on values
// whose sum depends on the order (rank order, like the local transport).
//
//===----------------------------------------------------------------------===//

#include "SyntheticModel.h"
#include "TestUtil.h"

#include "kernels/cpu/Matmul.h"
#include "pipert/ExactSum.h"
#include "pipert/Executor.h"
#include "pipert/MpiTransport.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

using namespace pipec::testing;
namespace sch = pipec::schedule;

namespace {

/// Losses, norms and parameter bits of one run.
struct Bits {
  std::vector<double> losses, norms;
  std::map<std::string, std::vector<uint32_t>> params; ///< held ranks only
  std::vector<int64_t> highWater;
};

pipert::RunOptions options() {
  pipert::RunOptions o;
  o.steps = 3;
  o.shadow = true;
  o.timeout = std::chrono::milliseconds(20000);
  o.cores = 1;
  o.setBlasThreads = pipert::cpu::setBlasThreadCount;
  o.setRankThreads = pipert::cpu::setOmpThreadCount;
  return o;
}

/// Loads DIR (all ranks, or `onlyRank`) and runs three steps.
pipert::Status run(const SyntheticPlan &plan, const std::string &dir,
                   int32_t onlyRank, pipert::Transport *transport, Bits &out) {
  std::unique_ptr<pipert::Executor> exec;
  if (pipert::Status s = pipert::Executor::load(dir, exec, onlyRank); !s.ok())
    return s;
  SyntheticKernels kernels(plan);
  pipert::RunOptions opt = options();
  opt.transport = transport;
  pipert::RunResult result;
  if (pipert::Status s = exec->run(kernels, opt, result); !s.ok())
    return s;
  for (const pipert::StepRecord &r : result.steps) {
    out.losses.push_back(r.loss);
    out.norms.push_back(r.gradNorm);
  }
  for (const pipert::ParamInfo &p : exec->manifest().params) {
    if (!exec->holds(p.rank))
      continue;
    std::vector<uint32_t> bits(size_t(p.bytes / 4));
    std::memcpy(bits.data(), exec->arena(p.rank) + p.offset, size_t(p.bytes));
    out.params[std::to_string(p.rank) + ":" + p.name] = bits;
  }
  out.highWater = result.highWater;
  return pipert::Status::success();
}

class MpiKinds : public ::testing::TestWithParam<sch::Kind> {};

std::string kindCase(const ::testing::TestParamInfo<sch::Kind> &info) {
  std::string k = sch::kindName(info.param);
  for (char &c : k)
    if (c == '-')
      c = '_';
  return k;
}

} // namespace

// Tests that one rank per process trains to the bits of ranks as threads.
TEST_P(MpiKinds, BitwiseEqualToLocalTransport) {
  const int32_t me = pipert::MpiSession::rank();
  SyntheticPlan plan;
  PlanOptions po;
  po.kind = GetParam();
  po.stages = pipert::MpiSession::size();
  ASSERT_EQ(buildPlan(po, plan), "");
  TempDir dir(std::string("mpi-") + sch::kindName(po.kind));
  ASSERT_TRUE(writePlanFiles(plan, dir.path).ok());
  Bits local, mpi;
  pipert::Status ls = run(plan, dir.path, -1, nullptr, local);
  ASSERT_TRUE(ls.ok()) << ls.message();
  std::unique_ptr<pipert::MpiTransport> transport;
  ASSERT_TRUE(pipert::MpiTransport::create(plan.streams[size_t(me)],
                                           plan.manifest.groups, transport)
                  .ok());
  pipert::Status ms = run(plan, dir.path, me, transport.get(), mpi);
  ASSERT_TRUE(ms.ok()) << ms.message();
  ASSERT_EQ(mpi.losses.size(), 3u);
  for (size_t s = 0; s < 3; ++s) {
    EXPECT_EQ(std::memcmp(&mpi.losses[s], &local.losses[s], 8), 0)
        << "step " << s << " loss " << mpi.losses[s] << " vs "
        << local.losses[s];
    EXPECT_EQ(std::memcmp(&mpi.norms[s], &local.norms[s], 8), 0)
        << "step " << s << " grad norm " << mpi.norms[s] << " vs "
        << local.norms[s];
  }
  EXPECT_NE(mpi.losses[0], mpi.losses[2]); // it trained
  ASSERT_FALSE(mpi.params.empty());
  for (const auto &[name, bits] : mpi.params)
    EXPECT_EQ(bits, local.params.at(name)) << name;
  EXPECT_EQ(mpi.highWater[size_t(me)],
            plan.manifest.rankInfo[size_t(me)].peakBytes);
}

INSTANTIATE_TEST_SUITE_P(Schedules, MpiKinds,
                         ::testing::Values(sch::Kind::GPipe,
                                           sch::Kind::OneFOneB,
                                           sch::Kind::Interleaved,
                                           sch::Kind::ZBH1, sch::Kind::ZBV,
                                           sch::Kind::DualPipeV),
                         kindCase);

/// A transport over a synthetic plan of n ranks, one per process, and the
/// f64 elements of its group-0 operand (what the collective tests reduce).
void groupZero(int32_t n, int32_t me,
               std::unique_ptr<pipert::MpiTransport> &transport,
               int64_t &count) {
  SyntheticPlan plan;
  PlanOptions po;
  po.stages = n;
  ASSERT_EQ(buildPlan(po, plan), "");
  ASSERT_TRUE(pipert::MpiTransport::create(plan.streams[size_t(me)],
                                           plan.manifest.groups, transport)
                  .ok());
  for (const pipert::Instr &in : plan.streams[size_t(me)].instrs)
    if (in.op == pipert::Opcode::AllReduce && in.chunk == 0)
      count = in.bytes / 8;
}

// Tests that a process whose own stream fails the transport's checks (here:
// the last rank's stream lost its communicators' table) makes every
// process's create fail before any communicator is made, the failing one
// saying why and the others naming it; none is left in a collective.
TEST(MpiTransport, AStreamFailingItsChecksFailsEveryProcessFirst) {
  const int32_t n = pipert::MpiSession::size();
  const int32_t me = pipert::MpiSession::rank();
  SyntheticPlan plan;
  PlanOptions po;
  po.stages = n;
  ASSERT_EQ(buildPlan(po, plan), "");
  pipert::Stream mine = plan.streams[size_t(me)];
  if (me == n - 1) {
    mine.comms.clear();
    mine.commRounds = 0;
  }
  std::unique_ptr<pipert::MpiTransport> transport;
  pipert::Status s = pipert::MpiTransport::create(
      mine, plan.manifest.groups, transport,
      pipert::Clock::now() + std::chrono::seconds(60));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(transport, nullptr);
  if (me == n - 1)
    EXPECT_NE(s.message().find("no communicator in the stream's table"),
              std::string::npos)
        << s.message();
  else {
    EXPECT_NE(s.message().find("rank " + std::to_string(n - 1) +
                               " cannot run its stream"),
              std::string::npos)
        << s.message();
    EXPECT_EQ(s.rank(), n - 1); // whose failure it is: that rank reports
  }
  // The processes still agree afterwards: a working transport is made.
  ASSERT_TRUE(pipert::MpiTransport::create(plan.streams[size_t(me)],
                                           plan.manifest.groups, transport)
                  .ok());
}

// Tests that the all-reduce sums in rank order: with three or more ranks,
// values of very different magnitudes give other bits in another order.
TEST(MpiTransport, AllReduceSumsInRankOrder) {
  const int32_t n = pipert::MpiSession::size();
  const int32_t me = pipert::MpiSession::rank();
  std::unique_ptr<pipert::MpiTransport> transport;
  int64_t count = 0;
  ASSERT_NO_FATAL_FAILURE(groupZero(n, me, transport, count));
  ASSERT_GT(count, 0);
  // Every process can compute every rank's contribution.
  auto value = [](int32_t rank, int64_t i) {
    std::mt19937_64 rng(uint64_t(rank) * 1000003u + uint64_t(i));
    std::uniform_real_distribution<double> u(-1, 1);
    return u(rng) * std::pow(10.0, double(rng() % 33) - 16);
  };
  std::vector<double> data(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    data[size_t(i)] = value(me, i);
  pipert::Status s = transport->allReduce(
      me, 0, 0, data.data(), count, pipert::DType::F64,
      pipert::Clock::now() + std::chrono::seconds(20));
  ASSERT_TRUE(s.ok()) << s.message();
  int64_t orderMatters = 0;
  for (int64_t i = 0; i < count; ++i) {
    double inOrder = value(0, i), reversed = value(n - 1, i);
    for (int32_t r = 1; r < n; ++r) {
      inOrder += value(r, i);
      reversed += value(n - 1 - r, i);
    }
    EXPECT_EQ(std::memcmp(&data[size_t(i)], &inOrder, 8), 0)
        << "element " << i << ": " << data[size_t(i)] << " vs " << inOrder;
    orderMatters += std::memcmp(&inOrder, &reversed, 8) != 0;
  }
  if (n >= 3) {
    EXPECT_GT(orderMatters, 0) << "no element whose sum depends on the order";
  }
}

// The executor's step metrics over MPI: every process's exact sum of its
// terms, carried and reduced as integer words, gives every process the
// correctly rounded sum of every rank's terms (the same bits as one
// ExactSum of them all, whatever order MPI combines the ranks in); the
// maxima are every rank's largest words.
TEST(MpiTransport, ReduceWorldGivesExactSumsAndMaxima) {
  const int32_t n = pipert::MpiSession::size();
  const int32_t me = pipert::MpiSession::rank();
  std::unique_ptr<pipert::MpiTransport> transport;
  int64_t count = 0;
  ASSERT_NO_FATAL_FAILURE(groupZero(n, me, transport, count));
  // Every process can compute every rank's terms: losses of very
  // different sizes, so that sums in different orders differ.
  auto terms = [](int32_t rank) {
    std::mt19937_64 rng(uint64_t(rank) * 7919u + 11u);
    std::uniform_real_distribution<double> u(-1, 1);
    std::vector<double> t(8);
    for (double &x : t)
      x = u(rng) * std::pow(2.0, double(rng() % 120) - 60);
    return t;
  };
  pipert::ExactSum mine, all;
  for (int32_t r = 0; r < n; ++r)
    for (double x : terms(r)) {
      all.add(x);
      if (r == me)
        mine.add(x);
    }
  mine.normalize();
  const auto deadline = pipert::Clock::now() + std::chrono::seconds(20);
  pipert::Status s = transport->reduceWorld(
      me, mine.words(), pipert::ExactSum::kWords,
      pipert::Transport::WorldOp::Sum, deadline);
  ASSERT_TRUE(s.ok()) << s.message();
  const double got = mine.value(), want = all.value();
  EXPECT_EQ(std::memcmp(&got, &want, 8), 0) << got << " vs " << want;
  EXPECT_NE(want, 0.0);
  // Maxima: rank r contributes r * 10 + i and -r.
  int64_t peaks[3] = {int64_t(me) * 10 + 1, int64_t(me) * 10 + 2, -int64_t(me)};
  s = transport->reduceWorld(me, peaks, 3, pipert::Transport::WorldOp::Max,
                             deadline);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(peaks[0], int64_t(n - 1) * 10 + 1);
  EXPECT_EQ(peaks[1], int64_t(n - 1) * 10 + 2);
  EXPECT_EQ(peaks[2], 0);
}

// ZeRO-1's collectives over MPI: each member's parts get the all-reduce's
// bits (members added in rank order), the rest is left alone; then the
// all-gather gives every member every member's parts.
TEST(MpiTransport, ReduceScatterAndAllGatherByParts) {
  const int32_t n = pipert::MpiSession::size();
  const int32_t me = pipert::MpiSession::rank();
  std::unique_ptr<pipert::MpiTransport> transport;
  int64_t count = 0;
  ASSERT_NO_FATAL_FAILURE(groupZero(n, me, transport, count));
  ASSERT_GE(count, 2 * n);
  // 2n parts of whole doubles, owners interleaved: n-1, n-2, ..., 0, n-1...
  std::vector<pipert::Part> parts;
  std::vector<int32_t> owner(static_cast<size_t>(count));
  for (int32_t k = 0; k < 2 * n; ++k) {
    const int64_t lo = count * k / (2 * n), hi = count * (k + 1) / (2 * n);
    parts.push_back({n - 1 - k % n, lo * 8, (hi - lo) * 8});
    for (int64_t i = lo; i < hi; ++i)
      owner[size_t(i)] = n - 1 - k % n;
  }
  auto value = [](int32_t rank, int64_t i) {
    std::mt19937_64 rng(uint64_t(rank) * 7777 + uint64_t(i));
    std::uniform_real_distribution<double> u(-1, 1);
    return u(rng) * std::pow(10.0, double(rng() % 33) - 16);
  };
  std::vector<double> data(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    data[size_t(i)] = value(me, i);
  const auto deadline = pipert::Clock::now() + std::chrono::seconds(20);
  pipert::Status s = transport->reduceScatter(
      me, 0, 0, data.data(), count, pipert::DType::F64, parts.data(),
      int32_t(parts.size()), deadline);
  ASSERT_TRUE(s.ok()) << s.message();
  auto sum = [&](int64_t i) {
    double v = value(0, i);
    for (int32_t r = 1; r < n; ++r)
      v += value(r, i);
    return v;
  };
  for (int64_t i = 0; i < count; ++i) {
    const double want = owner[size_t(i)] == me ? sum(i) : value(me, i);
    ASSERT_EQ(std::memcmp(&data[size_t(i)], &want, 8), 0) << "element " << i;
  }
  s = transport->allGatherParts(me, 0, 1, data.data(), count,
                                pipert::DType::F64, parts.data(),
                                int32_t(parts.size()), deadline);
  ASSERT_TRUE(s.ok()) << s.message();
  for (int64_t i = 0; i < count; ++i) {
    const double want = sum(i);
    ASSERT_EQ(std::memcmp(&data[size_t(i)], &want, 8), 0) << "element " << i;
  }
}

int main(int argc, char **argv) {
  if (pipert::Status s = pipert::MpiSession::init(&argc, &argv); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  int code = RUN_ALL_TESTS();
  // Any process's failure fails the test: the lowest failing rank is >= 0.
  int32_t failed = pipert::MpiSession::firstFailure(
      code == 0, pipert::Clock::now() + std::chrono::seconds(60));
  pipert::MpiSession::finalize();
  return failed == -1 ? 0 : 1;
}
