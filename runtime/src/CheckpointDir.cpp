//===- CheckpointDir.cpp - a directory of committed checkpoints -----------===//

#include "pipert/CheckpointDir.h"

#include "pipert/AtomicFile.h"
#include "pipert/Fnv.h"
#include "pipert/InputFile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace pipert {
namespace {

constexpr const char *kMarker = "COMMITTED";
constexpr const char *kPartialSuffix = ".partial";
/// An older checkpoint of the same step, set aside while the new one is
/// renamed into place.
constexpr const char *kReplacedSuffix = ".replaced";

/// The step of a directory named step-NNNNNNNNNN (10 digits), else -1.
int64_t stepOfName(const std::string &name) {
  if (name.size() != 15 || name.compare(0, 5, "step-") != 0)
    return -1;
  int64_t step = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9')
      return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

/// The step of a directory named step-NNNNNNNNNN`suffix` (its .partial
/// or .replaced form), else -1.
int64_t stepOfName(const std::string &name, const std::string &suffix) {
  if (name.size() <= suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return -1;
  return stepOfName(name.substr(0, name.size() - suffix.size()));
}

/// Size and FNV-1a of a whole file.
Status digest(const std::string &path, int64_t &bytes, uint64_t &hash) {
  MappedFile f;
  if (Status s = f.open(path, "checkpoint part"); !s.ok())
    return s;
  bytes = int64_t(f.size());
  hash = fnv1a(f.data(), f.size());
  return Status::success();
}

std::string hex(uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", (unsigned long long)v);
  return text;
}

/// Removes `path` and what it holds; "" or why not.
std::string removeAll(const fs::path &path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  return ec ? "cannot remove " + path.string() + ": " + ec.message() : "";
}

/// The committed checkpoints of `dir` by step (directories with a marker).
std::map<int64_t, fs::path> committedIn(const std::string &dir) {
  std::map<int64_t, fs::path> out;
  std::error_code ec;
  for (const fs::directory_entry &e : fs::directory_iterator(dir, ec)) {
    int64_t step = stepOfName(e.path().filename().string());
    if (step >= 0 && e.is_directory(ec) &&
        fs::is_regular_file(e.path() / kMarker, ec))
      out[step] = e.path();
  }
  return out;
}

/// Checks DIR/step-N's marker and parts (their sums only when `check` is
/// Whole).
Status verify(const fs::path &stepDir, Checkpoint &out, PartCheck check) {
  const std::string where = stepDir.string();
  std::string text;
  {
    std::ifstream in(stepDir / kMarker);
    if (!in)
      return Status::failure(where + ": no " + kMarker +
                             " marker: the checkpoint was never committed (a "
                             "run stopped while writing it)");
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
    out.step = j.at("step").get<int64_t>();
    out.dir = where;
    out.parts.clear();
    out.bytes.clear();
    out.fnv1a64.clear();
    out.older.clear();
    for (const nlohmann::json &p : j.at("parts")) {
      std::string name = p.at("name").get<std::string>();
      if (name.empty() || name.find('/') != std::string::npos)
        return Status::failure(where + "/" + kMarker + ": a part named '" +
                               name + "'");
      out.parts.push_back((stepDir / name).string());
      out.bytes.push_back(p.at("bytes").get<int64_t>());
      out.fnv1a64.push_back(p.at("fnv1a64").get<std::string>());
      const size_t i = out.parts.size() - 1;
      if (check == PartCheck::Whole) {
        if (Status s = verifyPart(out, i); !s.ok())
          return s;
        continue;
      }
      // Another size: damaged, said as a checked sum says it.
      std::error_code ec;
      const uintmax_t size = fs::file_size(out.parts[i], ec);
      if (ec || int64_t(size) != out.bytes[i])
        if (Status s = verifyPart(out, i); !s.ok())
          return s;
    }
  } catch (const std::exception &e) {
    return Status::failure(where + "/" + kMarker + ": not a commit marker (" +
                           e.what() + ")");
  }
  // A checkpoint copied elsewhere (another name) is still itself; under
  // its own name the name and the marker must agree.
  int64_t named = stepOfName(stepDir.filename().string());
  if (named >= 0 && named != out.step)
    return Status::failure(where + ": its marker is for step " +
                           std::to_string(out.step));
  return Status::success();
}

} // namespace

std::string checkpointPath(const std::string &dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%010lld", (long long)step);
  return (fs::path(dir) / name).string();
}

Status beginCheckpoint(const std::string &dir, int64_t step,
                       std::string &partial) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec))
    return Status::failure("checkpoint directory " + dir +
                           ": cannot create it" +
                           (ec ? ": " + ec.message() : std::string()));
  partial = checkpointPath(dir, step) + kPartialSuffix;
  if (std::string e = removeAll(partial); !e.empty())
    return Status::failure(e);
  if (!fs::create_directory(partial, ec) || ec)
    return Status::failure("cannot create " + partial +
                           (ec ? ": " + ec.message() : std::string()));
  return Status::success();
}

Status commitCheckpoint(const std::string &dir, int64_t step,
                        const std::vector<std::string> &parts) {
  const std::string final = checkpointPath(dir, step);
  const std::string partial = final + kPartialSuffix;
  nlohmann::json marker;
  marker["step"] = step;
  marker["parts"] = nlohmann::json::array();
  for (const std::string &name : parts) {
    int64_t bytes = 0;
    uint64_t hash = 0;
    if (Status s = digest(partial + "/" + name, bytes, hash); !s.ok())
      return s;
    marker["parts"].push_back(
        {{"name", name}, {"bytes", bytes}, {"fnv1a64", hex(hash)}});
  }
  if (Status s = writeFileAtomically(partial + "/" + kMarker,
                                     marker.dump(1) + "\n");
      !s.ok())
    return s;
  // An older checkpoint of this step (a run repeated into the same
  // directory) is renamed aside, the new one renamed into place, then the
  // old one removed: at every moment one of them is committed under a
  // name that is loaded or can be (a crash between the renames leaves
  // step-N.replaced, complete, with its marker).
  std::error_code ec;
  const std::string replaced = final + kReplacedSuffix;
  bool aside = false;
  if (fs::exists(final, ec)) {
    if (std::string e = removeAll(replaced); !e.empty())
      return Status::failure(e);
    fs::rename(final, replaced, ec);
    if (ec)
      return Status::failure("cannot rename " + final + " to " + replaced +
                             ": " + ec.message());
    aside = true;
  }
  fs::rename(partial, final, ec);
  if (ec)
    return Status::failure("cannot rename " + partial + " to " + final +
                           ": " + ec.message());
  syncDirectory(dir);
  if (aside)
    removeAll(replaced); // the new one is in place; a leftover is pruned
  return Status::success();
}

Status pruneCheckpoints(const std::string &dir, int64_t keep) {
  std::map<int64_t, fs::path> committed = committedIn(dir);
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (const fs::directory_entry &e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    for (const std::string suffix : {kPartialSuffix, kReplacedSuffix})
      if (stepOfName(name, suffix) >= 0)
        doomed.push_back(e.path());
  }
  int64_t extra = int64_t(committed.size()) - std::max<int64_t>(keep, 1);
  for (auto it = committed.begin(); extra > 0; ++it, --extra)
    doomed.push_back(it->second);
  for (const fs::path &p : doomed)
    if (std::string e = removeAll(p); !e.empty())
      return Status::failure(e);
  if (!doomed.empty())
    syncDirectory(dir);
  return Status::success();
}

int64_t newestCommittedStep(const std::string &dir) {
  std::map<int64_t, fs::path> committed = committedIn(dir);
  return committed.empty() ? -1 : committed.rbegin()->first;
}

Status lockCheckpointDirectory(const std::string &dir, std::string &warning) {
  // One run at a time writes a checkpoint directory: two would remove
  // each other's partial checkpoints and commit markers listing parts the
  // other's pruning removed.
  warning.clear();
  const std::string lock = dir + "/.lock";
  // 0666 (less the umask): another user of a shared directory may lock it
  // later; read-only where it cannot be written (flock needs no write
  // access; the holder's pid is then not recorded).
  bool writable = true;
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0 && errno == EACCES) {
    writable = false;
    fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0)
    return Status::failure(lock + ": cannot open the lock file: " +
                           std::strerror(errno));
  const int why = ::flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
  if (why == EWOULDBLOCK) {
    std::string holder;
    char buf[32] = {};
    if (::pread(fd, buf, sizeof buf - 1, 0) > 0)
      holder = " (process " + std::string(buf, strcspn(buf, "\n")) + ")";
    ::close(fd);
    return Status::failure(dir + ": another run" + holder +
                           " is writing checkpoints there; give each run "
                           "its own directory");
  }
  if (why != 0) {
    // A filesystem without flock (Lustre without -o flock, NFS without
    // lockd): the run goes on unlocked, and says so.
    warning = dir + ": cannot lock it (" + std::string(std::strerror(why)) +
              "): nothing stops a second run from writing there too";
    return Status::success();
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (writable &&
      (::ftruncate(fd, 0) != 0 ||
       ::pwrite(fd, pid.data(), pid.size(), 0) != ssize_t(pid.size())))
    return Status::failure(lock + ": cannot write the lock file: " +
                           std::strerror(errno));
  return Status::success(); // fd kept open (and locked) until exit
}

bool insideCheckpoint(const std::string &path) {
  std::error_code ec;
  fs::path dir = fs::absolute(fs::path(path), ec).lexically_normal();
  if (ec)
    return false;
  dir = dir.parent_path();
  const std::string name = dir.filename().string();
  return stepOfName(name) >= 0 || stepOfName(name, kPartialSuffix) >= 0 ||
         fs::exists(dir / kMarker, ec);
}

bool isCheckpointDirectory(const std::string &path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

/// `s` with the older committed checkpoints `c` knows of, to resume from
/// instead: the choice is the user's (resuming from further back loses
/// steps).
static Status withOlder(Status s, const std::vector<std::string> &older) {
  if (s.ok() || older.empty())
    return s;
  std::string list;
  for (const std::string &name : older)
    list += (list.empty() ? "" : ", ") + name;
  return Status::failure(s.message() + "; older committed checkpoints: " +
                         list + " (pass one to --resume)");
}

Status verifyPart(const Checkpoint &c, size_t i) {
  int64_t bytes = 0;
  uint64_t hash = 0;
  const std::string name = fs::path(c.parts.at(i)).filename().string();
  if (Status s = digest(c.parts[i], bytes, hash); !s.ok())
    return Status::failure("checkpoint " + c.dir + ": " + s.message());
  if (bytes != c.bytes.at(i) || hex(hash) != c.fnv1a64.at(i))
    return withOlder(
        Status::failure("checkpoint " + c.dir + ": " + name +
                        " is damaged (" + std::to_string(bytes) +
                        " bytes, FNV-1a " + hex(hash) + "; " + kMarker +
                        " recorded " + std::to_string(c.bytes[i]) +
                        " bytes, " + c.fnv1a64[i] + ")"),
        c.older);
  return Status::success();
}

Status openCheckpoint(const std::string &path, Checkpoint &out,
                      PartCheck check) {
  std::error_code ec;
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty())
    p = p.parent_path();
  if (!fs::is_directory(p, ec))
    return Status::failure(path + ": not a checkpoint directory");
  if (stepOfName(p.filename().string()) >= 0 || fs::exists(p / kMarker, ec))
    return verify(p, out, check);
  std::map<int64_t, fs::path> committed = committedIn(p.string());
  if (committed.empty())
    return Status::failure(path + ": no committed checkpoint in it (a "
                           "step-NNNNNNNNNN directory with a " +
                           std::string(kMarker) + " marker)");
  std::vector<std::string> older, uncommitted;
  for (auto it = std::next(committed.rbegin()); it != committed.rend(); ++it)
    older.push_back(it->second.filename().string());
  const int64_t newest = committed.rbegin()->first;
  for (const fs::directory_entry &e : fs::directory_iterator(p, ec)) {
    const std::string name = e.path().filename().string();
    const int64_t step = std::max(stepOfName(name),
                                  stepOfName(name, kPartialSuffix));
    if (step > newest && e.is_directory(ec) &&
        !fs::exists(e.path() / kMarker, ec))
      uncommitted.push_back(name);
  }
  std::sort(uncommitted.begin(), uncommitted.end());
  Status s = verify(committed.rbegin()->second, out, check);
  out.older = std::move(older);
  out.uncommitted = std::move(uncommitted);
  return withOlder(s, out.older);
}

} // namespace pipert
