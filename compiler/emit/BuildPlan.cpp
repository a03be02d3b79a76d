//===- BuildPlan.cpp - compiles emitted sources into OUT/pipec-plan -------===//

#include "compiler/emit/BuildPlan.h"

#include "compiler/emit/BuildConfig.h"

#include "pipert/Fnv.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace pipec::emit;
namespace fs = std::filesystem;

static bool readText(const std::string &path, std::string &text) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  text = ss.str();
  return true;
}

/// The compile flags; part of every cache key.
static std::string compileFlags() {
  // PIPERT_KERNELS_CPU_NUMERICS: the kernel headers' check that they are
  // compiled under their numerics contract (kernels/cpu/Numerics.h).
  return std::string("-std=c++17 -O3 -march=native -ffp-contract=off "
                     "-fno-fast-math -fopenmp -DPIPERT_KERNELS_CPU_NUMERICS=1 "
                     "-I") +
         PIPEC_SOURCE_DIR + "/runtime -I" PIPEC_SOURCE_DIR
         "/runtime/include -I" PIPEC_SOURCE_DIR " " PIPEC_BLAS_CFLAGS
#ifdef PIPEC_PLAN_MPI
         // PlanMain.cpp offers --transport mpi (libpipert_mpi is linked).
         " -DPIPEC_PLAN_MPI"
#endif
      ;
}

/// The compile flags of a cuda plan's sources (host code calling the cuda
/// library's launchers, compiled by nvcc); part of every cache key.
static std::string cudaCompileFlags() {
#ifdef PIPEC_HAVE_CUDA
  // sm_90a: the chunks hold host code only; the architecture keeps nvcc
  // from adding an empty cubin of its default one.
  return std::string("-std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a "
                     "-ccbin " PIPEC_CXX " -I") +
         PIPEC_SOURCE_DIR + "/runtime -I" PIPEC_SOURCE_DIR
         "/runtime/include -I" PIPEC_SOURCE_DIR " -I" PIPEC_CUDA_INCLUDE;
#else
  return "";
#endif
}

/// Shell-quotes a path.
static std::string quote(const std::string &s) {
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

namespace {
/// One object to produce: its source and where the cache keeps it.
struct Job {
  std::string source, object, log;
  bool cached = false;
  bool ok = true;
};
} // namespace

bool pipec::emit::buildPlan(const std::string &outDir, const EmittedPlan &plan,
                            BuildStats &stats, std::string &error) {
  std::string cache;
  if (const char *env = std::getenv("PIPEC_CACHE_DIR"); env && *env)
    cache = env;
  std::error_code ec;
  if (cache.empty())
    cache = (fs::absolute(outDir, ec).lexically_normal().parent_path() /
             ".pipec-cache")
                .string();
  fs::create_directories(cache, ec);
  if (ec || !fs::is_directory(cache)) {
    error = "cannot create the compile cache " + cache;
    return false;
  }
  const bool cuda = plan.target == "cuda";
#ifndef PIPEC_HAVE_CUDA
  if (cuda) {
    error = "this pipec was built without a CUDA compiler: write the cuda "
            "plan with --emit-only and build its folder where nvcc is "
            "(cmake -G Ninja -S OUT -B BUILD && ninja -C BUILD)";
    return false;
  }
#endif
  std::string flags = cuda ? cudaCompileFlags() : compileFlags();
  std::vector<std::string> sources;
  // The kernel instantiations first: the longest compile starts first.
  if (!plan.kernelSource.empty())
    sources.push_back(outDir + "/" + plan.kernelSource);
  for (const std::string &s : plan.chunkSources)
    sources.push_back(outDir + "/" + s);
  sources.push_back(outDir + "/" + plan.planSource);
  // main() and the rest of the runner come from libpipert_runner. The
  // interface header and the kernel headers, whose templates every chunk
  // instantiates, are part of every object's key.
  std::vector<std::string> headers = {PIPEC_SOURCE_DIR
                                      "/runtime/include/pipert/PlanCode.h"};
  std::vector<std::string> kernelHeaders;
  for (const auto &entry :
       fs::directory_iterator(PIPEC_SOURCE_DIR "/runtime/kernels/" +
                                  std::string(cuda ? "cuda" : "cpu"),
                              ec))
    if (entry.path().extension() == ".h" || entry.path().extension() == ".def")
      kernelHeaders.push_back(entry.path().string());
  std::sort(kernelHeaders.begin(), kernelHeaders.end());
  headers.insert(headers.end(), kernelHeaders.begin(), kernelHeaders.end());
  std::string planHeader;
  for (const std::string &h : headers) {
    std::string text;
    if (!readText(h, text)) {
      error = "cannot read " + h;
      return false;
    }
    planHeader += text;
  }
  std::vector<Job> jobs;
  for (const std::string &src : sources) {
    std::string text;
    if (!readText(src, text)) {
      error = "cannot read " + src;
      return false;
    }
    // The key covers the text, the flags and the interface header; the
    // runtime headers are fixed per pipec build (PIPEC_BUILD_ID).
    std::string keyed = text + '\0' + flags + '\0' + planHeader + '\0' +
                        PIPEC_BUILD_ID;
    char key[32];
    std::snprintf(key, sizeof key, "%016llx",
                  (unsigned long long)pipert::fnv1a(keyed.data(),
                                                    keyed.size()));
    Job j;
    j.source = src;
    j.object = cache + "/" + key + ".o";
    j.log = cache + "/" + key + ".log";
    j.cached = fs::exists(j.object, ec);
    jobs.push_back(j);
  }
  // Compile what the cache lacks, as many at once as there are cores.
  std::vector<Job *> todo;
  for (Job &j : jobs)
    if (!j.cached)
      todo.push_back(&j);
  size_t workers = std::max(1u, std::thread::hardware_concurrency());
  for (size_t start = 0; start < todo.size(); start += workers) {
    std::vector<std::thread> threads;
    for (size_t i = start; i < std::min(todo.size(), start + workers); ++i)
      threads.emplace_back([&, job = todo[i]] {
        // Unique per process and thread: compiles may share the cache.
        std::string tmp = job->object + ".tmp" + std::to_string(getpid()) +
                          "." +
                          std::to_string(std::hash<std::thread::id>()(
                              std::this_thread::get_id()));
        std::string compiler = PIPEC_CXX;
#ifdef PIPEC_HAVE_CUDA
        if (cuda)
          compiler = PIPEC_NVCC;
#endif
        std::string cmd = compiler + " " + flags + " -c " + quote(job->source) +
                          " -o " + quote(tmp) + " > " + quote(job->log) +
                          " 2>&1";
        job->ok = std::system(cmd.c_str()) == 0;
        std::error_code renameError;
        if (job->ok)
          fs::rename(tmp, job->object, renameError);
        job->ok = job->ok && !renameError;
      });
    for (std::thread &t : threads)
      t.join();
  }
  for (const Job &j : jobs) {
    if (j.ok)
      continue;
    std::string log;
    readText(j.log, log);
    error = "compiling " + j.source + " failed:\n" + log;
    return false;
  }
  stats.compiled = int(todo.size());
  stats.cached = int(jobs.size() - todo.size());
  // Linked beside the target and renamed over it: a crash mid-link leaves
  // the old executable or the new one, never a torn file (AtomicFile.h).
  std::string linked = outDir + "/pipec-plan.tmp." + std::to_string(getpid());
  std::string cmd = std::string(PIPEC_CXX) + (cuda ? "" : " -fopenmp") +
                    " -o " + quote(linked);
  for (const Job &j : jobs)
    cmd += " " + quote(j.object);
#ifdef PIPEC_HAVE_CUDA
  if (cuda)
    cmd += " " PIPEC_CUDA_RUNTIME_LIBS;
  else
#endif
    cmd += " " PIPEC_RUNTIME_LIBS;
  cmd += " > " + quote(outDir + "/link.log") + " 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::string log;
    readText(outDir + "/link.log", log);
    error = "linking " + outDir + "/pipec-plan failed:\n" + log;
    fs::remove(linked, ec);
    return false;
  }
  fs::rename(linked, outDir + "/pipec-plan", ec);
  if (ec) {
    error = "cannot replace " + outDir + "/pipec-plan: " + ec.message();
    fs::remove(linked, ec);
    return false;
  }
  fs::remove(outDir + "/link.log", ec);
  return true;
}
