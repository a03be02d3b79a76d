//===- PlanStreams.h - a plan folder's stream of a rank ---------*- C++ -*-===//
//
// Where a rank's stream comes from: its file in the plan folder, held to
// the manifest's plan id and checksum, and, in a plan of D replicas whose
// manifest has "replica_streams", replica 0's file of the same pipeline
// rank moved into the rank's replica (ReplicaRelocation, Manifest.h).
// Replicas differ only in the ranks, groups and communicators they name,
// so one file a pipeline rank is enough: at 220,000 ranks a plan folder
// holds P stream files, not 220,000 (docs/RUNTIME.md "One stream file a
// pipeline rank").
//
// The compiler builds and proves replica 0's streams alone (Replicate.h's
// replicaZeroAlone: proving one replica proves any number of them) and
// plans the communicators of every replica from them
// (attachReplicaZeroComms); it never holds the other replicas' streams,
// whose moved form is, by construction, what it planned. PlanStreamsTest
// holds the communicators and moved streams to those of all replicas
// built and attached whole.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_PLANSTREAMS_H
#define PIPERT_PLANSTREAMS_H

#include "pipert/CommLayout.h"
#include "pipert/Manifest.h"
#include "pipert/Status.h"
#include "pipert/Stream.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipert {

/// `zero` (a stream of replica 0: rank < P) moved into `replica` of a plan
/// of P pipeline ranks and D replicas, as `rel` says. The checksum stays
/// the file's. Fails where `zero` names what no replica-0 stream can.
Status relocateStream(const Stream &zero, int32_t replica, int32_t P,
                      int32_t replicas, const ReplicaRelocation &rel,
                      Stream &out);

/// How replica k's communicators of `layout` (planned for D replicas of P
/// ranks and G groups each, planReplicatedComms) follow from replica 0's:
/// checks that they are replica 0's moved, as relocateStream assumes, and
/// that the others carry data-parallel groups only; sets `rel` (active).
Status replicaRelocationOf(const CommLayout &layout, int32_t P,
                           int32_t replicas, int32_t pipelineGroups,
                           ReplicaRelocation &rel);

/// The compiler's step for a plan of D replicas: plans the communicators
/// of all D P ranks from replica 0's P streams (`zero`, ranks 0..P-1 of
/// D P; CommLayout.h's planReplicatedComms), proves them on those streams
/// (the other replicas run them moved, so they meet as replica 0 does),
/// checks that replica k's communicators are replica 0's moved as `rel`
/// says, writes each stream's part into it, and sets `rel` (active).
/// `pipelineGroups` is G, a replica's groups; `groups` the plan's D G + P.
Status attachReplicaZeroComms(std::vector<Stream> &zero,
                              const std::vector<std::vector<int32_t>> &groups,
                              int32_t replicas, int32_t pipelineGroups,
                              ReplicaRelocation &rel);

/// Rank r's stream of the plan in `dir`: its file, of the manifest's plan
/// and with its checksum, moved into r's replica where the manifest says
/// so. Errors name the file.
Status readPlanStream(const std::string &dir, const Manifest &m, int32_t r,
                      Stream &stream);

} // namespace pipert

#endif // PIPERT_PLANSTREAMS_H
