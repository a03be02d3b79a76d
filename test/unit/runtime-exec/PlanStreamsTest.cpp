//===- PlanStreamsTest.cpp - replicas running replica 0's stream files ----===//
//
// Two replicas of a two-rank pipeline, built by hand as Replicate.h lays
// them out: replica k's rank s + 2k sends to s + 1 + 2k, all-reduces its
// replica's group k and its stage's data-parallel group 2 + s (ZeRO-style
// parts over both replicas). Moving replica 0's streams gives replica 1's
// byte for byte, so findRelocation finds it; a replica stream that is not
// its pipeline rank's moved, or a stream that names another replica, is
// not taken for one.
//
//===----------------------------------------------------------------------===//

#include "pipert/CommLayout.h"
#include "pipert/PlanStreams.h"
#include "pipert/StreamBuilder.h"

#include <gtest/gtest.h>

using pipert::Opcode;

namespace {

constexpr int32_t P = 2, D = 2, G = 1;

/// Rank r's stream: stage r % 2 of replica r / 2.
pipert::Stream rankStream(int32_t r) {
  const int32_t s = r % P, k = r / P;
  pipert::Stream out;
  out.rank = r;
  out.ranks = P * D;
  out.microbatches = 1;
  out.arenaBytes = 4096;
  auto instr = [](Opcode op) {
    pipert::Instr in;
    in.op = in.sub = op;
    in.chunk = 0;
    in.mb = 0;
    return in;
  };
  std::vector<pipert::Instr> instrs;
  std::vector<std::vector<pipert::BufferUse>> uses;
  std::vector<std::vector<pipert::Part>> parts;
  auto add = [&](pipert::Instr in, std::vector<pipert::BufferUse> u,
                 std::vector<pipert::Part> p = {}) {
    instrs.push_back(in);
    uses.push_back(std::move(u));
    parts.push_back(std::move(p));
  };
  pipert::Instr msg = instr(s == 0 ? Opcode::SendAct : Opcode::RecvAct);
  msg.peer = k * P + (1 - s);
  msg.req = 0;
  msg.offset = 0;
  msg.bytes = 64;
  pipert::Instr wait = msg;
  wait.op = Opcode::Wait;
  if (s == 0) {
    add(instr(Opcode::Fwd), {{1, 0, 64, true}});
    add(msg, {{1, 0, 64, false}});
    add(wait, {});
  } else {
    add(msg, {{1, 0, 64, true}});
    add(wait, {});
    add(instr(Opcode::Fwd), {{1, 0, 64, false}, {2, 64, 64, true}});
  }
  // The replica's group (group 0 of the pipeline, k * G), f64 slots.
  pipert::Instr norm = instr(Opcode::AllReduce);
  norm.chunk = k * G;
  norm.dtype = pipert::DType::F64;
  norm.offset = 256;
  norm.bytes = 16;
  add(norm, {{3, 256, 16, true}});
  // The stage's data-parallel reduce-scatter over both replicas' ranks.
  pipert::Instr scatter = instr(Opcode::ReduceScatter);
  scatter.chunk = D * G + s;
  scatter.dtype = pipert::DType::F32;
  scatter.offset = 512;
  scatter.bytes = 128;
  add(scatter, {{4, 512, 128, true}},
      {{s, 0, 64}, {P + s, 64, 64}});
  add(instr(Opcode::OptStep), {{4, 512, 128, false}, {3, 256, 16, false}});
  pipert::appendWithUses(out, instrs, uses, parts);
  return out;
}

/// Groups as Replicate.h numbers them: replica k's group 0 is k, stage s's
/// data-parallel group D + s.
std::vector<std::vector<int32_t>> planGroups() {
  return {{0, 1}, {2, 3}, {0, 2}, {1, 3}};
}

std::vector<pipert::Stream> planStreams() {
  std::vector<pipert::Stream> streams;
  for (int32_t r = 0; r < P * D; ++r)
    streams.push_back(rankStream(r));
  pipert::Status st = pipert::attachComms(streams, planGroups());
  EXPECT_TRUE(st.ok()) << st.message();
  return streams;
}

} // namespace

TEST(PlanStreams, ReplicasAreReplicaZerosStreamsMoved) {
  std::vector<pipert::Stream> streams = planStreams();
  for (const pipert::Stream &s : streams) {
    pipert::Status v = pipert::validateStream(s);
    ASSERT_TRUE(v.ok()) << v.message();
  }
  pipert::ReplicaRelocation rel;
  ASSERT_TRUE(pipert::findRelocation(streams, P, D, G, rel));
  EXPECT_TRUE(rel.active);
  EXPECT_EQ(rel.groups, G);
  EXPECT_EQ(rel.groupComms, 1); // the replica's group {0, 1}
  EXPECT_EQ(rel.pairComms, 1);  // 0 -> 1, activations
  for (int32_t s = 0; s < P; ++s) {
    pipert::Stream moved;
    pipert::Status st =
        pipert::relocateStream(streams[size_t(s)], 1, P, D, rel, moved);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(pipert::encodeStream(moved),
              pipert::encodeStream(streams[size_t(P + s)]))
        << "stage " << s;
    // What moved and what stayed, read back.
    EXPECT_EQ(moved.rank, P + s);
    EXPECT_EQ(moved.instrs[1].peer == P + 1 - s ||
                  moved.instrs[0].peer == P + 1 - s,
              true);
    for (const pipert::Instr &in : moved.instrs) {
      if (in.op == Opcode::AllReduce)
        EXPECT_EQ(in.chunk, G); // replica 1's group 0
      if (in.op == Opcode::ReduceScatter) {
        EXPECT_EQ(in.chunk, D * G + s); // the stage's: unchanged
        EXPECT_EQ(moved.parts[in.firstPart].rank, s);
        EXPECT_EQ(moved.parts[in.firstPart + 1].rank, P + s);
      }
    }
    pipert::Status v = pipert::validateStream(moved);
    EXPECT_TRUE(v.ok()) << v.message();
  }
}

TEST(PlanStreams, OnlyExactCopiesAreMoved) {
  // A replica whose stream differs from its pipeline rank's moved (here:
  // another micro-batch number) keeps its own file.
  std::vector<pipert::Stream> streams = planStreams();
  streams[3].instrs[2].mb = 1;
  pipert::ReplicaRelocation rel;
  EXPECT_FALSE(pipert::findRelocation(streams, P, D, G, rel));
  EXPECT_FALSE(rel.active);
  // Wrong counts are not guessed at.
  streams = planStreams();
  EXPECT_FALSE(pipert::findRelocation(streams, P, 3, G, rel));
  EXPECT_FALSE(pipert::findRelocation(streams, 1, D, G, rel));

  // A stream that names another replica's rank or group is not replica
  // 0's: moving it is refused, named.
  ASSERT_TRUE(pipert::findRelocation(planStreams(), P, D, G, rel));
  pipert::Stream odd = planStreams()[0];
  odd.instrs[1].peer = 3;
  pipert::Stream out;
  pipert::Status st = pipert::relocateStream(odd, 1, P, D, rel, out);
  EXPECT_NE(st.message().find("names rank 3, outside replica 0"),
            std::string::npos)
      << st.message();
  odd = planStreams()[0];
  for (pipert::Instr &in : odd.instrs)
    if (in.op == Opcode::AllReduce)
      in.chunk = 1;
  st = pipert::relocateStream(odd, 1, P, D, rel, out);
  EXPECT_NE(st.message().find("uses group 1, another replica's"),
            std::string::npos)
      << st.message();
  st = pipert::relocateStream(planStreams()[2], 1, P, D, rel, out);
  EXPECT_NE(st.message().find("not a stream of replica 0"), std::string::npos)
      << st.message();
}
