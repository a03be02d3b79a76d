//===- PlanStreamsTest.cpp - replicas running replica 0's stream files ----===//
//
// D replicas of a two-rank pipeline, built by hand as Replicate.h lays
// them out: replica k's rank s + 2k sends to s + 1 + 2k, all-reduces its
// replica's group k and reduce-scatters over its stage's data-parallel
// group D G + s (parts on every replica's rank). The compiler plans the
// communicators of all D P ranks from replica 0's P streams alone
// (attachReplicaZeroComms); here every replica's streams are also built
// whole and attached as a world (attachComms), and replica 0's, moved into
// each replica, must be those byte for byte. A stream of replica 0 that
// names another replica, or disagrees with its partner, is refused.
//
//===----------------------------------------------------------------------===//

#include "pipert/CommLayout.h"
#include "pipert/PlanStreams.h"
#include "pipert/StreamBuilder.h"

#include <gtest/gtest.h>

using pipert::Opcode;

namespace {

constexpr int32_t P = 2, G = 1;

/// Rank r's stream of D replicas: stage r % 2 of replica r / 2.
pipert::Stream rankStream(int32_t r, int32_t D) {
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
  // The stage's data-parallel reduce-scatter over every replica's rank.
  pipert::Instr scatter = instr(Opcode::ReduceScatter);
  scatter.chunk = D * G + s;
  scatter.dtype = pipert::DType::F32;
  scatter.offset = 512;
  scatter.bytes = 32 * D;
  std::vector<pipert::Part> shards;
  for (int32_t q = 0; q < D; ++q)
    shards.push_back({q * P + s, 32 * q, 32});
  add(scatter, {{4, 512, 32 * D, true}}, shards);
  add(instr(Opcode::OptStep), {{4, 512, 32 * D, false}, {3, 256, 16, false}});
  pipert::appendWithUses(out, instrs, uses, parts);
  return out;
}

/// Groups as Replicate.h numbers them: replica k's group 0 is k, stage s's
/// data-parallel group D + s.
std::vector<std::vector<int32_t>> planGroups(int32_t D) {
  std::vector<std::vector<int32_t>> groups;
  for (int32_t k = 0; k < D; ++k)
    groups.push_back({k * P, k * P + 1});
  for (int32_t s = 0; s < P; ++s) {
    groups.emplace_back();
    for (int32_t k = 0; k < D; ++k)
      groups.back().push_back(k * P + s);
  }
  return groups;
}

/// Replica 0's streams, their communicators planned for D replicas.
std::vector<pipert::Stream> replicaZero(int32_t D,
                                        pipert::ReplicaRelocation &rel) {
  std::vector<pipert::Stream> zero;
  for (int32_t r = 0; r < P; ++r)
    zero.push_back(rankStream(r, D));
  pipert::Status st =
      pipert::attachReplicaZeroComms(zero, planGroups(D), D, G, rel);
  EXPECT_TRUE(st.ok()) << st.message();
  return zero;
}

} // namespace

TEST(PlanStreams, ReplicaZeroMovedIsEveryReplicasStreamAsAWholeWorldPlansIt) {
  for (int32_t D : {2, 3, 5}) {
    SCOPED_TRACE("D = " + std::to_string(D));
    // The whole world, attached as one.
    std::vector<pipert::Stream> world;
    for (int32_t r = 0; r < P * D; ++r)
      world.push_back(rankStream(r, D));
    pipert::Status st = pipert::attachComms(world, planGroups(D));
    ASSERT_TRUE(st.ok()) << st.message();
    pipert::ReplicaRelocation rel;
    std::vector<pipert::Stream> zero = replicaZero(D, rel);
    ASSERT_TRUE(rel.active);
    EXPECT_EQ(rel.groups, G);
    EXPECT_EQ(rel.groupComms, 1); // the replica's group {0, 1}
    EXPECT_EQ(rel.pairComms, 1);  // 0 -> 1, activations
    for (int32_t k = 0; k < D; ++k)
      for (int32_t s = 0; s < P; ++s) {
        pipert::Stream moved;
        st = pipert::relocateStream(zero[size_t(s)], k, P, D, rel, moved);
        ASSERT_TRUE(st.ok()) << st.message();
        EXPECT_EQ(pipert::encodeStream(moved),
                  pipert::encodeStream(world[size_t(k * P + s)]))
            << "replica " << k << " stage " << s;
        EXPECT_EQ(moved.rank, k * P + s);
        for (const pipert::Instr &in : moved.instrs) {
          if (pipert::isPostOp(in.op)) {
            EXPECT_EQ(in.peer, k * P + 1 - s);
          }
          if (in.op == Opcode::AllReduce) {
            EXPECT_EQ(in.chunk, k * G); // replica k's group 0
          }
          if (in.op == Opcode::ReduceScatter) {
            EXPECT_EQ(in.chunk, D * G + s); // the stage's: unchanged
            for (int32_t q = 0; q < D; ++q)
              EXPECT_EQ(moved.parts[in.firstPart + q].rank, q * P + s);
          }
        }
        pipert::Status v = pipert::validateStream(moved);
        EXPECT_TRUE(v.ok()) << v.message();
        // What a process of the rank reads: its view of the layout.
        pipert::CommLayout view;
        v = pipert::commViewOf(moved, planGroups(D), view);
        EXPECT_TRUE(v.ok()) << v.message();
      }
  }
}

TEST(PlanStreams, ReplicaZeroNamingAnotherReplicaIsRefused) {
  const int32_t D = 2;
  pipert::ReplicaRelocation rel;
  // A message to replica 1's rank.
  std::vector<pipert::Stream> zero = {rankStream(0, D), rankStream(1, D)};
  zero[0].instrs[1].peer = 3;
  zero[0].instrs[2].peer = 3;
  pipert::Status st =
      pipert::attachReplicaZeroComms(zero, planGroups(D), D, G, rel);
  EXPECT_NE(st.message().find("rank 0 of replica 0 sends or receives a "
                              "message of rank 3, another replica's"),
            std::string::npos)
      << st.message();
  EXPECT_FALSE(rel.active);
  // Replica 1's group.
  zero = {rankStream(0, D), rankStream(1, D)};
  for (pipert::Instr &in : zero[1].instrs)
    if (in.op == Opcode::AllReduce)
      in.chunk = 1;
  st = pipert::attachReplicaZeroComms(zero, planGroups(D), D, G, rel);
  EXPECT_NE(st.message().find("rank 1 of replica 0 joins group 1, another "
                              "replica's"),
            std::string::npos)
      << st.message();
  // Not replica 0's ranks, or a group table of other counts.
  zero = {rankStream(2, D), rankStream(3, D)};
  st = pipert::attachReplicaZeroComms(zero, planGroups(D), D, G, rel);
  EXPECT_NE(st.message().find("not replica 0's rank 0"), std::string::npos)
      << st.message();
  zero = {rankStream(0, D), rankStream(1, D)};
  st = pipert::attachReplicaZeroComms(zero, planGroups(3), D, G, rel);
  EXPECT_NE(st.message().find("not D G + P"), std::string::npos)
      << st.message();
}

TEST(PlanStreams, ReplicaZeroDisagreeingWithItsPartnerIsRefused) {
  // Rank 1 receives another micro-batch than rank 0 sends: the pair's
  // proof, on replica 0's streams, names both sides.
  const int32_t D = 3;
  std::vector<pipert::Stream> zero = {rankStream(0, D), rankStream(1, D)};
  zero[1].instrs[0].mb = 1;
  zero[1].instrs[1].mb = 1;
  pipert::ReplicaRelocation rel;
  pipert::Status st =
      pipert::attachReplicaZeroComms(zero, planGroups(D), D, G, rel);
  EXPECT_NE(st.message().find("activation messages from rank 0 to rank 1: "
                              "operation 0 differs"),
            std::string::npos)
      << st.message();
  EXPECT_FALSE(rel.active);
}

TEST(PlanStreams, MovingAStreamNotOfReplicaZeroIsRefused) {
  const int32_t D = 2;
  pipert::ReplicaRelocation rel;
  std::vector<pipert::Stream> zero = replicaZero(D, rel);
  ASSERT_TRUE(rel.active);
  pipert::Stream odd = zero[0], out;
  odd.instrs[1].peer = 3;
  pipert::Status st = pipert::relocateStream(odd, 1, P, D, rel, out);
  EXPECT_NE(st.message().find("names rank 3, outside replica 0"),
            std::string::npos)
      << st.message();
  odd = zero[0];
  for (pipert::Instr &in : odd.instrs)
    if (in.op == Opcode::AllReduce)
      in.chunk = 1;
  st = pipert::relocateStream(odd, 1, P, D, rel, out);
  EXPECT_NE(st.message().find("uses group 1, another replica's"),
            std::string::npos)
      << st.message();
  st = pipert::relocateStream(rankStream(2, D), 1, P, D, rel, out);
  EXPECT_NE(st.message().find("not a stream of replica 0"), std::string::npos)
      << st.message();
}

TEST(PlanStreams, AGroupTableThatIsNotReplicasMovedIsRefused) {
  // Replica 1's group names rank 0 of replica 0: its communicator spans
  // the replicas, which moving replica 0's streams cannot give; the
  // compiler's own check refuses the layout rather than writing it.
  const int32_t D = 2;
  std::vector<std::vector<int32_t>> groups = planGroups(D);
  groups[1] = {0, 3};
  std::vector<pipert::Stream> zero = {rankStream(0, D), rankStream(1, D)};
  pipert::ReplicaRelocation rel;
  pipert::Status st =
      pipert::attachReplicaZeroComms(zero, groups, D, G, rel);
  EXPECT_NE(st.message().find("internal error: communicator 1 (group 1) "
                              "spans replicas but carries a replica's group"),
            std::string::npos)
      << st.message();
  EXPECT_FALSE(rel.active);
}
