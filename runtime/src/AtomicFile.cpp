//===- AtomicFile.cpp - files written whole or not at all -----------------===//

#include "pipert/AtomicFile.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace pipert {

namespace {

std::string errnoText(int e) { return std::strerror(e); }

std::string dirOf(const std::string &path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string baseOf(const std::string &path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// PIPEC_FAULT_WRITE=NAME:BYTES[:enospc] for the file at `path`: NAME is
/// its file name, or the end of its path after a slash
/// ("step-0000000008.partial/rank-1.safetensors").
void faultFor(const std::string &path, int64_t &at, bool &enospc) {
  at = -1;
  enospc = false;
  const char *env = std::getenv("PIPEC_FAULT_WRITE");
  if (!env)
    return;
  std::string spec = env;
  size_t colon = spec.find(':');
  std::string name = spec.substr(0, colon);
  if (colon == std::string::npos ||
      (name != baseOf(path) && !endsWith(path, "/" + name)))
    return;
  std::string rest = spec.substr(colon + 1);
  size_t second = rest.find(':');
  std::string count = rest.substr(0, second);
  char *end = nullptr;
  errno = 0;
  long long n = std::strtoll(count.c_str(), &end, 10);
  if (count.empty() || *end || errno || n < 0)
    return;
  at = n;
  enospc = second != std::string::npos && rest.substr(second + 1) == "enospc";
}


/// Whether `name` looks like a file `pipec compile` writes into a plan
/// folder (used when the folder's manifest cannot be read).
bool plausiblePlanFile(const std::string &name) {
  return name == "manifest.json" || name == "pipec-plan" ||
         endsWith(name, ".pstream") || endsWith(name, ".cpp");
}

} // namespace

Status refusePlanFile(const std::string &path, const std::string &flag) {
  std::string dir = dirOf(path), name = baseOf(path);
  std::string manifest = dir + "/manifest.json";
  struct stat st;
  if (::stat(manifest.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return Status::success(); // not a plan folder
  auto refuse = [&](const char *what) {
    return Status::failure(flag + " " + path + ": " + dir +
                           " is a plan folder and " + name + " is " + what +
                           "; only pipec compile writes those (choose "
                           "another file name or folder)");
  };
  // Streams are always the compiler's, held or not (a plan of replicas
  // holds only replica 0's).
  if (name == "manifest.json")
    return refuse("one of its files");
  if (endsWith(name, ".pstream"))
    return refuse("a stream file's name");
  std::ifstream in(manifest);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  const nlohmann::json *files = nullptr;
  if (!j.is_discarded() && j.is_object() && j.contains("files") &&
      j["files"].is_array())
    files = &j["files"];
  if (!files)
    return plausiblePlanFile(name) ? refuse("one of its files")
                                   : Status::success();
  for (const nlohmann::json &f : *files)
    if (f.is_string() && f.get<std::string>() == name)
      return refuse("one of its files");
  return Status::success();
}

void syncDirectory(const std::string &dir) {
  int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    (void)::fsync(d);
    ::close(d);
  }
}

AtomicFile::~AtomicFile() { discard(); }

Status AtomicFile::open(const std::string &path, bool executable,
                        PlanFiles planFiles) {
  discard();
  failed = Status::success();
  written = 0;
  target = path;
  if (path.empty())
    return failed = Status::failure("cannot write a file with an empty name");
  if (planFiles == PlanFiles::Refuse)
    if (Status s = refusePlanFile(path, "writing"); !s.ok())
      return failed = s;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    // A device or a pipe (/dev/null, /dev/stdout, a process substitution)
    // is the caller's stream: written in place, nothing to replace.
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
      fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0)
        return failed = Status::failure("cannot write " + path + ": " +
                                        errnoText(errno));
      faultFor(path, faultAt, faultEnospc);
      return Status::success();
    }
    return failed = Status::failure(
               "cannot write " + path + ": it exists and is not a regular "
               "file (a directory or a socket)");
  }
  std::string pattern = path + ".tmp.XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  fd = ::mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0)
    return failed = Status::failure("cannot write " + path + ": " +
                                    errnoText(errno));
  temp = buf.data();
  // mkstemp creates 0600; a normal file gets the umask's mode.
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, (executable ? 0777 : 0666) & ~mask);
  faultFor(path, faultAt, faultEnospc);
  return Status::success();
}

Status AtomicFile::write(const void *data, size_t bytes) {
  if (!failed.ok())
    return failed;
  if (fd < 0)
    return failed = Status::failure("cannot write " + target +
                                    ": the file is not open");
  const char *p = static_cast<const char *>(data);
  while (bytes > 0) {
    size_t chunk = bytes;
    if (faultAt >= 0 && written + chunk > uint64_t(faultAt)) {
      chunk = size_t(uint64_t(faultAt) - written);
      if (chunk == 0) {
        if (faultEnospc) {
          discard();
          return failed = Status::failure("cannot write " + target + ": " +
                                          errnoText(ENOSPC));
        }
        ::raise(SIGKILL); // PIPEC_FAULT_WRITE: a kill -9 mid-write
      }
    }
    ssize_t n = ::write(fd, p, chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int e = n < 0 ? errno : ENOSPC;
      discard();
      return failed = Status::failure("cannot write " + target + ": " +
                                      errnoText(e));
    }
    p += n;
    bytes -= size_t(n);
    written += uint64_t(n);
  }
  return Status::success();
}

Status AtomicFile::commit(DirSync sync) {
  if (!failed.ok())
    return failed;
  if (fd < 0)
    return failed = Status::failure("cannot write " + target +
                                    ": the file is not open");
  if (temp.empty()) { // a device or a pipe, written in place
    int rc = ::close(fd);
    fd = -1;
    if (rc != 0)
      return failed = Status::failure("cannot write " + target + ": " +
                                      errnoText(errno));
    return Status::success();
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    discard();
    return failed = Status::failure("cannot write " + target + ": " +
                                    errnoText(e));
  }
  if (::close(fd) != 0) {
    int e = errno;
    fd = -1;
    discard();
    return failed = Status::failure("cannot write " + target + ": " +
                                    errnoText(e));
  }
  fd = -1;
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    int e = errno;
    discard();
    return failed = Status::failure("cannot replace " + target + ": " +
                                    errnoText(e));
  }
  temp.clear();
  if (sync == DirSync::Now)
    syncDirectory(dirOf(target));
  return Status::success();
}

void AtomicFile::discard() {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
  if (!temp.empty()) {
    ::unlink(temp.c_str());
    temp.clear();
  }
}

Status writeFileAtomically(const std::string &path, const void *data,
                           size_t bytes, bool executable, PlanFiles planFiles,
                           DirSync sync) {
  AtomicFile f;
  if (Status s = f.open(path, executable, planFiles); !s.ok())
    return s;
  if (Status s = f.write(data, bytes); !s.ok())
    return s;
  return f.commit(sync);
}

} // namespace pipert
