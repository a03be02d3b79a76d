//===- AtomicFile.h - files written whole or not at all -------*- C++ -*-===//
//
// Every file a pipec tool writes (weights, metrics, traces, manifests,
// streams, sources, SVGs, the plan executable) goes through AtomicFile: the
// bytes go to a temporary file beside the target (NAME.tmp.XXXXXX), and
// commit() flushes, fsyncs and renames it over the target, then fsyncs the
// directory. A crash at any moment therefore leaves either the old file or
// the complete new one; a write error (a full disk) names the file and the
// errno text and leaves the old file in place.
//
// Files of a plan folder (a directory holding manifest.json: the manifest
// and every file it lists) are written by `pipec compile` alone; open()
// refuses them unless the caller says it is the compiler.
//
// Fault injection for the tests (docs/RUNTIME.md): PIPEC_FAULT_WRITE=
// NAME:BYTES[:enospc] makes the write that passes BYTES bytes of a file
// whose target is named NAME (or whose path ends in /NAME, e.g.
// "step-0000000008.partial/rank-1.safetensors") kill the process with
// SIGKILL (a `kill -9` while it writes), or with `:enospc` fail as a full
// disk would.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_ATOMICFILE_H
#define PIPERT_ATOMICFILE_H

#include "pipert/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace pipert {

/// Who may write a file of a plan folder.
enum class PlanFiles { Refuse, Allow };

/// When commit() fsyncs the directory: at once, or Later, by the caller's
/// one syncDirectory after a batch of files (a plan of 16,384 ranks writes
/// as many streams: one directory sync, not 16,384).
enum class DirSync { Now, Later };

/// A file being written; it replaces its target on commit() only.
class AtomicFile {
public:
  AtomicFile() = default;
  AtomicFile(const AtomicFile &) = delete;
  AtomicFile &operator=(const AtomicFile &) = delete;
  /// Removes the temporary file unless committed.
  ~AtomicFile();

  /// Creates the temporary file beside `path`; `executable` gives it the
  /// mode 0777 less the umask (else 0666 less the umask).
  Status open(const std::string &path, bool executable = false,
              PlanFiles planFiles = PlanFiles::Refuse);
  /// Appends bytes; after a failure every later call fails with it.
  Status write(const void *data, size_t bytes);
  Status write(const std::string &text) { return write(text.data(), text.size()); }
  /// Flushes and fsyncs the temporary file, renames it over the target and
  /// fsyncs the directory (unless `sync` leaves that to the caller). The
  /// file is closed afterwards either way.
  Status commit(DirSync sync = DirSync::Now);
  /// Removes the temporary file; the target stays as it was.
  void discard();

  bool isOpen() const { return fd >= 0; }
  const std::string &path() const { return target; }

private:
  std::string target, temp;
  int fd = -1;
  uint64_t written = 0;
  int64_t faultAt = -1; ///< PIPEC_FAULT_WRITE's byte count for this file
  bool faultEnospc = false;
  Status failed = Status::success();
};

/// Writes `bytes` to `path` through an AtomicFile.
Status writeFileAtomically(const std::string &path, const void *data,
                           size_t bytes, bool executable = false,
                           PlanFiles planFiles = PlanFiles::Refuse,
                           DirSync sync = DirSync::Now);
inline Status writeFileAtomically(const std::string &path,
                                  const std::string &text,
                                  PlanFiles planFiles = PlanFiles::Refuse) {
  return writeFileAtomically(path, text.data(), text.size(), false, planFiles);
}

/// fsync of a directory, so that a rename or removal in it survives a
/// power cut (errors ignored: some file systems refuse it).
void syncDirectory(const std::string &dir);

/// Fails when `path` is a file of a plan folder (the manifest, or a file
/// its "files" list names; when the manifest cannot be read, anything named
/// like a plan file): only `pipec compile` writes those. `flag` begins the
/// message ("--save").
Status refusePlanFile(const std::string &path, const std::string &flag);

} // namespace pipert

#endif // PIPERT_ATOMICFILE_H
