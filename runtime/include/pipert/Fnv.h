//===- Fnv.h - FNV-1a, 64 bits: checksums, plan ids, cache keys -*- C++ -*-===//
//
// One hash for the stream checksum, the plan identity and the compile
// cache's keys: not cryptographic, it tells a changed or swapped file from
// the intended one.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_FNV_H
#define PIPERT_FNV_H

#include <cstddef>
#include <cstdint>

namespace pipert {

/// The FNV-1a 64 offset basis: the hash of nothing.
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;

/// Continues hash `h` over `size` bytes at `data`.
inline uint64_t fnv1a(const void *data, size_t size, uint64_t h = kFnvOffset) {
  const auto *p = static_cast<const uint8_t *>(data);
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

} // namespace pipert

#endif // PIPERT_FNV_H
