//===- CsvTest.cpp - torch compute-only CSV import ----------------------===//

#include "compiler/schedule/Csv.h"
#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"
#include "compiler/schedule/Validate.h"

#include <gtest/gtest.h>

using namespace pipec::schedule;

namespace {

static bool sameStreams(const Schedule &a, const Schedule &b) {
  if (a.streams.size() != b.streams.size())
    return false;
  for (size_t r = 0; r < a.streams.size(); ++r) {
    if (a.streams[r].size() != b.streams[r].size())
      return false;
    for (size_t i = 0; i < a.streams[r].size(); ++i) {
      const Instr &x = a.streams[r][i], &y = b.streams[r][i];
      if (x.op != y.op || x.sub != y.sub || x.peer != y.peer ||
          x.chunk != y.chunk || x.mb != y.mb || x.req != y.req)
        return false;
    }
  }
  return true;
}

/// Every kind written as CSV and read back compiles to the same streams.
TEST(Csv, RoundTripOfEveryKind) {
  for (Kind k : {Kind::GPipe, Kind::OneFOneB, Kind::Interleaved, Kind::ZBH1,
                 Kind::ZBV, Kind::DualPipeV}) {
    ComputePlan plan, back;
    GenerateOptions opt{k, 4, 8, 0, 0};
    ASSERT_EQ(generatePlan(opt, plan), "");
    std::string text = writeCsvPlan(plan);
    ASSERT_EQ(readCsvPlan(text, "x.csv", 0, back), "") << kindName(k);
    EXPECT_EQ(back.placement.rankOf, plan.placement.rankOf);
    EXPECT_TRUE(sameStreams(lowerPlan(plan), lowerPlan(back))) << kindName(k);
  }
}

TEST(Csv, TorchStyleFileWithIdleCells) {
  // 2 ranks, 1F1B with the split backward; empty cells and None are idle.
  std::string text = "0F0,0F1,,0I0,0W0,0I1,0W1\n"
                     "None,1F0,1I0,1F1,1I1,1W0,1W1\n";
  ComputePlan plan;
  ASSERT_EQ(readCsvPlan(text, "t.csv", 2, plan), "");
  EXPECT_EQ(plan.placement.ranks, 2);
  EXPECT_EQ(plan.placement.chunks, 2);
  MachineResult res;
  EXPECT_EQ(verifySchedule(lowerPlan(plan), Costs::uniform(2, 1, 1, 1), res),
            "");
}

static std::string readError(const std::string &text, int32_t m = 0) {
  ComputePlan plan;
  return readCsvPlan(text, "bad.csv", m, plan);
}

TEST(Csv, ErrorsSayWhatAndWhere) {
  EXPECT_EQ(readError("0F0,0X1\n"),
            "bad.csv:1:5: unknown action type 'X' in '0X1'; expected F, I, W "
            "or B");
  EXPECT_NE(readError("0F0,0SEND_F0\n").find("bad.csv:1:5:"),
            std::string::npos);
  EXPECT_NE(readError("0F0,0SEND_F0\n").find("no communication"),
            std::string::npos);
  EXPECT_NE(readError("0F0,F\n").find("expected STAGE TYPE MICROBATCH"),
            std::string::npos);
  EXPECT_NE(readError("0F0,0B0\n0F1,0B1\n").find("bad.csv:2:1: stage 0 runs "
                                                 "on rank 1, but line 1"),
            std::string::npos)
      << readError("0F0,0B0\n0F1,0B1\n");
  EXPECT_NE(readError("0F0,0I0\n").find("never runs W of chunk 0 "
                                        "micro-batch 0"),
            std::string::npos)
      << readError("0F0,0I0\n");
  EXPECT_NE(readError("0F0,0B0\n2F0,2B0\n").find("stage 1 appears on no rank"),
            std::string::npos);
  EXPECT_NE(readError("0F0,0B0\n", 4).find("--microbatches 4 but the file "
                                           "uses micro-batches 0..0"),
            std::string::npos);
  EXPECT_NE(readError("0B0,0F0\n").find("before its F"), std::string::npos);
  EXPECT_NE(readError("\n\n").find("no rank rows"), std::string::npos);
}

} // namespace
