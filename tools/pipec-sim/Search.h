//===- Search.h - pipec-sim --search: the best plans for a cluster -*- C++ -*-===//
//
// `pipec-sim MODEL.json --cluster C --search GPUS --global-batch TOKENS`
// (docs/SIMULATION.md, "Search"): every stage count that divides GPUS (up
// to 256) with the data-parallel replicas that fill them, the most
// micro-batches the global batch allows, each schedule kind; each plan
// compiled for the cluster's GPU (its memory the cap, recomputation where
// the compiler needs it) and replayed by symmetry; the best printed with a
// sensitivity band (compute and networks each 20% better or worse: the
// four corners), beside
// JAX's strategy on the same model, cluster and batch (compiler/cluster/
// FsdpTp.h, a model) and the ratio of the two.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_TOOLS_PIPEC_SIM_SEARCH_H
#define PIPEC_TOOLS_PIPEC_SIM_SEARCH_H

#include "ClusterPricing.h"

#include <string>
#include <vector>

namespace pipec::sim {

struct SearchRequest {
  std::string model, clusterPath;
  ClusterRun run; ///< the cluster and placement
  int64_t gpus = 0;
  double globalBatchTokens = 0;
  int32_t top = 5;
  /// pipec compile options the user gave (--memory-cap, --recompute, ...).
  std::vector<std::string> compileArgs;
  bool json = false;
};

/// Runs the search and prints its report; returns the exit status.
int runSearch(const char *argv0, const SearchRequest &request);

} // namespace pipec::sim

#endif // PIPEC_TOOLS_PIPEC_SIM_SEARCH_H
