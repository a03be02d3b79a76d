//===- PlanStreams.cpp - a plan folder's stream of a rank -----------------===//

#include "pipert/PlanStreams.h"

#include "pipert/CommLayout.h"
#include "pipert/PlanAbi.h"

#include <algorithm>
#include <cstdint>
#include <set>

namespace pipert {

Status relocateStream(const Stream &zero, int32_t replica, int32_t P,
                      int32_t replicas, const ReplicaRelocation &rel,
                      Stream &out) {
  const int32_t G = rel.groups;
  auto fail = [&](const std::string &what) {
    return Status::failure("moving rank " + std::to_string(zero.rank) +
                               "'s stream into replica " +
                               std::to_string(replica) + ": " + what,
                           zero.rank);
  };
  if (zero.rank < 0 || zero.rank >= P || replica < 0 || replica >= replicas)
    return fail("not a stream of replica 0 of " + std::to_string(replicas));
  const int32_t shift = replica * P;
  // Replica 0's own groups move with it; the data-parallel groups (D G
  // and above) span the replicas and stay.
  auto group = [&](int32_t g) -> int32_t {
    if (g >= 0 && g < G)
      return g + replica * G;
    return g;
  };
  out = zero;
  out.rank = zero.rank + shift;
  for (Instr &in : out.instrs) {
    if (isPostOp(in.op) || in.op == Opcode::Wait) {
      if (in.peer < 0 || in.peer >= P)
        return fail(describe(in) + " names rank " + std::to_string(in.peer) +
                    ", outside replica 0");
      in.peer += shift;
    }
    if (isCollectiveOp(in.op)) {
      if (in.chunk >= G && in.chunk < replicas * G)
        return fail(describe(in) + " uses group " + std::to_string(in.chunk) +
                    ", another replica's");
      const bool local = in.chunk < G;
      in.chunk = group(in.chunk);
      if (local)
        for (uint32_t k = 0; k < in.partCount; ++k)
          out.parts[size_t(in.firstPart + k)].rank += shift;
    }
  }
  for (StreamComm &c : out.comms) {
    bool local = true;
    for (int32_t k = 0; k < c.memberCount() && local; ++k)
      local = c.member(k) >= 0 && c.member(k) < P;
    if (!local)
      continue; // a data-parallel group's: the same in every replica
    const int64_t id =
        int64_t(c.id) +
        int64_t(replica) * (c.pair ? rel.pairComms : rel.groupComms);
    if (id > INT32_MAX)
      return fail("communicator " + std::to_string(c.id) +
                  " moves past the largest id");
    c.id = int32_t(id);
    for (int32_t &m : c.members)
      m += shift;
    if (c.members.empty())
      c.first += shift;
    for (int32_t &g : c.groups)
      g = group(g);
  }
  std::stable_sort(out.comms.begin(), out.comms.end(),
                   [](const StreamComm &a, const StreamComm &b) {
                     return a.id < b.id;
                   });
  return Status::success();
}

Status replicaRelocationOf(const CommLayout &layout, int32_t P,
                           int32_t replicas, int32_t pipelineGroups,
                           ReplicaRelocation &rel) {
  rel = ReplicaRelocation{};
  const int32_t G = pipelineGroups;
  // The replica whose ranks a communicator's members all are, or -1 (a
  // data-parallel group's).
  auto replicaOf = [&](const CommSpec &c) -> int32_t {
    if (c.members.empty())
      return -1;
    const int32_t k = c.members[0] / P;
    for (int32_t m : c.members)
      if (m / P != k)
        return -1;
    return k;
  };
  int32_t groupComms = 0, pairComms = 0;
  for (const CommSpec &c : layout.comms)
    if (replicaOf(c) == 0)
      ++(c.pair ? pairComms : groupComms);
  // What relocateStream assumes, checked on the layout: replica k's
  // communicators are replica 0's, numbered k groupComms (k pairComms)
  // later, their members k P ranks and their groups k G later, split in
  // the same round; the others carry data-parallel groups only.
  for (const CommSpec &c : layout.comms) {
    const int32_t k = replicaOf(c);
    auto fail = [&](const std::string &why) {
      return Status::failure("internal error: communicator " +
                             std::to_string(c.id) + " (" +
                             (c.pair ? std::string("a pair")
                                     : groupsName(c)) +
                             ") " + why);
    };
    if (k < 0) {
      for (int32_t g : c.groups)
        if (g < replicas * G)
          return fail("spans replicas but carries a replica's group");
      continue;
    }
    const int64_t base =
        int64_t(c.id) - int64_t(k) * (c.pair ? pairComms : groupComms);
    if (base < 0 || base >= int64_t(layout.comms.size()))
      return fail("is not replica 0's moved");
    const CommSpec &o = layout.comms[size_t(base)];
    bool same = replicaOf(o) == 0 && o.pair == c.pair &&
                o.channel == c.channel && o.round == c.round &&
                o.members.size() == c.members.size() &&
                o.groups.size() == c.groups.size();
    for (size_t i = 0; same && i < o.members.size(); ++i)
      same = int64_t(o.members[i]) + int64_t(k) * P == c.members[i];
    for (size_t i = 0; same && i < o.groups.size(); ++i)
      same = int64_t(o.groups[i]) + int64_t(k) * G == c.groups[i];
    if (!same)
      return fail("is not replica 0's communicator " + std::to_string(base) +
                  " moved into replica " + std::to_string(k));
  }
  rel.groups = G;
  rel.groupComms = groupComms;
  rel.pairComms = pairComms;
  rel.active = true;
  return Status::success();
}

Status attachReplicaZeroComms(std::vector<Stream> &zero,
                              const std::vector<std::vector<int32_t>> &groups,
                              int32_t replicas, int32_t pipelineGroups,
                              ReplicaRelocation &rel) {
  rel = ReplicaRelocation{};
  CommLayout layout;
  if (Status st = planReplicatedComms(zero, groups, replicas, pipelineGroups,
                                      layout);
      !st.ok())
    return st;
  if (Status st = proveCommLayout(zero, layout); !st.ok())
    return st;
  if (Status st = replicaRelocationOf(layout, int32_t(zero.size()), replicas,
                                      pipelineGroups, rel);
      !st.ok())
    return st;
  attachLayout(zero, layout);
  return Status::success();
}

Status readPlanStream(const std::string &dir, const Manifest &m, int32_t r,
                      Stream &stream) {
  const std::string path = dir + "/" + m.rankInfo[size_t(r)].stream;
  Stream file;
  if (Status s = readStreamFile(path, file); !s.ok())
    return s;
  // One plan, one identity (docs/RUNTIME.md): a stream of another plan
  // or an edited one is refused before anything runs.
  std::string id = file.planId ? planIdText(file.planId) : "";
  if (id != m.planId)
    return Status::failure(
        path + " belongs to plan " + (id.empty() ? "(none)" : id) + ", but " +
            dir + "/manifest.json is plan " +
            (m.planId.empty() ? "(none)" : m.planId) +
            ": the folder mixes files of two plans (run pipec compile "
            "again)",
        r);
  uint64_t want = m.rankInfo[size_t(r)].streamChecksum;
  if (want && file.checksum != want)
    return Status::failure(path + ": checksum " +
                               planIdText(file.checksum) + ", but " + dir +
                               "/manifest.json records " + planIdText(want) +
                               ": the stream was edited or replaced (run "
                               "pipec compile again)",
                           r);
  const int32_t P = m.pipelineRanks();
  if (!m.relocation.active || r < P) {
    stream = std::move(file);
    return Status::success();
  }
  if (Status s = relocateStream(file, m.replicaOf(r), P, m.replicas,
                                m.relocation, stream);
      !s.ok())
    return Status::failure(path + ": " + s.message(), r);
  // What the file said was checked when it was read; what moving it
  // made is checked again (every reader gets a valid stream).
  if (Status s = validateStream(stream); !s.ok())
    return Status::failure(path + " moved into replica " +
                               std::to_string(m.replicaOf(r)) + ": " +
                               s.message(),
                           r);
  return Status::success();
}

} // namespace pipert
