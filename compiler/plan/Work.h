//===- Work.h - a phase's work by kernel class, device-independent -*- C++ -*-===//
//
// What the partitioner records per chunk and the plan folder's work.json
// holds, so that pipec-sim --cluster can price a plan on any GPU
// (compiler/cluster/Cluster.h). Plain C++17.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_PLAN_WORK_H
#define PIPEC_COMPILER_PLAN_WORK_H

#include <cstdint>

namespace pipec::plan {

/// The work of one phase (F, B or W) of a piece or chunk by kernel class,
/// device-independent: what pipec-sim --cluster prices with another
/// device's rates (GEMMs and attention at their own efficiency, the rest
/// by its memory traffic). FLOPs and bytes as the ops' cost interface
/// counts them, bytes in the storage types of the target compiled for.
struct Work {
  double gemmFlops = 0, gemmBytes = 0;
  double attentionFlops = 0, attentionBytes = 0;
  double otherFlops = 0, otherBytes = 0;
  int64_t kernels = 0; ///< ops with work (views such as reshape: none)
  Work &operator+=(const Work &o) {
    gemmFlops += o.gemmFlops;
    gemmBytes += o.gemmBytes;
    attentionFlops += o.attentionFlops;
    attentionBytes += o.attentionBytes;
    otherFlops += o.otherFlops;
    otherBytes += o.otherBytes;
    kernels += o.kernels;
    return *this;
  }
  /// The FLOPs and bytes times `share` (a GPU's part of work split among
  /// several), the kernel launches as they are (each GPU launches all).
  Work splitBy(double share) const {
    Work w = *this;
    w.gemmFlops *= share;
    w.gemmBytes *= share;
    w.attentionFlops *= share;
    w.attentionBytes *= share;
    w.otherFlops *= share;
    w.otherBytes *= share;
    return w;
  }
};
/// Indices of Piece::work and ChunkPlan::work.
enum Phase : int { PhaseF = 0, PhaseB = 1, PhaseW = 2 };

} // namespace pipec::plan

#endif // PIPEC_COMPILER_PLAN_WORK_H
