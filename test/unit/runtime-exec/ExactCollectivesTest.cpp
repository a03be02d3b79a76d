//===- ExactCollectivesTest.cpp - exchanges and ordered sums, bit for bit -===//
//
// The nccl transport's collectives are planned as point-to-point exchanges
// and sums in member order (pipert/ExactCollectives.h). Carried out on the
// host, every member's plan must leave exactly the bits the local
// transport leaves (sums in rank order), for any member count, operand
// length (shards of unequal length, empty ones), type and ZeRO parts; and
// what each member sends is what a ring all-reduce moves, 2 (D - 1) / D of
// the operand.
//
//===----------------------------------------------------------------------===//

#include "pipert/ExactCollectives.h"
#include "pipert/LocalTransport.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <thread>

namespace {

/// Values over 13 decades, so that the order of a sum changes its bits.
template <typename T> std::vector<T> randomOperand(int32_t member, int64_t n) {
  std::mt19937 rng(uint32_t(member * 104729 + n));
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<T> out(static_cast<size_t>(n));
  for (T &v : out)
    v = T(u(rng) * std::pow(10.0, double(int(rng() % 13) - 6)));
  return out;
}

/// What the local transport leaves: `op` on every member at once.
template <typename T>
void localResult(pipert::Opcode op, std::vector<std::vector<T>> &data,
                 pipert::DType dtype, const std::vector<pipert::Part> &parts) {
  const int32_t d = int32_t(data.size());
  std::vector<pipert::Stream> streams(static_cast<size_t>(d));
  std::vector<int32_t> members;
  for (int32_t r = 0; r < d; ++r) {
    streams[size_t(r)].rank = r;
    streams[size_t(r)].ranks = d;
    members.push_back(r);
  }
  std::unique_ptr<pipert::LocalTransport> t;
  ASSERT_TRUE(pipert::LocalTransport::create(streams, {members}, t).ok());
  std::vector<std::thread> threads;
  for (int32_t r = 0; r < d; ++r)
    threads.emplace_back([&, r] {
      auto deadline = pipert::Clock::now() + std::chrono::seconds(10);
      T *p = data[size_t(r)].data();
      int64_t n = int64_t(data[size_t(r)].size());
      pipert::Status s =
          op == pipert::Opcode::AllReduce
              ? t->allReduce(r, 0, 0, p, n, dtype, deadline)
          : op == pipert::Opcode::ReduceScatter
              ? t->reduceScatter(r, 0, 0, p, n, dtype, parts.data(),
                                 int32_t(parts.size()), deadline)
              : t->allGatherParts(r, 0, 0, p, n, dtype, parts.data(),
                                  int32_t(parts.size()), deadline);
      EXPECT_TRUE(s.ok()) << s.message();
    });
  for (std::thread &th : threads)
    th.join();
}

/// The same through every member's exact plan on the host.
template <typename T>
void exactResult(pipert::Opcode op, std::vector<std::vector<T>> &data,
                 pipert::DType dtype, const std::vector<pipert::Part> &parts,
                 std::vector<pipert::CollectivePlan> &plans) {
  const int32_t d = int32_t(data.size());
  std::vector<int32_t> members;
  for (int32_t r = 0; r < d; ++r)
    members.push_back(r);
  plans.assign(size_t(d), {});
  std::vector<void *> operands;
  for (int32_t m = 0; m < d; ++m) {
    int64_t n = int64_t(data[size_t(m)].size());
    pipert::Status s =
        op == pipert::Opcode::AllReduce
            ? pipert::planAllReduce(d, m, n, dtype, plans[size_t(m)])
        : op == pipert::Opcode::ReduceScatter
            ? pipert::planReduceScatter(members, m, n, dtype, parts.data(),
                                        int32_t(parts.size()), plans[size_t(m)])
            : pipert::planAllGatherParts(members, m, n, dtype, parts.data(),
                                         int32_t(parts.size()),
                                         plans[size_t(m)]);
    ASSERT_TRUE(s.ok()) << s.message();
    operands.push_back(data[size_t(m)].data());
  }
  pipert::Status s = pipert::runCollectiveOnHost(plans, operands, dtype);
  ASSERT_TRUE(s.ok()) << s.message();
}

/// Parts in whole elements, owners rotating, lengths uneven.
std::vector<pipert::Part> partsOf(int32_t d, int64_t n, int64_t e) {
  std::vector<pipert::Part> parts;
  int64_t at = 0;
  for (int32_t k = 0; at < n; ++k) {
    int64_t len = std::min(n - at, int64_t(1 + (k * 37) % 23));
    parts.push_back({(k * 2 + 1) % d, at * e, len * e});
    at += len;
  }
  return parts;
}

template <typename T> void sameBitsAsLocal(pipert::DType dtype) {
  for (pipert::Opcode op : {pipert::Opcode::AllReduce,
                            pipert::Opcode::ReduceScatter,
                            pipert::Opcode::AllGather})
    for (int32_t d : {1, 2, 3, 5})
      for (int64_t n : {0, 1, 4, 7, 1000}) {
        SCOPED_TRACE(std::string(pipert::opcodeName(op)) + " D=" +
                     std::to_string(d) + " n=" + std::to_string(n));
        std::vector<std::vector<T>> local, exact;
        for (int32_t m = 0; m < d; ++m)
          local.push_back(randomOperand<T>(m, n));
        exact = local;
        auto parts = partsOf(d, n, int64_t(sizeof(T)));
        localResult(op, local, dtype, parts);
        std::vector<pipert::CollectivePlan> plans;
        exactResult(op, exact, dtype, parts, plans);
        for (int32_t m = 0; m < d; ++m)
          ASSERT_EQ(std::memcmp(local[size_t(m)].data(),
                                exact[size_t(m)].data(), size_t(n) * sizeof(T)),
                    0)
              << "member " << m;
        if (op == pipert::Opcode::AllReduce && d > 1 && n == 1000) {
          // What a ring moves: each member sends 2 (D - 1) / D of it.
          for (const pipert::CollectivePlan &p : plans) {
            int64_t sent = 0;
            for (const auto *phase : {&p.gather, &p.spread})
              for (const pipert::Exchange &x : *phase)
                sent += x.send ? x.bytes : 0;
            double ring = 2.0 * (d - 1) / d * double(n * int64_t(sizeof(T)));
            EXPECT_NEAR(double(sent), ring, 2.0 * d * sizeof(T));
          }
        }
      }
}

TEST(ExactCollectives, F32GivesTheLocalTransportsBits) {
  sameBitsAsLocal<float>(pipert::DType::F32);
}

TEST(ExactCollectives, F64GivesTheLocalTransportsBits) {
  sameBitsAsLocal<double>(pipert::DType::F64);
}

TEST(ExactCollectives, TheOrderOfTheSumIsVisible) {
  // Guard: the data make a reversed order differ, so equal bits above
  // mean the same order, not luck.
  auto a = randomOperand<float>(0, 1000), b = randomOperand<float>(1, 1000),
       c = randomOperand<float>(2, 1000);
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    float fwd = (a[i] + b[i]) + c[i], rev = (c[i] + b[i]) + a[i];
    differ += std::memcmp(&fwd, &rev, 4) != 0;
  }
  EXPECT_GT(differ, 0);
}

TEST(ExactCollectives, MismatchedPlansAndBadPartsFail) {
  pipert::CollectivePlan p0, p1;
  ASSERT_TRUE(pipert::planAllReduce(2, 0, 10, pipert::DType::F32, p0).ok());
  ASSERT_TRUE(pipert::planAllReduce(2, 1, 12, pipert::DType::F32, p1).ok());
  std::vector<float> a(10, 1.0f), b(12, 2.0f);
  pipert::Status s =
      pipert::runCollectiveOnHost({p0, p1}, {a.data(), b.data()},
                                  pipert::DType::F32);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bytes"), std::string::npos) << s.message();

  std::vector<pipert::Part> outside = {{4, 0, 8}};
  pipert::CollectivePlan q;
  s = pipert::planReduceScatter({0, 1}, 0, 2, pipert::DType::F32,
                                outside.data(), 1, q);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("rank 4, which is not a member"),
            std::string::npos);
  std::vector<pipert::Part> ragged = {{1, 0, 6}};
  s = pipert::planAllGatherParts({0, 1}, 0, 2, pipert::DType::F32,
                                 ragged.data(), 1, q);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not whole elements"), std::string::npos);
  s = pipert::planAllReduce(2, 0, 4, pipert::DType::None, q);
  ASSERT_FALSE(s.ok());
  std::vector<pipert::Part> overlapping = {{0, 0, 8}, {1, 4, 8}};
  s = pipert::planReduceScatter({0, 1}, 0, 4, pipert::DType::F32,
                                overlapping.data(), 2, q);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("two parts overlap at byte 4"), std::string::npos)
      << s.message();
}

} // namespace
