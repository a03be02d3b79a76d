//===- InputFile.h - input files checked before use, mapped not copied -*- C++ -*-===//
//
// Every path a tool reads (data, weights, manifests, streams) is first
// checked to be a regular file: a directory, a FIFO (which would block the
// open forever), a device or a socket is refused with a message. Large
// inputs are mapped read-only rather than copied into memory, so a 1.5 GB
// corpus costs address space, not a second 1.5 GB (or 6 GB as int32).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_INPUTFILE_H
#define PIPERT_INPUTFILE_H

#include "pipert/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace pipert {

/// Fails unless `path` names a regular file that can be opened for
/// reading; `noun` names it in the message ("data file": "PATH: the data
/// file is a FIFO, not a regular file").
Status checkInputFile(const std::string &path, const std::string &noun);

/// A regular file mapped read-only for as long as the object lives.
class MappedFile {
public:
  MappedFile() = default;
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;
  MappedFile(MappedFile &&other) noexcept { *this = std::move(other); }
  MappedFile &operator=(MappedFile &&other) noexcept;
  ~MappedFile();

  /// Checks (checkInputFile) and maps `path`; an empty file maps to
  /// nothing (size 0).
  Status open(const std::string &path, const std::string &noun);

  const uint8_t *data() const { return base; }
  size_t size() const { return length; }

private:
  void close();
  const uint8_t *base = nullptr;
  size_t length = 0;
  bool mapped = false;
};

} // namespace pipert

#endif // PIPERT_INPUTFILE_H
