//===- PlanFiles.cpp - a plan folder compiled for pipec-sim, and read -----===//

#include "PlanFiles.h"

#include "pipert/PlanStreams.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;

namespace pipec::sim {

TempPlan::~TempPlan() {
  if (!dir.empty()) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
}

namespace {
/// Shell-quotes one argument.
std::string shellQuoted(const std::string &s) {
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

} // namespace

/// Compiles `model` with `args` (--stages, --microbatches, ...) by the
/// pipec beside this executable into a new temporary folder (`--emit-only`:
/// the streams, manifest and kernel_calls.json; no build). "" or why not.
std::string compileModel(const char *argv0, const std::string &model,
                         const std::vector<std::string> &args, TempPlan &out) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec)
    self = fs::absolute(argv0, ec);
  const fs::path pipec = self.parent_path() / "pipec";
  if (!fs::exists(pipec))
    return "compiling " + model + " needs pipec beside pipec-sim (" +
           pipec.string() + " does not exist)";
  std::string pattern =
      (fs::temp_directory_path(ec) / "pipec-sim-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data()))
    return "cannot make a temporary folder " + pattern;
  out.dir = buf.data();
  std::string cmd =
      shellQuoted(pipec.string()) + " compile " + shellQuoted(model);
  for (const std::string &a : args)
    cmd += " " + shellQuoted(a);
  cmd += " --emit-only -o " + shellQuoted(out.dir) + " 2>&1";
  std::string output;
  if (FILE *p = popen(cmd.c_str(), "r")) {
    char line[4096];
    while (std::fgets(line, sizeof line, p))
      output += line;
    if (pclose(p) != 0)
      return "pipec compile " + model + " failed:\n" + output;
  } else {
    return "cannot run " + pipec.string();
  }
  return "";
}

std::string loadPlan(const std::string &dir, pipert::Manifest &m,
                     std::vector<pipert::Stream> &streams,
                     schedule::Schedule &s) {
  if (pipert::Status st = pipert::readManifestFile(dir + "/manifest.json", m);
      !st.ok())
    return st.message();
  const int32_t P = m.pipelineRanks(), D = m.replicas;
  const bool two = D > 2 && m.ranks > kWholeReplayRanks && m.relocation.active;
  const int32_t loaded = two ? 2 * P : m.ranks;
  streams.assign(size_t(loaded), pipert::Stream());
  for (int32_t r = 0; r < loaded; ++r)
    if (pipert::Status st =
            pipert::readPlanStream(dir, m, r, streams[size_t(r)]);
        !st.ok())
      return st.message();
  s = schedule::Schedule();
  s.microbatches = m.microbatches;
  s.chunksPerRank = m.chunksPerRank;
  s.replicas = two ? 2 : m.replicas;
  s.placement.ranks = P;
  s.placement.chunks = int32_t(m.chunkRank.size());
  s.placement.rankOf = m.chunkRank;
  s.groups = m.groups;
  if (two) {
    // Replicas 0 and 1 as a plan of two: their groups, then each stage's
    // data-parallel group of their two ranks, numbered 2 G + s.
    const int32_t G = m.relocation.groups;
    s.groups.assign(m.groups.begin(), m.groups.begin() + 2 * G);
    for (int32_t stage = 0; stage < P; ++stage)
      s.groups.push_back({stage, P + stage});
    for (pipert::Stream &st : streams) {
      st.ranks = 2 * P;
      for (pipert::Instr &in : st.instrs)
        if (pipert::isCollectiveOp(in.op) && in.chunk >= D * G)
          in.chunk = 2 * G + (in.chunk - D * G);
    }
  }
  for (const pipert::Stream &st : streams) {
    s.streams.emplace_back();
    for (const pipert::Instr &in : st.instrs)
      s.streams.back().push_back(
          {in.op, in.sub, in.peer, in.chunk, in.mb, in.req});
  }
  return "";
}

} // namespace pipec::sim
