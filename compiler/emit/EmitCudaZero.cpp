//===- EmitCudaZero.cpp - ZeRO-1's optimizer code on the cuda target ------===//

#include "compiler/emit/EmitCudaZero.h"

#include <string>

using namespace pipec;
using namespace pipec::emit;

namespace {

std::string str(int64_t x) { return std::to_string(x); }

/// A comma-separated list of f(i) for i < n.
template <typename F> std::string joined(size_t n, F f) {
  std::string s;
  for (size_t i = 0; i < n; ++i)
    s += (i ? ", " : "") + f(i);
  return s;
}

/// `const pipert::ShardRange zeroPart[] = {...};`: the running replica's
/// part (pipert::zeroShard) of each of `params`, in order.
std::string zeroPartsOf(const PlanLayout &L, llvm::ArrayRef<int> params) {
  const std::string replica = cudaZeroReplica(L);
  return "const pipert::ShardRange zeroPart[] = {" +
         joined(params.size(),
                [&](size_t i) {
                  const int p = params[i];
                  return "pipert::zeroShard(" +
                         str(L.params[size_t(p)].elements) + ", " +
                         str(L.zeroKey[size_t(p)]) + ", " + replica + ", " +
                         str(L.replicas) + ")";
                }) +
         "};\n";
}

} // namespace

std::string pipec::emit::cudaZeroReplica(const PlanLayout &L) {
  return "(ctx->rank / " + str(L.stages) + ")";
}

std::string pipec::emit::cudaZeroSquares(const PlanLayout &L,
                                         const RankLayout &rk, int rank,
                                         llvm::ArrayRef<int> params,
                                         KernelInstances &instances) {
  if (params.empty())
    return "";
  std::string key = "shard_squares_multi/" + str(rank), rows;
  KernelCost cost; // the replica's share of the whole sums' floor
  for (size_t i = 0; i < params.size(); ++i) {
    const int p = params[i];
    const ParamLayout &pl = L.params[size_t(p)];
    const std::string grad =
        "(const float *)(A + " + str(rk.gradsBase + rk.paramOffset.at(p)) + ")";
    key += "/" + grad;
    cost.flops += 2.0 * double(pl.elements) / L.replicas;
    cost.bytes += 4.0 * double(pl.elements) / L.replicas;
    rows += "      // " + pl.name + "\n      {" + grad + ", " +
            str(pl.elements) + ", zeroPart[" + str(int64_t(i)) +
            "].first, zeroPart[" + str(int64_t(i)) +
            "].count, (double *)(data + " + str(8 * L.normSlot[size_t(p)]) +
            ")},\n";
  }
  const int32_t id = cudaBatchInstance("shard_squares_multi", key,
                                       int64_t(params.size()), cost, instances);
  std::string out;
  llvm::raw_string_ostream os(out);
  os << "  // ZeRO-1: this replica's norm chunks of " << params.size()
     << " gradients (pipert::cuda::shardSquaresMulti: the chunk sums of the "
        "plan without ZeRO)\n  {\n    "
     << zeroPartsOf(L, params)
     << "    const pipert::cuda::ShardSquaresTensor tensors[] = {\n"
     << rows;
  emitCudaBatchCall(os, id,
                    "shard_squares_multi(C, tensors, " + str(int64_t(params.size())) +
                        ")",
                    "rank " + str(rank) + ": ZeRO-1's norm chunks of " +
                        str(int64_t(params.size())) + " gradients");
  return out;
}

std::string pipec::emit::cudaZeroTotal(int p) {
  return "pipert::cuda::call::norm_total(C, " + str(p) + ")";
}

std::string pipec::emit::cudaZeroTotals(const PlanLayout &L,
                                        const RankLayout &rk, int rank,
                                        KernelInstances &instances) {
  const size_t n = L.params.size();
  std::string rows;
  KernelCost cost;
  for (size_t p = 0; p < n; ++p) {
    cost.bytes += 8.0 * double(pipert::normChunks(L.params[p].elements));
    rows += "      {(const double *)(A + " +
            str(rk.normBase + 8 * L.normSlot[p]) + "), " +
            str(L.params[p].elements) + ", " + cudaZeroTotal(int(p)) +
            "}, // " + L.params[p].name + "\n";
  }
  const int32_t id =
      cudaBatchInstance("norm_totals", "norm_totals/" + str(rank) + "/" +
                                           str(rk.normBase),
                        int64_t(n), cost, instances);
  std::string out;
  llvm::raw_string_ostream os(out);
  // The totals live in the rank's cuBLASLt workspace, which no kernel of
  // the optimizer step uses otherwise; a plan whose totals would not fit
  // does not build (norm_totals checks the pointers again at run time).
  os << "  static_assert(" << 8 * n
     << " <= pipert::cuda::kGemmWorkspaceBytes, \"ZeRO-1's sums of squares "
        "of "
     << n << " parameters must fit the rank's workspace\");\n"
     << "  // ZeRO-1: each parameter's sum of squares from its chunks' sums "
        "(all-reduced over every rank), added as the plan without ZeRO adds "
        "them\n  {\n    const pipert::cuda::NormTotalTensor tensors[] = {\n"
     << rows;
  emitCudaBatchCall(os, id, "norm_totals(C, tensors, " + str(int64_t(n)) + ")",
                    "rank " + str(rank) + ": ZeRO-1's sums of squares");
  return out;
}

std::string pipec::emit::cudaZeroParts(const PlanLayout &L,
                                       const RankLayout &rk,
                                       llvm::ArrayRef<int> params,
                                       std::vector<CudaShard> &shards) {
  shards.clear();
  if (params.empty())
    return "";
  const std::string replica = cudaZeroReplica(L);
  std::string out =
      "  // ZeRO-1: this replica's part of each parameter AdamW updates, and "
      "its moments (packed per replica)\n"
      "  static const int64_t kZeroMoment[" +
      str(L.replicas) + "][" + str(int64_t(params.size())) + "] = {";
  for (int32_t q = 0; q < L.replicas; ++q)
    out += (q ? ", {" : "{") + joined(params.size(), [&](size_t i) {
             return str(rk.momentOffset[size_t(q)].at(params[i]));
           }) + "}";
  out += "};\n  " + zeroPartsOf(L, params);
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string at = "kZeroMoment[" + replica + "][" + str(int64_t(i)) + "]";
    shards.push_back({"zeroPart[" + str(int64_t(i)) + "].first",
                      "zeroPart[" + str(int64_t(i)) + "].count",
                      "A + " + str(rk.mBase) + " + " + at,
                      "A + " + str(rk.vBase) + " + " + at,
                      L.params[size_t(params[i])].elements});
  }
  return out;
}

std::string pipec::emit::cudaZeroCopies(const PlanLayout &L,
                                        const RankLayout &rk, int rank,
                                        KernelInstances &instances) {
  std::vector<int> params;
  for (int p : rk.params)
    if (rk.copyOffset.count(p))
      params.push_back(p);
  if (params.empty())
    return "";
  const size_t n = params.size();
  auto list = [&](auto f) { return joined(n, f); };
  // Timed as one instantiation: the rounds of the other replicas' parts
  // (6 bytes an element: the master read, the copy written).
  KernelCost cost;
  for (int p : params)
    cost.bytes += 6.0 * double(L.params[size_t(p)].elements) *
                  double(L.replicas - 1) / L.replicas;
  const int32_t id = cudaBatchInstance(
      "zero_round_copies",
      "zero_round_copies/" + str(rank) + "/" + str(rk.copiesBase),
      int64_t(n), cost, instances);
  return "  // ZeRO-1: the other replicas' parts of " + str(int64_t(n)) +
         " working copies, rounded from the gathered masters\n  {\n"
         "    pipert::cuda::call::KernelClock clock(C, " + str(id) + ");\n"
         "    static const int64_t kCopy[] = {" +
         list([&](size_t i) {
           return str(rk.copiesBase + rk.copyOffset.at(params[i]));
         }) +
         "};\n    static const int64_t kMaster[] = {" +
         list([&](size_t i) {
           return str(rk.valuesBase + rk.paramOffset.at(params[i]));
         }) +
         "};\n    static const int64_t kElements[] = {" +
         list([&](size_t i) {
           return str(L.params[size_t(params[i])].elements);
         }) +
         "};\n    static const int32_t kKey[] = {" +
         list([&](size_t i) {
           return str(L.zeroKey[size_t(params[i])]);
         }) +
         "};\n    for (int i = 0; i < " + str(int64_t(n)) +
         "; ++i)\n      for (int32_t q = 0; q < " + str(L.replicas) +
         "; ++q) {\n        const pipert::ShardRange s = "
         "pipert::zeroShard(kElements[i], kKey[i], q, " +
         str(L.replicas) +
         ");\n        if (q == " + cudaZeroReplica(L) +
         " || s.count == 0)\n          continue;\n"
         "        if (pipert::cpu::Status e = pipert::cuda::call::round_copy(\n"
         "                C, P{A + kCopy[i] + 2 * s.first}, P{A + kMaster[i] + "
         "4 * s.first}, s.count);\n            !e.ok())\n"
         "          return pipert::cpu::failureAt(\"ZeRO-1's working copies "
         "after the all-gather\", e);\n      }\n  }\n";
}
