//===- Stream.cpp - a rank's instruction stream, in memory and on disk ----===//

#include "pipert/Stream.h"

#include "pipert/AtomicFile.h"
#include "pipert/Fnv.h"
#include "pipert/InputFile.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

namespace pipert {

namespace {
constexpr char kMagic[8] = {'P', 'I', 'P', 'E', 'S', 'T', 'R', 'M'};
constexpr size_t kHeaderBytes = 80;
constexpr size_t kInstrBytes = 44;
constexpr size_t kAccessBytes = 24;
constexpr size_t kPartBytes = 24;
/// A communicator record's fixed part; its groups and members follow.
constexpr size_t kCommBytes = 20;

/// Little-endian writer into a preallocated byte vector.
struct Writer {
  std::vector<uint8_t> &out;
  void u8(uint8_t v) { out.push_back(v); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i)
      out.push_back(uint8_t(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i)
      out.push_back(uint8_t(v >> (8 * i)));
  }
  void i32(int32_t v) { u32(uint32_t(v)); }
  void i64(int64_t v) { u64(uint64_t(v)); }
};

uint32_t getU32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}
uint64_t getU64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

/// FNV-1a over the header (all but the checksum itself: bytes 48-55) and
/// all records: a flipped bit anywhere is reported as corruption rather
/// than executed as another stream.
uint64_t checksum(const uint8_t *file, size_t size) {
  uint64_t h = fnv1a(file, 48);
  h = fnv1a(file + 56, kHeaderBytes - 56, h);
  h = fnv1a(file + kHeaderBytes, size - kHeaderBytes, h);
  return h;
}
} // namespace

int64_t dtypeBytes(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return 4;
  case DType::F64:
    return 8;
  default:
    return 0;
  }
}

std::vector<int32_t> StreamComm::memberList() const {
  if (!members.empty())
    return members;
  std::vector<int32_t> out(static_cast<size_t>(std::max(count, 0)));
  for (int32_t k = 0; k < count; ++k)
    out[size_t(k)] = first + k * stride;
  return out;
}

void Stream::append(Instr instr, const std::vector<Access> &instrAccesses,
                    const std::vector<Part> &instrParts) {
  instr.firstAccess = uint32_t(accesses.size());
  instr.accessCount = uint32_t(instrAccesses.size());
  accesses.insert(accesses.end(), instrAccesses.begin(), instrAccesses.end());
  instr.firstPart = uint32_t(parts.size());
  instr.partCount = uint32_t(instrParts.size());
  parts.insert(parts.end(), instrParts.begin(), instrParts.end());
  instrs.push_back(instr);
}

bool isPostOp(Opcode op) {
  return op == Opcode::RecvAct || op == Opcode::RecvGrad ||
         op == Opcode::SendAct || op == Opcode::SendGrad;
}

const char *opcodeName(Opcode op) {
  static const char *const names[] = {"fwd",      "bwd_b",    "bwd_w",
                                      "recv_act", "recv_grad", "send_act",
                                      "send_grad", "wait",     "allreduce",
                                      "opt_step", "reduce_scatter",
                                      "all_gather"};
  return uint8_t(op) < kOpcodeCount ? names[uint8_t(op)] : "invalid";
}

std::string describe(const Instr &in) {
  std::string s;
  auto post = [&](Opcode op) {
    bool send = op == Opcode::SendAct || op == Opcode::SendGrad;
    return std::string(opcodeName(op)) + (send ? " to " : " from ") +
           std::to_string(in.peer) + ", chunk " + std::to_string(in.chunk) +
           ", mb " + std::to_string(in.mb);
  };
  switch (in.op) {
  case Opcode::Fwd:
  case Opcode::BwdB:
  case Opcode::BwdW:
    return std::string(opcodeName(in.op)) + "(chunk " +
           std::to_string(in.chunk) + ", mb " + std::to_string(in.mb) + ")";
  case Opcode::OptStep:
    return "opt_step";
  case Opcode::AllReduce:
  case Opcode::ReduceScatter:
  case Opcode::AllGather:
    return std::string(opcodeName(in.op)) + "(group " +
           std::to_string(in.chunk) + ", bucket " + std::to_string(in.mb) +
           ")";
  case Opcode::Wait:
    return "wait(" + post(in.sub) + ") [req " + std::to_string(in.req) + "]";
  default:
    if (isPostOp(in.op))
      return post(in.op) + " [req " + std::to_string(in.req) + "]";
    return "invalid opcode " + std::to_string(int(in.op));
  }
}

/// The communicators' table: ids ascending, one communicator a round, the
/// rank a member of each, a pair two ranks, a group's members ascending.
static Status validateComms(const Stream &s) {
  if (s.commRounds < 0 || s.commRounds > kMaxCommRounds ||
      s.comms.size() > size_t(s.commRounds))
    return Status::failure("stream of rank " + std::to_string(s.rank) + ": " +
                               std::to_string(s.comms.size()) +
                               " communicators in " +
                               std::to_string(s.commRounds) +
                               " split rounds (at most one a round)",
                           s.rank);
  std::vector<char> roundTaken(size_t(s.commRounds), 0);
  for (size_t c = 0; c < s.comms.size(); ++c) {
    const StreamComm &k = s.comms[c];
    auto fail = [&](const std::string &what) {
      return Status::failure("stream of rank " + std::to_string(s.rank) +
                                 ": communicator " + std::to_string(k.id) +
                                 ": " + what,
                             s.rank);
    };
    if (k.id < 0 || (c > 0 && k.id <= s.comms[c - 1].id))
      return fail("ids must be non-negative and ascending");
    if (k.round < 0 || k.round >= s.commRounds || roundTaken[size_t(k.round)])
      return fail("round " + std::to_string(k.round) +
                  " is outside the plan's " + std::to_string(s.commRounds) +
                  " or holds another of this rank's communicators");
    roundTaken[size_t(k.round)] = 1;
    if (k.members.empty() &&
        (k.count < 1 || k.stride < 1 || k.first < 0 ||
         int64_t(k.first) + int64_t(k.count - 1) * k.stride >= s.ranks))
      return fail("its " + std::to_string(k.count) + " members from rank " +
                  std::to_string(k.first) + " by " +
                  std::to_string(k.stride) + " are not ranks of " +
                  std::to_string(s.ranks));
    // Strided members are ranks, ascending and distinct once the range
    // holds (never listed here: a crafted count must not allocate).
    for (int32_t m : k.members)
      if (m < 0 || m >= s.ranks)
        return fail("member " + std::to_string(m) + " is not a rank of " +
                    std::to_string(s.ranks));
    const bool member =
        k.members.empty()
            ? s.rank >= k.first && (s.rank - k.first) % k.stride == 0 &&
                  (s.rank - k.first) / k.stride < k.count
            : std::count(k.members.begin(), k.members.end(), s.rank) == 1;
    if (!member)
      return fail("rank " + std::to_string(s.rank) + " is not a member");
    if (k.pair) {
      if (k.members.size() != 2 || k.members[0] == k.members[1] ||
          !k.groups.empty() || k.channel > 1)
        return fail("a pair is a sender and another receiver on channel 0 "
                    "or 1, with no groups");
      continue;
    }
    if (k.groups.empty() || k.channel != 0 ||
        !std::is_sorted(k.members.begin(), k.members.end()) ||
        std::adjacent_find(k.members.begin(), k.members.end()) !=
            k.members.end())
      return fail("a group communicator carries groups, its members "
                  "ascending and distinct");
    for (size_t g = 0; g < k.groups.size(); ++g)
      if (k.groups[g] < 0 || (g > 0 && k.groups[g] <= k.groups[g - 1]))
        return fail("its groups must be non-negative and ascending");
  }
  return Status::success();
}

Status validateStream(const Stream &s) {
  auto where = [&](size_t i) {
    return "rank " + std::to_string(s.rank) + " #" + std::to_string(i) + " " +
           describe(s.instrs[i]) + ": ";
  };
  if (s.ranks < 1 || s.rank < 0 || s.rank >= s.ranks)
    return Status::failure("stream: rank " + std::to_string(s.rank) +
                           " is outside [0, " + std::to_string(s.ranks) + ")");
  if (s.microbatches < 1 || s.arenaBytes < 0)
    return Status::failure("stream of rank " + std::to_string(s.rank) +
                               ": bad header (microbatches " +
                               std::to_string(s.microbatches) + ", arena " +
                               std::to_string(s.arenaBytes) + " bytes)",
                           s.rank);
  auto inArena = [&](int64_t off, int64_t bytes) {
    return off >= 0 && bytes > 0 && bytes <= s.arenaBytes &&
           off <= s.arenaBytes - bytes;
  };
  const size_t n = s.instrs.size();
  // postedAt[req]: the post's index; waited[req]: already waited.
  std::vector<int64_t> postedAt(n, -1);
  std::vector<char> waited(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const Instr &in = s.instrs[i];
    auto fail = [&](const std::string &what) {
      return Status::failure(where(i) + what, s.rank, int64_t(i));
    };
    if (uint8_t(in.op) >= kOpcodeCount || uint8_t(in.sub) >= kOpcodeCount)
      return Status::failure("rank " + std::to_string(s.rank) + " #" +
                                 std::to_string(i) + ": invalid opcode " +
                                 std::to_string(int(in.op)),
                             s.rank, int64_t(i));
    if (uint8_t(in.dtype) > uint8_t(DType::F64))
      return fail("invalid dtype " + std::to_string(int(in.dtype)));
    if (uint64_t(in.firstAccess) + in.accessCount > s.accesses.size())
      return fail("its accesses run past the access table");
    if (uint64_t(in.firstPart) + in.partCount > s.parts.size())
      return fail("its parts run past the part table");
    if (in.partCount && in.op != Opcode::ReduceScatter &&
        in.op != Opcode::AllGather)
      return fail("only a reduce-scatter or an all-gather has parts");
    for (uint32_t a = 0; a < in.accessCount; ++a) {
      const Access &acc = s.accesses[in.firstAccess + a];
      if (!inArena(acc.offset, acc.bytes))
        return fail("access [" + std::to_string(acc.offset) + ", +" +
                    std::to_string(acc.bytes) + ") is outside the arena of " +
                    std::to_string(s.arenaBytes) + " bytes");
      if (!acc.write && (acc.writer < kHostWriter || acc.writer >= int64_t(n)))
        return fail("expected writer #" + std::to_string(acc.writer) +
                    " is not an instruction of the stream");
    }
    switch (in.op) {
    case Opcode::Fwd:
    case Opcode::BwdB:
    case Opcode::BwdW:
      if (in.chunk < 0 || in.mb < 0 || in.mb >= s.microbatches)
        return fail("chunk or micro-batch out of range (" +
                    std::to_string(s.microbatches) + " micro-batches)");
      break;
    case Opcode::Wait:
      if (!isPostOp(in.sub))
        return fail("a wait must name a post's opcode");
      if (in.req < 0 || size_t(in.req) >= n || postedAt[in.req] < 0)
        return fail("request " + std::to_string(in.req) +
                    " was not posted before");
      if (waited[in.req])
        return fail("request " + std::to_string(in.req) +
                    " is waited twice");
      if (s.instrs[postedAt[in.req]].op != in.sub)
        return fail("request " + std::to_string(in.req) + " was posted by " +
                    describe(s.instrs[postedAt[in.req]]));
      waited[in.req] = 1;
      break;
    case Opcode::AllReduce:
    case Opcode::ReduceScatter:
    case Opcode::AllGather: {
      if (in.chunk < 0 || in.mb < 0)
        return fail("group and bucket must be non-negative");
      const int64_t e = dtypeBytes(in.dtype);
      if (e == 0 || !inArena(in.offset, in.bytes) || in.bytes % e != 0)
        return fail("its operand [" + std::to_string(in.offset) + ", +" +
                    std::to_string(in.bytes) +
                    ") must be f32 or f64 elements inside the arena");
      // Parts: whole elements of the operand, ascending and disjoint.
      int64_t end = 0;
      for (uint32_t k = 0; k < in.partCount; ++k) {
        const Part &p = s.parts[in.firstPart + k];
        if (p.rank < 0 || p.rank >= s.ranks || p.offset < end ||
            p.bytes <= 0 || p.offset % e != 0 || p.bytes % e != 0 ||
            p.bytes > in.bytes - p.offset)
          return fail("part " + std::to_string(k) + " (rank " +
                      std::to_string(p.rank) + ", [" +
                      std::to_string(p.offset) + ", +" +
                      std::to_string(p.bytes) +
                      ")) is not whole elements of the operand after the "
                      "part before it");
        end = p.offset + p.bytes;
      }
      break;
    }
    case Opcode::OptStep:
      break;
    default: // posts
      if (in.peer < 0 || in.peer >= s.ranks || in.peer == s.rank)
        return fail("peer " + std::to_string(in.peer) +
                    " is not another rank of " + std::to_string(s.ranks));
      if (in.chunk < 0 || in.mb < 0 || in.mb >= s.microbatches)
        return fail("chunk or micro-batch out of range");
      if (in.req < 0 || size_t(in.req) >= n)
        return fail("request id out of range [0, " + std::to_string(n) + ")");
      if (postedAt[in.req] >= 0)
        return fail("request " + std::to_string(in.req) +
                    " was already posted by #" +
                    std::to_string(postedAt[in.req]));
      if (!inArena(in.offset, in.bytes))
        return fail("message buffer [" + std::to_string(in.offset) + ", +" +
                    std::to_string(in.bytes) + ") is outside the arena of " +
                    std::to_string(s.arenaBytes) + " bytes");
      postedAt[in.req] = int64_t(i);
      break;
    }
  }
  for (size_t r = 0; r < n; ++r)
    if (postedAt[r] >= 0 && !waited[r])
      return Status::failure(where(size_t(postedAt[r])) +
                                 "is never waited for",
                             s.rank, postedAt[r]);
  return validateComms(s);
}

std::vector<uint8_t> encodeStream(const Stream &s) {
  std::vector<uint8_t> out;
  out.reserve(kHeaderBytes + s.instrs.size() * kInstrBytes +
              s.accesses.size() * kAccessBytes + s.parts.size() * kPartBytes);
  Writer w{out};
  for (char c : kMagic)
    w.u8(uint8_t(c));
  w.u32(kStreamVersion);
  w.i32(s.rank);
  w.i32(s.ranks);
  w.i32(s.microbatches);
  w.u64(s.instrs.size());
  w.u64(s.accesses.size());
  w.i64(s.arenaBytes);
  w.u64(0); // checksum, patched below
  w.u64(s.planId);
  w.u64(s.parts.size());
  w.u32(uint32_t(s.commRounds));
  w.u32(uint32_t(s.comms.size()));
  for (const Instr &in : s.instrs) {
    w.u8(uint8_t(in.op));
    w.u8(uint8_t(in.sub));
    w.u8(uint8_t(in.dtype));
    w.u8(0);
    w.i32(in.peer);
    w.i32(in.chunk);
    w.i32(in.mb);
    w.i32(in.req);
    w.u32(in.accessCount);
    w.i64(in.offset);
    w.i64(in.bytes);
    w.u32(in.partCount);
  }
  for (const Access &a : s.accesses) {
    w.u8(a.write ? 1 : 0);
    w.u8(0);
    w.u8(0);
    w.u8(0);
    w.i32(a.writer);
    w.i64(a.offset);
    w.i64(a.bytes);
  }
  for (const Part &p : s.parts) {
    w.i32(p.rank);
    w.u32(0);
    w.i64(p.offset);
    w.i64(p.bytes);
  }
  for (const StreamComm &c : s.comms) {
    w.i32(c.id);
    w.i32(c.round);
    const bool strided = c.members.empty();
    w.u8(c.pair ? 1 : 0);
    w.u8(c.channel);
    w.u8(strided ? 1 : 0);
    w.u8(0);
    w.u32(uint32_t(c.groups.size()));
    w.u32(uint32_t(c.memberCount()));
    for (int32_t g : c.groups)
      w.i32(g);
    if (strided) {
      w.i32(c.first);
      w.i32(c.stride);
    }
    for (int32_t m : c.members)
      w.i32(m);
  }
  uint64_t sum = checksum(out.data(), out.size());
  for (int i = 0; i < 8; ++i)
    out[48 + i] = uint8_t(sum >> (8 * i));
  return out;
}

Status decodeStream(const uint8_t *p, size_t size, const std::string &name,
                    Stream &s) {
  auto fail = [&](const std::string &what) {
    return Status::failure(name + ": " + what);
  };
  if (size < kHeaderBytes)
    return fail("truncated: " + std::to_string(size) +
                " bytes, shorter than the " + std::to_string(kHeaderBytes) +
                "-byte header");
  if (std::memcmp(p, kMagic, 8) != 0)
    return fail("not a pipert stream (bad magic)");
  uint32_t version = getU32(p + 8);
  if (version != kStreamVersion)
    return fail("stream format version " + std::to_string(version) +
                ", this runtime reads version " +
                std::to_string(kStreamVersion));
  s = Stream();
  s.rank = int32_t(getU32(p + 12));
  s.ranks = int32_t(getU32(p + 16));
  s.microbatches = int32_t(getU32(p + 20));
  uint64_t nInstr = getU64(p + 24), nAccess = getU64(p + 32),
           nPart = getU64(p + 64);
  s.arenaBytes = int64_t(getU64(p + 40));
  uint64_t sum = getU64(p + 48);
  // Guard the multiplication: counts come from an untrusted file.
  if (nInstr > (uint64_t(1) << 40) || nAccess > (uint64_t(1) << 40) ||
      nPart > (uint64_t(1) << 40))
    return fail("corrupt header: " + std::to_string(nInstr) +
                " instructions, " + std::to_string(nAccess) + " accesses, " +
                std::to_string(nPart) + " parts");
  uint64_t want = kHeaderBytes + nInstr * kInstrBytes +
                  nAccess * kAccessBytes + nPart * kPartBytes;
  if (size < want)
    return fail("truncated: the header announces " + std::to_string(nInstr) +
                " instructions, " + std::to_string(nAccess) +
                " accesses and " + std::to_string(nPart) + " parts (" +
                std::to_string(want) + " bytes) but the file holds " +
                std::to_string(size));
  // The communicators are variable-length records after the parts.
  const uint32_t commRounds = getU32(p + 72), nComm = getU32(p + 76);
  const uint8_t *commsAt = p + want;
  uint64_t end = want;
  for (uint32_t c = 0; c < nComm; ++c) {
    if (size - end < kCommBytes)
      return fail("truncated: communicator record " + std::to_string(c) +
                  " of " + std::to_string(nComm) + " runs past the file");
    // Its groups, then its members listed or (strided) first and stride.
    uint64_t body = 4 * (uint64_t(getU32(p + end + 12)) +
                         (p[end + 10] == 1 ? 2 : getU32(p + end + 16)));
    if (size - end - kCommBytes < body)
      return fail("truncated: communicator record " + std::to_string(c) +
                  " of " + std::to_string(nComm) + " runs past the file");
    end += kCommBytes + body;
  }
  if (size > end)
    return fail(std::to_string(size - end) +
                " trailing bytes after the last record");
  if (commRounds > uint32_t(kMaxCommRounds))
    return fail("corrupt header: " + std::to_string(commRounds) +
                " split rounds, more than the " +
                std::to_string(kMaxCommRounds) + " a plan may have");
  s.planId = getU64(p + 56);
  if (checksum(p, size) != sum)
    return fail("corrupt: the checksum does not match the contents");
  s.checksum = sum;
  s.instrs.resize(nInstr);
  s.accesses.resize(nAccess);
  s.parts.resize(nPart);
  const uint8_t *q = p + kHeaderBytes;
  uint64_t nextAccess = 0, nextPart = 0;
  for (uint64_t i = 0; i < nInstr; ++i, q += kInstrBytes) {
    Instr &in = s.instrs[i];
    in.op = Opcode(q[0]);
    in.sub = Opcode(q[1]);
    in.dtype = DType(q[2]);
    in.peer = int32_t(getU32(q + 4));
    in.chunk = int32_t(getU32(q + 8));
    in.mb = int32_t(getU32(q + 12));
    in.req = int32_t(getU32(q + 16));
    in.accessCount = getU32(q + 20);
    in.offset = int64_t(getU64(q + 24));
    in.bytes = int64_t(getU64(q + 32));
    in.partCount = getU32(q + 40);
    in.firstAccess = uint32_t(nextAccess);
    nextAccess += in.accessCount;
    if (nextAccess > nAccess || nextAccess > UINT32_MAX)
      return fail("corrupt: instruction #" + std::to_string(i) +
                  " claims accesses beyond the " + std::to_string(nAccess) +
                  " in the file");
    in.firstPart = uint32_t(nextPart);
    nextPart += in.partCount;
    if (nextPart > nPart || nextPart > UINT32_MAX)
      return fail("corrupt: instruction #" + std::to_string(i) +
                  " claims parts beyond the " + std::to_string(nPart) +
                  " in the file");
  }
  if (nextPart != nPart)
    return fail("corrupt: the instructions claim " +
                std::to_string(nextPart) + " parts, the header " +
                std::to_string(nPart));
  if (nextAccess != nAccess)
    return fail("corrupt: the instructions claim " +
                std::to_string(nextAccess) + " accesses, the header " +
                std::to_string(nAccess));
  for (uint64_t a = 0; a < nAccess; ++a, q += kAccessBytes) {
    Access &acc = s.accesses[a];
    if (q[0] > 1)
      return fail("corrupt: access #" + std::to_string(a) + " has kind " +
                  std::to_string(int(q[0])));
    acc.write = q[0] == 1;
    acc.writer = int32_t(getU32(q + 4));
    acc.offset = int64_t(getU64(q + 8));
    acc.bytes = int64_t(getU64(q + 16));
  }
  for (uint64_t k = 0; k < nPart; ++k, q += kPartBytes) {
    Part &part = s.parts[k];
    part.rank = int32_t(getU32(q));
    part.offset = int64_t(getU64(q + 8));
    part.bytes = int64_t(getU64(q + 16));
  }
  s.commRounds = int32_t(commRounds);
  s.comms.resize(nComm);
  q = commsAt;
  for (StreamComm &c : s.comms) {
    c.id = int32_t(getU32(q));
    c.round = int32_t(getU32(q + 4));
    if (q[8] > 1)
      return fail("corrupt: communicator " + std::to_string(c.id) +
                  " has kind " + std::to_string(int(q[8])));
    if (q[10] > 1)
      return fail("corrupt: communicator " + std::to_string(c.id) +
                  " has member form " + std::to_string(int(q[10])));
    const bool strided = q[10] == 1;
    c.pair = q[8] == 1;
    c.channel = q[9];
    c.groups.resize(getU32(q + 12));
    if (strided)
      c.count = int32_t(getU32(q + 16));
    else
      c.members.resize(getU32(q + 16));
    q += kCommBytes;
    for (int32_t &g : c.groups) {
      g = int32_t(getU32(q));
      q += 4;
    }
    if (strided) {
      c.first = int32_t(getU32(q));
      c.stride = int32_t(getU32(q + 4));
      q += 8;
    }
    for (int32_t &m : c.members) {
      m = int32_t(getU32(q));
      q += 4;
    }
  }
  Status st = validateStream(s);
  if (!st.ok())
    return Status::failure(name + ": " + st.message(), st.rank(), st.instr());
  return Status::success();
}

uint64_t streamChecksum(const Stream &s) {
  std::vector<uint8_t> bytes = encodeStream(s);
  return getU64(bytes.data() + 48);
}

Status writeStreamFile(const std::string &path, const Stream &s,
                       DirSync sync) {
  std::vector<uint8_t> bytes = encodeStream(s);
  // A stream is a plan file: only the compiler writes it.
  return writeFileAtomically(path, bytes.data(), bytes.size(), false,
                             PlanFiles::Allow, sync);
}

Status readStreamFile(const std::string &path, Stream &s) {
  if (Status c = checkInputFile(path, "stream"); !c.ok())
    return c;
  std::FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    return Status::failure("cannot open " + path + ": " +
                           std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof(buf), f)) > 0)
    bytes.insert(bytes.end(), buf, buf + got);
  bool err = std::ferror(f);
  std::fclose(f);
  if (err)
    return Status::failure("cannot read " + path);
  return decodeStream(bytes.data(), bytes.size(), path, s);
}

} // namespace pipert
