//===- PlanningOptions.cpp - the options `pipec plan` and `compile` share -===//

#include "tools/pipec/PlanningOptions.h"

#include "compiler/schedule/Csv.h"
#include "tools/pipec/StrictFlags.h"

#include "pipert/ParseNumber.h"

#include "llvm/Support/Format.h"

#include <cmath>

using namespace llvm;

namespace pipec::tool {

cl::SubCommand &planSubcommand() {
  static cl::SubCommand sub(
      "plan", "Partition a model for a pipeline schedule: chunks balanced "
              "per rank, step time, bubble and each rank's peak memory (what "
              "`pipec compile` builds with the same options)");
  return sub;
}

cl::SubCommand &compileSubcommand() {
  static cl::SubCommand sub(
      "compile", "Compile a model for a pipeline schedule into a runnable "
                 "plan (sources, streams, manifest, executable): the plan "
                 "`pipec plan` prints for the same options");
  return sub;
}

namespace {

// Both subcommands' options; cl::sub twice registers one option on both.
#define BOTH cl::sub(planSubcommand()), cl::sub(compileSubcommand())

StrictInt<int, 1, kMaxStages>
    stagesOpt("stages", 1,
              cl::desc("pipeline ranks (1 to 4096; default 1; with "
                       "--schedule-file the file's)"),
              BOTH);
StrictInt<int, 0, kMaxMicrobatches> mbOpt(
    "microbatches", 0,
    cl::desc("micro-batches per step (default 0: twice the stages; with "
             "--schedule-file the file's)"),
    BOTH);
cl::opt<std::string> scheduleOpt(
    "schedule",
    cl::desc("gpipe, 1f1b, interleaved-1f1b, zb-h1, zb-v, dualpipe-v, or "
             "auto: every kind and chunks per rank tried, each recomputing "
             "as --recompute allows under the memory cap, the least step "
             "time that fits kept (default 1f1b; docs/SCHEDULES.md)"),
    cl::value_desc("KIND"), cl::init("1f1b"), BOTH);
StrictInt<int, 0, kMaxChunksPerRank> chunksOpt(
    "chunks-per-rank", 0,
    cl::desc("chunks per rank (default 0: the kind's, 2 for "
             "interleaved-1f1b and the V kinds)"),
    BOTH);
cl::opt<std::string> csvOpt(
    "schedule-file",
    cl::desc("a torch.distributed.pipelining compute-only CSV schedule "
             "instead of --schedule: its rows are the ranks, its actions "
             "the stages and micro-batches (docs/SCHEDULES.md)"),
    cl::value_desc("F.csv"), cl::init(""), BOTH);
StrictInt<int, 1, kMaxReplicas> dpOpt(
    "dp", 1,
    cl::desc("data-parallel replicas of the pipeline: dp x stages ranks, "
             "replica r taking global micro-batches r*M..r*M+M-1 of each "
             "step and each chunk's gradients all-reduced over its replicas "
             "after its last W (default 1)"),
    BOTH);
StrictInt<int, 0, 1> zeroOpt(
    "zero", 0,
    cl::desc("ZeRO stage with --dp (0 or 1; default 0): 1 splits the AdamW "
             "moments among the replicas of each stage (gradients "
             "reduce-scattered, each replica updating its part, the "
             "parameters all-gathered), the same bits as 0 with less "
             "optimizer memory per rank"),
    BOTH);
cl::opt<std::string> targetOpt(
    "target",
    cl::desc("cpu (fp32, the C++ kernel library) or cuda (bf16 storage, "
             ".cu chunks on one stream per rank, cuBLASLt); also the cost "
             "model's rates and the default --memory-cap (default cpu)"),
    cl::value_desc("cpu|cuda"), cl::init("cpu"), BOTH);
cl::opt<std::string> capOpt(
    "memory-cap",
    cl::desc("bytes a rank may use (80G, 512MiB, 1.5e9; suffixes K M G T "
             "and KiB MiB GiB TiB), or none; fail naming the rank if no "
             "plan fits. Default: none on cpu, 78GiB on cuda (what an "
             "H100 leaves a process)"),
    cl::value_desc("BYTES"), cl::init(""), BOTH);
cl::opt<std::string> recomputeOpt(
    "recompute",
    cl::desc("none; full (every chunk runs its forward again in B, keeping "
             "only its input); auto (default: under a memory cap, layer by "
             "layer from the start of each chunk of the ranks over it, "
             "until they fit). The same bits either way"),
    cl::value_desc("none|full|auto"), cl::init("auto"), BOTH);
cl::opt<bool> deferHeadOpt(
    "defer-lm-head-w",
    cl::desc("let the LM head's W run after its B like every other W "
             "(keeps its B x T x V output gradient alive meanwhile; "
             "default off)"),
    cl::init(false), BOTH);
cl::opt<std::string> attentionOpt(
    "attention",
    cl::desc("the cuda target's attention kernels: tiled (default: flash "
             "attention's tiling on the tensor cores for head sizes 64 and "
             "128, the warp-per-row kernels otherwise) or rows (the "
             "warp-per-row kernels everywhere: the correct-first baseline, "
             "for comparisons); chosen at compile time"),
    cl::value_desc("tiled|rows"), cl::init("tiled"), BOTH);
cl::opt<bool> noFuseOpt(
    "no-fuse",
    cl::desc("do not fuse op groups into one kernel (--nn-fuse: matmul + "
             "GELU, residual add + layernorm / rmsnorm); on the cpu target "
             "the fused kernels give the same bits, so this changes the "
             "kernel calls and the partition's pieces, not the training"),
    cl::init(false), BOTH);

#undef BOTH

/// "80G" -> 80e9, "2GiB" -> 2^31, "1.5K" -> 1500, "1000" -> 1000; false
/// unless the text is a finite decimal number whose bytes are a whole
/// number from 1 to 2^62 ("0.5" is not a byte count: it would round to 0,
/// which means no cap).
bool parseBytes(StringRef text, int64_t &out) {
  struct Suffix {
    const char *s;
    double mult;
  };
  static const Suffix suffixes[] = {{"KiB", 1024.0},
                                    {"MiB", 1024.0 * 1024},
                                    {"GiB", 1024.0 * 1024 * 1024},
                                    {"TiB", 1024.0 * 1024 * 1024 * 1024},
                                    {"K", 1e3},
                                    {"M", 1e6},
                                    {"G", 1e9},
                                    {"T", 1e12}};
  double mult = 1;
  for (const Suffix &s : suffixes)
    if (text.consume_back(s.s)) {
      mult = s.mult;
      break;
    }
  double v = 0;
  std::string error;
  if (!pipert::parseFinite("--memory-cap", text.str(), 0, 1e30, v, error))
    return false;
  double bytes = v * mult;
  if (!(bytes >= 1) || bytes > 4611686018427387904.0 ||
      bytes != std::floor(bytes))
    return false;
  out = int64_t(bytes);
  return true;
}

} // namespace

std::string readPlanningOptions(Planning &out) {
  TrainingPipelineOptions &o = out.pipeline;
  plan::PlanOptions &po = out.planner;
  if (!plan::ratesForTarget(targetOpt, po.rates))
    return "unknown --target '" + targetOpt + "'; expected one of " +
           plan::allTargetNames();
  po.deviceWorkspaceBytes = plan::deviceWorkspaceFor(targetOpt);
  o.target = targetOpt;
  if (!csvOpt.empty()) {
    if (scheduleOpt.getNumOccurrences())
      return "--schedule and --schedule-file both choose the schedule; give "
             "one of them";
    if (stagesOpt.getNumOccurrences() || chunksOpt.getNumOccurrences())
      return "--schedule-file places the chunks itself: --stages and "
             "--chunks-per-rank are the file's";
    if (std::string e = schedule::readCsvFile(csvOpt, out.csvText);
        !e.empty())
      return "--schedule-file: " + e;
    o.csv = csvOpt;
    po.csvText = out.csvText;
    po.csvName = csvOpt;
  } else if (scheduleOpt == "auto") {
    o.kind = "auto";
    po.autoSchedule = true;
  } else if (!schedule::parseKind(scheduleOpt, po.kind)) {
    return "unknown --schedule '" + scheduleOpt + "'; expected one of " +
           schedule::allKindNames() + " or auto";
  } else {
    o.kind = scheduleOpt;
  }
  if (zeroOpt == 1 && dpOpt < 2)
    return "--zero 1 splits the optimizer state among the data-parallel "
           "replicas: it needs --dp 2 or more";
  o.stages = po.stages = stagesOpt;
  o.microbatches = po.microbatches =
      mbOpt > 0 || !csvOpt.empty() ? int(mbOpt) : 2 * stagesOpt;
  o.chunksPerRank = po.chunksPerRank = chunksOpt;
  o.replicas = po.replicas = dpOpt;
  o.zero = po.zero = zeroOpt;
  o.fuse = !noFuseOpt;
  o.deferLmHeadW = deferHeadOpt;
  if (attentionOpt != "tiled" && attentionOpt != "rows")
    return "unknown --attention '" + attentionOpt + "'; expected tiled or rows";
  // A choice among the cuda target's kernels; the cpu has one attention.
  if (attentionOpt.getNumOccurrences() && targetOpt != "cuda")
    return "--attention chooses the cuda target's attention kernels; the " +
           targetOpt + " target has one (give --target cuda, or drop it)";
  o.attention = attentionOpt;

  if (capOpt.empty() || capOpt == "none") {
    o.memoryCap = capOpt.empty() ? po.rates.memoryBytes : 0;
    if (o.memoryCap > 0)
      out.capSource = "the " + targetOpt + " target's default";
  } else if (!parseBytes(capOpt, o.memoryCap)) {
    return "--memory-cap '" + capOpt +
           "' is not a whole positive byte count up to 2^62 (e.g. 80G, "
           "512MiB) or none";
  } else {
    out.capSource = "--memory-cap";
  }
  po.memoryCap = o.memoryCap;
  if (!plan::parseRecompute(recomputeOpt, po.recompute))
    return "unknown --recompute '" + recomputeOpt +
           "'; expected none, full or auto";
  o.recompute = recomputeOpt;
  return "";
}

std::string describePlanning(const Planning &p) {
  const TrainingPipelineOptions &o = p.pipeline;
  std::string s;
  raw_string_ostream os(s);
  os << "stages=" << o.stages << " microbatches=" << o.microbatches
     << " schedule=" << (o.csv.empty() ? o.kind : "csv")
     << " chunks-per-rank=" << o.chunksPerRank << " dp=" << o.replicas
     << (o.zero ? " zero=1" : "") << " target=" << o.target
     << " fuse=" << int(o.fuse) << " memory-cap=" << o.memoryCap
     << " recompute=" << o.recompute
     << " defer-lm-head-w=" << int(o.deferLmHeadW)
     << (o.attention == "tiled" ? "" : " attention=" + o.attention);
  if (!p.csvText.empty())
    os << "\n-- schedule file:\n" << p.csvText;
  return s;
}

void printScheduleLine(raw_ostream &os, StringRef kind, int64_t chunksPerRank,
                       int64_t microbatches) {
  os << "schedule: " << kind << ", " << chunksPerRank << " chunk"
     << (chunksPerRank == 1 ? "" : "s") << " per rank, " << microbatches
     << " micro-batches\n";
}

void printChunkLine(raw_ostream &os, int64_t chunk, int64_t rank,
                    int64_t firstOp, int64_t lastOp, int64_t recomputeFirst,
                    int64_t recomputeLast) {
  os << "chunk c" << chunk << ": rank " << rank << ", ops " << firstOp << "-"
     << lastOp;
  if (recomputeFirst >= 0)
    os << ", recomputes ops " << recomputeFirst << "-" << recomputeLast
       << " in B";
  os << "\n";
}

void printCapLine(raw_ostream &os, const Planning &p, int64_t partitionerCap) {
  int64_t cap = p.pipeline.memoryCap;
  if (cap <= 0)
    return;
  os << "memory cap: " << cap << " bytes per rank (" << p.capSource << ")";
  if (partitionerCap > 0 && partitionerCap != cap)
    os << "; recomputation chosen for " << partitionerCap
       << " by the partitioner's estimate, where the exact memory plan fits "
       << cap;
  os << "\n";
}

} // namespace pipec::tool
