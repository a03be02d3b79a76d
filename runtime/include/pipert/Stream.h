//===- Stream.h - a rank's instruction stream, in memory and on disk -*- C++ -*-===//
//
// The compiler writes one stream file per rank; the runtime reads it,
// validates it and executes it. Opcodes and fields are those of the schedule
// library (docs/SCHEDULES.md) plus what the memory plan adds: the arena
// region of the message buffer each communication instruction reads or
// writes, and per instruction the arena regions it reads and writes with
// the instruction expected to have written each read region last (what the
// shadow-memory debug mode checks). The binary layout is in docs/RUNTIME.md.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_STREAM_H
#define PIPERT_STREAM_H

#include "pipert/AtomicFile.h"
#include "pipert/PlanAbi.h"
#include "pipert/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pipert {


/// Element type of a buffer the runtime itself interprets (all-reduce
/// operands, metric slots); None where the runtime only moves bytes.
enum class DType : uint8_t { None = 0, F32 = 1, F64 = 2 };

/// Bytes of one element of `dtype` (0 for None).
int64_t dtypeBytes(DType dtype);

/// The expected writer of memory no instruction writes: the host wrote it
/// before the first step (initial parameters, constants).
constexpr int32_t kHostWriter = -1;

/// One arena region an instruction reads or writes.
struct Access {
  int64_t offset = 0;
  int64_t bytes = 0;
  /// For a read: the stream index of the instruction that must have written
  /// the region last. An index below the reader's means earlier in the same
  /// step; an index at or above it (the reader itself included) means the
  /// previous step, or the host before the first step; kHostWriter means
  /// the host only. Ignored for writes.
  int32_t writer = kHostWriter;
  bool write = false;
};

/// A member's part of a ReduceScatter or AllGather operand: `bytes` at
/// `offset` from the operand's start belong to `rank` (ZeroShard.h).
struct Part {
  int32_t rank = 0;
  int64_t offset = 0, bytes = 0;
};

/// One instruction. Compute ops use chunk and mb; posts use peer, chunk (the
/// chunk that produced the message), mb and req, and offset/bytes locate the
/// message buffer; Wait names its post by req and repeats the post's opcode
/// in `sub`; the collectives use chunk as the group, mb as the bucket and
/// offset/bytes/dtype for their operand, reduced in place; ReduceScatter
/// and AllGather also list every member's parts of it.
struct Instr {
  Opcode op = Opcode::Fwd;
  Opcode sub = Opcode::Fwd;
  DType dtype = DType::None;
  int32_t peer = -1;
  int32_t chunk = -1;
  int32_t mb = -1;
  int32_t req = -1;
  int64_t offset = 0;
  int64_t bytes = 0;
  /// This instruction's accesses are accesses[firstAccess, +accessCount).
  uint32_t firstAccess = 0;
  uint32_t accessCount = 0;
  /// This instruction's parts are parts[firstPart, +partCount).
  uint32_t firstPart = 0;
  uint32_t partCount = 0;
};

/// One communicator this rank is a member of, as the compiler laid them
/// out for a transport with one process per rank (pipert/CommLayout.h,
/// docs/NCCL.md): the rank's own part of the plan's layout, so that its
/// process needs no other rank's stream.
struct StreamComm {
  /// The communicator's index in the plan's layout: the same number in
  /// every member's stream, and the split's colour.
  int32_t id = 0;
  /// The split round that creates it (below Stream::commRounds).
  int32_t round = 0;
  /// A pair carries `channel` (0 activations, 1 gradients) from
  /// members[0] to members[1]; a group communicator carries the plan
  /// groups `groups` (ascending), its members ascending.
  bool pair = false;
  uint8_t channel = 0;
  std::vector<int32_t> groups;
  /// Its members: listed in `members`, or, with `members` empty, `count`
  /// ranks from `first` by `stride` (a data-parallel group: one rank of
  /// each replica). The second keeps the table of every member of a group
  /// of D replicas at three numbers: listed, the D members' streams would
  /// hold D x D ranks between them.
  std::vector<int32_t> members;
  int32_t first = 0, stride = 0, count = 0;

  /// The number of members and the k-th, either way.
  int32_t memberCount() const {
    return members.empty() ? count : int32_t(members.size());
  }
  int32_t member(int32_t k) const {
    return members.empty() ? first + k * stride : members[size_t(k)];
  }
  /// Every member, listed.
  std::vector<int32_t> memberList() const;
};

/// The most split rounds a plan's communicator layout may have: each is a
/// split every rank joins (a pipeline needs about 10 to 20), and a stream
/// announcing more is refused rather than believed.
constexpr int32_t kMaxCommRounds = 4096;

/// A rank's whole stream for one training step.
struct Stream {
  int32_t rank = 0;
  int32_t ranks = 1;
  int32_t microbatches = 1;
  /// The arena size this rank needs (the memory plan's peak).
  int64_t arenaBytes = 0;
  /// The identity of the plan the stream belongs to (Manifest::planId as
  /// a number; 0: none, streams built by hand).
  uint64_t planId = 0;
  /// The file's checksum, as decodeStream read it (0 when built in memory).
  uint64_t checksum = 0;
  std::vector<Instr> instrs;
  std::vector<Access> accesses;
  std::vector<Part> parts;
  /// The split rounds of the plan's communicator layout (every rank joins
  /// every round) and this rank's communicators, ascending by id; none in
  /// a stream built by hand (CommLayout.h's attachComms adds them).
  int32_t commRounds = 0;
  std::vector<StreamComm> comms;

  /// Appends an instruction with its accesses and parts (sets firstAccess,
  /// accessCount, firstPart and partCount).
  void append(Instr instr, const std::vector<Access> &instrAccesses,
              const std::vector<Part> &instrParts = {});
};

/// Version of the binary format this runtime reads and writes.
/// Version 2 carries the plan id in the header; version 3 the parts of
/// ZeRO's collectives; version 4 the rank's communicators
/// (docs/RUNTIME.md).
constexpr uint32_t kStreamVersion = 4;

/// True for the point-to-point posts.
bool isPostOp(Opcode op);
/// The stream name of an opcode ("recv_act", "bwd_w", ...).
const char *opcodeName(Opcode op);
/// An instruction in the form error messages use, e.g.
/// `wait(recv_grad from 2, chunk 3, mb 5) [req 7]`.
std::string describe(const Instr &instr);

/// Checks a stream's internal consistency: header fields, opcodes, peers,
/// micro-batches, every region inside the arena, every post waited exactly
/// once after it, expected writers in range, its communicators' table
/// (ids ascending, one a round, the rank a member of each). Errors name the rank and the
/// instruction.
Status validateStream(const Stream &stream);

/// The stream in the binary format.
std::vector<uint8_t> encodeStream(const Stream &stream);
/// Parses and validates a stream; `name` (a file name) prefixes errors.
Status decodeStream(const uint8_t *data, size_t size, const std::string &name,
                    Stream &stream);
/// The checksum encodeStream writes into the header of `stream`.
uint64_t streamChecksum(const Stream &stream);
/// encodeStream into a file (its directory synced at once, or `Later` by
/// the caller after a batch: AtomicFile.h).
Status writeStreamFile(const std::string &path, const Stream &stream,
                       DirSync sync = DirSync::Now);
/// Reads, decodes and validates a stream file.
Status readStreamFile(const std::string &path, Stream &stream);

} // namespace pipert

#endif // PIPERT_STREAM_H
