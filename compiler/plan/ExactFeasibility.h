//===- ExactFeasibility.h - bound tests for V and looped placements -*- C++ -*-===//
//
// Internal to the partitioner: for a bound on every rank's time (and on
// every chunk's), can contiguous chunks with two per rank, placed as a V
// (rank r holds chunks r and 2S-1-r) or looped (r and S+r), cover the
// pieces? Exact DPs over pairs of positions, and faster dominance versions
// for large models. docs/PARTITION.md explains them.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_PLAN_EXACTFEASIBILITY_H
#define PIPEC_COMPILER_PLAN_EXACTFEASIBILITY_H

#include "compiler/plan/Partition.h"

#include <cstdint>
#include <vector>

namespace pipec::plan {

/// "No bound" for a chunk.
constexpr double kNoBound = 1e300;

/// Which exact test a placement can use, given the model's size.
enum class Shape { VShape, VShapeLarge, Looped2, Looped2Large, Other };

/// The test for `rankOf` with `pieces` pieces; Other when there is none.
Shape shapeOf(const std::vector<int32_t> &rankOf, int32_t ranks,
              int32_t pieces);

/// True when chunks with every rank within `bound` and every chunk within
/// `chunkBound` exist (prefix[i] = time of pieces [0, i)); fills `out`.
bool exactFits(const std::vector<double> &prefix, int32_t ranks, Shape shape,
               double bound, double chunkBound, Cuts &out);

} // namespace pipec::plan

#endif // PIPEC_COMPILER_PLAN_EXACTFEASIBILITY_H
