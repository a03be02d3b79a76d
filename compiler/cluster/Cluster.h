//===- Cluster.h - a GPU cluster as data, and what things cost on it -*- C++ -*-===//
//
// A cluster description (clusters/*.json, docs/SIMULATION.md "Clusters"):
// one GPU kind with its datasheet peaks and the efficiencies kernels reach
// of them, the NVLink domain (how many GPUs, each GPU's bandwidth), the
// scale-out network (each NIC's bandwidth, how many GPUs share one), and
// the collectives' latency and bus bandwidth fitted to published
// nccl-tests points in each network. From it: the time of a chunk's work
// (compiler/plan's Work, by kernel class), of a point-to-point message
// between two GPUs and of a collective over a set of GPUs (hierarchical:
// inside the NVLink domains, then across them on every NIC at once).
// Plain C++17; pipec-sim --cluster prices a plan's streams with it.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_CLUSTER_CLUSTER_H
#define PIPEC_COMPILER_CLUSTER_CLUSTER_H

#include "compiler/plan/Work.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipec::cluster {

/// One GPU: datasheet peaks and the share of them kernels reach.
struct Gpu {
  std::string kind;
  double tensorFlops = 0;   ///< dense bf16 tensor-core peak, FLOP/s
  double vectorFlops = 0;   ///< fp32 peak without tensor cores, FLOP/s
  double hbmBytesPerSec = 0; ///< memory bandwidth peak
  int64_t memoryBytes = 0;  ///< what a process can allocate
  /// Achieved over peak: large bf16 GEMMs (cuBLASLt), attention (a flash
  /// kernel, forward and backward together), bandwidth-bound kernels.
  double gemmEfficiency = 0, attentionEfficiency = 0, memoryEfficiency = 0;
  double kernelOverheadSec = 0; ///< launch and tail of one kernel
};

/// A published nccl-tests all-reduce measurement: `ranks` GPUs, `perDomain`
/// of them in each NVLink domain, `bytes` reaching `busBytesPerSec`
/// (busbw = algbw x 2 (n-1) / n, algbw = bytes / time).
struct Measurement {
  int64_t ranks = 0, perDomain = 0;
  double bytes = 0, busBytesPerSec = 0;
  std::string source;
  double seconds() const;
};

/// A collective's cost in one network: a step's latency and the bus
/// bandwidth large messages reach (an all-reduce of S bytes over n GPUs
/// moves 2 (n - 1) / n x S through each GPU's links), fitted to published
/// measurements or given (with where the figures come from).
struct NetworkFit {
  double latencySec = 0;  ///< per ring step, or per tree level across domains
  double busBytesPerSec = 0;
  std::vector<Measurement> points; ///< empty when given
  std::string source;              ///< for given figures
};

/// One network: a point-to-point link's bandwidth (one direction, per GPU
/// or per NIC) and latency, and the collectives' fit.
struct Network {
  double bytesPerSec = 0;
  double latencySec = 0;
  NetworkFit allReduce;
};

struct Cluster {
  std::string name, description;
  Gpu gpu;
  int32_t gpus = 0;       ///< the largest job the cluster holds
  int32_t domainGpus = 1; ///< GPUs of one NVLink domain
  Network nvlink;         ///< inside a domain
  Network scaleOut;       ///< between domains, one NIC's
  int32_t gpusPerNic = 1; ///< GPUs sharing one NIC (their traffic divides it)
};

/// The cluster with its compute `compute` times better (factor > 1) or
/// worse (efficiencies, capped at 1, times it; the kernel overhead divided
/// by it) and its networks `network` times (bandwidths times it, latencies
/// divided by it); the peaks and memory as they are. pipec-sim --search's
/// band takes the four corners of 0.8 and 1.2.
Cluster varied(const Cluster &c, double compute, double network);

/// Reads and checks a cluster description; "" or what is wrong (the file,
/// the field and why). The collectives' latency and bus bandwidth are
/// fitted to the file's published points (fitCollectives).
std::string readCluster(const std::string &path, Cluster &out);
/// The same from the text of a description (`name` for messages).
std::string parseCluster(const std::string &text, const std::string &name,
                         Cluster &out);

/// Fits each network's latency and bus bandwidth to its measurements by
/// least squares on relative time errors, with the very formula
/// collectiveTime uses: NVLink's (one domain each) first, then the
/// scale-out ones, whose times less their NVLink latency fit the
/// cross-domain terms (the network there sets the pace). A network whose
/// figures are given keeps them. "" or why not (fewer than two message
/// sizes, no positive bandwidth).
std::string fitCollectives(Cluster &c);

/// The time collectiveTime gives for a measurement's all-reduce.
double modelledSeconds(const Cluster &c, const Measurement &m);

/// Seconds of one phase's work on the cluster's GPU: per kernel class the
/// roofline at its efficiency (max of FLOPs over the class's rate and
/// bytes over the achieved bandwidth; the rest at the vector rate), plus
/// each kernel's overhead.
double workTime(const Gpu &gpu, const plan::Work &work);

/// Seconds of an AdamW step over `paramBytes` of fp32 masters with
/// `copyBytes` of bf16 working copies, bandwidth-bound: it reads the
/// master, gradient and both moments, writes master and moments and the
/// copy, and the step's gradient norm and zeroing read and write the
/// gradients once more (9 x the masters plus the copies). With ZeRO-1 over
/// `replicas`, the update's 7 passes touch a replica's share only.
double optimizerTime(const Gpu &gpu, double paramBytes, double copyBytes,
                     int32_t replicas = 1, bool zero = false);

/// Which GPU each rank runs on: rank `replica * stages + stage` of a plan
/// with `stages` pipeline ranks. PipelineMajor puts a replica's stages on
/// consecutive GPUs (activations stay inside an NVLink domain where it
/// holds them); ReplicaMajor puts a stage's replicas on consecutive GPUs
/// (the data-parallel reductions stay inside a domain instead).
enum class Placement : uint8_t { PipelineMajor, ReplicaMajor };
bool parsePlacement(const std::string &text, Placement &out);
int64_t gpuOf(Placement p, int32_t stages, int32_t replicas, int32_t rank);

/// A point-to-point message of `bytes` from GPU a to GPU b: NVLink inside
/// one domain, otherwise the scale-out network at the NIC's share.
double messageTime(const Cluster &c, int64_t gpuA, int64_t gpuB,
                   double bytes);

/// The kinds of collective pipec's streams post.
enum class CollectiveKind : uint8_t { AllReduce, ReduceScatter, AllGather };

/// A collective of `bytes` (the whole buffer every member holds) over the
/// GPUs `members`, hierarchical where they span domains: inside a domain
/// of g members each moves (g - 1) / g x S (twice for an all-reduce);
/// across the d domains every member carries its 1/g share over its own
/// NIC at once, (d - 1) / d of it each way; latencies in tree form, log2 g
/// and log2 d steps each way (NCCL's NVLS and tree algorithms; a ring's
/// 2 (n - 1) steps would make 220,000 GPUs' latency alone seconds). NCCL pipelines
/// the two levels (a ring channel's chunks cross NVLink and the NIC at
/// once), so the latencies add and the slower level's bytes set the
/// bandwidth term. Reduce-scatter and all-gather are each half an
/// all-reduce. The busiest domain's member count is g.
double collectiveTime(const Cluster &c, CollectiveKind kind,
                      const std::vector<int64_t> &members, double bytes);

/// The same for `n` GPUs spread evenly as `perDomain` per domain (the
/// symmetric case, without listing 220,000 members).
double collectiveTime(const Cluster &c, CollectiveKind kind, int64_t n,
                      int64_t perDomain, double bytes);

} // namespace pipec::cluster

#endif // PIPEC_COMPILER_CLUSTER_CLUSTER_H
