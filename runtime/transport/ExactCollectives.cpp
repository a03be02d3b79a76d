//===- ExactCollectives.cpp - exchanges and sums of the exact collectives -===//

#include "pipert/ExactCollectives.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace pipert {
namespace {

Status checkOperand(int32_t members, int32_t me, int64_t count, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::F64)
    return Status::failure("an exact collective sums f32 or f64, not type " +
                           std::to_string(int(dtype)));
  if (members < 1 || me < 0 || me >= members)
    return Status::failure("member " + std::to_string(me) + " of " +
                           std::to_string(members));
  if (count < 0)
    return Status::failure("a collective of " + std::to_string(count) +
                           " elements");
  return Status::success();
}

/// The member index of each part's rank; fails on a rank outside the group
/// or a part that is not whole elements of the operand.
Status ownersOf(const std::vector<int32_t> &ranks, int64_t count, DType dtype,
                const Part *parts, int32_t partCount,
                std::vector<int32_t> &owners) {
  const int64_t e = dtypeBytes(dtype);
  owners.clear();
  for (int32_t k = 0; k < partCount; ++k) {
    const Part &p = parts[k];
    auto at = std::lower_bound(ranks.begin(), ranks.end(), p.rank);
    if (at == ranks.end() || *at != p.rank)
      return Status::failure("part " + std::to_string(k) + " belongs to rank " +
                             std::to_string(p.rank) +
                             ", which is not a member of the group");
    if (p.offset < 0 || p.bytes < 0 || p.offset % e || p.bytes % e ||
        p.offset + p.bytes > count * e)
      return Status::failure("part " + std::to_string(k) + " (" +
                             std::to_string(p.bytes) + " bytes at " +
                             std::to_string(p.offset) +
                             ") is not whole elements of the " +
                             std::to_string(count * e) + "-byte operand");
    owners.push_back(int32_t(at - ranks.begin()));
  }
  // Overlapping parts would be moved twice in one phase (on a device, by
  // transfers that race).
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (int32_t k = 0; k < partCount; ++k)
    if (parts[k].bytes > 0)
      spans.push_back({parts[k].offset, parts[k].offset + parts[k].bytes});
  std::sort(spans.begin(), spans.end());
  for (size_t k = 1; k < spans.size(); ++k)
    if (spans[k].first < spans[k - 1].second)
      return Status::failure("two parts overlap at byte " +
                             std::to_string(spans[k].first) +
                             " of the operand");
  return Status::success();
}

/// What both ZeRO plans start with: the plan emptied, the operand checked,
/// each part's owner.
Status startPartsPlan(const std::vector<int32_t> &ranks, int32_t me,
                      int64_t count, DType dtype, const Part *parts,
                      int32_t partCount, CollectivePlan &out,
                      std::vector<int32_t> &owners) {
  out = CollectivePlan{};
  if (Status s = checkOperand(int32_t(ranks.size()), me, count, dtype);
      !s.ok())
    return s;
  return ownersOf(ranks, count, dtype, parts, partCount, owners);
}

template <typename T>
void sumAs(void *operand, const uint8_t *staging, const OrderedSum &s,
           int32_t members, int32_t me) {
  const int64_t n = s.bytes / int64_t(sizeof(T));
  T *dst = reinterpret_cast<T *>(static_cast<uint8_t *>(operand) + s.offset);
  auto copyOf = [&](int32_t m) {
    return m == me ? dst
                   : reinterpret_cast<const T *>(
                         staging + s.stage + stagingSlot(m, me) * s.bytes);
  };
  for (int64_t i = 0; i < n; ++i) {
    T sum = copyOf(0)[i];
    for (int32_t m = 1; m < members; ++m)
      sum += copyOf(m)[i];
    dst[i] = sum;
  }
}

} // namespace

void sumOnHost(DType dtype, void *operand, const uint8_t *staging,
               const OrderedSum &s, int32_t members, int32_t me) {
  if (dtype == DType::F64)
    sumAs<double>(operand, staging, s, members, me);
  else
    sumAs<float>(operand, staging, s, members, me);
}

Status planAllReduce(int32_t members, int32_t me, int64_t count, DType dtype,
                     CollectivePlan &out) {
  out = CollectivePlan{};
  if (Status s = checkOperand(members, me, count, dtype); !s.ok())
    return s;
  const int64_t e = dtypeBytes(dtype);
  auto shard = [&](int32_t j, int64_t &offset, int64_t &bytes) {
    int64_t lo = count * j / members, hi = count * (j + 1) / members;
    offset = lo * e;
    bytes = (hi - lo) * e;
  };
  int64_t mine = 0, mineBytes = 0;
  shard(me, mine, mineBytes);
  for (int32_t j = 0; j < members; ++j) {
    if (j == me)
      continue;
    int64_t offset = 0, bytes = 0;
    shard(j, offset, bytes);
    if (bytes > 0)
      out.gather.push_back({j, true, false, offset, bytes});
    if (mineBytes > 0)
      out.gather.push_back(
          {j, false, true, stagingSlot(j, me) * mineBytes, mineBytes});
  }
  if (members > 1 && mineBytes > 0) {
    out.sums.push_back({mine, mineBytes, 0});
    out.stagingBytes = int64_t(members - 1) * mineBytes;
  }
  for (int32_t j = 0; j < members; ++j) {
    if (j == me)
      continue;
    int64_t offset = 0, bytes = 0;
    shard(j, offset, bytes);
    if (mineBytes > 0)
      out.spread.push_back({j, true, false, mine, mineBytes});
    if (bytes > 0)
      out.spread.push_back({j, false, false, offset, bytes});
  }
  return Status::success();
}

Status planReduceScatter(const std::vector<int32_t> &ranks, int32_t me,
                         int64_t count, DType dtype, const Part *parts,
                         int32_t partCount, CollectivePlan &out) {
  const int32_t members = int32_t(ranks.size());
  std::vector<int32_t> owners;
  if (Status s = startPartsPlan(ranks, me, count, dtype, parts, partCount,
                                out, owners);
      !s.ok())
    return s;
  for (int32_t k = 0; k < partCount; ++k) {
    const Part &p = parts[k];
    if (p.bytes == 0 || members == 1)
      continue;
    if (owners[size_t(k)] != me) {
      out.gather.push_back({owners[size_t(k)], true, false, p.offset, p.bytes});
      continue;
    }
    for (int32_t j = 0; j < members; ++j)
      if (j != me)
        out.gather.push_back({j, false, true,
                              out.stagingBytes + stagingSlot(j, me) * p.bytes,
                              p.bytes});
    out.sums.push_back({p.offset, p.bytes, out.stagingBytes});
    out.stagingBytes += int64_t(members - 1) * p.bytes;
  }
  return Status::success();
}

Status planAllGatherParts(const std::vector<int32_t> &ranks, int32_t me,
                          int64_t count, DType dtype, const Part *parts,
                          int32_t partCount, CollectivePlan &out) {
  const int32_t members = int32_t(ranks.size());
  std::vector<int32_t> owners;
  if (Status s = startPartsPlan(ranks, me, count, dtype, parts, partCount,
                                out, owners);
      !s.ok())
    return s;
  for (int32_t k = 0; k < partCount; ++k) {
    const Part &p = parts[k];
    if (p.bytes == 0)
      continue;
    int32_t o = owners[size_t(k)];
    if (o != me)
      out.gather.push_back({o, false, false, p.offset, p.bytes});
    else
      for (int32_t j = 0; j < members; ++j)
        if (j != me)
          out.gather.push_back({j, true, false, p.offset, p.bytes});
  }
  return Status::success();
}

Status planCollective(Opcode op, const std::vector<int32_t> &members,
                      int32_t rank, int64_t count, DType dtype,
                      const Part *parts, int32_t partCount,
                      CollectivePlan &out) {
  auto at = std::lower_bound(members.begin(), members.end(), rank);
  if (at == members.end() || *at != rank)
    return Status::failure("rank " + std::to_string(rank) +
                           " is not a member of the group");
  const int32_t me = int32_t(at - members.begin());
  switch (op) {
  case Opcode::AllReduce:
    return planAllReduce(int32_t(members.size()), me, count, dtype, out);
  case Opcode::ReduceScatter:
    return planReduceScatter(members, me, count, dtype, parts, partCount, out);
  case Opcode::AllGather:
    return planAllGatherParts(members, me, count, dtype, parts, partCount,
                              out);
  default:
    return Status::failure(std::string(opcodeName(op)) +
                           " is not a collective");
  }
}

Status matchPhase(const std::vector<CollectivePlan> &plans,
                  std::vector<Exchange> CollectivePlan::*which,
                  const char *name, std::vector<Move> &out) {
  out.clear();
  const int32_t members = int32_t(plans.size());
  std::vector<const Exchange *> sends, recvs;
  for (int32_t a = 0; a < members; ++a)
    for (int32_t b = 0; b < members; ++b) {
      if (a == b)
        continue;
      sends.clear();
      recvs.clear();
      for (const Exchange &x : plans[size_t(a)].*which)
        if (x.send && x.peer == b)
          sends.push_back(&x);
      for (const Exchange &x : plans[size_t(b)].*which)
        if (!x.send && x.peer == a)
          recvs.push_back(&x);
      if (sends.size() != recvs.size())
        return Status::failure(std::string(name) + ": member " +
                               std::to_string(a) + " sends " +
                               std::to_string(sends.size()) + " to member " +
                               std::to_string(b) + ", which receives " +
                               std::to_string(recvs.size()));
      for (size_t k = 0; k < sends.size(); ++k) {
        if (sends[k]->bytes != recvs[k]->bytes)
          return Status::failure(std::string(name) + ": member " +
                                 std::to_string(a) + " sends " +
                                 std::to_string(sends[k]->bytes) +
                                 " bytes, member " + std::to_string(b) +
                                 " receives " +
                                 std::to_string(recvs[k]->bytes));
        out.push_back({a, b, sends[k]->staged, recvs[k]->staged,
                       sends[k]->offset, recvs[k]->offset, sends[k]->bytes});
      }
    }
  return Status::success();
}

Status runCollectiveOnHost(const std::vector<CollectivePlan> &plans,
                           const std::vector<void *> &operands, DType dtype) {
  const int32_t members = int32_t(plans.size());
  if (operands.size() != plans.size())
    return Status::failure("a plan per operand");
  std::vector<std::vector<uint8_t>> staging(plans.size());
  for (size_t m = 0; m < plans.size(); ++m)
    staging[m].assign(size_t(plans[m].stagingBytes), 0);
  auto at = [&](int32_t m, bool staged, int64_t offset) {
    return (staged ? staging[size_t(m)].data()
                   : static_cast<uint8_t *>(operands[size_t(m)])) +
           offset;
  };
  auto phase = [&](std::vector<Exchange> CollectivePlan::*which,
                   const char *name) -> Status {
    std::vector<Move> moves;
    if (Status s = matchPhase(plans, which, name, moves); !s.ok())
      return s;
    for (const Move &mv : moves)
      std::memcpy(at(mv.to, mv.toStaged, mv.toOffset),
                  at(mv.from, mv.fromStaged, mv.fromOffset), size_t(mv.bytes));
    return Status::success();
  };
  if (Status s = phase(&CollectivePlan::gather, "gather"); !s.ok())
    return s;
  for (int32_t m = 0; m < members; ++m)
    for (const OrderedSum &s : plans[size_t(m)].sums)
      sumOnHost(dtype, operands[size_t(m)], staging[size_t(m)].data(), s,
                members, m);
  return phase(&CollectivePlan::spread, "spread");
}

} // namespace pipert
