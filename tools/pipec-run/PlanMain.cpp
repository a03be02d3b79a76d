//===- PlanMain.cpp - main() of every compiled plan (OUT/pipec-plan) ------===//
//
// Linked with the generated chunk and plan objects by `pipec compile`: loads
// the manifest and streams next to the executable (or --plan DIR), checks
// the data, runs every rank as a thread of this process through
// pipert::Executor (or, with --transport mpi under `mpirun -np RANKS`, the
// process's own rank over pipert::MpiTransport), and writes metrics.jsonl
// (and trace.json) into --log-dir; with --sample N it then prints N tokens
// the trained model generates (PlanSample.h). Everything is validated
// before the first step, so a bad input leaves no partial output.
//
//===----------------------------------------------------------------------===//

#include "tools/pipec-run/PlanKernels.h"
#include "tools/pipec-run/PlanSample.h"

#include "pipert/AtomicFile.h"
#include "pipert/DataLoader.h"
#include "pipert/Executor.h"
#include "pipert/ParseNumber.h"
#include "pipert/Safetensors.h"
#include "pipert/StopSignal.h"
#ifdef PIPEC_PLAN_MPI
#include "pipert/MpiTransport.h"
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

/// The ChunkKernels of the generated plan.
class PlanKernels : public pipert::ChunkKernels {
public:
  PlanKernels(const pipecrun::PlanCode &code, const pipert::Manifest &m,
              const pipert::Batcher &batcher)
      : code(code), batcher(batcher), microbatches(m.microbatches) {
    regionBase.assign(size_t(code.chunkCount) * size_t(m.microbatches) *
                          pipert::kRegions,
                      -1);
    for (const pipert::BufferInfo &b : m.buffers) {
      int c = -1, j = -1;
      char region[16] = {0};
      if (std::sscanf(b.name.c_str(), "c%d.mb%d.%15s", &c, &j, region) != 3 ||
          c < 0 || c >= code.chunkCount || j < 0 || j >= m.microbatches)
        continue;
      for (int k = 0; k < pipert::kRegions; ++k)
        if (std::strcmp(region, pipert::regionName(k)) == 0)
          regionBase[index(c, j, k)] = b.offset;
    }
    size_t n = size_t(code.batch * code.seq);
    tokens.assign(size_t(m.ranks), std::vector<int32_t>(n));
    targets.assign(size_t(m.ranks), std::vector<int32_t>(n));
  }

  /// The first region a chunk's code uses (bytes > 0) that the manifest
  /// does not place, as "cC.mbJ.REGION", or "".
  std::string missingSlot() const {
    for (int32_t c = 0; c < code.chunkCount; ++c)
      for (int32_t j = 0; j < microbatches; ++j)
        for (int k = 0; k < pipert::kRegions; ++k)
          if (code.chunks[c].regionBytes[k] > 0 &&
              regionBase[index(c, j, k)] < 0)
            return "c" + std::to_string(c) + ".mb" + std::to_string(j) + "." +
                   pipert::regionName(k);
    return "";
  }

  pipert::Status fwd(const pipert::RankContext &ctx, int32_t chunk,
                     int32_t mb) override {
    const pipecrun::ChunkCode &ch = code.chunks[chunk];
    uint8_t *R[pipert::kRegions];
    regions(ctx, chunk, mb, R);
    if (chunk > 0 && code.chunks[chunk - 1].rank == ctx.rank)
      std::memcpy(R[pipert::kInAct],
                  region(ctx, chunk - 1, mb, pipert::kOutAct),
                  size_t(ch.inActBytes));
    int32_t *tok = tokens[size_t(ctx.rank)].data();
    int32_t *tgt = targets[size_t(ctx.rank)].data();
    if (ch.usesData)
      batcher.microBatch(ctx.step, mb, tok, tgt);
    // docs/TRAINING.md: d(step loss)/d(micro-batch loss) = 1/M.
    return convert(
        ch.fwd(ctx.arena, R, mb, tok, tgt, 1.0 / double(microbatches)));
  }

  pipert::Status bwdB(const pipert::RankContext &ctx, int32_t chunk,
                      int32_t mb) override {
    const pipecrun::ChunkCode &ch = code.chunks[chunk];
    uint8_t *R[pipert::kRegions];
    regions(ctx, chunk, mb, R);
    if (chunk + 1 < code.chunkCount && code.chunks[chunk + 1].rank == ctx.rank)
      std::memcpy(R[pipert::kInGrad],
                  region(ctx, chunk + 1, mb, pipert::kOutGrad),
                  size_t(ch.inGradBytes));
    return convert(ch.bwdB(ctx.arena, R));
  }

  pipert::Status bwdW(const pipert::RankContext &ctx, int32_t chunk,
                      int32_t mb) override {
    uint8_t *R[pipert::kRegions];
    regions(ctx, chunk, mb, R);
    return convert(code.chunks[chunk].bwdW(ctx.arena, R));
  }

  pipert::Status prepareAllReduce(const pipert::RankContext &ctx,
                                  int32_t group, int32_t, uint8_t *data,
                                  int64_t) override {
    code.ranks[ctx.rank].prepare(ctx.arena, group, data);
    return pipert::Status::success();
  }

  pipert::Status optStep(const pipert::RankContext &ctx) override {
    return convert(code.ranks[ctx.rank].opt(ctx.arena, ctx.step));
  }

private:
  size_t index(int32_t chunk, int32_t mb, int k) const {
    return (size_t(chunk) * size_t(microbatches) + size_t(mb)) *
               pipert::kRegions +
           size_t(k);
  }
  /// Region k of (chunk, mb); an empty region (no message) gets the arena.
  uint8_t *region(const pipert::RankContext &ctx, int32_t chunk, int32_t mb,
                  int k) const {
    int64_t off = regionBase[index(chunk, mb, k)];
    return ctx.arena + (off < 0 ? 0 : off);
  }
  void regions(const pipert::RankContext &ctx, int32_t chunk, int32_t mb,
               uint8_t **R) const {
    for (int k = 0; k < pipert::kRegions; ++k)
      R[k] = region(ctx, chunk, mb, k);
  }
  static pipert::Status convert(const pipert::cpu::Status &s) {
    return s.ok() ? pipert::Status::success()
                  : pipert::Status::failure(s.message());
  }

  const pipecrun::PlanCode &code;
  const pipert::Batcher &batcher;
  int32_t microbatches;
  std::vector<int64_t> regionBase; ///< (chunk, mb, region) -> offset
  std::vector<std::vector<int32_t>> tokens, targets;
};

struct Args {
  std::string plan, data, logDir, init, save;
  int64_t steps = 0;
  bool shadow = false, quiet = false;
  int32_t cores = 0;
  int64_t timeoutMs = 60000;
  int64_t sample = 0;          ///< tokens to generate after training
  std::string prompt = "\n";
  uint64_t sampleSeed = 0;
  bool hasSampleSeed = false;  ///< else the model's train seed
  double temperature = 1.0;
  std::string transport = "local"; ///< local or mpi
};

int fail(const std::string &message) {
  std::fprintf(stderr, "pipec-run: error: %s\n", message.c_str());
  return 1;
}

// What the flags can honour: a step count whose record fits in memory, a
// timeout that steady_clock::now() + timeout cannot overflow (about 115
// days), a sample the sampler's context holds, a core count OpenMP takes.
constexpr int64_t kMaxSteps = 1000000000000;
constexpr int64_t kMaxTimeoutMs = 10000000000;
constexpr int64_t kMaxSample = 100000000;
constexpr int64_t kMaxCores = 4096;

const char *kUsage =
    "usage: pipec-run OUT/ --data FILE --steps N [--log-dir DIR] [--init "
    "FILE.safetensors] [--save FILE.safetensors] [--plan DIR] [--shadow] "
    "[--cores N] [--timeout-ms MS] [--quiet] [--transport local|mpi] "
    "[--sample N [--prompt TEXT] [--sample-seed N] [--temperature T]]\n";

bool parseArgs(int argc, char **argv, Args &a, std::string &error) {
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&](std::string &out) {
      if (i + 1 >= argc) {
        error = k + " needs a value";
        return false;
      }
      out = argv[++i];
      return true;
    };
    // Strict: decimal, in range, no overflow (ParseNumber.h).
    auto number = [&](int64_t &out, int64_t min, int64_t max) {
      std::string v;
      return value(v) && pipert::parseInteger(k, v, min, max, out, error);
    };
    int64_t cores = 0;
    bool ok = true;
    if (k == "--plan")
      ok = value(a.plan);
    else if (k == "--data")
      ok = value(a.data);
    else if (k == "--log-dir")
      ok = value(a.logDir);
    else if (k == "--init")
      ok = value(a.init);
    else if (k == "--save")
      ok = value(a.save);
    else if (k == "--transport") {
      ok = value(a.transport);
      if (ok && a.transport != "local" && a.transport != "mpi") {
        error = "--transport must be local or mpi, not '" + a.transport + "'";
        return false;
      }
    }
    else if (k == "--steps")
      ok = number(a.steps, 1, kMaxSteps);
    else if (k == "--timeout-ms")
      ok = number(a.timeoutMs, 1, kMaxTimeoutMs);
    else if (k == "--sample")
      ok = number(a.sample, 1, kMaxSample);
    else if (k == "--sample-seed") {
      std::string v;
      ok = value(v) && pipert::parseUnsigned(k, v, a.sampleSeed, error);
      a.hasSampleSeed = true;
    }
    else if (k == "--prompt")
      ok = value(a.prompt);
    else if (k == "--temperature") {
      std::string v;
      ok = value(v) &&
           pipert::parseFinite(k, v, 0, 1e6, a.temperature, error);
    }
    else if (k == "--cores") {
      ok = number(cores, 0, kMaxCores);
      a.cores = int32_t(cores);
    } else if (k == "--shadow")
      a.shadow = true;
    else if (k == "--quiet")
      a.quiet = true;
    else {
      error = "unknown argument '" + k + "'";
      return false;
    }
    if (!ok)
      return false;
  }
  if (a.data.empty() || a.steps == 0) {
    error = "--data and --steps are required";
    return false;
  }
  if (a.prompt.empty()) {
    error = "--prompt must not be empty";
    return false;
  }
  if (a.transport == "mpi" && a.sample > 0) {
    error = "--sample needs the local transport (the sampler runs every "
            "chunk in one process); train with --transport mpi --save F and "
            "sample from --init F with the local one";
    return false;
  }
  return true;
}

/// Loads --init into every copy of each parameter this process holds.
bool loadInit(pipert::Executor &exec, const std::string &path,
              std::string &error) {
  pipert::SafetensorsFile file;
  if (!pipert::readSafetensors(path, file, error))
    return false;
  const pipert::Manifest &m = exec.manifest();
  for (const pipert::ParamInfo &p : m.params) {
    const pipert::Tensor *t = file.find(p.name);
    if (!t) {
      error = path + ": no tensor '" + p.name + "'";
      return false;
    }
    if (t->shape != p.shape) {
      error = path + ": tensor '" + p.name + "' has another shape than the "
              "model's";
      return false;
    }
    std::vector<float> values;
    if (!pipert::readFloatTensor(*t, values, error))
      return false;
    if (!pipert::checkFinite(path, p.name, values, error))
      return false;
    if (exec.holds(p.rank)) // else another process loads it
      std::memcpy(exec.arena(p.rank) + p.offset, values.data(),
                  size_t(p.bytes));
  }
  return true;
}

/// The parameters --save writes: each name once, its first entry in
/// manifest order (the copy of that entry's rank).
std::vector<const pipert::ParamInfo *> savedParams(const pipert::Manifest &m) {
  std::vector<const pipert::ParamInfo *> out;
  std::map<std::string, bool> seen;
  for (const pipert::ParamInfo &p : m.params) {
    if (seen[p.name])
      continue;
    seen[p.name] = true;
    out.push_back(&p);
  }
  return out;
}

/// Writes every parameter once; `values[i]` holds savedParams()[i].
bool writeSaved(const pipert::Manifest &m,
                const std::vector<const uint8_t *> &values,
                const std::string &path, std::string &error) {
  std::vector<const pipert::ParamInfo *> params = savedParams(m);
  std::vector<pipert::Tensor> tensors;
  for (size_t i = 0; i < params.size(); ++i)
    tensors.push_back(pipert::makeFloatTensor<float>(
        params[i]->name, params[i]->shape,
        reinterpret_cast<const float *>(values[i])));
  return pipert::writeSafetensors(path, tensors, {}, error);
}

/// Writes every parameter once, all ranks in this process.
bool save(pipert::Executor &exec, const std::string &path,
          std::string &error) {
  std::vector<const uint8_t *> values;
  for (const pipert::ParamInfo *p : savedParams(exec.manifest()))
    values.push_back(exec.arena(p->rank) + p->offset);
  return writeSaved(exec.manifest(), values, path, error);
}

#ifdef PIPEC_PLAN_MPI
/// --save with one rank per process: every process sends rank 0 the saved
/// parameters it holds, in manifest order; rank 0 writes the file the local
/// run writes. Collective.
bool saveGathered(pipert::Executor &exec, pipert::MpiTransport &transport,
                  const std::string &path, std::chrono::milliseconds timeout,
                  std::string &error) {
  const pipert::Manifest &m = exec.manifest();
  std::vector<const pipert::ParamInfo *> params = savedParams(m);
  std::vector<uint8_t> mine;
  for (const pipert::ParamInfo *p : params)
    if (exec.holds(p->rank))
      mine.insert(mine.end(), exec.arena(p->rank) + p->offset,
                  exec.arena(p->rank) + p->offset + p->bytes);
  std::vector<uint8_t> all;
  std::vector<int64_t> sizes;
  if (pipert::Status s =
          transport.gatherAtRoot(mine.data(), int64_t(mine.size()), all,
                                 sizes, pipert::Clock::now() + timeout);
      !s.ok()) {
    error = "--save " + path + ": " + s.message();
    return false;
  }
  if (pipert::MpiSession::rank() != 0)
    return true;
  // Rank q's bytes are its parameters in manifest order.
  std::vector<int64_t> cursor(sizes.size(), 0);
  for (size_t q = 1; q < sizes.size(); ++q)
    cursor[q] = cursor[q - 1] + sizes[q - 1];
  std::vector<const uint8_t *> values;
  for (const pipert::ParamInfo *p : params) {
    values.push_back(all.data() + cursor[size_t(p->rank)]);
    cursor[size_t(p->rank)] += p->bytes;
  }
  return writeSaved(m, values, path, error);
}
#endif

/// The executable owns its plan (docs/RUNTIME.md): the manifest must be
/// the one compiled into it, the same identity and every field the same
/// (the streams are tied to it by their ids and checksums, Executor::load).
/// "" when it is.
std::string checkOwnManifest(const std::string &dir, const pipert::Manifest &m) {
  std::string exe = dir + "/pipec-plan";
  if (m.planId != pipecPlanCode.planId)
    return dir + "/manifest.json is plan " +
           (m.planId.empty() ? std::string("(none)") : m.planId) +
           ", but this executable was compiled for plan " +
           pipecPlanCode.planId +
           ": the executable and the manifest belong to different plans (run "
           "pipec compile again)";
  pipert::Manifest compiled;
  if (pipert::Status s = pipert::parseManifest(
          pipecPlanCode.manifest, "the executable's manifest", compiled);
      !s.ok())
    return s.message();
  if (std::string d = pipert::firstManifestDifference(m, compiled); !d.empty())
    return dir + "/manifest.json differs from the manifest compiled into "
           "the executable at " + d +
           ": the manifest was edited (run pipec compile again)";
  return "";
}

/// Everything a run checks before its first step; "" when all is well.
std::string prepare(const Args &a, std::unique_ptr<pipert::Executor> &exec,
                    pipert::TokenFile &data, pipert::Batcher &batcher,
                    int32_t onlyRank, int32_t processes) {
  std::string error;
  // The manifest is checked against the executable before any file it
  // names is opened: an edited manifest is refused, never followed.
  {
    pipert::Manifest own;
    if (pipert::Status s =
            pipert::readManifestFile(a.plan + "/manifest.json", own);
        !s.ok())
      return s.message();
    if (std::string e = checkOwnManifest(a.plan, own); !e.empty())
      return e;
  }
  if (pipert::Status s = pipert::Executor::load(a.plan, exec, onlyRank);
      !s.ok())
    return s.message();
  const pipert::Manifest &m = exec->manifest();
  if (processes > 0 && processes != m.ranks)
    return "--transport mpi: the plan has " + std::to_string(m.ranks) +
           " ranks but mpirun started " + std::to_string(processes) +
           " processes (run it with mpirun -np " + std::to_string(m.ranks) +
           ", or pipec-run " + a.plan + " --transport mpi, which does)";
  if (!pipert::loadTokens(a.data, data, error))
    return "--data " + error;
  if (!pipert::Batcher::create(data, pipecPlanCode.batch,
                               pipecPlanCode.seq, m.microbatches, batcher,
                               error))
    return a.data + ": " + error;
  if (pipecPlanCode.vocab > 0)
    if (int64_t i = data.firstOutside(pipecPlanCode.vocab); i >= 0)
      return a.data + ": token " + std::to_string(data[i]) + " at position " +
             std::to_string(i) + " is outside the model's vocabulary of " +
             std::to_string(pipecPlanCode.vocab);
  if (!a.init.empty() && !loadInit(*exec, a.init, error))
    return error;
  if (a.sample > 0) {
    if (!pipecPlanCode.chunks[pipecPlanCode.chunkCount - 1].logits)
      return "--sample: the plan's last chunk keeps no f32 [batch * seq, "
             "vocab] logits to sample from";
    for (unsigned char ch : a.prompt)
      if (int64_t(ch) >= pipecPlanCode.vocab)
        return "--prompt: byte " + std::to_string(int(ch)) +
               " is outside the model's vocabulary of " +
               std::to_string(pipecPlanCode.vocab);
  }
  if (!a.save.empty()) {
    std::filesystem::path dir = std::filesystem::path(a.save).parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
      return "--save " + a.save + ": directory " + dir.string() +
             " does not exist";
    if (std::filesystem::exists(a.save, ec) &&
        !std::filesystem::is_regular_file(a.save, ec))
      return "--save " + a.save + ": exists and is not a regular file";
    if (pipert::Status s = pipert::refusePlanFile(a.save, "--save"); !s.ok())
      return s.message();
  }
  if (!a.logDir.empty() && onlyRank <= 0) {
    std::error_code ec;
    std::filesystem::create_directories(a.logDir, ec);
    if (ec || !std::filesystem::is_directory(a.logDir))
      return "--log-dir " + a.logDir + ": cannot create the directory";
  }
  return "";
}

/// The summary after training (the process that reports).
void printSummary(const pipert::Manifest &m, const pipert::RunResult &result) {
  double tokens = 0, seconds = 0;
  for (const pipert::StepRecord &r : result.steps) {
    tokens += double(m.tokensPerMicrobatch) * m.microbatches;
    seconds += r.stepTimeS;
  }
  if (result.steps.empty())
    return;
  std::printf("done: %lld steps, final loss %.6f, %.0f tokens/s\n",
              (long long)result.steps.size(), result.steps.back().loss,
              seconds > 0 ? tokens / seconds : 0.0);
  // The measured counterpart of the schedule's modelled bubble.
  std::printf("idle share per rank:");
  for (double idle : result.idleShare)
    std::printf(" %.3f", idle);
  if (m.modeledBubble >= 0)
    std::printf(" (%s modelled bubble %.3f)", m.scheduleKind.c_str(),
                m.modeledBubble);
  std::printf("\n");
  // Executor::run failed otherwise: each rank's high-water mark is its
  // memory plan's arena, and every read saw the writer the plan names.
  if (!result.highWater.empty()) {
    std::printf("shadow memory: every access as planned; arena high-water "
                "per rank (bytes, = the memory plan's):");
    for (int64_t hw : result.highWater)
      std::printf(" %lld", (long long)hw);
    std::printf("\n");
  }
}

pipert::RunOptions runOptions(const Args &a) {
  pipert::RunOptions opt;
  opt.steps = a.steps;
  opt.shadow = a.shadow;
  opt.cores = a.cores;
  opt.timeout = std::chrono::milliseconds(a.timeoutMs);
  opt.outDir = a.logDir;
  opt.progress = a.quiet ? nullptr : stdout;
  opt.stopRequested = pipert::stopSignal;
  return opt;
}

/// The message and exit code of a run that did not complete: 128 + the
/// signal for one stopped by SIGINT or SIGTERM (130, 143), else 1. --save
/// is not written: the weights of a stopped step are half updated.
int failedRun(const Args &a, const pipert::Status &s,
              const pipert::RunResult &result) {
  std::string note = a.save.empty() ? std::string()
                                    : "\n--save " + a.save +
                                          " is not written (an earlier file "
                                          "there is left as it was)";
  fail(s.message() + note);
  return result.stopSignal ? 128 + result.stopSignal : 1;
}

/// Every rank as a thread of this process (the local transport).
int runLocal(const Args &a) {
  std::unique_ptr<pipert::Executor> exec;
  pipert::TokenFile data;
  pipert::Batcher batcher;
  if (std::string e = prepare(a, exec, data, batcher, -1, 0); !e.empty())
    return fail(e);
  const pipert::Manifest &m = exec->manifest();
  PlanKernels kernels(pipecPlanCode, m, batcher);
  if (std::string missing = kernels.missingSlot(); !missing.empty())
    return fail(a.plan + "/manifest.json: no buffer " + missing);
  pipert::RunResult result;
  if (pipert::Status s = exec->run(kernels, runOptions(a), result); !s.ok())
    return failedRun(a, s, result);
  std::string error;
  if (!a.save.empty() && !save(*exec, a.save, error))
    return fail(error);
  if (!a.quiet)
    printSummary(m, result);
  if (a.sample > 0) {
    pipecrun::SampleOptions so;
    so.tokens = a.sample;
    so.prompt = a.prompt;
    so.seed = a.hasSampleSeed ? a.sampleSeed : m.train.seed;
    so.temperature = a.temperature;
    so.threads = a.cores > 0 ? a.cores
                             : int32_t(std::max(
                                   1u, std::thread::hardware_concurrency()));
    std::fflush(stdout);
    std::vector<int32_t> generated;
    if (!pipecrun::sampleTokens(pipecPlanCode, *exec, so, generated, error))
      return fail(error);
    std::printf("sample: %lld tokens after the prompt (seed %llu, "
                "temperature %g):\n%s\n",
                (long long)generated.size(), (unsigned long long)so.seed,
                so.temperature,
                pipecrun::tokensToText(generated, pipecPlanCode.vocab).c_str());
    if (int sig = pipert::stopSignal()) {
      fail("sampling stopped by " + std::string(pipert::signalName(sig)) +
           " after " + std::to_string(generated.size()) + " of " +
           std::to_string(a.sample) + " tokens (the training run and --save "
           "are complete)");
      return 128 + sig;
    }
  }
  return 0;
}

#ifdef PIPEC_PLAN_MPI
/// This process's rank (under mpirun) over the mpi transport. Rank 0
/// reports: progress, metrics.jsonl, trace.json, the summary, --save.
int runMpi(const Args &a) {
  using pipert::MpiSession;
  const int32_t me = MpiSession::rank();
  const auto timeout = std::chrono::milliseconds(a.timeoutMs);
  // Checks that fail on every process (the same files) are reported once,
  // by the lowest failing rank; all processes then end normally.
  auto agree = [&](const std::string &error) -> int {
    int32_t first =
        MpiSession::firstFailure(error.empty(), pipert::Clock::now() + timeout);
    if (first == -1)
      return 0;
    if (first == -2) {
      fail("rank " + std::to_string(me) + ": the other processes did not " +
           "answer within " + std::to_string(a.timeoutMs) + " ms" +
           (error.empty() ? std::string() : ": " + error));
      MpiSession::abortAll(1);
    }
    if (first == me)
      fail(error);
    return 1;
  };
  std::unique_ptr<pipert::Executor> exec;
  pipert::TokenFile data;
  pipert::Batcher batcher;
  std::string error = prepare(a, exec, data, batcher, me, MpiSession::size());
  if (error.empty() && exec) {
    PlanKernels probe(pipecPlanCode, exec->manifest(), batcher);
    if (std::string missing = probe.missingSlot(); !missing.empty())
      error = a.plan + "/manifest.json: no buffer " + missing;
  }
  if (agree(error))
    return 1;
  const pipert::Manifest &m = exec->manifest();
  std::vector<pipert::Stream> streams;
  for (int32_t r = 0; r < m.ranks; ++r)
    streams.push_back(exec->stream(r));
  std::unique_ptr<pipert::MpiTransport> transport;
  pipert::Status created =
      pipert::MpiTransport::create(streams, m.groups, transport);
  if (agree(created.ok() ? "" : created.message()))
    return 1;
  PlanKernels kernels(pipecPlanCode, m, batcher);
  pipert::RunOptions opt = runOptions(a);
  opt.transport = transport.get();
  if (me != 0) {
    opt.outDir.clear();
    opt.progress = nullptr;
  }
  pipert::RunResult result;
  if (pipert::Status s = exec->run(kernels, opt, result);
      !s.ok() && (result.stopSignal || result.nonFiniteStep >= 0)) {
    // Every process stopped of its own accord (each got the signal, or
    // each saw the same non-finite step); rank 0 reports. The processes
    // stand at different instructions with transfers in flight, so
    // MPI_Finalize could wait forever: each exits with the code a stopped
    // local run has, which mpirun passes on.
    // mpirun ends the job when the first process exits non-zero, so the
    // others give rank 0 a moment to close its metrics and report.
    if (me == 0)
      failedRun(a, s, result);
    else
      std::this_thread::sleep_for(std::chrono::seconds(2));
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(result.stopSignal ? 128 + result.stopSignal : 1);
  } else if (!s.ok()) {
    // The other processes may be blocked on this one: they learnt of the
    // failure (MpiTransport::abort), get a moment to say where they stood,
    // then the job ends.
    fail(s.message());
    std::fflush(stderr);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    MpiSession::abortAll(1);
  }
  if (!a.save.empty() &&
      !saveGathered(*exec, *transport, a.save, timeout, error)) {
    fail(error);
    std::fflush(stderr);
    MpiSession::abortAll(1);
  }
  if (me == 0 && !a.quiet)
    printSummary(m, result);
  std::fflush(stdout);
  transport.reset(); // frees its communicators before MPI_Finalize
  return 0;
}
#endif

} // namespace

int planMain(int argc, char **argv) {
  Args a;
  std::string error;
  bool mpi = false;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--transport") == 0 &&
        std::strcmp(argv[i + 1], "mpi") == 0)
      mpi = true;
#ifdef PIPEC_PLAN_MPI
  if (mpi) {
    if (pipert::Status s = pipert::MpiSession::init(&argc, &argv); !s.ok())
      return fail("--transport mpi: " + s.message());
  }
#endif
  // Under mpirun, argument errors are printed by rank 0 alone.
  bool quietRank = false;
#ifdef PIPEC_PLAN_MPI
  quietRank = mpi && pipert::MpiSession::rank() != 0;
#endif
  if (!parseArgs(argc, argv, a, error)) {
    if (!quietRank) {
      std::fputs(kUsage, stderr);
      fail(error);
    }
#ifdef PIPEC_PLAN_MPI
    pipert::MpiSession::finalize();
#endif
    return 1;
  }
  if (a.plan.empty())
    a.plan = std::filesystem::path(argv[0]).parent_path().string();
  if (a.plan.empty())
    a.plan = ".";
  if (!mpi)
    return runLocal(a);
#ifdef PIPEC_PLAN_MPI
  int code = runMpi(a);
  pipert::MpiSession::finalize();
  return code;
#else
  return fail("--transport mpi: this plan was built by a pipec without MPI "
              "(install openmpi-bin and libopenmpi-dev, reconfigure and "
              "rebuild pipec, then compile the plan again)");
#endif
}

int main(int argc, char **argv) {
  pipert::installStopSignals("pipec-run");
  // The runtime returns errors; whatever still throws (an allocation that
  // fails) becomes a message and an exit code, never an abort.
  try {
    return planMain(argc, argv);
  } catch (const std::bad_alloc &) {
    return fail("out of memory");
  } catch (const std::exception &e) {
    return fail(std::string("unexpected error: ") + e.what());
  }
}
