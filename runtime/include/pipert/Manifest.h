//===- Manifest.h - manifest.json: what a compiled plan holds -*- C++ -*-===//
//
// The contract between the emitter and the runtime (docs/RUNTIME.md): the
// model, the ranks and their streams and arena sizes, the schedule, every
// parameter with its arena offsets (value, gradient, AdamW m and v), the
// named buffers, the metric slots the runtime reads after each step, and the
// training hyperparameters.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_MANIFEST_H
#define PIPERT_MANIFEST_H

#include "pipert/Status.h"
#include "pipert/Stream.h"
#include "pipert/ZeroShard.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace pipert {

/// Per rank: its stream file (relative to the manifest) and arena sizes.
struct RankInfo {
  std::string stream;
  int64_t arenaBytes = 0; ///< bytes allocated
  int64_t peakBytes = 0;  ///< the plan's peak; the shadow mode checks it
  /// The stream file's checksum (its header's), so that a stream edited or
  /// taken from another plan is refused; 0: not recorded.
  uint64_t streamChecksum = 0;
};

/// A trainable parameter and the arena regions it owns on its rank.
struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  /// The model's shape when `shape` is padded (--nn-pad-vocab: initialised
  /// and saved logically, the padding zero, pipert/LogicalShape.h); empty
  /// when the parameter is not padded.
  std::vector<int64_t> logicalShape;
  DType dtype = DType::F32;
  int32_t rank = 0;
  int64_t offset = 0, gradOffset = 0, adamMOffset = 0, adamVOffset = 0;
  int64_t bytes = 0;
  std::string init = "normal"; ///< "normal", "zeros" or "ones"
  double std = 0.02;
  bool decay = false; ///< weight decay (2-D weights)
  /// ZeRO-1: the key pipert::zeroShard splits the moments by (the
  /// parameter's index in the model); -1 without ZeRO.
  int32_t zeroKey = -1;
  /// ZeRO-1: where replica r's moments of it sit, relative to replica 0's
  /// (adam offsets + momentShift[r]): each replica packs its own parts.
  std::vector<int64_t> momentShift;
  /// Elements of the parameter.
  int64_t elements() const {
    return bytes / std::max<int64_t>(dtypeBytes(dtype), 1);
  }
  /// The shape initialisation and checkpoints see.
  const std::vector<int64_t> &modelShape() const {
    return logicalShape.empty() ? shape : logicalShape;
  }
};

/// A named arena region (activation, message buffer, workspace...).
struct BufferInfo {
  std::string name;
  int32_t rank = 0;
  int64_t offset = 0, bytes = 0;
};

/// Where a scalar metric lives: `count` elements of `dtype` on `rank`.
struct MetricSlot {
  int32_t rank = -1; ///< -1: absent
  int64_t offset = 0;
  DType dtype = DType::F64;
  int64_t count = 1;
};

/// Hyperparameters of the training loop (docs/TRAINING.md).
struct TrainInfo {
  double lr = 1e-3, minLr = 0;
  int64_t warmupSteps = 0, decaySteps = 1;
  bool cosine = true;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0;
  double gradClip = 0;
  uint64_t seed = 0;
};

/// How the streams of replicas 1..D-1 follow from replica 0's, so that a
/// plan of D replicas of a pipeline of P ranks holds P stream files, not
/// D P (docs/RUNTIME.md "One stream file a pipeline rank"). Replica k's
/// rank r + k P runs rank r's stream with its peers, header rank and the
/// members of its replica's communicators moved by k P, its replica's
/// groups g < G by k G (Replicate.h's numbering), its replica's group
/// communicators by k groupComms and pair communicators by k pairComms;
/// what spans the replicas (the data-parallel groups, their
/// communicators and ZeRO's parts) is the same in every replica. The
/// compiler uses it only where moving replica 0's streams gives every
/// other replica's exactly (PlanStreams.h).
struct ReplicaRelocation {
  int32_t groups = 0;     ///< G: a replica's copies of the pipeline groups
  int32_t groupComms = 0; ///< a replica's group communicators
  int32_t pairComms = 0;  ///< a replica's pair communicators
  bool active = false;    ///< "replica_streams" is in the manifest
};

/// The whole manifest.
struct Manifest {
  /// The plan's identity (planIdText: 16 hex digits): a hash of the model,
  /// the compile options and the emitted sources, also written into every
  /// stream and compiled into the executable; "" in manifests built by
  /// hand (tests).
  std::string planId;
  /// Every file of the plan folder (relative names), which no tool but
  /// `pipec compile` writes over (AtomicFile.h).
  std::vector<std::string> files;
  std::string model;
  DType dtype = DType::F32;
  int32_t ranks = 1;
  int32_t microbatches = 1;
  int64_t tokensPerMicrobatch = 0;
  /// The model's FLOPs of one micro-batch's training step (3 x the
  /// forward's, as `pipec stats`), 0 unknown: pipec-sim's MFU.
  int64_t trainFlopsPerMicrobatch = 0;
  std::string scheduleKind;
  int32_t stages = 1, chunksPerRank = 1;
  double modeledBubble = -1; ///< the schedule's replayed bubble, -1 unknown
  /// Data-parallel replicas of the pipeline (docs/RUNTIME.md): rank
  /// `replica * (ranks / replicas) + p` runs pipeline rank p of its
  /// replica, with p's stream layout, arena and code. chunkRank,
  /// params, buffers and the metric slots describe replica 0 (ranks below
  /// ranks / replicas); every replica has the same at its own ranks.
  int32_t replicas = 1;
  /// ZeRO stage (0 or 1). With 1, each replica's AdamW moments of a
  /// parameter hold only its part (pipert/ZeroShard.h), at the
  /// parameter's adam offsets of that replica's rank.
  int32_t zero = 0;
  std::vector<int32_t> chunkRank;         ///< chunk -> rank (replica 0)
  std::vector<std::vector<int32_t>> groups; ///< group -> ranks, ascending
  /// Per group, the group whose operand the plan's code prepares
  /// (ChunkKernels::prepareAllReduce: replica r's copy of a pipeline group
  /// is prepared as replica 0's), or -1 where the operand is all-reduced
  /// in place as it is (a chunk's gradient accumulators over its
  /// replicas). Empty: every group prepares itself.
  std::vector<int32_t> groupOperand;
  std::vector<RankInfo> rankInfo;
  /// Set: replicas 1..D-1 run replica 0's stream files, moved
  /// (ReplicaRelocation); rankInfo of rank r + k P then names rank r's
  /// file and checksum.
  ReplicaRelocation relocation;
  std::vector<ParamInfo> params;
  std::vector<BufferInfo> buffers;
  MetricSlot loss;     ///< per-micro-batch losses (count = microbatches)
  MetricSlot gradNorm; ///< the global gradient norm before clipping
  TrainInfo train;

  /// Ranks of one pipeline (one replica).
  int32_t pipelineRanks() const { return ranks / replicas; }
  /// The pipeline rank (replica 0's) whose code and layout rank r runs.
  int32_t pipelineRankOf(int32_t r) const { return r % pipelineRanks(); }
  /// The replica rank r belongs to.
  int32_t replicaOf(int32_t r) const { return r / pipelineRanks(); }
  /// The part of p's moments that `replica` holds (all of it without ZeRO).
  ShardRange momentShard(const ParamInfo &p, int32_t replica) const {
    return zero == 1 ? zeroShard(p.elements(), p.zeroKey, replica, replicas)
                     : ShardRange{0, p.elements()};
  }
  /// Bytes of p's moments that `replica` keeps.
  int64_t momentBytes(const ParamInfo &p, int32_t replica) const {
    return momentShard(p, replica).count * dtypeBytes(p.dtype);
  }
  /// Where `replica` keeps moment k (1 m, 2 v) of p.
  int64_t momentOffset(const ParamInfo &p, int k, int32_t replica) const {
    return (k == 1 ? p.adamMOffset : p.adamVOffset) +
           (zero == 1 ? p.momentShift[size_t(replica)] : 0);
  }
  /// The group whose operand prepareAllReduce fills for group g, or -1.
  int32_t operandGroupOf(int32_t g) const {
    return groupOperand.empty() ? g : groupOperand[size_t(g)];
  }
};

/// The most ranks a manifest of `manifestBytes` with "replica_streams" may
/// claim: nothing else in the file bounds them (replica_stream_checksums
/// cost 16 bytes a rank), so at most 512 a byte of the file, at least
/// 2^16, and never above 2^22 (19 times the largest clusters'): a small
/// hostile file cannot make the reader expand millions of ranks.
int64_t movedStreamRankLimit(size_t manifestBytes);

/// Whether the manifest lists replica 0's ranks alone: D > 1 replicas
/// whose rank r + k P has rank r's arena and peak, streams named
/// rank<r>.pstream, every checksum recorded (the compiler's plans). The
/// others' checksums then go in one string, "replica_stream_checksums":
/// 16 bytes a rank, not 120 (docs/RUNTIME.md).
bool replicatedRankInfo(const Manifest &m);
/// G0 > 0 when the first G0 groups are replica 0's and every replica k's
/// follow as their copies shifted by k P (with the same group operands),
/// as the compiler lays them out: the manifest then lists replica 0's
/// alone ("replica_groups": G0). 0 otherwise.
size_t replicaGroupCount(const Manifest &m);

/// Checks ranges and the arena regions of parameters and buffers (inside
/// their rank's arena; parameter state never overlaps anything else).
Status validateManifest(const Manifest &manifest);
/// The manifest as JSON text (what the emitter writes).
std::string manifestToJson(const Manifest &manifest);
/// Parses and validates JSON text; `name` prefixes errors.
Status parseManifest(const std::string &text, const std::string &name,
                     Manifest &manifest);
/// A plan id as the manifest spells it: 16 lower-case hex digits.
std::string planIdText(uint64_t id);
/// The number planIdText spelled (0 for "", a manifest built by hand).
uint64_t planIdValue(const std::string &text);
/// The first field where two manifests differ, as a JSON pointer with both
/// values ("/buffers/12/offset: 4096 against 8192"); "" when equal. The
/// plan id is not compared.
std::string firstManifestDifference(const Manifest &a, const Manifest &b);
/// Writes / reads DIR/manifest.json.
Status writeManifestFile(const std::string &path, const Manifest &manifest);
Status readManifestFile(const std::string &path, Manifest &manifest);

} // namespace pipert

#endif // PIPERT_MANIFEST_H
