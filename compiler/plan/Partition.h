//===- Partition.h - contiguous chunks balanced per rank ---------*- C++ -*-===//
//
// Cuts a sequence of indivisible pieces (the ops of @forward, each with the
// parameter reads in front of it) into C contiguous chunks, chunk c on rank
// placement[c], so that the largest per-RANK time (the sum of the chunks a
// rank holds) is as small as possible. docs/PARTITION.md explains the method:
// an exact binary search for one chunk per rank, and for looped or V-shaped
// placements the exact per-chunk optimum refined by exact coordinate moves of
// each cut between the two ranks it separates.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_PLAN_PARTITION_H
#define PIPEC_COMPILER_PLAN_PARTITION_H

#include <cstdint>
#include <vector>

namespace pipec::plan {

/// A partition: chunk c holds pieces [cuts[c], cuts[c+1]); cuts has C + 1
/// entries, cuts[0] = 0 and cuts[C] = the piece count.
struct Cuts {
  std::vector<int32_t> cuts;
  int32_t chunks() const { return int32_t(cuts.size()) - 1; }
};

/// Per-rank time of a partition: rank r's is the sum of its chunks' times.
std::vector<double> rankTimes(const std::vector<double> &pieceTime,
                              const std::vector<int32_t> &rankOf,
                              int32_t ranks, const Cuts &cuts);

/// The lower bound no partition at this granularity can beat: the larger of
/// the mean rank time and the largest piece.
double balanceBound(const std::vector<double> &pieceTime, int32_t ranks);

/// Chooses the cuts. `rankOf[c]` is the rank of chunk c (C = rankOf.size(),
/// every rank 0..ranks-1 used); needs at least C pieces.
Cuts partitionPieces(const std::vector<double> &pieceTime,
                     const std::vector<int32_t> &rankOf, int32_t ranks);

/// Partitions worth timing with the schedule: the one partitionPieces
/// returns (the least largest rank time) first, then, with several chunks
/// per rank, the per-chunk optimum (every chunk as even as possible),
/// which schedules that assume equal chunks (zb-v, interleaved) may run
/// faster although its largest rank is heavier. Distinct entries only.
std::vector<Cuts> partitionCandidates(const std::vector<double> &pieceTime,
                                      const std::vector<int32_t> &rankOf,
                                      int32_t ranks);

/// The exact optimum by enumerating every partition (tests only: there are
/// binomial(n-1, C-1) of them). Returns the best cuts.
Cuts bruteForcePartition(const std::vector<double> &pieceTime,
                         const std::vector<int32_t> &rankOf, int32_t ranks);

} // namespace pipec::plan

#endif // PIPEC_COMPILER_PLAN_PARTITION_H
