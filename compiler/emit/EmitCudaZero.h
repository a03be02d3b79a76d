//===- EmitCudaZero.h - ZeRO-1's optimizer code on the cuda target -*- C++ -*-===//
//
// What a rank's optimizer functions print on the cuda target where ZeRO-1
// splits every parameter among the replicas of its stage (pipert/
// ZeroShard.h; docs/NUMERICS.md "ZeRO-1"), with the bits of the plan
// without it:
//
//   Prepare   the replica's norm chunks of each gradient the rank counts,
//             into the all-reduce operand's slots (shard_squares_multi:
//             the chunk sums the plan without ZeRO makes);
//   Opt       every parameter's sum of squares from the all-reduced chunk
//             sums (norm_totals: that plan's second pass), then AdamW of
//             the replica's parts in one multi-tensor launch, each part
//             with its own moments;
//   Gathered  after the all-gather of the masters, the other replicas'
//             parts rounded into the bf16 working copies (AdamW rounded
//             the replica's own).
//
// The replica is `ctx->rank / stages` at run time: one rank code serves
// every replica of a stage.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_EMIT_EMITCUDAZERO_H
#define PIPEC_COMPILER_EMIT_EMITCUDAZERO_H

#include "compiler/emit/EmitLayout.h"
#include "compiler/emit/EmitOps.h"

#include "llvm/ADT/ArrayRef.h"

#include <string>
#include <vector>

namespace pipec::emit {

/// The replica of the rank running the generated code (an expression).
std::string cudaZeroReplica(const PlanLayout &L);

/// Prepare of pipeline rank `rank`: the replica's norm chunks of the
/// gradients of `params` (those it counts in the norm) into the
/// all-reduce operand at `data`.
std::string cudaZeroSquares(const PlanLayout &L, const RankLayout &rk,
                            int rank, llvm::ArrayRef<int> params,
                            KernelInstances &instances);

/// Opt: every parameter's sum of squares from the all-reduced chunk sums,
/// left where cudaZeroTotal says.
std::string cudaZeroTotals(const PlanLayout &L, const RankLayout &rk,
                           int rank, KernelInstances &instances);
/// Where cudaZeroTotals leaves parameter p's sum of squares.
std::string cudaZeroTotal(int p);

/// Opt: the replica's part of each of `params` (the adamw calls' order)
/// and where its moments are, declared for the AdamW batch; `shards` gets
/// each part's CudaShard.
std::string cudaZeroParts(const PlanLayout &L, const RankLayout &rk,
                          llvm::ArrayRef<int> params,
                          std::vector<CudaShard> &shards);

/// Gathered of pipeline rank `rank`: the other replicas' parts of every
/// working copy it holds, rounded from the gathered masters (timed as one
/// instantiation).
std::string cudaZeroCopies(const PlanLayout &L, const RankLayout &rk, int rank,
                           KernelInstances &instances);

} // namespace pipec::emit

#endif // PIPEC_COMPILER_EMIT_EMITCUDAZERO_H
