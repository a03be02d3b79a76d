//===- Executor.cpp - runs every rank's stream on its own thread ----------===//

#include "pipert/Executor.h"

#include "pipert/ExactSum.h"
#include "pipert/Fnv.h"
#include "pipert/Init.h"
#include "pipert/KernelClock.h"
#include "pipert/LocalTransport.h"
#include "pipert/LogicalShape.h"
#include "pipert/LrSchedule.h"
#include "pipert/Metrics.h"
#include "pipert/PlanStreams.h"
#include "pipert/Shadow.h"
#include "pipert/StopSignal.h"


#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sys/mman.h>
#include <thread>

namespace pipert {

/// The abort reason of a run stopped by a signal, followed by its number,
/// and of one stopped by a non-finite step.
static const char kStoppedBySignal[] = "stopped by signal ";
static const char kStoppedNonFinite[] = "stopped: a non-finite step";

/// Steps whose metrics may wait for the monitor before ranks pause.
static constexpr size_t kStepRing = 8;

/// A checkpoint callback's Status, or what it threw as a failure (the
/// rank threads must still be joined).
static Status guarded(const std::function<Status(int64_t)> &checkpoint,
                      int64_t steps) {
  try {
    return checkpoint(steps);
  } catch (const std::exception &e) {
    return Status::failure("checkpoint after step " + std::to_string(steps) +
                           ": unexpected error: " + e.what());
  } catch (...) {
    return Status::failure("checkpoint after step " + std::to_string(steps) +
                           ": unexpected error");
  }
}

namespace {

/// A host arena of `bytes` (a multiple of 256), zeroed. Arenas of 2 MiB
/// and more are 2 MiB-aligned and asked for transparent huge pages: a
/// GEMM's packing reads op(A) a row at a time, and rows of a few KiB each
/// on its own 4 KiB page missed the TLB often enough to cost gpt-512's
/// GEMMs 5-9% (docs/PERFORMANCE.md). The kernel may refuse (THP "never"):
/// the arena is then on small pages, and nothing else changes.
uint8_t *allocateHostArena(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  void *p = nullptr;
  if (bytes >= kHuge) {
    bytes = (bytes + kHuge - 1) / kHuge * kHuge;
    p = std::aligned_alloc(kHuge, bytes);
#if defined(MADV_HUGEPAGE)
    if (p)
      ::madvise(p, bytes, MADV_HUGEPAGE);
#endif
  } else {
    p = std::aligned_alloc(64, bytes);
  }
  if (p)
    std::memset(p, 0, bytes);
  return static_cast<uint8_t *>(p);
}

} // namespace

void Executor::FreeDeleter::operator()(uint8_t *p) const {
  if (release)
    release(p);
  else
    std::free(p);
}

Executor::~Executor() = default;

/// Per-rank state of one run, all sized before the threads start.
struct Executor::RankRun {
  std::vector<TraceEvent> events;     ///< reserved traceSteps x instructions
  std::vector<Region> inFlight;   ///< reserved: posts of the stream
  std::vector<int64_t> postOf;    ///< req -> stream index of its post
  // Per step, in a ring of kStepRing slots (step % kStepRing) the monitor
  // drains: the memory does not grow with the number of steps.
  std::vector<int64_t> stepEndNs;
  std::vector<double> loss;     ///< slots x microbatches (loss owner)
  std::vector<double> gradNorm; ///< per slot (norm owner)
  int64_t busyNs = 0;
  int64_t lastNs = 0;
  std::unique_ptr<ShadowMemory> shadow;
  KernelTimes kernelTimes; ///< --trace-kernels: sized to the kernel table
};

Status Executor::load(const std::string &dir, std::unique_ptr<Executor> &out,
                      int32_t onlyRank, const ArenaAllocator *allocator) {
  Manifest m;
  if (Status s = readManifestFile(dir + "/manifest.json", m); !s.ok())
    return s;
  return load(dir, std::move(m), out, onlyRank, allocator);
}

Status Executor::load(const std::string &dir, Manifest m,
                      std::unique_ptr<Executor> &out, int32_t onlyRank,
                      const ArenaAllocator *allocator) {
  // One rank per process reads its own stream only: its communicators came
  // with it (CommLayout.h), and at 220,000 ranks every process reading
  // every stream would read the whole plan 220,000 times.
  std::vector<Stream> streams(size_t(m.ranks));
  std::vector<char> absent(size_t(m.ranks), 0);
  for (int32_t r = 0; r < m.ranks; ++r) {
    if (onlyRank >= 0 && onlyRank < m.ranks && r != onlyRank) {
      absent[size_t(r)] = 1;
      continue;
    }
    if (Status s = readPlanStream(dir, m, r, streams[r]); !s.ok())
      return s;
  }
  if (Status s = create(std::move(m), std::move(streams), out, onlyRank,
                        allocator);
      !s.ok())
    return s;
  out->dir = dir;
  out->absent = std::move(absent);
  return Status::success();
}

Status Executor::readAbsentStreams() {
  for (int32_t r = 0; r < int32_t(absent.size()); ++r) {
    if (!absent[size_t(r)])
      continue;
    if (Status s = readPlanStream(dir, plan, r, streams[size_t(r)]); !s.ok())
      return s;
    absent[size_t(r)] = 0;
  }
  return Status::success();
}

Status Executor::create(Manifest m, std::vector<Stream> streams,
                        std::unique_ptr<Executor> &out, int32_t onlyRank,
                        const ArenaAllocator *allocator) {
  if (Status s = validateManifest(m); !s.ok())
    return s;
  if (onlyRank >= m.ranks)
    return Status::failure("rank " + std::to_string(onlyRank) +
                               " asked for, but the plan has " +
                               std::to_string(m.ranks) + " ranks",
                           onlyRank);
  if (streams.size() != size_t(m.ranks))
    return Status::failure("the manifest has " + std::to_string(m.ranks) +
                           " ranks but " + std::to_string(streams.size()) +
                           " streams were given");
  for (int32_t r = 0; r < m.ranks; ++r) {
    // Another process checks (and may not even have given) its own.
    if (onlyRank >= 0 && r != onlyRank)
      continue;
    const Stream &s = streams[r];
    if (Status v = validateStream(s); !v.ok())
      return v;
    auto fail = [&](const std::string &what) {
      return Status::failure("rank " + std::to_string(r) + ": " + what, r);
    };
    if (s.rank != r || s.ranks != m.ranks || s.microbatches != m.microbatches)
      return fail("the stream is for rank " + std::to_string(s.rank) + " of " +
                  std::to_string(s.ranks) + " with " +
                  std::to_string(s.microbatches) +
                  " micro-batches, the manifest says rank " +
                  std::to_string(r) + " of " + std::to_string(m.ranks) +
                  " with " + std::to_string(m.microbatches));
    if (s.arenaBytes != m.rankInfo[r].arenaBytes)
      return fail("the stream's arena is " + std::to_string(s.arenaBytes) +
                  " bytes, the manifest's " +
                  std::to_string(m.rankInfo[r].arenaBytes));
    for (size_t i = 0; i < s.instrs.size(); ++i) {
      const Instr &in = s.instrs[i];
      auto bad = [&](const std::string &what) {
        return Status::failure("rank " + std::to_string(r) + " #" +
                                   std::to_string(i) + " " + describe(in) +
                                   ": " + what,
                               r, int64_t(i));
      };
      bool compute = in.op == Opcode::Fwd || in.op == Opcode::BwdB ||
                     in.op == Opcode::BwdW;
      bool send = in.op == Opcode::SendAct || in.op == Opcode::SendGrad;
      if ((compute || send) && !m.chunkRank.empty() &&
          (size_t(in.chunk) >= m.chunkRank.size() ||
           m.chunkRank[in.chunk] != m.pipelineRankOf(r)))
        return bad("the chunk is not on this rank");
      if (isCollectiveOp(in.op) &&
          (size_t(in.chunk) >= m.groups.size() ||
           !std::binary_search(m.groups[in.chunk].begin(),
                               m.groups[in.chunk].end(), r)))
        return bad("this rank is not a member of group " +
                   std::to_string(in.chunk));
    }
  }
  std::unique_ptr<Executor> e(new Executor());
  for (int32_t r = 0; r < m.ranks; ++r) {
    if (onlyRank >= 0 && r != onlyRank) {
      e->arenas.emplace_back(nullptr); // runs in another process
      continue;
    }
    // 64-byte alignment (2 MiB for large arenas) keeps every planned
    // offset's alignment real (an allocator gives 256, the cuda target's).
    size_t bytes = size_t((std::max<int64_t>(m.rankInfo[r].arenaBytes, 1) +
                           255) / 256 * 256);
    char why[512] = {0};
    auto *p = allocator ? static_cast<uint8_t *>(allocator->allocate(
                              r, int64_t(bytes), why, sizeof why))
                        : allocateHostArena(bytes);
    if (!p)
      return Status::failure("cannot allocate the " + std::to_string(bytes) +
                                 "-byte arena of rank " + std::to_string(r) +
                                 (why[0] ? std::string(": ") + why : ""),
                             r);
    e->arenas.emplace_back(
        p, FreeDeleter{allocator ? allocator->release : nullptr});
  }
  // Parameters are initialised on the host: in place in a host arena, or
  // in a staging buffer copied into a device arena. A padded parameter is
  // drawn in its logical shape and scattered, the padding zero.
  e->copy = allocator ? allocator->copy : nullptr;
  std::vector<double> staging, logical; // doubles: aligned for either dtype
  // Every replica starts from the same parameters: replica 0's listed
  // ones, drawn once and copied to the same rank of each other replica
  // this process holds.
  const int32_t P = m.pipelineRanks();
  std::vector<int32_t> holders;
  for (const ParamInfo &p : m.params) {
    holders.clear();
    for (int32_t q = p.rank; q < m.ranks; q += P)
      if (e->arenas[q])
        holders.push_back(q);
    if (holders.empty())
      continue;
    const bool padded = !p.logicalShape.empty();
    int64_t elems = padded ? elementsOf(p.logicalShape)
                           : p.bytes / dtypeBytes(p.dtype);
    uint8_t *at = e->arenas[holders[0]].get() + p.offset;
    if (e->copy) {
      staging.resize(size_t(p.bytes + 7) / 8);
      at = reinterpret_cast<uint8_t *>(staging.data());
    }
    uint8_t *drawn = at;
    if (padded) {
      logical.resize(size_t(elems * dtypeBytes(p.dtype) + 7) / 8);
      drawn = reinterpret_cast<uint8_t *>(logical.data());
    }
    bool ok = p.dtype == DType::F32
                  ? initParameter(reinterpret_cast<float *>(drawn), 0, elems,
                                  m.train.seed, p.name, p.init, p.std)
                  : initParameter(reinterpret_cast<double *>(drawn), 0, elems,
                                  m.train.seed, p.name, p.init, p.std);
    if (!ok)
      return Status::failure("parameter " + p.name + ": cannot initialise (" +
                             p.init + ")");
    if (padded && p.dtype == DType::F32)
      scatterLogical(reinterpret_cast<const float *>(drawn), p.logicalShape,
                     reinterpret_cast<float *>(at), p.shape);
    else if (padded)
      scatterLogical(reinterpret_cast<const double *>(drawn), p.logicalShape,
                     reinterpret_cast<double *>(at), p.shape);
    // A host arena holds the values already; a device arena gets them
    // from the staging buffer.
    for (size_t i = e->copy ? 0 : 1; i < holders.size(); ++i)
      if (Status c = e->writeArena(holders[i], p.offset, at, p.bytes); !c.ok())
        return Status::failure("parameter " + p.name + ": " + c.message(),
                               holders[i]);
  }
  e->plan = std::move(m);
  e->streams = std::move(streams);
  out = std::move(e);
  return Status::success();
}

/// The metric slot's value at `index` (f32 or f64 in the arena).
static Status readScalar(ArenaCopy copy, const uint8_t *arena,
                         const MetricSlot &slot, int64_t index, double &out) {
  const uint8_t *p = arena + slot.offset + index * dtypeBytes(slot.dtype);
  if (slot.dtype == DType::F32) {
    float v = 0;
    Status s = copyArenaBytes(copy, &v, p, sizeof v);
    out = v;
    return s;
  }
  return copyArenaBytes(copy, &out, p, sizeof out);
}

Status Executor::readArena(int32_t rank, int64_t offset, void *dst,
                           int64_t bytes) const {
  return copyArenaBytes(copy, dst, arenas[size_t(rank)].get() + offset, bytes);
}

Status Executor::writeArena(int32_t rank, int64_t offset, const void *src,
                            int64_t bytes) {
  return copyArenaBytes(copy, arenas[size_t(rank)].get() + offset, src, bytes);
}

void agreeOnBits(std::vector<std::pair<std::string, int64_t>> &values,
                 const std::string &high, const std::string &low,
                 uint64_t bits) {
  values.push_back({high, int64_t(bits >> 32)});
  values.push_back({low, int64_t(bits & 0xffffffffu)});
}

/// A failure of the run's start on rank `held`, named.
static Status startFailure(int32_t held, const std::string &why) {
  return Status::failure(
      "rank " + std::to_string(held) + ": starting the run: " + why, held);
}

/// Every word the maximum over the processes (their first reductions).
static Status maxOverProcesses(const RunOptions &opt, int32_t held,
                               std::vector<int64_t> &words) {
  return opt.transport->reduceWorld(held, words.data(), int64_t(words.size()),
                                    Transport::WorldOp::Max,
                                    Clock::now() + opt.timeout);
}

Status Executor::parameterPrint(int32_t rank, uint64_t &print) const {
  constexpr int64_t kPiece = int64_t(16) << 20;
  uint64_t h = kFnvOffset;
  std::vector<uint8_t> piece;
  const int32_t p = plan.pipelineRankOf(rank);
  for (const ParamInfo &info : plan.params) {
    if (info.rank != p)
      continue;
    for (int64_t at = 0; at < info.bytes; at += kPiece) {
      const int64_t n = std::min(kPiece, info.bytes - at);
      piece.resize(size_t(n));
      if (Status s = readArena(rank, info.offset + at, piece.data(), n);
          !s.ok())
        return s;
      // Eight bytes a multiply (FNV-1a's prime and a shift), the rest as
      // FNV-1a: GPT-2's 500 MB of parameters in a fraction of a second.
      size_t i = 0;
      for (; i + 8 <= piece.size(); i += 8) {
        uint64_t w;
        std::memcpy(&w, piece.data() + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
      }
      h = fnv1a(piece.data() + i, piece.size() - i, h);
    }
  }
  print = h;
  return Status::success();
}

Status Executor::agreeOnParameters(int32_t held, const RunOptions &opt) {
  auto failure = [&](const std::string &why) {
    return startFailure(held, why);
  };
  // Per pipeline rank s, words 1 + 4 s ..: the halves of its replicas'
  // fingerprints and their negations; the other stages' places hold the
  // maximum's neutral. Word 0: a process that could not read its own.
  const int32_t P = plan.pipelineRanks(), own = plan.pipelineRankOf(held);
  std::vector<int64_t> words(1 + 4 * size_t(P), INT64_MIN);
  uint64_t print = 0;
  Status read = parameterPrint(held, print);
  words[0] = read.ok() ? 0 : 1;
  const int64_t hi = int64_t(print >> 32), lo = int64_t(print & 0xffffffffu);
  int64_t *mine = &words[1 + 4 * size_t(own)];
  mine[0] = hi, mine[1] = lo, mine[2] = -hi, mine[3] = -lo;
  if (Status s = maxOverProcesses(opt, held, words); !s.ok())
    return failure(s.message());
  if (!read.ok())
    return failure("reading its parameters: " + read.message());
  if (words[0] != 0)
    return failure("another process could not read its parameters (it says "
                   "why)");
  for (int32_t s = 0; s < P; ++s) {
    const int64_t *w = &words[1 + 4 * size_t(s)];
    if (w[0] != -w[2] || w[1] != -w[3])
      return failure(
          "the replicas of pipeline rank " + std::to_string(s) +
          " start from other parameters (their fingerprints differ" +
          (s == own ? "; this process's is " + planIdText(print) : "") +
          "): every replica must start from the same --init or --resume "
          "files");
  }
  return Status::success();
}

Status Executor::agreeOrFail(int32_t held, const RunOptions &opt,
                             int64_t &wantTrace) {
  auto failure = [&](const std::string &why) {
    return startFailure(held, why);
  };
  std::vector<std::pair<std::string, int64_t>> values;
  agreeOnBits(values, "the plan's id (high half)", "the plan's id (low half)",
              planIdValue(plan.planId));
  values.insert(
      values.end(),
      {{"the steps to run (--steps less the steps done)", opt.steps},
      {"the first step (--resume)", nextStep},
      {"checkpoints (--checkpoint-dir)", opt.checkpoint ? 1 : 0},
      {"--checkpoint-every", opt.checkpointEvery},
      {"a stop at a step boundary", opt.stopAtStepBoundary ? 1 : 0},
       {"a stop at a non-finite step", opt.stopOnNonFinite ? 1 : 0}});
  values.insert(values.end(), opt.agree.begin(), opt.agree.end());
  // A value this process cannot state still takes part in the reduction
  // (the others would wait for it until their deadline), as a poisoned
  // word: every process then fails, this one saying why.
  std::string unstated;
  if (values.size() > size_t(kAgreements))
    unstated = std::to_string(values.size()) +
               " values to compare between the processes; at most " +
               std::to_string(kAgreements);
  for (size_t i = 0; i < values.size() && unstated.empty(); ++i)
    if (values[i].second == INT64_MIN)
      unstated = values[i].first + ": the value INT64_MIN cannot be compared";
  // One Max reduction of (want trace, poison, v, -v): the maximum and the
  // minimum of every value over the processes. Unused places are 0
  // everywhere.
  const size_t K = size_t(kAgreements);
  std::vector<int64_t> words(2 + 2 * K, 0);
  words[0] = wantTrace;
  words[1] = unstated.empty() ? 0 : 1;
  for (size_t i = 0; i < values.size() && unstated.empty(); ++i) {
    words[2 + i] = values[i].second;
    words[2 + K + i] = -values[i].second;
  }
  if (Status s = maxOverProcesses(opt, held, words); !s.ok())
    return failure(s.message());
  if (!unstated.empty())
    return failure(unstated);
  if (words[1] != 0)
    return failure("another process could not state what the processes "
                   "compare (it says why)");
  wantTrace = words[0];
  for (size_t i = 0; i < values.size(); ++i) {
    const int64_t most = words[2 + i], least = -words[2 + K + i];
    if (most != least)
      return failure(
          "the processes disagree on " + values[i].first + ": from " +
          std::to_string(least) + " to " + std::to_string(most) +
          " (this process: " + std::to_string(values[i].second) +
          "); start every process of a run with the same plan, options and "
          "data");
  }
  // The same plan everywhere (its id was compared): replicas hold the
  // same parameters from the first step on, or they drift apart silently.
  return plan.replicas > 1 ? agreeOnParameters(held, opt)
                           : Status::success();
}

Status Executor::run(ChunkKernels &kernels, const RunOptions &opt,
                     RunResult &result) {
  const int32_t n = plan.ranks;
  const int32_t mbs = plan.microbatches;
  const int64_t steps = opt.steps;
  if (steps < 0 || opt.traceSteps < 0)
    return Status::failure("run: steps (" + std::to_string(steps) +
                           ") and traceSteps must not be negative");
  size_t kernelCount = 0;
  if (opt.traceKernels) {
    if (!opt.kernelNames)
      return Status::failure(
          "--trace-kernels, --profile: this plan has no table of kernel "
          "instantiations (it was compiled before cuda plans had one: "
          "compile it again)");
    while (opt.kernelNames[kernelCount])
      ++kernelCount;
  }
  // dist: some ranks run in other processes; the step's metrics meet in
  // the transport's reduceWorld, the trace's events at rank 0.
  bool dist = false;
  int32_t held = -1, heldCount = 0;
  for (int32_t r = 0; r < n; ++r) {
    dist = dist || !holds(r);
    heldCount += holds(r) ? 1 : 0;
    if (holds(r) && held < 0)
      held = r;
  }
  if (dist && heldCount != 1)
    return Status::failure("run: a process of a run over processes runs one "
                           "rank, this one " +
                           std::to_string(heldCount));
  if (opt.traceKernels && dist)
    return Status::failure("--trace-kernels, --profile: every rank must run "
                           "in this process (the local or cuda-local "
                           "transport), not over MPI or NCCL");
  std::unique_ptr<LocalTransport> local;
  Transport *transport = opt.transport;
  if (!transport) {
    if (dist)
      return Status::failure(
          "run: the plan was loaded for rank " + std::to_string(held) +
          " alone and needs a transport that reaches the other ranks");
    if (Status s = LocalTransport::create(streams, plan.groups, local, copy,
                                          opt.queues);
        !s.ok())
      return s;
    transport = local.get();
  } else if (dist && transport->runsAllRanks()) {
    return Status::failure("run: the plan was loaded for rank " +
                           std::to_string(held) +
                           " alone, but the transport runs every rank here");
  }
  int32_t cores = opt.cores > 0
                      ? opt.cores
                      : int32_t(std::max(1u, std::thread::hardware_concurrency()));
  int32_t ompThreads = std::max(1, cores / n);
  if (opt.setBlasThreads)
    opt.setBlasThreads(std::max(1, opt.blasThreads));
  LrSchedule lrs{plan.train.lr, plan.train.minLr, plan.train.warmupSteps,
                 plan.train.decaySteps, plan.train.cosine};

  // The state of the ranks this process runs: every rank's, or over
  // processes (dist) the one rank's (not an entry per rank of the world).
  std::vector<RankRun> runs(dist ? 1 : static_cast<size_t>(n));
  auto runOf = [&](int32_t r) -> RankRun & {
    return runs[dist ? 0 : size_t(r)];
  };
  for (int32_t r = 0; r < n; ++r) {
    if (!holds(r))
      continue; // its process keeps its state; the step's reductions
                // bring what this one reports
    RankRun &rr = runOf(r);
    const Stream &s = streams[r];
    rr.stepEndNs.assign(kStepRing, 0);
    rr.loss.assign(kStepRing * size_t(mbs), 0);
    rr.gradNorm.assign(kStepRing, 0);
    rr.kernelTimes.seconds.assign(kernelCount, 0.0);
    rr.kernelTimes.calls.assign(kernelCount, 0);
    rr.events.reserve(size_t(std::min(opt.traceSteps, steps)) *
                      s.instrs.size());
    rr.postOf.assign(s.instrs.size(), -1);
    size_t posts = 0;
    for (size_t i = 0; i < s.instrs.size(); ++i)
      if (isPostOp(s.instrs[i].op)) {
        rr.postOf[s.instrs[i].req] = int64_t(i);
        ++posts;
      }
    rr.inFlight.reserve(posts);
    if (opt.shadow)
      rr.shadow = std::make_unique<ShadowMemory>(s, arenas[r].get(), copy);
  }

  // The first failure wins; later ones are its consequences (aborts).
  std::mutex errMu;
  Status firstError = Status::success();
  std::vector<std::atomic<int64_t>> current(static_cast<size_t>(n));
  for (auto &c : current)
    c = -1;
  std::string whereAll;
  // A stop (a signal: its number; a non-finite step: -1) ends every rank at
  // its next instruction boundary; the aborts it causes are no errors.
  std::atomic<int> stopping{0};
  auto where = [&] {
    std::string w;
    for (int32_t r = 0; r < n; ++r) {
      if (!holds(r))
        continue;
      int64_t i = current[r].load();
      w += "\n  rank " + std::to_string(r) + ": " +
           (i < 0 ? std::string("finished or not started")
                  : "#" + std::to_string(i) + " " +
                        describe(streams[r].instrs[size_t(i)]));
    }
    // Not a line per rank: there may be 220,000.
    if (dist)
      w += n == 2 ? std::string("\n  the other rank: in another process "
                                "(it reports where it stood)")
                  : "\n  the other " + std::to_string(n - 1) +
                        " ranks: in other processes (each reports where it "
                        "stood)";
    return w;
  };

  // The monitor (this thread) writes a step's line once every rank ended it.
  std::mutex stepMu;
  std::condition_variable stepCv;
  std::vector<int32_t> ranksDone(kStepRing, 0); ///< per slot
  int64_t consumed = 0; ///< steps the monitor has reported
  bool failed = false;
  // Checkpoints (under stepMu): ranks hold before a step of the training
  // that is a checkpoint's boundary until `released` reaches it; a stop at
  // a step boundary ends every rank before step `stopBoundary` (-1: none
  // asked), the furthest step any rank has begun (`rankStep`) plus one.
  const int64_t ckptEvery = opt.checkpoint ? opt.checkpointEvery : 0;
  const bool boundaryStops = opt.stopAtStepBoundary && bool(opt.checkpoint);
  int64_t released = nextStep;
  int64_t lastWritten = -1; ///< the step of the run's last checkpoint
  int64_t stopBoundary = -1;
  int boundarySignal = 0;
  Clock::time_point boundaryDeadline{};
  std::vector<int64_t> rankStep(size_t(n), nextStep - 1);
  std::string stopWhere;
  // Asks every rank to stop (the first reason wins); ranks blocked in a
  // transfer are released by the abort.
  auto requestStop = [&](int reason) {
    int expected = 0;
    if (!stopping.compare_exchange_strong(expected, reason))
      return;
    {
      std::lock_guard<std::mutex> lock(errMu);
      stopWhere = where();
    }
    transport->abort(reason > 0
                         ? kStoppedBySignal + std::to_string(reason)
                         : std::string(kStoppedNonFinite));
    std::lock_guard<std::mutex> lock(stepMu);
    failed = true;
    stepCv.notify_all();
  };
  // The first failure of a rank; a stop's aborts are no failures.
  auto report = [&](Status s) {
    // A process stopped by a signal aborts the transport with its number
    // (under mpirun every process gets the signal, but not at the same
    // instant): this is a stop too, not an error.
    int sig = opt.stopRequested ? opt.stopRequested() : 0;
    size_t at = s.message().find(kStoppedBySignal);
    if (!sig && at != std::string::npos)
      sig = std::atoi(s.message().c_str() + at + std::strlen(kStoppedBySignal));
    // Likewise a process that saw a non-finite step before this one did.
    if (!sig && s.message().find(kStoppedNonFinite) != std::string::npos)
      sig = -1;
    if (sig != 0) {
      requestStop(sig);
      return;
    }
    std::lock_guard<std::mutex> lock(errMu);
    if (!firstError.ok() || stopping.load())
      return;
    firstError = s;
    whereAll = where();
    transport->abort(s.message());
  };

  // A failure that must stand even while a stop is under way (a checkpoint
  // or a drain that failed): not turned into a stop as report() would.
  auto reportError = [&](Status s) {
    std::lock_guard<std::mutex> lock(errMu);
    if (!firstError.ok())
      return;
    firstError = s;
    whereAll = where();
    transport->abort(s.message());
  };

  // Ranks in other processes (dist): each step's loss, gradient norm and
  // end, as the step's reductions left them for the monitor, per ring
  // slot. Their size does not depend on the ranks.
  std::vector<double> slotLoss(dist ? kStepRing : 0);
  std::vector<double> slotNorm(dist ? kStepRing : 0);
  std::vector<int64_t> slotEnd(dist ? kStepRing : 0);
  // Whether rank 0's process writes a trace: every process then sends it
  // its rank's events after the run.
  bool gatherTrace = false;
  if (dist) {
    // Start together, so the processes' clocks (from t0) roughly agree,
    // and compare what every process must hold equal (agreeOrFail).
    int64_t wantTrace =
        held == 0 && !opt.outDir.empty() && opt.traceSteps > 0 ? 1 : 0;
    if (Status s = agreeOrFail(held, opt, wantTrace); !s.ok())
      return s;
    gatherTrace = wantTrace > 0;
  }
  const auto t0 = Clock::now();
  auto nowNs = [&] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() -
                                                                t0)
        .count();
  };

  // The ranks that compute a micro-batch loss: the loss slot's pipeline
  // rank in every replica.
  auto isLossRank = [&](int32_t r) {
    return plan.loss.rank >= 0 && plan.pipelineRankOf(r) == plan.loss.rank;
  };

  auto runRank = [&](int32_t r) {
    if (opt.setRankThreads)
      opt.setRankThreads(ompThreads);
    RankRun &rr = runOf(r);
    const Stream &s = streams[r];
    RankContext ctx{r, 0, 0, arenas[r].get(), s.arenaBytes, &plan};
    ShadowMemory *sh = rr.shadow.get();
    // Ends this rank's part after a failure it reported: the monitor and
    // the ranks held at a boundary stop waiting.
    auto abandon = [&] {
      std::lock_guard<std::mutex> lock(stepMu);
      failed = true;
      stepCv.notify_all();
    };
    auto fail = [&](int64_t i, const std::string &what) {
      report(Status::failure("rank " + std::to_string(r) + " #" +
                                 std::to_string(i) + " " +
                                 describe(s.instrs[size_t(i)]) + ": " + what,
                             r, i));
    };
    // This step's gradient norm and losses, as read from the arena.
    std::vector<double> mine(1 + size_t(mbs), 0.0);
    // dist: the step's exact sums of the losses and of the gradient norm,
    // as words for the reduction.
    std::vector<int64_t> sums(dist ? 2 * ExactSum::kWords : 0);
    // A metric slot of this rank's arena; a failed read is reported.
    auto metric = [&](const MetricSlot &slot, int64_t index, double &v) {
      Status m = readScalar(copy, arenas[r].get(), slot, index, v);
      if (!m.ok())
        report(Status::failure("rank " + std::to_string(r) + " after step " +
                                   std::to_string(ctx.step) +
                                   ": reading the metrics: " + m.message(),
                               r));
      return m.ok();
    };
    // A compute instruction under the shadow checks.
    auto compute = [&](int64_t i, int64_t step, auto &&call) -> bool {
      if (sh) {
        Status c = sh->checkReads(i, step);
        if (c.ok())
          c = sh->checkInFlight(i, rr.inFlight);
        if (!c.ok()) {
          report(c);
          return false;
        }
        if (Status c = sh->snapshot(i, rr.inFlight); !c.ok()) {
          report(c);
          return false;
        }
      }
      Status k = call();
      if (!k.ok()) {
        fail(i, k.message());
        return false;
      }
      if (sh) {
        if (Status c = sh->checkUnchanged(i, rr.inFlight); !c.ok()) {
          report(c);
          return false;
        }
        sh->markWrites(i, step);
      }
      return true;
    };
    // --trace-kernels: the wrappers this thread calls add into the rank's
    // table on the warm steps (all but the first). The traced steps ask
    // the kernels to finish within their instruction (threadStepTraced),
    // so that their spans are the kernels' and not their launches'.
    struct KernelClockOff {
      ~KernelClockOff() {
        threadKernelTimes = nullptr;
        threadStepTraced = false;
      }
    } kernelClockOff;
    for (int64_t step = 0; step < steps; ++step) {
      ctx.step = nextStep + step;
      ctx.lr = lrs.at(ctx.step);
      threadKernelTimes =
          opt.traceKernels && step >= 1 ? &rr.kernelTimes : nullptr;
      threadStepTraced = step < opt.traceSteps;
      if (ckptEvery > 0 || boundaryStops) {
        std::unique_lock<std::mutex> lock(stepMu);
        // A checkpoint's boundary: hold until the monitor has written it.
        if (ckptEvery > 0 && ctx.step % ckptEvery == 0)
          stepCv.wait(lock, [&] { return failed || released >= ctx.step; });
        if (failed)
          return;
        if (stopBoundary >= 0 && ctx.step >= stopBoundary) {
          lock.unlock();
          // Stopped at the boundary: what this rank sent has landed
          // before the checkpoint reads the arenas.
          if (Status f = transport->drain(r); !f.ok()) {
            reportError(f);
            abandon();
          }
          current[r].store(-1);
          return;
        }
        rankStep[size_t(r)] = ctx.step;
      }
      // A step the kernels replay (a CUDA graph of the whole step) moves
      // its messages and collectives in the graph: the transport stays out.
      // A step hook's failure, named by rank and step.
      auto stepFailed = [&](const Status &h) {
        report(Status::failure("rank " + std::to_string(r) + " step " +
                                   std::to_string(ctx.step) + ": " +
                                   h.message(),
                               r));
        abandon();
      };
      bool replayed = false;
      if (Status b = kernels.beginStep(ctx, replayed); !b.ok())
        return stepFailed(b);
      for (size_t ii = 0; ii < s.instrs.size(); ++ii) {
        const int64_t i = int64_t(ii);
        const Instr &in = s.instrs[ii];
        current[r].store(i, std::memory_order_relaxed);
        if (stopping.load(std::memory_order_relaxed))
          return;
        // A stop at a step boundary is the monitor's to arrange.
        if (opt.stopRequested && !boundaryStops)
          if (int sig = opt.stopRequested()) {
            requestStop(sig);
            return;
          }
        const int64_t start = nowNs();
        const auto deadline = Clock::now() + opt.timeout;
        bool ok = true;
        if (sh)
          sh->touch(i);
        switch (in.op) {
        case Opcode::Fwd:
          ok = compute(i, step, [&] { return kernels.fwd(ctx, in.chunk, in.mb); });
          break;
        case Opcode::BwdB:
          ok = compute(i, step, [&] { return kernels.bwdB(ctx, in.chunk, in.mb); });
          break;
        case Opcode::BwdW:
          ok = compute(i, step, [&] { return kernels.bwdW(ctx, in.chunk, in.mb); });
          break;
        case Opcode::OptStep:
          ok = compute(i, step, [&] { return kernels.optStep(ctx); });
          break;
        case Opcode::RecvAct:
        case Opcode::RecvGrad:
        case Opcode::SendAct:
        case Opcode::SendGrad: {
          bool send = in.op == Opcode::SendAct || in.op == Opcode::SendGrad;
          if (sh) {
            Status c = send ? sh->checkReads(i, step) : Status::success();
            if (c.ok() && !send)
              for (const Region &f : rr.inFlight)
                if (f.offset < in.offset + in.bytes &&
                    in.offset < f.offset + f.bytes)
                  c = Status::failure(
                      "shadow memory: rank " + std::to_string(r) + " #" +
                          std::to_string(i) + " " + describe(in) +
                          ": its buffer overlaps a transfer still in flight",
                      r, i);
            if (!c.ok()) {
              report(c);
              ok = false;
              break;
            }
          }
          Message msg{in.chunk, in.mb, arenas[r].get() + in.offset, in.bytes,
                      i};
          Channel ch = (in.op == Opcode::SendAct || in.op == Opcode::RecvAct)
                           ? Channel::Activation
                           : Channel::Gradient;
          Status p = replayed ? Status::success()
                     : send   ? transport->postSend(r, in.peer, ch, in.req, msg)
                              : transport->postRecv(r, in.peer, ch, in.req, msg);
          if (!p.ok()) {
            fail(i, p.message());
            ok = false;
          } else {
            rr.inFlight.push_back({in.offset, in.bytes, !send});
          }
          break;
        }
        case Opcode::Wait: {
          Status w = replayed ? Status::success()
                              : transport->wait(r, in.req, deadline);
          if (!w.ok()) {
            fail(i, w.message() + (w.message().rfind("timed out", 0) == 0
                                       ? " within " +
                                             std::to_string(opt.timeout.count()) +
                                             " ms"
                                       : ""));
            ok = false;
            break;
          }
          const Instr &post = s.instrs[size_t(rr.postOf[in.req])];
          auto it = std::find_if(rr.inFlight.begin(), rr.inFlight.end(),
                                 [&](const Region &f) {
                                   return f.offset == post.offset &&
                                          f.bytes == post.bytes;
                                 });
          if (it != rr.inFlight.end())
            rr.inFlight.erase(it); // no allocation: erase only shifts
          if (sh) {
            bool recv = post.op == Opcode::RecvAct || post.op == Opcode::RecvGrad;
            if (recv) {
              sh->markRegion(post.offset, post.bytes, rr.postOf[in.req], step);
            } else if (Status c = sh->checkReads(rr.postOf[in.req], step);
                       !c.ok()) {
              report(Status::failure(c.message() +
                                         " (the buffer changed while the "
                                         "send was in flight)",
                                     r, i));
              ok = false;
            }
          }
          break;
        }
        case Opcode::AllReduce:
        case Opcode::ReduceScatter:
        case Opcode::AllGather: {
          uint8_t *data = arenas[r].get() + in.offset;
          // The code fills the operand of the pipeline group this one is a
          // copy of; a data-parallel reduction sums the accumulators as
          // they are (Manifest::groupOperand), and ZeRO-1's collectives
          // take theirs as they are too. The shadow mode checks the reads
          // and marks the writes of all three here.
          const int32_t operand = in.op == Opcode::AllReduce
                                      ? plan.operandGroupOf(in.chunk)
                                      : -1;
          ok = compute(i, step, [&] {
            return operand < 0 ? Status::success()
                               : kernels.prepareAllReduce(ctx, operand, in.mb,
                                                          data, in.bytes);
          });
          if (!ok)
            break;
          const int64_t count = in.bytes / dtypeBytes(in.dtype);
          const Part *parts = s.parts.data() + in.firstPart;
          Status a =
              replayed ? Status::success()
              : in.op == Opcode::AllReduce
                  ? transport->allReduce(r, in.chunk, in.mb, data, count,
                                         in.dtype, deadline)
              : in.op == Opcode::ReduceScatter
                  ? transport->reduceScatter(r, in.chunk, in.mb, data, count,
                                             in.dtype, parts, in.partCount,
                                             deadline)
                  : transport->allGatherParts(r, in.chunk, in.mb, data,
                                              count, in.dtype, parts,
                                              in.partCount, deadline);
          if (!a.ok()) {
            fail(i, a.message());
            ok = false;
            break;
          }
          if (sh)
            sh->markRegion(in.offset, in.bytes, i, step);
          // ZeRO-1: what the target keeps beside the gathered parameters
          // follows them (the cuda target's working copies).
          if (in.op == Opcode::AllGather)
            if (Status g = kernels.afterAllGather(ctx, in.chunk, in.mb);
                !g.ok()) {
              fail(i, g.message());
              ok = false;
            }
          break;
        }
        }
        const int64_t end = nowNs();
        if (in.op == Opcode::Fwd || in.op == Opcode::BwdB ||
            in.op == Opcode::BwdW || in.op == Opcode::OptStep)
          rr.busyNs += end - start;
        if (step < opt.traceSteps)
          rr.events.push_back({step, i, start, end});
        if (!ok) {
          abandon();
          return;
        }
      }
      if (Status e = kernels.endStep(ctx); !e.ok())
        return stepFailed(e);
      const int64_t endNs = rr.lastNs = nowNs();
      // The checkpoint after this step reads the arenas: what the transport
      // moves for this rank lands first. Device arenas are drained every
      // step: the metric slots are read next, and a rank's device work may
      // still run when its last function did not wait (a cuda plan's
      // chunks under cuda-local or nccl); after a function that waited it
      // costs nothing.
      if ((ckptEvery > 0 && (ctx.step + 1) % ckptEvery == 0) || copy)
        if (Status f = transport->drain(r); !f.ok()) {
          reportError(f);
          abandon();
          return;
        }
      // dist: the step as every process reports it.
      double stepLoss = 0, stepNorm = 0;
      int64_t stepEnd = 0;
      if (dist) {
        // The losses of the loss ranks and the norm rank's gradient norm
        // meet as exact sums, the step's end and a stop asked of any
        // process as maxima: integer words of a fixed size, so every
        // process gets the same bits whatever the ranks and the order the
        // library combines them in (the exchange waits for the slowest
        // rank's end of step, which the all-reduce before the optimizer
        // mostly already did).
        ExactSum losses, norm;
        bool read = true;
        if (plan.gradNorm.rank == r && (read = metric(plan.gradNorm, 0, mine[0])))
          norm.add(mine[0]);
        for (int32_t mb = 0; mb < mbs && read && isLossRank(r); ++mb)
          if ((read = metric(plan.loss, mb, mine[1 + size_t(mb)])))
            losses.add(mine[1 + size_t(mb)]);
        if (!read) {
          abandon();
          return;
        }
        losses.normalize();
        norm.normalize();
        std::copy(losses.words(), losses.words() + ExactSum::kWords,
                  sums.begin());
        std::copy(norm.words(), norm.words() + ExactSum::kWords,
                  sums.begin() + ExactSum::kWords);
        int64_t peaks[2] = {endNs, boundaryStops && opt.stopRequested
                                       ? int64_t(opt.stopRequested())
                                       : 0};
        Status g = transport->reduceWorld(r, sums.data(), int64_t(sums.size()),
                                          Transport::WorldOp::Sum,
                                          Clock::now() + opt.timeout);
        if (g.ok())
          g = transport->reduceWorld(r, peaks, 2, Transport::WorldOp::Max,
                                     Clock::now() + opt.timeout);
        if (!g.ok()) {
          report(Status::failure("rank " + std::to_string(r) + " after step " +
                                     std::to_string(ctx.step) +
                                     ": exchanging the step's metrics: " +
                                     g.message(),
                                 r));
          abandon();
          return;
        }
        std::copy(sums.begin(), sums.begin() + ExactSum::kWords,
                  losses.words());
        std::copy(sums.begin() + ExactSum::kWords, sums.end(), norm.words());
        stepLoss = losses.value() / (double(mbs) * plan.replicas);
        stepNorm = norm.value();
        stepEnd = peaks[0];
        // A stop asked of any process, learnt by all in the same exchange:
        // every rank ends at the next boundary (the exchange keeps the
        // processes within a step of each other), so all checkpoint the
        // same step.
        if (int sig = int(peaks[1]); sig > 0) {
          std::lock_guard<std::mutex> lock(stepMu);
          if (stopBoundary < 0) {
            stopBoundary = ctx.step + 1;
            boundarySignal = sig;
            boundaryDeadline = Clock::now() + opt.timeout;
          }
        }
      }
      // Read the metric slots before the next step's instructions reuse
      // them (outside the step lock: a failed read reports, which may take
      // it), then copy them into a ring slot the monitor has drained (it
      // rarely lags: the wait is passive and only then).
      if (!dist) {
        bool read = plan.gradNorm.rank != r || metric(plan.gradNorm, 0, mine[0]);
        for (int32_t mb = 0; mb < mbs && read; ++mb)
          read = !isLossRank(r) || metric(plan.loss, mb, mine[1 + size_t(mb)]);
        if (!read) {
          abandon();
          return;
        }
      }
      std::unique_lock<std::mutex> lock(stepMu);
      stepCv.wait(lock, [&] {
        return failed || step - consumed < int64_t(kStepRing);
      });
      if (failed)
        return;
      size_t slot = size_t(step) % kStepRing;
      if (dist) {
        slotLoss[slot] = stepLoss;
        slotNorm[slot] = stepNorm;
        slotEnd[slot] = stepEnd;
        ranksDone[slot] = n;
        stepCv.notify_all();
        continue;
      }
      if (isLossRank(r))
        for (int32_t mb = 0; mb < mbs; ++mb)
          rr.loss[slot * size_t(mbs) + size_t(mb)] = mine[1 + size_t(mb)];
      if (plan.gradNorm.rank == r)
        rr.gradNorm[slot] = mine[0];
      rr.stepEndNs[slot] = endNs;
      ++ranksDone[slot];
      stepCv.notify_all();
    }
    // What the transport still moves for this rank lands before the run
    // returns (cuda-local: the rank's streams drained).
    if (Status f = transport->drain(r); !f.ok()) {
      report(f);
      abandon();
      return;
    }
    current[r].store(-1);
  };

  // The log opens before the first instruction: a log that cannot be
  // written fails the run before it trains, not after.
  MetricsLog log;
  Status logStatus = Status::success();
  if (!opt.outDir.empty()) {
    logStatus = log.open(opt.outDir);
    if (!logStatus.ok())
      return logStatus;
  }
  std::vector<std::thread> threads;
  for (int32_t r = 0; r < n; ++r)
    if (holds(r))
      threads.emplace_back([&, r] {
        // What a rank's code throws (an allocation that fails, a kernel
        // library's exception) fails the run naming the rank, like any
        // failure: its peers stop instead of the process terminating.
        std::string threw;
        try {
          runRank(r);
        } catch (const std::exception &e) {
          threw = e.what();
        } catch (...) {
          threw = "an exception of unknown type";
        }
        if (threw.empty())
          return;
        report(Status::failure("rank " + std::to_string(r) +
                                   ": unexpected error: " + threw,
                               r));
        std::lock_guard<std::mutex> lock(stepMu);
        failed = true;
        stepCv.notify_all();
      });

  result = RunResult();
  // Bounded: a long run grows the record list rarely, never by steps * 48
  // bytes at once.
  result.steps.reserve(size_t(std::min<int64_t>(steps, 1 << 16)));
  int64_t prevEnd = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const size_t slot = size_t(step) % kStepRing;
    StepRecord rec;
    std::unique_lock<std::mutex> lock(stepMu);
    auto boundaryReached = [&] {
      return stopBoundary >= 0 && nextStep + step >= stopBoundary;
    };
    // Polled at every step and while waiting for one (stepMu held).
    auto pollStop = [&] {
      int sig = opt.stopRequested ? opt.stopRequested() : 0;
      if (!sig)
        return;
      if (boundaryStops && stopBoundary < 0) {
        // Every rank ends before the step after the furthest begun: the
        // ranks behind finish theirs (the ones ahead already sent what
        // those need), so all stand at one boundary. Ranks of other
        // processes: the step's exchange combines the stops instead.
        if (dist)
          return;
        stopBoundary = *std::max_element(rankStep.begin(), rankStep.end()) + 1;
        boundarySignal = sig;
        boundaryDeadline = Clock::now() + opt.timeout;
        stepCv.notify_all();
      } else if (!boundaryStops || Clock::now() > boundaryDeadline) {
        lock.unlock();
        requestStop(sig);
        lock.lock();
      }
    };
    if (boundaryStops)
      pollStop();
    while (!stepCv.wait_for(lock, std::chrono::milliseconds(20), [&] {
      return failed || ranksDone[slot] == n || boundaryReached();
    }))
      pollStop();
    if (ranksDone[slot] != n)
      break;
    rec.step = nextStep + step;
    rec.lr = lrs.at(rec.step);
    int64_t end = 0;
    if (dist) {
      rec.loss = plan.loss.rank >= 0 ? slotLoss[slot] : 0;
      rec.gradNorm = plan.gradNorm.rank >= 0 ? slotNorm[slot] : 0;
      end = slotEnd[slot];
    } else {
      if (plan.loss.rank >= 0) {
        // docs/TRAINING.md: the exact sum of the D x M micro-batch losses,
        // rounded once (the same bits as the processes' reduction).
        ExactSum sum;
        for (int32_t rep = 0; rep < plan.replicas; ++rep)
          for (int32_t mb = 0; mb < mbs; ++mb)
            sum.add(runs[size_t(plan.loss.rank + rep * plan.pipelineRanks())]
                        .loss[slot * size_t(mbs) + size_t(mb)]);
        rec.loss = sum.value() / (double(mbs) * plan.replicas);
      }
      if (plan.gradNorm.rank >= 0)
        rec.gradNorm = runs[plan.gradNorm.rank].gradNorm[slot];
      for (const RankRun &rr : runs)
        end = std::max(end, rr.stepEndNs[slot]);
    }
    ranksDone[slot] = 0;
    ++consumed;
    stepCv.notify_all();
    lock.unlock();
    rec.stepTimeS = double(end - prevEnd) * 1e-9;
    prevEnd = end;
    rec.tokensPerS = rec.stepTimeS > 0
                         ? double(plan.tokensPerMicrobatch) * mbs *
                               plan.replicas / rec.stepTimeS
                         : 0;
    result.steps.push_back(rec);
    {
      // A stop under way gives up on the boundary only when no step ends
      // for --timeout-ms (a hung rank), not after a fixed time.
      std::lock_guard<std::mutex> hold(stepMu);
      if (stopBoundary >= 0)
        boundaryDeadline = Clock::now() + opt.timeout;
    }
    if (logStatus.ok() && !opt.outDir.empty())
      logStatus = log.write(rec);
    if (opt.stopOnNonFinite &&
        !nonFiniteStep(rec.step, rec.loss, rec.gradNorm).empty()) {
      result.nonFiniteStep = rec.step;
      requestStop(-1);
    }
    if (opt.progress) {
      double eta = double(end) * 1e-9 / double(step + 1) * double(steps - step - 1);
      std::fprintf(opt.progress,
                   "step %lld/%lld  loss %.6f  %.0f tokens/s  ETA %02d:%02d:%02d\n",
                   (long long)(rec.step + 1), (long long)(nextStep + steps),
                   rec.loss, rec.tokensPerS, int(eta / 3600),
                   int(eta / 60) % 60, int(eta) % 60);
      std::fflush(opt.progress);
    }
    // A non-finite step is the last reported: later steps some ranks may
    // have finished are not (the run's message names this one).
    if (result.nonFiniteStep == rec.step)
      break;
    if (ckptEvery > 0 && (rec.step + 1) % ckptEvery == 0 && !stopping.load()) {
      // Every rank finished this step, drained, and holds at the boundary
      // (a non-finite step stopped the run instead: no checkpoint of it).
      Status c = guarded(opt.checkpoint, rec.step + 1);
      if (!c.ok())
        reportError(c); // stands even if a stop is under way
      std::lock_guard<std::mutex> hold(stepMu);
      if (!c.ok()) {
        failed = true;
        stepCv.notify_all();
        break;
      }
      released = lastWritten = rec.step + 1;
      // A stop under way waits for ranks that make progress.
      if (stopBoundary >= 0)
        boundaryDeadline = Clock::now() + opt.timeout;
      stepCv.notify_all();
    }
  }
  for (auto &t : threads)
    t.join();
  if (boundarySignal && !failed && firstError.ok() && !stopping.load()) {
    // Every rank stopped at the boundary: its checkpoint (unless the
    // periodic one just wrote it), then the run ends as stopped.
    Status c = lastWritten == stopBoundary
                   ? Status::success()
                   : guarded(opt.checkpoint, stopBoundary);
    if (!c.ok()) {
      std::lock_guard<std::mutex> lock(errMu);
      firstError = c;
      whereAll = where();
    } else {
      stopping.store(boundarySignal);
      stopWhere = "\n  every rank at the boundary before step " +
                  std::to_string(stopBoundary) + " (checkpoint written)";
    }
  }
  // Over processes, rank 0's process gathers every rank's events here.
  std::vector<std::vector<TraceEvent>> gathered;
  auto writeTrace = [&] {
    std::vector<const std::vector<TraceEvent> *> tracks;
    for (int32_t r = 0; r < n; ++r)
      tracks.push_back(dist ? &gathered[size_t(r)] : &runs[size_t(r)].events);
    // The other processes' streams name their events: read now, by the
    // one process that writes the trace.
    if (Status a = readAbsentStreams(); !a.ok())
      return a;
    Status t = writeChromeTrace(opt.outDir + "/trace.json", streams, tracks);
    if (!t.ok() || !opt.traceKernels)
      return t;
    std::vector<const KernelTimes *> times;
    for (const RankRun &rr : runs)
      times.push_back(&rr.kernelTimes);
    return writeKernelTimes(opt.outDir + "/kernel_times.json",
                            opt.kernelNames, times,
                            std::max<int64_t>(0, int64_t(result.steps.size()) - 1),
                            ompThreads);
  };
  if (int why = stopping.load()) {
    // Stopped: what was completed is reported whole.
    int64_t done = int64_t(result.steps.size());
    nextStep += done;
    Status closed = logStatus.ok() ? log.close() : logStatus;
    if (why > 0)
      result.stopSignal = why;
    if (closed.ok() && !opt.outDir.empty() && !dist)
      closed = writeTrace();
    std::string outputs =
        opt.outDir.empty()
            ? std::string()
            : closed.ok() ? "; " + opt.outDir + "/metrics.jsonl holds the " +
                                std::to_string(done) + " steps run" +
                                (dist ? "" : ", trace.json their timeline")
                          : "; " + closed.message();
    if (why > 0)
      return Status::failure("stopped by " + std::string(signalName(why)) +
                             " after " + std::to_string(done) + " of " +
                             std::to_string(steps) + " steps" + outputs +
                             "\nwhere every rank stood:" + stopWhere);
    if (result.nonFiniteStep == -1 || result.steps.empty()) {
      result.nonFiniteStep = -2;
      return Status::failure(
          "another process stopped the run at a non-finite step after " +
          std::to_string(done) + " steps here (its report names the step)" +
          outputs);
    }
    const StepRecord &bad = result.steps.back();
    return Status::failure(nonFiniteStep(bad.step, bad.loss, bad.gradNorm) +
                           outputs);
  }
  if (!firstError.ok())
    return Status::failure(firstError.message() + "\nwhere every rank stood:" +
                               whereAll,
                           firstError.rank(), firstError.instr());

  // Every rank's time in compute and the run's end, once: each process
  // contributes its rank's (times are never negative, so the maximum of
  // one time and zeros is that time, exact in any order).
  std::vector<int64_t> times(size_t(n) + 1, 0);
  for (int32_t r = 0; r < n; ++r)
    if (holds(r)) {
      times[size_t(r)] = runOf(r).busyNs;
      times[size_t(n)] = std::max(times[size_t(n)], runOf(r).lastNs);
    }
  if (dist)
    if (Status s = transport->reduceWorld(held, times.data(),
                                          int64_t(times.size()),
                                          Transport::WorldOp::Max,
                                          Clock::now() + opt.timeout);
        !s.ok())
      return Status::failure("rank " + std::to_string(held) +
                                 " after the run: gathering the ranks' "
                                 "times: " +
                                 s.message(),
                             held);
  const int64_t wall = times[size_t(n)];
  result.wallS = double(wall) * 1e-9;
  for (int32_t r = 0; r < n; ++r) {
    const int64_t busy = times[size_t(r)];
    result.busyS.push_back(double(busy) * 1e-9);
    result.idleShare.push_back(wall > 0 ? 1.0 - double(busy) / wall : 0.0);
    if (!holds(r) && opt.shadow)
      result.highWater.push_back(-1); // checked by its own process
    if (holds(r) && runOf(r).shadow) {
      int64_t hw = runOf(r).shadow->highWater();
      result.highWater.push_back(hw);
      if (hw != plan.rankInfo[r].peakBytes)
        return Status::failure(
            "shadow memory: rank " + std::to_string(r) +
                ": the instructions touched arena bytes up to " +
                std::to_string(hw) + ", but the plan's peak is " +
                std::to_string(plan.rankInfo[r].peakBytes),
            r);
    }
  }
  if (opt.traceKernels) {
    result.timedSteps = std::max<int64_t>(0, steps - 1);
    result.rankThreads = ompThreads;
    for (const RankRun &rr : runs)
      result.kernelTimes.push_back(rr.kernelTimes);
  }
  nextStep += steps;
  if (gatherTrace) {
    // Every process sends its rank's events to rank 0, whose process
    // writes the trace (no other process holds every rank's).
    std::vector<uint8_t> all;
    std::vector<int64_t> sizes;
    const std::vector<TraceEvent> &mine = runOf(held).events;
    if (Status s = transport->gatherAtRoot(
            held, mine.data(), int64_t(mine.size() * sizeof(TraceEvent)), all,
            sizes, Clock::now() + opt.timeout);
        !s.ok())
      return Status::failure("rank " + std::to_string(held) +
                                 " after the run: gathering the trace: " +
                                 s.message(),
                             held);
    size_t at = 0;
    gathered.assign(sizes.size(), {});
    for (size_t q = 0; q < sizes.size(); ++q) {
      std::vector<TraceEvent> &events = gathered[q];
      events.resize(size_t(sizes[q]) / sizeof(TraceEvent));
      if (!events.empty())
        std::memcpy(events.data(), all.data() + at, size_t(sizes[q]));
      at += size_t(sizes[q]);
    }
  }
  if (logStatus.ok())
    logStatus = log.close();
  if (!logStatus.ok())
    return logStatus;
  // Over processes, rank 0's holds every rank's events.
  if (opt.outDir.empty() || (dist && !(gatherTrace && held == 0)))
    return Status::success();
  return writeTrace();
}

} // namespace pipert
