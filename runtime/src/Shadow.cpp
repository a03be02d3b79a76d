//===- Shadow.cpp - shadow memory: who wrote each arena byte last ---------===//

#include "pipert/Shadow.h"

#include <algorithm>
#include <cstring>

namespace pipert {

static constexpr int64_t kGranule = 4;

ShadowMemory::ShadowMemory(const Stream &stream, const uint8_t *arena,
                           ArenaCopy arenaCopy)
    : stream(stream), arena(arena), arenaCopy(arenaCopy) {
  if (arenaCopy)
    mirror.assign(size_t(stream.arenaBytes), 0);
  size_t granules = size_t((stream.arenaBytes + kGranule - 1) / kGranule);
  writer.assign(granules, kHostWriter);
  writerStep.assign(granules, -1);
  copy.assign(size_t(stream.arenaBytes), 0);
  size_t most = 0, posts = 0;
  for (const Instr &in : stream.instrs) {
    most = std::max<size_t>(most, in.accessCount);
    posts += isPostOp(in.op);
  }
  excluded.reserve(most + posts + 1);
}

Status ShadowMemory::fail(int64_t i, const std::string &what) const {
  return Status::failure("shadow memory: rank " + std::to_string(stream.rank) +
                             " #" + std::to_string(i) + " " +
                             describe(stream.instrs[size_t(i)]) + ": " + what,
                         stream.rank, i);
}

static std::string region(int64_t off, int64_t bytes) {
  return "[" + std::to_string(off) + ", " + std::to_string(off + bytes) + ")";
}

Status ShadowMemory::checkReads(int64_t i, int64_t step) const {
  const Instr &in = stream.instrs[size_t(i)];
  for (uint32_t k = 0; k < in.accessCount; ++k) {
    const Access &a = stream.accesses[in.firstAccess + k];
    if (a.write)
      continue;
    // Which (writer, step) the plan promises for this read.
    int32_t wantW = a.writer;
    int64_t wantStep = a.writer == kHostWriter ? -1
                       : a.writer < i          ? step
                                               : step - 1;
    if (wantStep < 0)
      wantW = kHostWriter; // before the first step: the host wrote it
    for (int64_t g = a.offset / kGranule; g * kGranule < a.offset + a.bytes;
         ++g) {
      int32_t w = writer[size_t(g)];
      int64_t ws = writerStep[size_t(g)];
      if (w == wantW && (wantW == kHostWriter || ws == wantStep))
        continue;
      auto who = [&](int32_t idx, int64_t st) {
        if (idx == kHostWriter)
          return std::string("the host (before the first step)");
        return "#" + std::to_string(idx) + " " +
               describe(stream.instrs[size_t(idx)]) + " of step " +
               std::to_string(st);
      };
      return fail(i, "reads " + region(a.offset, a.bytes) +
                         " expecting the write of " + who(wantW, wantStep) +
                         ", but byte " + std::to_string(g * kGranule) +
                         " was last written by " + who(w, ws));
    }
  }
  return Status::success();
}

Status ShadowMemory::checkInFlight(int64_t i,
                                   const std::vector<Region> &inFlight) const {
  const Instr &in = stream.instrs[size_t(i)];
  for (uint32_t k = 0; k < in.accessCount; ++k) {
    const Access &a = stream.accesses[in.firstAccess + k];
    for (const Region &r : inFlight)
      if (a.offset < r.offset + r.bytes && r.offset < a.offset + a.bytes &&
          (a.write || r.recv))
        return fail(i, std::string(a.write ? "writes " : "reads ") +
                           region(a.offset, a.bytes) +
                           ", which overlaps the buffer " +
                           region(r.offset, r.bytes) +
                           " of a transfer still in flight");
  }
  return Status::success();
}

void ShadowMemory::buildExcluded(int64_t i,
                                 const std::vector<Region> &inFlight) {
  excluded.clear();
  for (const Region &r : inFlight)
    if (r.recv) // only a recv's buffer changes under our feet
      excluded.push_back(r);
  const Instr &in = stream.instrs[size_t(i)];
  for (uint32_t k = 0; k < in.accessCount; ++k) {
    const Access &a = stream.accesses[in.firstAccess + k];
    if (a.write)
      excluded.push_back({a.offset, a.bytes, false});
  }
  std::sort(excluded.begin(), excluded.end(),
            [](const Region &a, const Region &b) { return a.offset < b.offset; });
}

const uint8_t *ShadowMemory::hostView(Status &why) {
  why = Status::success();
  if (!arenaCopy)
    return arena;
  why = copyArenaBytes(arenaCopy, mirror.data(), arena, stream.arenaBytes);
  return why.ok() ? mirror.data() : nullptr;
}

Status ShadowMemory::snapshot(int64_t i, const std::vector<Region> &inFlight) {
  buildExcluded(i, inFlight);
  Status why = Status::success();
  const uint8_t *bytes = hostView(why);
  if (!bytes)
    return fail(i, "reading the device's arena: " + why.message());
  int64_t pos = 0;
  auto copyTo = [&](int64_t end) {
    if (end > pos)
      std::memcpy(copy.data() + pos, bytes + pos, size_t(end - pos));
  };
  for (const Region &r : excluded) {
    copyTo(r.offset);
    pos = std::max(pos, r.offset + r.bytes);
  }
  copyTo(stream.arenaBytes);
  return Status::success();
}

Status ShadowMemory::checkUnchanged(int64_t i,
                                    const std::vector<Region> &inFlight) {
  // `excluded` still holds what snapshot() built; in-flight regions can
  // only have completed meanwhile, never started, so the set is unchanged.
  (void)inFlight;
  Status why = Status::success();
  const uint8_t *arena = hostView(why);
  if (!arena)
    return fail(i, "reading the device's arena: " + why.message());
  int64_t pos = 0;
  auto compare = [&](int64_t end) -> Status {
    // memcmp first: almost always the range is unchanged, and a byte loop
    // over the whole arena after every kernel made shadow runs 6x slower.
    if (end <= pos ||
        std::memcmp(arena + pos, copy.data() + pos, size_t(end - pos)) == 0)
      return Status::success();
    for (int64_t b = pos; b < end; ++b) {
      if (arena[b] == copy[size_t(b)])
        continue;
      int64_t e = b;
      while (e < end && arena[e] != copy[size_t(e)])
        ++e;
      return fail(i, "changed arena bytes " + region(b, e - b) +
                         ", which the plan does not list among its writes");
    }
    return Status::success();
  };
  for (const Region &r : excluded) {
    if (Status s = compare(r.offset); !s.ok())
      return s;
    pos = std::max(pos, r.offset + r.bytes);
  }
  return compare(stream.arenaBytes);
}

void ShadowMemory::markRegion(int64_t offset, int64_t bytes, int64_t w,
                              int64_t step) {
  for (int64_t g = offset / kGranule; g * kGranule < offset + bytes; ++g) {
    writer[size_t(g)] = int32_t(w);
    writerStep[size_t(g)] = int32_t(step);
  }
}

void ShadowMemory::markWrites(int64_t i, int64_t step) {
  const Instr &in = stream.instrs[size_t(i)];
  for (uint32_t k = 0; k < in.accessCount; ++k) {
    const Access &a = stream.accesses[in.firstAccess + k];
    if (a.write)
      markRegion(a.offset, a.bytes, i, step);
  }
}

void ShadowMemory::touch(int64_t i) {
  const Instr &in = stream.instrs[size_t(i)];
  for (uint32_t k = 0; k < in.accessCount; ++k) {
    const Access &a = stream.accesses[in.firstAccess + k];
    high = std::max(high, a.offset + a.bytes);
  }
  if (in.bytes > 0)
    high = std::max(high, in.offset + in.bytes);
}

} // namespace pipert
