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
// The compiler writes the moved form only where findRelocation proves, on
// the encoded bytes, that moving replica 0's streams gives every replica's
// own; a reader that moves them therefore runs exactly the streams the
// compiler planned and proved.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_PLANSTREAMS_H
#define PIPERT_PLANSTREAMS_H

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

/// Whether every replica's streams are replica 0's moved: `streams` are
/// all D P ranks' (communicators attached), `groups` the pipeline's
/// groups a replica has (G). Sets `rel` (active) when they are, byte for
/// byte as encoded; false otherwise.
bool findRelocation(const std::vector<Stream> &streams, int32_t P,
                    int32_t replicas, int32_t groups, ReplicaRelocation &rel);

/// Rank r's stream of the plan in `dir`: its file, of the manifest's plan
/// and with its checksum, moved into r's replica where the manifest says
/// so. Errors name the file.
Status readPlanStream(const std::string &dir, const Manifest &m, int32_t r,
                      Stream &stream);

} // namespace pipert

#endif // PIPERT_PLANSTREAMS_H
