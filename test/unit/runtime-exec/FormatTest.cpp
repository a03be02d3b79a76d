//===- FormatTest.cpp - stream files and manifest.json: round trips, errors ===//

#include "SyntheticModel.h"
#include "TestUtil.h"

#include "pipert/Manifest.h"
#include "pipert/Stream.h"
#include "pipert/StreamBuilder.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <climits>
#include <cstring>
#include <functional>
#include <fstream>

using namespace pipec::testing;
using pipert::Opcode;

namespace {

/// The plan of a real schedule: zb-v on 2 ranks.
const SyntheticPlan &zbvPlan() {
  static SyntheticPlan plan = [] {
    SyntheticPlan p;
    PlanOptions po;
    po.kind = pipec::schedule::Kind::ZBV;
    po.stages = 2;
    EXPECT_EQ(buildPlan(po, p), "");
    return p;
  }();
  return plan;
}

bool sameStream(const pipert::Stream &a, const pipert::Stream &b) {
  if (a.rank != b.rank || a.ranks != b.ranks ||
      a.microbatches != b.microbatches || a.arenaBytes != b.arenaBytes ||
      a.instrs.size() != b.instrs.size() ||
      a.accesses.size() != b.accesses.size())
    return false;
  for (size_t i = 0; i < a.instrs.size(); ++i) {
    const pipert::Instr &x = a.instrs[i], &y = b.instrs[i];
    if (x.op != y.op || x.sub != y.sub || x.dtype != y.dtype ||
        x.peer != y.peer || x.chunk != y.chunk || x.mb != y.mb ||
        x.req != y.req || x.offset != y.offset || x.bytes != y.bytes ||
        x.firstAccess != y.firstAccess || x.accessCount != y.accessCount)
      return false;
  }
  for (size_t i = 0; i < a.accesses.size(); ++i) {
    const pipert::Access &x = a.accesses[i], &y = b.accesses[i];
    if (x.offset != y.offset || x.bytes != y.bytes || x.writer != y.writer ||
        x.write != y.write)
      return false;
  }
  if (a.commRounds != b.commRounds || a.comms.size() != b.comms.size())
    return false;
  for (size_t c = 0; c < a.comms.size(); ++c) {
    const pipert::StreamComm &x = a.comms[c], &y = b.comms[c];
    if (x.id != y.id || x.round != y.round || x.pair != y.pair ||
        x.channel != y.channel || x.groups != y.groups ||
        x.members != y.members || x.first != y.first ||
        x.stride != y.stride || x.count != y.count)
      return false;
  }
  return true;
}

std::string decodeError(const std::vector<uint8_t> &bytes) {
  pipert::Stream s;
  pipert::Status st = pipert::decodeStream(bytes.data(), bytes.size(), "x.pstream", s);
  return st.ok() ? "" : st.message();
}

} // namespace

// Tests that every rank's stream survives the file round trip exactly.
TEST(StreamFormat, RoundTripsThroughAFile) {
  TempDir dir("roundtrip");
  for (const pipert::Stream &s : zbvPlan().streams) {
    std::string path = dir.path + "/r" + std::to_string(s.rank);
    pipert::Status st = pipert::writeStreamFile(path, s);
    ASSERT_TRUE(st.ok()) << st.message();
    pipert::Stream back;
    st = pipert::readStreamFile(path, back);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_TRUE(sameStream(s, back));
    EXPECT_GT(back.instrs.size(), 30u);
    EXPECT_GT(back.accesses.size(), back.instrs.size());
    // Its communicators: both directions' pairs to the other rank on
    // both channels, and group 0's (the norm).
    EXPECT_GE(back.comms.size(), 3u);
    EXPECT_GE(back.commRounds, int32_t(back.comms.size()));
  }
}

// Tests that a truncated file is reported with what the header promised.
TEST(StreamFormat, TruncatedFile) {
  std::vector<uint8_t> bytes = pipert::encodeStream(zbvPlan().streams[0]);
  std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + 80 + 44 * 3 + 5);
  std::string err = decodeError(cut);
  EXPECT_NE(err.find("x.pstream: truncated: the header announces"),
            std::string::npos)
      << err;
  // Cut in the communicators' table, after the fixed records.
  cut.assign(bytes.begin(), bytes.end() - 7);
  err = decodeError(cut);
  EXPECT_NE(err.find("x.pstream: truncated: communicator record"),
            std::string::npos)
      << err;
  cut.assign(bytes.begin(), bytes.begin() + 20);
  EXPECT_NE(decodeError(cut).find("shorter than the 80-byte header"),
            std::string::npos);
  bytes.push_back(0);
  EXPECT_NE(decodeError(bytes).find("1 trailing bytes"), std::string::npos);
}

// Tests that a flipped bit in the records, a foreign file and another
// version are refused.
TEST(StreamFormat, CorruptFile) {
  std::vector<uint8_t> bytes = pipert::encodeStream(zbvPlan().streams[1]);
  std::vector<uint8_t> flipped = bytes;
  flipped[64 + 40 * 3 + 9] ^= 0x10;
  EXPECT_NE(decodeError(flipped).find("checksum"), std::string::npos);
  std::vector<uint8_t> magic = bytes;
  magic[0] = 'X';
  EXPECT_NE(decodeError(magic).find("bad magic"), std::string::npos);
  std::vector<uint8_t> version = bytes;
  version[8] = 9;
  EXPECT_NE(decodeError(version).find("version 9"), std::string::npos);
  pipert::Stream s;
  pipert::Status st = pipert::readStreamFile("/nonexistent/r0", s);
  EXPECT_NE(st.message().find("/nonexistent/r0: cannot open the stream"),
            std::string::npos);
}

// Tests the validation messages: each names the rank and the instruction.
TEST(StreamFormat, ValidationNamesRankAndInstruction) {
  pipert::Stream s = zbvPlan().streams[1];
  auto firstOf = [&](Opcode op) {
    for (size_t i = 0; i < s.instrs.size(); ++i)
      if (s.instrs[i].op == op)
        return i;
    return s.instrs.size();
  };
  {
    pipert::Stream t = s;
    size_t i = firstOf(Opcode::SendAct);
    t.instrs[i].peer = 1;
    pipert::Status st = pipert::validateStream(t);
    EXPECT_EQ(st.rank(), 1);
    EXPECT_EQ(st.instr(), int64_t(i));
    EXPECT_NE(st.message().find("peer 1 is not another rank of 2"),
              std::string::npos)
        << st.message();
  }
  {
    pipert::Stream t = s;
    size_t i = firstOf(Opcode::RecvAct);
    t.instrs[i].offset = t.arenaBytes - 4;
    pipert::Status st = pipert::validateStream(t);
    EXPECT_EQ(st.instr(), int64_t(i));
    EXPECT_NE(st.message().find("is outside the arena"), std::string::npos)
        << st.message();
  }
  {
    pipert::Stream t = s;
    size_t i = firstOf(Opcode::Wait);
    t.instrs[i].op = Opcode::OptStep; // the post is never waited
    pipert::Status st = pipert::validateStream(t);
    EXPECT_NE(st.message().find("is never waited for"), std::string::npos)
        << st.message();
  }
  {
    pipert::Stream t = s;
    t.instrs[firstOf(Opcode::Fwd)].mb = 8;
    EXPECT_NE(pipert::validateStream(t).message().find(
                  "chunk or micro-batch out of range"),
              std::string::npos);
  }
}

/// The error reading the manifest `parsed` after `edit`, or "".
static std::string
manifestErrorAfterEdit(const nlohmann::json &parsed,
                       const std::function<void(nlohmann::json &)> &edit) {
  nlohmann::json j = parsed;
  edit(j);
  pipert::Manifest back;
  pipert::Status s = pipert::parseManifest(j.dump(), "m.json", back);
  return s.ok() ? std::string() : s.message();
}

// Tests that the manifest survives its JSON round trip.
/// What parsing says of manifest `text` with the first `from` replaced by
/// `to` ("" when it parses).
static std::string manifestErrorAfter(std::string text,
                                      const std::string &from,
                                      const std::string &to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at == std::string::npos)
    return "";
  text.replace(at, from.size(), to);
  pipert::Manifest m;
  pipert::Status st = pipert::parseManifest(text, "m.json", m);
  return st.ok() ? std::string() : st.message();
}

TEST(ManifestFormat, RoundTrips) {
  const pipert::Manifest &m = zbvPlan().manifest;
  pipert::Manifest back;
  pipert::Status st =
      pipert::parseManifest(pipert::manifestToJson(m), "m.json", back);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(pipert::manifestToJson(back), pipert::manifestToJson(m));
  EXPECT_EQ(back.params.size(), 16u);
  EXPECT_EQ(back.params[3].name, "layer1.bias");
  EXPECT_EQ(back.chunkRank, m.chunkRank);
  EXPECT_EQ(back.loss.offset, m.loss.offset);
}

// Tests the manifest's errors: they name the file and the JSON path.
TEST(ManifestFormat, ErrorsNameThePath) {
  std::string text = pipert::manifestToJson(zbvPlan().manifest);
  auto errorOf = [&](const std::string &from, const std::string &to) {
    return manifestErrorAfter(text, from, to);
  };
  EXPECT_NE(errorOf("\"arena_bytes\"", "\"arena_bytez\"")
                .find("m.json: manifest.rank_info[0]: missing field "
                      "\"arena_bytes\""),
            std::string::npos);
  EXPECT_NE(errorOf("\"dtype\": \"f32\"", "\"dtype\": \"bf8\"")
                .find("unknown dtype \"bf8\""),
            std::string::npos);
  EXPECT_NE(errorOf("\"init\": \"normal\"", "\"init\": \"xavier\"")
                .find("unknown init \"xavier\""),
            std::string::npos);
  EXPECT_NE(errorOf("\"ranks\": 2", "\"ranks\": \"two\"")
                .find("manifest.ranks: expected an integer"),
            std::string::npos);
  EXPECT_NE(errorOf("{", "[").find("not valid JSON"), std::string::npos);

  // Two parameters placed on the same bytes.
  pipert::Manifest bad = zbvPlan().manifest;
  bad.params[1].offset = bad.params[0].offset;
  pipert::Status st = pipert::validateManifest(bad);
  EXPECT_NE(st.message().find("overlap"), std::string::npos) << st.message();
  bad = zbvPlan().manifest;
  bad.params[0].offset = bad.rankInfo[0].arenaBytes - 8;
  st = pipert::validateManifest(bad);
  EXPECT_NE(st.message().find("is outside the"), std::string::npos)
      << st.message();
}

// Tests the data-parallel fields: a replicated manifest round-trips, and a
// replica count that does not divide the ranks, a group operand table of
// another length or naming no group, and a parameter outside replica 0 are
// refused.
TEST(ManifestFormat, ReplicasAndGroupOperands) {
  pipert::Manifest m = zbvPlan().manifest;
  const int32_t P = m.ranks;
  m.replicas = 2;
  m.ranks = 2 * P;
  const std::vector<pipert::RankInfo> pipeline = m.rankInfo;
  m.rankInfo.insert(m.rankInfo.end(), pipeline.begin(), pipeline.end());
  const size_t G = m.groups.size();
  std::vector<std::vector<int32_t>> groups = m.groups;
  for (std::vector<int32_t> g : m.groups) {
    for (int32_t &r : g)
      r += P;
    groups.push_back(g);
  }
  for (int32_t s = 0; s < P; ++s)
    groups.push_back({s, s + P});
  m.groups = groups;
  for (size_t g = 0; g < m.groups.size(); ++g)
    m.groupOperand.push_back(g < 2 * G ? int32_t(g % G) : -1);
  ASSERT_TRUE(pipert::validateManifest(m).ok())
      << pipert::validateManifest(m).message();
  EXPECT_EQ(m.pipelineRankOf(P + 1), 1);
  EXPECT_EQ(m.replicaOf(P + 1), 1);
  EXPECT_EQ(m.operandGroupOf(int32_t(G)), 0);
  EXPECT_EQ(m.operandGroupOf(int32_t(2 * G)), -1);
  pipert::Manifest back;
  pipert::Status st =
      pipert::parseManifest(pipert::manifestToJson(m), "m.json", back);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(back.replicas, 2);
  EXPECT_EQ(back.groupOperand, m.groupOperand);
  EXPECT_EQ(pipert::manifestToJson(back), pipert::manifestToJson(m));

  auto refused = [&](pipert::Manifest bad, const std::string &what) {
    pipert::Status s = pipert::validateManifest(bad);
    EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
  };
  pipert::Manifest bad = m;
  bad.replicas = 3;
  refused(bad, "must be at least 1 and divide ranks");
  bad = m;
  bad.groupOperand.pop_back();
  refused(bad, "\"group_operands\" has");
  bad = m;
  bad.groupOperand[0] = int32_t(m.groups.size());
  refused(bad, "is neither -1 nor a group");
  bad = m;
  bad.params[0].rank = P; // replica 1's: the manifest lists replica 0's
  refused(bad, "outside [0, " + std::to_string(P) + ")");
}

/// zbvPlan's manifest as D replicas, as the compiler lays them out: every
/// replica's copies of the pipeline's groups, then one data-parallel group
/// a stage; rank r's stream rank<r>.pstream with its own checksum.
static pipert::Manifest replicatedManifest(int32_t D) {
  pipert::Manifest m = zbvPlan().manifest;
  const int32_t P = m.ranks;
  m.replicas = D;
  m.ranks = D * P;
  const std::vector<pipert::RankInfo> pipeline = m.rankInfo;
  m.rankInfo.clear();
  std::vector<std::vector<int32_t>> groups;
  for (int32_t k = 0; k < D; ++k)
    for (std::vector<int32_t> g : zbvPlan().manifest.groups) {
      for (int32_t &r : g)
        r += k * P;
      groups.push_back(g);
    }
  const size_t G0 = groups.size() / size_t(D);
  for (int32_t p = 0; p < P; ++p) { // the data-parallel groups
    groups.emplace_back();
    for (int32_t k = 0; k < D; ++k)
      groups.back().push_back(p + k * P);
  }
  m.groups = groups;
  for (size_t g = 0; g < m.groups.size(); ++g)
    m.groupOperand.push_back(g < size_t(D) * G0 ? int32_t(g % G0) : -1);
  for (int32_t r = 0; r < m.ranks; ++r) {
    pipert::RankInfo info = pipeline[size_t(r % P)];
    info.stream = "rank" + std::to_string(r) + ".pstream";
    info.streamChecksum = 0x9e3779b97f4a7c15ull * uint64_t(r + 1);
    m.rankInfo.push_back(info);
  }
  return m;
}

// Tests the manifest of replicas at scale: rank_info lists replica 0's
// ranks alone and the others' checksums follow in one string, read back
// into every rank's entry; replicas that differ keep an entry per rank;
// a damaged string is refused naming what is wrong.
TEST(ManifestFormat, ReplicaRanksAreListedOnce) {
  const int32_t P = zbvPlan().manifest.ranks, D = 5;
  pipert::Manifest m = replicatedManifest(D);
  const size_t G0 = zbvPlan().manifest.groups.size();
  ASSERT_TRUE(pipert::validateManifest(m).ok())
      << pipert::validateManifest(m).message();
  ASSERT_TRUE(pipert::replicatedRankInfo(m));
  const std::string text = pipert::manifestToJson(m);
  EXPECT_EQ(text.find("\"rank" + std::to_string(P) + ".pstream\""),
            std::string::npos);
  EXPECT_NE(text.find(pipert::planIdText(m.rankInfo.back().streamChecksum)),
            std::string::npos);
  pipert::Manifest back;
  pipert::Status st = pipert::parseManifest(text, "m.json", back);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(back.rankInfo.size(), m.rankInfo.size());
  for (size_t r = 0; r < m.rankInfo.size(); ++r) {
    EXPECT_EQ(back.rankInfo[r].stream, m.rankInfo[r].stream) << r;
    EXPECT_EQ(back.rankInfo[r].arenaBytes, m.rankInfo[r].arenaBytes) << r;
    EXPECT_EQ(back.rankInfo[r].peakBytes, m.rankInfo[r].peakBytes) << r;
    EXPECT_EQ(back.rankInfo[r].streamChecksum, m.rankInfo[r].streamChecksum)
        << r;
  }
  EXPECT_EQ(pipert::manifestToJson(back), text);
  // Replica 0's groups stand for all, a data-parallel group is its first
  // rank, stride and count.
  EXPECT_EQ(pipert::replicaGroupCount(m), G0);
  const nlohmann::json parsed = nlohmann::json::parse(text);
  EXPECT_EQ(parsed["replica_groups"], G0);
  ASSERT_EQ(parsed["groups"].size(), G0 + size_t(P));
  EXPECT_EQ(parsed["groups"][G0 + 1],
            nlohmann::json({{"first", 1}, {"stride", P}, {"count", D}}));
  EXPECT_EQ(back.groups, m.groups);
  EXPECT_EQ(back.groupOperand, m.groupOperand);

  // A replica whose arena differs: every rank listed.
  pipert::Manifest uneven = m;
  uneven.rankInfo[size_t(P)].arenaBytes += 256;
  uneven.rankInfo[size_t(P)].peakBytes = uneven.rankInfo[size_t(P)].arenaBytes;
  EXPECT_FALSE(pipert::replicatedRankInfo(uneven));
  const std::string full = pipert::manifestToJson(uneven);
  EXPECT_NE(full.find("\"rank" + std::to_string(P) + ".pstream\""),
            std::string::npos);
  EXPECT_EQ(full.find("replica_stream_checksums"), std::string::npos);
  ASSERT_TRUE(pipert::parseManifest(full, "m.json", back).ok());
  EXPECT_EQ(back.rankInfo[size_t(P)].arenaBytes,
            uneven.rankInfo[size_t(P)].arenaBytes);

  auto errorOf = [&](const std::string &from, const std::string &to) {
    return manifestErrorAfter(text, from, to);
  };
  const std::string last = pipert::planIdText(m.rankInfo.back().streamChecksum);
  EXPECT_NE(errorOf(last, last.substr(1)).find("expected 16 hex digits for "
                                                "each of the " +
                                                std::to_string(m.ranks - P) +
                                                " ranks"),
            std::string::npos);
  EXPECT_NE(errorOf(last, "zz" + last.substr(2))
                .find("rank " + std::to_string(m.ranks - 1) + ": \"zz"),
            std::string::npos);
  EXPECT_NE(errorOf("\"replicas\": 5", "\"replicas\": 1")
                .find("only a plan of several replicas"),
            std::string::npos);
  // Compact groups that name ranks outside the plan, or expand too far.
  auto errorAfter = [&](const std::function<void(nlohmann::json &)> &edit) {
    return manifestErrorAfterEdit(parsed, edit);
  };
  EXPECT_NE(errorAfter([&](nlohmann::json &j) {
              j["groups"][G0 + 1]["count"] = D + 1;
            }).find("must name ranks inside [0, " + std::to_string(m.ranks)),
            std::string::npos);
  EXPECT_NE(errorAfter([&](nlohmann::json &j) {
              j["groups"][G0 + 1]["count"] = int64_t(1) << 62;
            }).find("must name ranks inside"),
            std::string::npos);
  EXPECT_NE(errorAfter([&](nlohmann::json &j) { j["replica_groups"] = 999; })
                .find("must be between 1 and the"),
            std::string::npos);
  EXPECT_NE(errorAfter([&](nlohmann::json &j) {
              j["groups"].insert(j["groups"].begin(), nlohmann::json({P}));
              j["group_operands"].push_back(-1);
            }).find("lists replica 0's ranks"),
            std::string::npos);
  // Hostile counts fail with a message, never a crash or a huge allocation.
  EXPECT_NE(errorAfter([&](nlohmann::json &j) { j["replicas"] = 0; })
                .find("only a plan of several replicas"),
            std::string::npos);
  EXPECT_NE(errorAfter([&](nlohmann::json &j) {
              j["replicas"] = m.ranks + 1;
            }).find("only a plan of several replicas"),
            std::string::npos);
  EXPECT_NE(errorAfter([&](nlohmann::json &j) {
              j["groups"][G0 + 1]["first"] = INT64_MAX;
            }).find("must name ranks inside"),
            std::string::npos);
  EXPECT_NE(errorAfter([&](nlohmann::json &j) {
              nlohmann::json empties = nlohmann::json::array();
              for (int i = 0; i < 20000; ++i)
                empties.push_back(nlohmann::json::array());
              j["groups"] = empties;
              j.erase("group_operands");
              j["replica_groups"] = 20000;
              j["replicas"] = m.ranks;
            }).size(),
            0u); // refused (how depends on which check meets it first)
  // What compact groups invite: checksums that claim 2^21 one-rank
  // replicas, and 65 groups to copy into each (2^27 members from a 32 MB
  // file) are refused before the copies are made.
  EXPECT_NE(errorAfter([&](nlohmann::json &j) {
              const int32_t n = 1 << 21;
              j["ranks"] = n;
              j["replicas"] = n;
              j["rank_info"] = nlohmann::json::array({parsed["rank_info"][0]});
              j["replica_stream_checksums"] = std::string(size_t(n - 1) * 16, 'a');
              nlohmann::json groups = nlohmann::json::array();
              for (int i = 0; i < 65; ++i)
                groups.push_back(nlohmann::json::array({0}));
              j["groups"] = groups;
              j["replica_groups"] = 65;
              j.erase("group_operands");
            }).find("the groups expand to more than"),
            std::string::npos);
}

// Replicas that run replica 0's stream files (replica_streams): rank_info
// lists replica 0's ranks, every rank reads back as its pipeline rank's
// file and checksum, and a manifest that cannot be so is refused.
TEST(ManifestFormat, ReplicasRunReplicaZerosFiles) {
  const int32_t D = 4;
  pipert::Manifest m = replicatedManifest(D);
  const int32_t P = m.pipelineRanks();
  const int32_t G = int32_t(zbvPlan().manifest.groups.size());
  for (int32_t r = P; r < m.ranks; ++r)
    m.rankInfo[size_t(r)] = m.rankInfo[size_t(r % P)];
  m.relocation = {G, 1, 2, true};
  pipert::Status st = pipert::validateManifest(m);
  ASSERT_TRUE(st.ok()) << st.message();
  const std::string text = pipert::manifestToJson(m);
  const nlohmann::json parsed = nlohmann::json::parse(text);
  EXPECT_EQ(parsed["rank_info"].size(), size_t(P));
  EXPECT_FALSE(parsed.contains("replica_stream_checksums"));
  EXPECT_EQ(parsed["replica_streams"],
            nlohmann::json({{"groups", G}, {"group_comms", 1},
                            {"pair_comms", 2}}));
  pipert::Manifest back;
  st = pipert::parseManifest(text, "m.json", back);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(back.rankInfo.size(), size_t(m.ranks));
  for (int32_t r = 0; r < m.ranks; ++r) {
    EXPECT_EQ(back.rankInfo[size_t(r)].stream,
              "rank" + std::to_string(r % P) + ".pstream");
    EXPECT_EQ(back.rankInfo[size_t(r)].streamChecksum,
              m.rankInfo[size_t(r % P)].streamChecksum);
  }
  EXPECT_TRUE(back.relocation.active);
  EXPECT_EQ(back.relocation.pairComms, 2);
  EXPECT_EQ(pipert::manifestToJson(back), text);

  auto errorAfter = [&](const std::function<void(nlohmann::json &)> &edit) {
    return manifestErrorAfterEdit(parsed, edit);
  };
  EXPECT_NE(errorAfter([&](nlohmann::json &j) {
              j["replica_streams"]["groups"] = G * D;
            }).find("does not fit 4 replicas"),
            std::string::npos);
  EXPECT_NE(errorAfter([&](nlohmann::json &j) {
              j["replica_stream_checksums"] = "";
            }).find("not both"),
            std::string::npos);
  EXPECT_NE(errorAfter([&](nlohmann::json &j) {
              j["rank_info"].push_back(j["rank_info"][0]);
            }).find("with replica_streams it lists replica 0's"),
            std::string::npos);
  // Nothing else in the file bounds the ranks: 2^22 at most, and 512 a
  // byte of the file, refused before rank_info is expanded; so are stream
  // names that every replica would copy.
  EXPECT_NE(errorAfter([&](nlohmann::json &j) {
              j["rank_info"][0]["stream"] = std::string(256, 'x');
            }).find("longer than 255 bytes"),
            std::string::npos);
  EXPECT_NE(errorAfter([&](nlohmann::json &j) {
              j["ranks"] = (int64_t(1) << 22) + 2;
              j["replicas"] = (int64_t(1) << 21) + 1;
            }).find("a plan of moved streams with a manifest of"),
            std::string::npos);
}

// Tests that no truncation and no single-byte corruption of a stream file
// crashes the reader or is accepted as a different stream.
TEST(StreamFormat, EveryTruncationAndByteFlipIsRefused) {
  std::vector<uint8_t> bytes = pipert::encodeStream(zbvPlan().streams[0]);
  for (size_t len = 0; len < bytes.size(); len += 7)
    EXPECT_NE(decodeError(std::vector<uint8_t>(bytes.begin(),
                                               bytes.begin() + long(len))),
              "")
        << len;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    std::vector<uint8_t> bad = bytes;
    bad[i] ^= 0x41;
    EXPECT_NE(decodeError(bad), "") << "byte " << i;
  }
}

// Tests that records with a valid checksum but bad contents are refused by
// the validation, naming the rank and instruction.
TEST(StreamFormat, BadRecordsWithAValidChecksum) {
  pipert::Stream s = zbvPlan().streams[0];
  s.accesses[0].offset = s.arenaBytes; // past the arena
  std::string err = decodeError(pipert::encodeStream(s));
  EXPECT_NE(err.find("x.pstream: rank 0 #0 fwd(chunk 0, mb 0): access ["),
            std::string::npos)
      << err;
  s = zbvPlan().streams[0];
  s.instrs[1].op = pipert::Opcode(42);
  err = decodeError(pipert::encodeStream(s));
  EXPECT_NE(err.find("rank 0 #1: invalid opcode 42"), std::string::npos) << err;
}

// Tests that the communicators' table of a stream is checked like its
// records: a cut or an extra byte in it, a kind that is none, and tables
// that break its rules with a valid checksum are each refused by name.
TEST(StreamFormat, CommunicatorTablesAreChecked) {
  const pipert::Stream &good = zbvPlan().streams[1];
  ASSERT_FALSE(good.comms.empty());
  std::vector<uint8_t> bytes = pipert::encodeStream(good);
  std::vector<uint8_t> cut(bytes.begin(), bytes.end() - 4);
  EXPECT_NE(decodeError(cut).find("communicator record"), std::string::npos)
      << decodeError(cut);
  auto refused = [&](pipert::Stream s, const std::string &want) {
    std::string err = decodeError(pipert::encodeStream(s));
    EXPECT_NE(err.find(want), std::string::npos) << err;
  };
  pipert::Stream s = good;
  s.comms[0].members = {0, 0};
  refused(s, "is not a member");
  s = good;
  s.comms.back().round = s.comms.front().round;
  refused(s, "holds another of this rank's communicators");
  s = good;
  s.comms.back().round = s.commRounds;
  refused(s, "is outside the plan's");
  s = good;
  std::swap(s.comms.front(), s.comms.back());
  refused(s, "ids must be non-negative and ascending");
  s = good;
  for (pipert::StreamComm &c : s.comms)
    if (c.pair)
      c.channel = 2;
  refused(s, "a pair is a sender and another receiver");
  s = good;
  for (pipert::StreamComm &c : s.comms)
    if (!c.pair)
      c.groups.clear();
  refused(s, "a group communicator carries groups");
  s = good;
  s.comms[0].members.push_back(9);
  refused(s, "member 9 is not a rank of 2");
  // Strided members (a data-parallel group's form): they round-trip, and
  // must be ranks and hold this one.
  s = good;
  for (pipert::StreamComm &c : s.comms)
    if (!c.pair) {
      c.members.clear();
      c.first = 0;
      c.stride = 1;
      c.count = 2;
    }
  pipert::Stream back;
  std::vector<uint8_t> strided = pipert::encodeStream(s);
  ASSERT_TRUE(pipert::decodeStream(strided.data(), strided.size(), "x", back)
                  .ok());
  EXPECT_TRUE(sameStream(s, back));
  for (const pipert::StreamComm &c : back.comms)
    if (!c.pair) {
      EXPECT_EQ(c.memberList(), (std::vector<int32_t>{0, 1}));
      EXPECT_TRUE(c.members.empty());
    }
  for (pipert::StreamComm &c : s.comms)
    if (!c.pair)
      c.count = 3;
  refused(s, "its 3 members from rank 0 by 1 are not ranks of 2");
  for (pipert::StreamComm &c : s.comms)
    if (!c.pair) {
      c.count = 1;
      c.first = 0;
    }
  refused(s, "rank 1 is not a member");
  // More split rounds than a plan may have: refused before anything is
  // sized by them.
  s = good;
  s.commRounds = pipert::kMaxCommRounds + 1;
  refused(s, "more than the 4096 a plan may have");
  // A strided group of (nearly) every int32 rank is not listed to check it.
  s = good;
  s.ranks = INT32_MAX;
  for (pipert::StreamComm &c : s.comms)
    if (!c.pair) {
      c.members.clear();
      c.first = 0;
      c.stride = 1;
      c.count = INT32_MAX;
    }
  EXPECT_EQ(decodeError(pipert::encodeStream(s)), "");
}

// Tests the expected writers appendWithUses derives: earlier in the step,
// the previous step, the host, and a recv's implied write.
TEST(StreamBuilder, ExpectedWritersFollowProgramOrder) {
  using pipert::BufferUse;
  pipert::Stream s;
  s.ranks = 2;
  s.arenaBytes = 4096;
  auto instr = [](Opcode op, int32_t req = -1) {
    pipert::Instr in;
    in.op = in.sub = op;
    in.chunk = 0;
    in.mb = 0;
    in.req = req;
    in.peer = op == Opcode::Fwd || op == Opcode::OptStep ? -1 : 1;
    return in;
  };
  std::vector<pipert::Instr> instrs = {
      instr(Opcode::RecvAct, 0), instr(Opcode::Wait, 0), instr(Opcode::Fwd),
      instr(Opcode::OptStep)};
  instrs[1].sub = Opcode::RecvAct;
  instrs[0].offset = 0;
  instrs[0].bytes = 64;
  // buffer 1: the recv'd activation; 2: the output; 3: a weight; 4: a
  // constant nobody writes.
  std::vector<std::vector<BufferUse>> uses = {
      {{1, 0, 64, true}},
      {},
      {{1, 0, 64, false}, {3, 128, 64, false}, {4, 256, 64, false},
       {2, 64, 64, true}},
      {{3, 128, 64, false}, {3, 128, 64, true}}};
  pipert::appendWithUses(s, instrs, uses);
  ASSERT_EQ(s.instrs.size(), 4u);
  EXPECT_EQ(s.instrs[0].accessCount, 0u); // the recv's write is implied
  const pipert::Access *fwd = &s.accesses[s.instrs[2].firstAccess];
  EXPECT_EQ(fwd[0].writer, 0);                 // the recv, this step
  EXPECT_EQ(fwd[1].writer, 3);                 // opt_step, previous step
  EXPECT_EQ(fwd[2].writer, pipert::kHostWriter); // never written
  EXPECT_TRUE(fwd[3].write);
  const pipert::Access *opt = &s.accesses[s.instrs[3].firstAccess];
  EXPECT_EQ(opt[0].writer, 3); // itself, in the previous step
  pipert::Status st = pipert::validateStream(s);
  EXPECT_TRUE(st.ok()) << st.message();
}
