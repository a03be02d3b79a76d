//===- CheckpointDir.h - a directory of committed checkpoints --*- C++ -*-===//
//
// `pipec-run --checkpoint-dir DIR` (docs/RUNTIME.md, "Checkpoints"):
//
//   DIR/step-0000000100/rank-0.safetensors   one part per rank that owns
//   DIR/step-0000000100/rank-1.safetensors   parameters (their values and
//   ...                                      AdamW moments)
//   DIR/step-0000000100/COMMITTED            written last
//
// A checkpoint is made in DIR/step-N.partial/: each part is written
// through an AtomicFile (temporary file, fsync, rename), then COMMITTED
// (the step and every part's size and FNV-1a checksum, also atomically),
// then the directory is renamed to DIR/step-N and DIR fsynced. So a crash
// at any moment leaves the committed checkpoints as they were; a partial
// directory is never loaded and is removed by the next checkpoint. Loading
// checks the marker and every part against it, so a damaged, truncated or
// swapped part is refused by name.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_CHECKPOINTDIR_H
#define PIPERT_CHECKPOINTDIR_H

#include "pipert/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipert {

/// The committed checkpoint of step `step` in `dir`: DIR/step-NNNNNNNNNN.
std::string checkpointPath(const std::string &dir, int64_t step);

/// Creates `dir` if needed and an empty DIR/step-N.partial (removing what
/// a crash left there); `partial` is its path.
Status beginCheckpoint(const std::string &dir, int64_t step,
                       std::string &partial);

/// Seals DIR/step-N.partial holding `parts` (file names): COMMITTED, then
/// the rename to DIR/step-N (replacing an older checkpoint of that step).
Status commitCheckpoint(const std::string &dir, int64_t step,
                        const std::vector<std::string> &parts);

/// Keeps the `keep` newest committed checkpoints of `dir` (at least 1) and
/// removes the older ones and every partial directory.
Status pruneCheckpoints(const std::string &dir, int64_t keep);

/// A committed checkpoint: its directory, step and parts (full paths),
/// each checked against COMMITTED (size and checksum).
struct Checkpoint {
  std::string dir;
  int64_t step = 0;
  std::vector<std::string> parts;
  /// What COMMITTED records of each part (its FNV-1a as 16 hex digits).
  std::vector<int64_t> bytes;
  std::vector<std::string> fnv1a64;
  /// Where openCheckpoint chose this one as the newest of a directory:
  /// the older committed checkpoints there (directory names, newest
  /// first), which a refusal of a damaged part names.
  std::vector<std::string> older;
  /// Likewise, the step directories newer than this one that were never
  /// committed (a run stopped while writing them), passed over.
  std::vector<std::string> uncommitted;
};

/// How much of each part openCheckpoint checks.
enum class PartCheck {
  Whole, ///< size and checksum of every part
  Size,  ///< size alone: the reader checks the sums of the parts it reads
         ///< (verifyPart), so a process of one rank does not read every
         ///< part of a checkpoint of the whole model
};

/// `path` is a committed checkpoint (DIR/step-N) or a directory of them
/// (its newest); fails naming what is missing or damaged.
Status openCheckpoint(const std::string &path, Checkpoint &out,
                      PartCheck check = PartCheck::Whole);

/// Checks part `i` of `c` whole against COMMITTED (size and checksum);
/// fails naming it as damaged (and the older checkpoints, as
/// openCheckpoint does).
Status verifyPart(const Checkpoint &c, size_t i);

/// The step of the newest committed checkpoint in `dir`, or -1.
int64_t newestCommittedStep(const std::string &dir);

/// Takes the exclusive lock of checkpoint directory `dir` (DIR/.lock,
/// flock, for the life of the process) and writes this process's id into
/// it. Fails, naming the holder, when another process holds it. Where the
/// filesystem has no flock, succeeds unlocked with `warning` saying so.
Status lockCheckpointDirectory(const std::string &dir, std::string &warning);

/// Whether `path` names a file in a checkpoint (a step-N directory, its
/// .partial form, or any directory with a commit marker): only the
/// checkpoint writer may write there.
bool insideCheckpoint(const std::string &path);

/// Whether `path` is a directory (a checkpoint, or a directory of them)
/// rather than a --save-state file.
bool isCheckpointDirectory(const std::string &path);

} // namespace pipert

#endif // PIPERT_CHECKPOINTDIR_H
