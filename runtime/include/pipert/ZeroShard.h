//===- ZeroShard.h - which replica updates which part of a parameter -*- C++ -*-===//
//
// ZeRO-1 (docs/NUMERICS.md "ZeRO-1"): the AdamW moments of a parameter are
// split among the D replicas of its stage, each replica updating its own
// part and all-gathering the others'. This is the one rule that says which
// part is whose; the compiler lays out the moments and writes the streams'
// reduce-scatter and all-gather parts with it, the generated optimizer
// and the checkpoints use it at run time.
//
// A part is a run of whole norm chunks (kNormChunk elements, the blocks
// the gradient norm sums in double, kernels/cpu/AdamW.h), so every
// chunk's partial sum of squares is made by one replica from the same
// elements in the same order as without sharding. A parameter's chunks
// are cut into D runs of nearly equal length; run b belongs to replica
// (b + key) mod D. The key is the compiler's choice per parameter (the
// manifest's zero_key): it balances each stage's replicas, since a
// parameter of one chunk goes whole to one replica. A tied parameter has
// one key, so all its copies split alike.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_ZEROSHARD_H
#define PIPERT_ZEROSHARD_H

#include <algorithm>
#include <cstdint>

namespace pipert {

/// Elements of one block of the gradient norm (AdamW.h sumOfSquares).
constexpr int64_t kNormChunk = 16384;

/// The norm chunks of a parameter of `elements` elements.
inline int64_t normChunks(int64_t elements) {
  return (elements + kNormChunk - 1) / kNormChunk;
}

/// A replica's part of a parameter: elements [first, first + count).
struct ShardRange {
  int64_t first = 0, count = 0;
};

/// The part of the parameter with key `key` (`elements` long) that
/// `replica` of `replicas` updates; all of it when replicas <= 1.
inline ShardRange zeroShard(int64_t elements, int32_t key, int32_t replica,
                            int32_t replicas) {
  if (replicas <= 1)
    return {0, elements};
  const int64_t chunks = normChunks(elements);
  const int64_t run =
      ((int64_t(replica) - key) % replicas + replicas) % replicas;
  const int64_t lo = chunks * run / replicas,
                hi = chunks * (run + 1) / replicas;
  const int64_t first = std::min(elements, lo * kNormChunk),
                end = std::min(elements, hi * kNormChunk);
  return {first, end - first};
}

/// The largest part any replica gets: what each replica's moments hold.
inline int64_t zeroShardCapacity(int64_t elements, int32_t key,
                                 int32_t replicas) {
  int64_t most = 0;
  for (int32_t r = 0; r < std::max(replicas, 1); ++r)
    most = std::max(most, zeroShard(elements, key, r, replicas).count);
  return most;
}

} // namespace pipert

#endif // PIPERT_ZEROSHARD_H
