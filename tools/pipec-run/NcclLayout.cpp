//===- NcclLayout.cpp - the communicators of a plan, printed and proven ---===//

#include "tools/pipec-run/NcclLayout.h"

#include "pipert/CommLayout.h"
#include "pipert/Manifest.h"
#include "pipert/PlanStreams.h"

#include <algorithm>
#include <cstdio>

namespace pipecrun {

/// Plans of more ranks than this (with replicas running replica 0's
/// streams) are read and proven as replica 0's streams.
constexpr int64_t kWholeLayoutRanks = 4096;

int printNcclLayout(const std::string &dir) {
  auto fail = [](const std::string &m) {
    std::fprintf(stderr, "pipec-run: error: --nccl-layout: %s\n", m.c_str());
    return 1;
  };
  pipert::Manifest m;
  if (pipert::Status s = pipert::readManifestFile(dir + "/manifest.json", m);
      !s.ok())
    return fail(s.message());
  // A plan of many replicas is proven on replica 0's streams, which every
  // replica runs moved into it (PlanStreams.h): the whole would not fit
  // (220,032 streams of GPT-3 175B took 24 GB before failing).
  const int32_t P = m.pipelineRanks();
  const bool symmetric =
      m.relocation.active && m.ranks > kWholeLayoutRanks;
  const int32_t read = symmetric ? P : m.ranks;
  std::vector<pipert::Stream> streams(static_cast<size_t>(read));
  int64_t operations = 0;
  for (int32_t r = 0; r < read; ++r) {
    if (pipert::Status s =
            pipert::readPlanStream(dir, m, r, streams[size_t(r)]);
        !s.ok())
      return fail(s.message());
    if (streams[size_t(r)].rank != r || streams[size_t(r)].ranks != m.ranks)
      return fail(m.rankInfo[size_t(r)].stream + ": the stream of rank " +
                  std::to_string(streams[size_t(r)].rank) + " of " +
                  std::to_string(streams[size_t(r)].ranks) +
                  ", the manifest's rank " + std::to_string(r) + " of " +
                  std::to_string(m.ranks));
    for (const pipert::Instr &in : streams[size_t(r)].instrs)
      operations += pipert::isPostOp(in.op) || pipert::isCollectiveOp(in.op);
  }
  if (symmetric)
    operations *= m.replicas;
  pipert::CommLayout layout;
  if (pipert::Status s =
          symmetric ? pipert::planReplicatedComms(streams, m.groups,
                                                  m.replicas,
                                                  m.relocation.groups, layout)
                    : pipert::planComms(streams, m.groups, layout);
      !s.ok())
    return fail(s.message());
  if (pipert::Status s = pipert::checkCommLayout(streams, layout); !s.ok())
    return fail("the streams cannot run on NCCL: " + s.message());
  if (symmetric) {
    // The relocation the manifest states is the one this layout has.
    pipert::ReplicaRelocation rel;
    if (pipert::Status s = pipert::replicaRelocationOf(
            layout, P, m.replicas, m.relocation.groups, rel);
        !s.ok())
      return fail(s.message());
    if (rel.groupComms != m.relocation.groupComms ||
        rel.pairComms != m.relocation.pairComms)
      return fail("manifest.json: replica_streams gives " +
                  std::to_string(m.relocation.groupComms) + " group and " +
                  std::to_string(m.relocation.pairComms) +
                  " pair communicators a replica; its streams make " +
                  std::to_string(rel.groupComms) + " and " +
                  std::to_string(rel.pairComms));
  }
  // What the processes will use: each stream's own table, which the
  // compiler wrote; it must be this layout's part of that rank.
  for (const pipert::Stream &s : streams) {
    std::vector<int32_t> want = layout.commsOf(s.rank);
    bool same = s.commRounds == layout.rounds && s.comms.size() == want.size();
    for (size_t k = 0; same && k < want.size(); ++k) {
      const pipert::CommSpec &c = layout.comms[size_t(want[k])];
      const pipert::StreamComm &t = s.comms[k];
      same = t.id == c.id && t.round == c.round && t.pair == c.pair &&
             t.memberList() == c.members &&
             (c.pair ? t.channel == uint8_t(c.channel) : t.groups == c.groups);
    }
    if (!same)
      return fail(m.rankInfo[size_t(s.rank)].stream +
                  ": its communicators' table is not this layout's (" +
                  std::to_string(s.comms.size()) + " communicators in " +
                  std::to_string(s.commRounds) + " rounds, the layout gives "
                  "rank " + std::to_string(s.rank) + " " +
                  std::to_string(want.size()) + " in " +
                  std::to_string(layout.rounds) + ")");
  }
  int64_t pairs = 0, groups = 0;
  for (const pipert::CommSpec &c : layout.comms) {
    pairs += c.pair;
    groups += int64_t(c.groups.size());
  }
  std::printf("nccl layout of %s: %d ranks, %zu communicators (pairs %lld, "
              "group communicators %lld for groups %lld) made by %d "
              "ncclCommSplit rounds\n",
              dir.c_str(), m.ranks, layout.comms.size(),
              static_cast<long long>(pairs),
              static_cast<long long>(int64_t(layout.comms.size()) - pairs),
              static_cast<long long>(groups), layout.rounds);
  // Each round's communicators; a long round is cut after 6.
  for (int32_t k = 0; k < layout.rounds; ++k) {
    std::vector<const pipert::CommSpec *> in;
    for (const pipert::CommSpec &c : layout.comms)
      if (c.round == k)
        in.push_back(&c);
    std::printf("  round %d (%zu):", k, in.size());
    for (size_t i = 0; i < in.size() && i < 6; ++i) {
      const pipert::CommSpec &c = *in[i];
      if (c.pair) {
        std::printf(" %s %d->%d",
                    c.channel == pipert::Channel::Activation ? "act" : "grad",
                    c.members[0], c.members[1]);
      } else {
        std::printf(" %s [", pipert::groupsName(c).c_str());
        for (size_t j = 0; j < c.members.size() && j < 8; ++j)
          std::printf("%s%d", j ? "," : "", c.members[j]);
        std::printf("%s]", c.members.size() > 8 ? ",..." : "");
      }
      std::printf(i + 1 < in.size() ? "," : "");
    }
    std::printf("%s\n", in.size() > 6 ? " ..." : "");
  }
  int32_t most = 0, who = 0;
  for (int32_t r = 0; r < (symmetric ? P : m.ranks); ++r) {
    int32_t n = int32_t(layout.commsOf(r).size());
    if (n > most)
      most = n, who = r;
  }
  std::printf("most communicators of one rank: %d (rank %d)\n", most, who);
  std::printf("proven: on every communicator, both sides' %lld operations "
              "meet in one order with the same chunk, micro-batch and "
              "bytes, or the same collectives\n",
              static_cast<long long>(operations));
  if (symmetric)
    std::printf("replicas: the %d ranks past replica 0 run its %d streams "
                "moved into their replica, so replica 0's streams were "
                "read and proven (more than %lld ranks: every stream would "
                "not fit)\n",
                m.ranks - P, P, static_cast<long long>(kWholeLayoutRanks));
  std::printf("every rank's stream carries its part of this layout (the "
              "compiler's): a process reads its own stream only\n");
  return 0;
}

} // namespace pipecrun
