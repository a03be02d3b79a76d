//===- ScheduleCmd.cpp - `pipec schedule`: explore schedules ----*- C++ -*-===//
//
// Generates (or imports from CSV) a pipeline schedule without a model,
// verifies it (pairing, dataflow, the abstract machine's deadlock proof),
// replays it with F, B, W costs and prints the streams, the step time and
// the bubble fraction, as text or JSON, and optionally an SVG timeline.
//
//===----------------------------------------------------------------------===//

#include "tools/pipec/StrictFlags.h"
#include "tools/pipec/Subcommand.h"

#include "pipert/AtomicFile.h"

#include "compiler/schedule/Csv.h"
#include "compiler/schedule/Generate.h"
#include "compiler/schedule/Lower.h"
#include "compiler/schedule/Svg.h"
#include "compiler/schedule/Validate.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace pipec::tool;
using namespace pipec::schedule;

static cl::SubCommand scheduleCmd(
    "schedule", "Explore a pipeline schedule without a model: streams, "
                "deadlock proof, step time, bubble, SVG timeline");

static StrictInt<int, 1, kMaxStages> stagesOpt("stages", 0, cl::desc("pipeline stages (ranks, 1 to 4096; required unless --csv gives them)"), cl::sub(scheduleCmd));
static StrictInt<int, 1, kMaxMicrobatches> microbatchesOpt("microbatches", 0,
    cl::desc("micro-batches per step (required; with --csv optional, checked against the file)"), cl::sub(scheduleCmd));
static cl::opt<std::string>
    kindOpt("kind",
            cl::desc("schedule kind: gpipe, 1f1b, interleaved-1f1b, zb-h1, "
                     "zb-v, dualpipe-v"),
            cl::sub(scheduleCmd));
static cl::opt<std::string>
    csvOpt("csv",
           cl::desc("a torch.distributed.pipelining compute-only CSV file "
                    "(stage count and placement come from the file)"),
           cl::sub(scheduleCmd));
static StrictInt<int, 0, kMaxChunksPerRank> chunksOpt("chunks-per-rank", 0,
    cl::desc("model chunks per rank (default: 2 for interleaved-1f1b, zb-v "
             "and dualpipe-v, else 1)"), cl::sub(scheduleCmd));
static StrictInt<int, 0, (1 << 30)> modelOpsOpt("model-ops", 0, cl::desc("ops in the model: refuse plans with more chunks (default 0: no limit)"), cl::sub(scheduleCmd));
static cl::opt<std::string>
    costsOpt("costs", cl::desc("F,B,W cost of one chunk, in any time unit the figures then use (default 1,1,1: the textbook unit costs)"),
             cl::init("1,1,1"), cl::sub(scheduleCmd));
static StrictCost commOpt("comm-cost", 0,
            cl::desc("cost of each point-to-point message, in the unit of --costs (default 0: free)"), cl::sub(scheduleCmd));
static cl::opt<bool> postValidationOpt(
    "post-validation",
    cl::desc("run opt_step without the synchronising allreduce, validated "
             "afterwards, so the optimizer overlaps the step boundary; "
             "reports the steady state of three replayed steps"),
    cl::sub(scheduleCmd));
static cl::opt<bool> jsonOpt("json", cl::desc("print one JSON object instead of the text (docs/SCHEDULES.md)"),
                             cl::sub(scheduleCmd));
static cl::opt<bool> computeOnlyOpt(
    "compute-only", cl::desc("print only the F, B, W order of each rank"),
    cl::sub(scheduleCmd));
static cl::opt<std::string>
    svgOpt("svg", cl::desc("write the per-rank timeline as SVG to FILE (time axis in the unit of --costs)"), cl::value_desc("FILE"),
           cl::sub(scheduleCmd));

static int fail(const Twine &msg) {
  errs() << "pipec schedule: error: " << msg << "\n";
  return 1;
}

/// Parses "F,B,W" into three non-negative numbers.
static bool parseCosts(StringRef text, double out[3]) {
  SmallVector<StringRef, 3> parts;
  text.split(parts, ',');
  if (parts.size() != 3)
    return false;
  for (int i = 0; i < 3; ++i)
    if (std::string error;
        !pipert::parseFinite("--costs", parts[i].trim().str(), 0, 1e30,
                             out[i], error))
      return false;
  return true;
}

static int runSchedule() {
  if (svgOpt.getNumOccurrences() && svgOpt.empty())
    return fail("--svg needs a file name");
  bool haveKind = kindOpt.getNumOccurrences() > 0;
  bool haveCsv = csvOpt.getNumOccurrences() > 0;
  if (haveKind == haveCsv)
    return fail("give exactly one of --kind K or --csv FILE");
  double fbw[3];
  if (!parseCosts(costsOpt, fbw))
    return fail("--costs expects three non-negative numbers F,B,W (each at most 1e30), got '" +
                costsOpt + "'");
  if (commOpt < 0)
    return fail("--comm-cost must not be negative");

  ComputePlan plan;
  if (haveCsv) {
    if (chunksOpt.getNumOccurrences())
      return fail("--chunks-per-rank does not apply to --csv: the placement "
                  "comes from the file");
    std::string text;
    if (std::string e = pipec::schedule::readCsvFile(csvOpt, text); !e.empty())
      return fail(e);
    std::string err = readCsvPlan(text, csvOpt,
                                  microbatchesOpt, plan);
    if (!err.empty())
      return fail(err);
    if (stagesOpt > 0 && stagesOpt != plan.placement.ranks)
      return fail("--stages " + Twine(stagesOpt) + " but '" + csvOpt +
                  "' has " + Twine(plan.placement.ranks) + " rank rows");
    if (modelOpsOpt > 0 && plan.placement.chunks > modelOpsOpt)
      return fail("'" + csvOpt + "' places " + Twine(plan.placement.chunks) +
                  " chunks, but the model has only " + Twine(modelOpsOpt) +
                  " ops (--model-ops)");
  } else {
    GenerateOptions opt;
    if (!parseKind(kindOpt, opt.kind))
      return fail("unknown --kind '" + kindOpt + "'; expected one of " +
                  allKindNames());
    if (stagesOpt <= 0 || microbatchesOpt <= 0)
      return fail("--kind needs --stages S and --microbatches M, both "
                  "positive");
    opt.stages = stagesOpt;
    opt.microbatches = microbatchesOpt;
    opt.chunksPerRank = chunksOpt;
    opt.modelOps = modelOpsOpt;
    std::string err = generatePlan(opt, plan);
    if (!err.empty())
      return fail(err);
  }

  LowerOptions lowerOptions;
  lowerOptions.postValidation = postValidationOpt;
  Schedule sched = lowerPlan(plan, lowerOptions);
  Costs costs = Costs::uniform(plan.placement.chunks, fbw[0], fbw[1], fbw[2]);
  costs.actComm = costs.gradComm = commOpt;
  MachineResult res;
  std::string err = verifySchedule(sched, costs, res, svgOpt.size() > 0);
  if (!err.empty())
    return fail("the schedule is rejected: " + err);
  // With post-validation one step says little: the next step's start
  // overlaps this one's end. Replay three steps and take the mean period
  // of the last two.
  MachineResult shown = res;
  double stepTime = res.stepTime, bubble = res.bubbleFraction;
  if (postValidationOpt) {
    MachineResult three =
        runMachine(repeatSteps(sched, 3), costs, svgOpt.size() > 0);
    if (three.verdict != Verdict::Completed)
      return fail("three consecutive steps are rejected: " + three.message);
    double busy = 0;
    for (double b : res.busy)
      busy += b;
    stepTime = (three.stepTime - res.stepTime) / 2;
    bubble = stepTime > 0 ? 1 - busy / (sched.ranks() * stepTime) : 0;
    shown = std::move(three);
  }

  const int32_t R = sched.ranks();
  double closed = closedFormBubble(sched.kind, R, sched.microbatches,
                                   sched.chunksPerRank);
  bool unitCosts = fbw[0] == fbw[1] && fbw[1] == fbw[2] && commOpt == 0;

  if (!svgOpt.empty()) {
    std::string caption;
    if (postValidationOpt)
      caption = "three steps with post-validation: steady-state step time " +
                formatv("{0}", format("%g", stepTime)).str() + ", bubble " +
                formatv("{0}", format("%.2f", 100 * bubble)).str() +
                "%; grey = idle";
    // Whole or not at all (AtomicFile.h).
    if (pipert::Status s = pipert::writeFileAtomically(
            svgOpt, renderSvg(sched, shown, caption));
        !s.ok())
      return fail("--svg: " + s.message());
  }

  if (jsonOpt) {
    json::Array ranks;
    for (int32_t r = 0; r < R; ++r) {
      int64_t compute = 0;
      for (const Instr &in : sched.streams[r])
        compute += in.op == Op::Fwd || in.op == Op::BwdB || in.op == Op::BwdW;
      ranks.push_back(json::Object{
          {"rank", r},
          {"instructions", int64_t(sched.streams[r].size())},
          {"compute", compute},
          {"busy", res.busy[r]},
          {"idle", stepTime - res.busy[r]}});
    }
    json::Array placement;
    for (int32_t c : sched.placement.rankOf)
      placement.push_back(c);
    json::Object obj{{"kind", kindName(sched.kind)},
                     {"stages", R},
                     {"microbatches", sched.microbatches},
                     {"chunks_per_rank", sched.chunksPerRank},
                     {"chunks", sched.placement.chunks},
                     {"costs", json::Array{fbw[0], fbw[1], fbw[2]}},
                     {"step_time", stepTime},
                     {"bubble_fraction", bubble},
                     {"post_validation", bool(postValidationOpt)},
                     {"deadlock_free", true},
                     {"placement", std::move(placement)},
                     {"ranks", std::move(ranks)}};
    if (closed >= 0 && unitCosts && !postValidationOpt)
      obj["closed_form_bubble"] = closed;
    outs() << formatv("{0:2}", json::Value(std::move(obj))) << "\n";
    return 0;
  }

  outs() << "schedule " << kindName(sched.kind) << ": " << R << " stages, "
         << sched.microbatches << " micro-batches, " << sched.chunksPerRank
         << " chunk(s) per rank, " << sched.placement.chunks << " chunks\n";
  outs() << "placement (chunk:rank):";
  for (int32_t c = 0; c < sched.placement.chunks; ++c)
    outs() << " " << c << ":" << sched.placement.rankOf[c];
  outs() << "\n";
  outs() << (computeOnlyOpt ? formatComputeOrder(sched)
                            : formatStreams(sched));
  outs() << "verified: every send has one matching recv; the abstract "
            "machine ran all ranks to the end (no deadlock)\n";
  if (postValidationOpt)
    outs() << "post-validation: opt_step overlaps the step boundary; "
              "steady state of three replayed steps\n";
  outs() << "step time: " << format("%g", stepTime) << " (F="
         << format("%g", fbw[0]) << " B=" << format("%g", fbw[1])
         << " W=" << format("%g", fbw[2]) << " per chunk, "
         << (commOpt == 0 ? std::string("communication free")
                          : "each message " + formatv("{0}", format("%g", double(commOpt))).str())
         << ")\n";
  outs() << "bubble fraction: " << format("%.4f", bubble);
  if (closed >= 0 && unitCosts && !postValidationOpt)
    outs() << " (closed form " << closedFormText(sched.kind) << " = "
           << format("%.4f", closed) << ")";
  outs() << "\n";
  if (!svgOpt.empty())
    outs() << "timeline written to " << svgOpt << "\n";
  return 0;
}

static pipec::tool::RegisterSubcommand registerSchedule(scheduleCmd,
                                                        runSchedule);
