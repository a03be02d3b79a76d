//===- DeviceCollectives.cpp - cuda-local's collectives on the device -----===//

#include "pipert/DeviceCollectives.h"

#include <algorithm>

namespace pipert {

namespace {

std::string describeKey(Opcode op, int32_t group, int32_t bucket) {
  return std::string(opcodeName(op)) + " of group " + std::to_string(group) +
         " bucket " + std::to_string(bucket);
}

bool sameParts(const std::vector<Part> &planned, const Part *parts,
               int32_t partCount) {
  if (int32_t(planned.size()) != partCount)
    return false;
  for (int32_t k = 0; k < partCount; ++k)
    if (planned[size_t(k)].rank != parts[k].rank ||
        planned[size_t(k)].offset != parts[k].offset ||
        planned[size_t(k)].bytes != parts[k].bytes)
      return false;
  return true;
}

} // namespace

Status DeviceCollectives::create(
    const std::vector<Stream> &streams,
    const std::vector<std::vector<int32_t>> &groupRanks, DeviceQueues &device,
    std::unique_ptr<DeviceCollectives> &out) {
  std::unique_ptr<DeviceCollectives> dc(new DeviceCollectives(device));
  const int32_t ranks = int32_t(streams.size());
  for (const std::vector<int32_t> &ranksOf : groupRanks) {
    Group g;
    g.memberIndex.assign(size_t(ranks), -1);
    for (size_t i = 0; i < ranksOf.size(); ++i) {
      if (ranksOf[i] < 0 || ranksOf[i] >= ranks)
        return Status::failure("device collectives: a group names rank " +
                               std::to_string(ranksOf[i]));
      Member m;
      m.rank = ranksOf[i];
      g.members.push_back(m);
      g.memberIndex[size_t(ranksOf[i])] = int32_t(i);
    }
    g.half.assign(g.members.size(), nullptr);
    g.last.assign(g.members.size(), nullptr);
    g.after.reserve(g.members.size() + 2);
    dc->groups.push_back(std::move(g));
  }

  // One plan per collective, from the first stream that holds it (the
  // members' streams hold the same; the transport checks each call).
  for (const Stream &s : streams)
    for (size_t i = 0; i < s.instrs.size(); ++i) {
      const Instr &in = s.instrs[i];
      if (!isCollectiveOp(in.op))
        continue;
      const std::string where = "device collectives: rank " +
                                std::to_string(s.rank) + " #" +
                                std::to_string(i) + " " +
                                describeKey(in.op, in.chunk, in.mb);
      if (in.chunk < 0 || size_t(in.chunk) >= dc->groups.size())
        return Status::failure(where + ": no such group");
      Key key{int32_t(in.op), in.chunk, in.mb};
      if (dc->collectives.count(key))
        continue;
      const Group &g = dc->groups[size_t(in.chunk)];
      std::vector<int32_t> members;
      for (const Member &m : g.members)
        members.push_back(m.rank);
      const int64_t e = dtypeBytes(in.dtype);
      Collective c;
      c.count = e > 0 ? in.bytes / e : 0;
      c.dtype = in.dtype;
      const Part *parts = s.parts.data() + in.firstPart;
      c.parts.assign(parts, parts + in.partCount);
      c.plans.resize(members.size());
      for (size_t m = 0; m < members.size(); ++m)
        if (Status p = planCollective(in.op, members, members[m], c.count,
                                      in.dtype, parts, int32_t(in.partCount),
                                      c.plans[m]);
            !p.ok())
          return Status::failure(where + ": " + p.message());
      if (Status p = matchPhase(c.plans, &CollectivePlan::gather, "gather",
                                c.gather);
          !p.ok())
        return Status::failure(where + ": " + p.message());
      if (Status p = matchPhase(c.plans, &CollectivePlan::spread, "spread",
                                c.spread);
          !p.ok())
        return Status::failure(where + ": " + p.message());
      // A receiver's last move of a phase records its event.
      auto lastInto = [&](const std::vector<Move> &moves,
                          std::vector<uint8_t> &last) {
        last.assign(moves.size(), 0);
        std::vector<bool> seen(members.size(), false);
        for (size_t k = moves.size(); k-- > 0;)
          if (!seen[size_t(moves[k].to)])
            seen[size_t(moves[k].to)] = true, last[k] = 1;
      };
      lastInto(c.gather, c.lastGather);
      lastInto(c.spread, c.lastSpread);
      for (size_t m = 0; m < members.size(); ++m)
        dc->groups[size_t(in.chunk)].members[m].stagingBytes = std::max(
            dc->groups[size_t(in.chunk)].members[m].stagingBytes,
            c.plans[m].stagingBytes);
      dc->collectives.emplace(key, std::move(c));
    }

  // Events and staging for the groups that have collectives only.
  std::vector<bool> used(dc->groups.size(), false);
  for (const auto &[key, c] : dc->collectives)
    used[size_t(std::get<1>(key))] = true;
  for (size_t gi = 0; gi < dc->groups.size(); ++gi)
    for (Member &m : dc->groups[gi].members) {
      if (!used[gi])
        continue;
      const int32_t where = device.deviceOf(m.rank);
      for (DeviceQueues::Event *e : {&m.posted, &m.gathered, &m.summed,
                                     &m.done})
        if (Status st = device.createEvent(where, *e); !st.ok())
          return Status::failure("device collectives: rank " +
                                     std::to_string(m.rank) + ": " +
                                     st.message(),
                                 m.rank);
      if (m.stagingBytes > 0)
        if (Status st = device.allocate(m.rank, m.stagingBytes, m.staging);
            !st.ok())
          return Status::failure("device collectives: rank " +
                                     std::to_string(m.rank) + ": staging of " +
                                     std::to_string(m.stagingBytes) +
                                     " bytes: " + st.message(),
                                 m.rank);
    }
  out = std::move(dc);
  return Status::success();
}

DeviceCollectives::~DeviceCollectives() {
  for (Group &g : groups)
    for (Member &m : g.members) {
      for (DeviceQueues::Event e : {m.posted, m.gathered, m.summed, m.done})
        if (e)
          device.destroyEvent(e);
      if (m.staging)
        device.release(m.rank, m.staging);
    }
}

int64_t DeviceCollectives::stagingBytes() const {
  int64_t n = 0;
  for (const Group &g : groups)
    for (const Member &m : g.members)
      n += m.stagingBytes;
  return n;
}

Status DeviceCollectives::post(int32_t rank, int32_t group) {
  if (group < 0 || size_t(group) >= groups.size() || rank < 0 ||
      size_t(rank) >= groups[size_t(group)].memberIndex.size() ||
      groups[size_t(group)].memberIndex[size_t(rank)] < 0)
    return Status::failure("rank " + std::to_string(rank) +
                               " is not a member of group " +
                               std::to_string(group),
                           rank);
  Group &g = groups[size_t(group)];
  return device.recordCompute(
      rank, g.members[size_t(g.memberIndex[size_t(rank)])].posted);
}

Status DeviceCollectives::enqueue(Opcode op, int32_t group, int32_t bucket,
                                  int64_t count, DType dtype,
                                  const Part *parts, int32_t partCount,
                                  const std::vector<void *> &operands) {
  auto it = collectives.find(Key{int32_t(op), group, bucket});
  if (it == collectives.end())
    return Status::failure(describeKey(op, group, bucket) +
                           " is in no stream of this process");
  const Collective &c = it->second;
  if (c.count != count || c.dtype != dtype ||
      !sameParts(c.parts, parts, partCount))
    return Status::failure(describeKey(op, group, bucket) + ": " +
                           std::to_string(count) +
                           " elements or parts other than the stream's " +
                           std::to_string(c.count));
  Group &g = groups[size_t(group)];
  const int32_t members = int32_t(g.members.size());
  if (int32_t(operands.size()) != members)
    return Status::failure(describeKey(op, group, bucket) +
                           ": an operand per member");
  auto at = [&](int32_t m, bool staged, int64_t offset) {
    return (staged ? static_cast<uint8_t *>(g.members[size_t(m)].staging)
                   : static_cast<uint8_t *>(operands[size_t(m)])) +
           offset;
  };
  auto move = [&](const Move &mv, bool records, DeviceQueues::Event event,
                  bool afterHalf) {
    const Member &to = g.members[size_t(mv.to)];
    g.after.clear();
    g.after.push_back(g.members[size_t(mv.from)].posted);
    g.after.push_back(to.posted);
    if (afterHalf)
      for (DeviceQueues::Event e : g.half)
        if (e)
          g.after.push_back(e);
    return device.transfer(to.rank, g.after.data(), int32_t(g.after.size()),
                           at(mv.to, mv.toStaged, mv.toOffset),
                           at(mv.from, mv.fromStaged, mv.fromOffset),
                           mv.bytes, &event, records ? 1 : 0);
  };

  // A phase's moves; each receiver's last records its `event`, which
  // becomes its g.last.
  auto phase = [&](const std::vector<Move> &moves,
                   const std::vector<uint8_t> &lastInto,
                   DeviceQueues::Event Member::*event, bool afterHalf) {
    for (size_t k = 0; k < moves.size(); ++k) {
      const Member &to = g.members[size_t(moves[k].to)];
      if (Status s = move(moves[k], lastInto[k], to.*event, afterHalf);
          !s.ok())
        return s;
      if (lastInto[k])
        g.last[size_t(moves[k].to)] = to.*event;
    }
    return Status::success();
  };

  // Gather; g.last[m]: m's gathered, if anything came to m.
  std::fill(g.last.begin(), g.last.end(), nullptr);
  if (Status s = phase(c.gather, c.lastGather, &Member::gathered, false);
      !s.ok())
    return s;
  // Sums, after the moves into the member's staging (no move reads the
  // part of its operand it sums into: the plans send the others' shards);
  // g.half[m]: m's end of the first half.
  g.half = g.last;
  for (int32_t m = 0; m < members; ++m) {
    const CollectivePlan &plan = c.plans[size_t(m)];
    if (plan.sums.empty())
      continue;
    Member &me = g.members[size_t(m)];
    if (g.last[size_t(m)])
      if (Status s = device.computeWaits(me.rank, g.last[size_t(m)]); !s.ok())
        return s;
    for (const OrderedSum &sum : plan.sums)
      if (Status s = device.sum(me.rank, dtype, operands[size_t(m)],
                                me.staging, sum, members, m);
          !s.ok())
        return s;
    if (Status s = device.recordCompute(me.rank, me.summed); !s.ok())
      return s;
    g.half[size_t(m)] = me.summed;
  }
  // Spread, after every member's first half; g.last[m]: m's last event.
  g.last = g.half;
  if (Status s = phase(c.spread, c.lastSpread, &Member::done, true); !s.ok())
    return s;
  // Every member goes on after all of it.
  for (int32_t m = 0; m < members; ++m) {
    Member &me = g.members[size_t(m)];
    for (DeviceQueues::Event e : g.last)
      if (e && e != me.summed)
        if (Status s = device.computeWaits(me.rank, e); !s.ok())
          return s;
  }
  return Status::success();
}

} // namespace pipert
