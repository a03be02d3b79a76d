//===- InputFile.cpp - input files checked before use, mapped not copied --===//

#include "pipert/InputFile.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace pipert {

/// What a non-regular file is, for messages.
static const char *kindOf(mode_t mode) {
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode))
    return "a device";
  if (S_ISSOCK(mode))
    return "a socket";
  return "not a regular file";
}

/// Opens `path` for reading without blocking on a FIFO, and checks that
/// what was opened is a regular file; returns the descriptor or -1.
static int openRegular(const std::string &path, const std::string &noun,
                       Status &status, struct stat &st) {
  auto notRegular = [&] {
    return Status::failure(path + ": the " + noun + " is " +
                           kindOf(st.st_mode) + ", not a regular file");
  };
  if (path.empty()) {
    status = Status::failure("the " + noun + " has an empty name");
    return -1;
  }
  if (::stat(path.c_str(), &st) != 0) {
    status = Status::failure(path + ": cannot open the " + noun + ": " +
                             std::strerror(errno));
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    status = notRegular();
    return -1;
  }
  // O_NONBLOCK: should the path be swapped for a FIFO after the stat, the
  // open still returns; the fstat below then refuses it.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    status = Status::failure(path + ": cannot open the " + noun + ": " +
                             std::strerror(errno));
    return -1;
  }
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    status = notRegular();
    return -1;
  }
  status = Status::success();
  return fd;
}

Status checkInputFile(const std::string &path, const std::string &noun) {
  Status s = Status::success();
  struct stat st;
  int fd = openRegular(path, noun, s, st);
  if (fd >= 0)
    ::close(fd);
  return s;
}

MappedFile &MappedFile::operator=(MappedFile &&other) noexcept {
  if (this != &other) {
    close();
    base = std::exchange(other.base, nullptr);
    length = std::exchange(other.length, 0);
    mapped = std::exchange(other.mapped, false);
  }
  return *this;
}

MappedFile::~MappedFile() { close(); }

void MappedFile::close() {
  if (mapped)
    ::munmap(const_cast<uint8_t *>(base), length);
  base = nullptr;
  length = 0;
  mapped = false;
}

Status MappedFile::open(const std::string &path, const std::string &noun) {
  close();
  Status s = Status::success();
  struct stat st;
  int fd = openRegular(path, noun, s, st);
  if (fd < 0)
    return s;
  length = size_t(st.st_size);
  if (length > 0) {
    void *p = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      length = 0;
      return Status::failure(path + ": cannot map the " + noun + " (" +
                             std::to_string(st.st_size) +
                             " bytes): " + std::strerror(e));
    }
    base = static_cast<const uint8_t *>(p);
    mapped = true;
  }
  ::close(fd);
  return Status::success();
}

} // namespace pipert
