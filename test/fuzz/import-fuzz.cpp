//===- import-fuzz.cpp - the importer's seeded mutation fuzzer --*- C++ -*-===//
//
// Runs pipec::importModel on thousands of mutants of the model files in one
// process (built with AddressSanitizer in build-asan) and fails on a crash, a
// sanitizer report, a hang, a rejection without a diagnostic, or an accepted
// module that does not verify or does not parse back from its printed form:
//
//   pipec-import-fuzz models/ --seed 1 --count 3000 --time-budget 110
//   pipec-import-fuzz --replay import-fuzz-crash.json
//
// The text of the mutant being imported is always on disk (--crash-file), so
// whatever kills the process leaves its reproducer behind; a clean run removes
// the file. Mutant N of seed S is the same text in every run, so
// `--seed S --mutant N --print` regenerates it too.
//
//===----------------------------------------------------------------------===//

#include "compiler/import/JsonImporter.h"
#include "test/fuzz/Mutator.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include <signal.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define PIPEC_FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PIPEC_FUZZ_ASAN 1
#endif
#endif
#ifdef PIPEC_FUZZ_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

using namespace llvm;
using Clock = std::chrono::steady_clock;

static cl::list<std::string> seedPaths(cl::Positional,
                                       cl::desc("<model.json or folder>..."));
static cl::opt<uint64_t> seed("seed", cl::desc("run seed"), cl::init(1));
static cl::opt<uint64_t> mutantCount("count", cl::desc("mutants to run"),
                                     cl::init(3000));
static cl::opt<double> timeBudget(
    "time-budget",
    cl::desc("stop making mutants after this many seconds (0: no limit)"),
    cl::init(0));
static cl::opt<double>
    hangTimeout("hang-timeout",
                cl::desc("seconds after which one import is a hang"),
                cl::init(5));
static cl::opt<std::string> crashFile(
    "crash-file",
    cl::desc("where the mutant being imported is kept (the reproducer)"),
    cl::init("import-fuzz-crash.json"));
static cl::opt<std::string>
    replay("replay",
           cl::desc("import this one file and report, instead of fuzzing"));
static cl::opt<int64_t>
    onlyMutant("mutant", cl::desc("run only mutant N of --seed"), cl::init(-1));
static cl::opt<bool> printMutant(
    "print",
    cl::desc("with --mutant: print its text to stdout, do not run it"));
static cl::opt<bool>
    verbose("verbose",
            cl::desc("print every mutant's recipe and first diagnostic"));
static cl::opt<std::string> injectFault(
    "inject-fault", cl::Hidden,
    cl::desc("test of the harness itself: instead of importing the first "
             "mutant, crash|abort|stack-overflow|heap-overflow|leak|hang"));
static cl::opt<uint64_t>
    progressEvery("progress-every",
                  cl::desc("print a progress line every N mutants"),
                  cl::init(1000));

//===----------------------------------------------------------------------===//
// What is reported when the process dies
//===----------------------------------------------------------------------===//

/// The message printed if the current import kills the process, formatted
/// before each import because a signal handler may not allocate.
static char deathMessage[1024];
static std::atomic<bool> deathMessageSet{false};

static void printDeathMessage() {
  if (deathMessageSet.load())
    (void)!::write(2, deathMessage, strlen(deathMessage));
}

/// Installed with SA_RESETHAND: re-raising then ends the process as the
/// signal would have.
static void onFatalSignal(int sig) {
  printDeathMessage();
  std::raise(sig);
}

/// ASan reports its own errors (and SEGVs) and then calls the death callback;
/// without ASan the fuzzer catches the fatal signals itself. An abort (a
/// failed assert, nlohmann without exceptions) is caught in both.
static void installDeathHandlers() {
  std::vector<int> signals = {SIGABRT};
#ifdef PIPEC_FUZZ_ASAN
  __sanitizer_set_death_callback(printDeathMessage);
#else
  signals.insert(signals.end(), {SIGSEGV, SIGBUS, SIGFPE, SIGILL});
  // An own stack, so that a stack overflow (deep recursion on nested input)
  // is reported too.
  static std::vector<char> altStack(1 << 16);
  stack_t ss = {};
  ss.ss_sp = altStack.data();
  ss.ss_size = altStack.size();
  sigaltstack(&ss, nullptr);
#endif
  for (int sig : signals) {
    struct sigaction sa = {};
    sa.sa_handler = onFatalSignal;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
  }
}

static void setDeathMessage(const char *what, int64_t index) {
  deathMessageSet = false;
  snprintf(deathMessage, sizeof(deathMessage),
           "\nimport-fuzz: FAILED: the importer %s on mutant %lld of seed "
           "%llu\nimport-fuzz: reproducer: %s\nimport-fuzz: rerun: "
           "pipec-import-fuzz --replay %s\n",
           what, static_cast<long long>(index),
           static_cast<unsigned long long>(seed.getValue()), crashFile.c_str(),
           crashFile.c_str());
  deathMessageSet = true;
}

//===----------------------------------------------------------------------===//
// Watchdog
//===----------------------------------------------------------------------===//

namespace {
/// Ends the process when one import runs longer than the hang timeout; the
/// reproducer is already on disk.
class Watchdog {
public:
  explicit Watchdog(double limitSeconds)
      : limit(std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(limitSeconds))),
        thread([this] { loop(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    wake.notify_all();
    thread.join();
  }
  void arm(int64_t index) {
    current = index;
    started = Clock::now().time_since_epoch().count();
  }
  void disarm() { started = -1; }

private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex);
    while (!stop) {
      wake.wait_for(lock, std::chrono::milliseconds(50));
      int64_t s = started.load();
      if (s < 0 || Clock::now().time_since_epoch().count() - s <= limit.count())
        continue;
      setDeathMessage("hung (ran past --hang-timeout)", current.load());
      printDeathMessage();
      std::_Exit(3);
    }
  }

  Clock::duration limit;
  std::atomic<int64_t> started{-1};
  std::atomic<int64_t> current{0};
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  std::thread thread;
};

/// What one import did.
enum class Outcome { Accepted, Rejected, Failed };
} // namespace

//===----------------------------------------------------------------------===//
// One import
//===----------------------------------------------------------------------===//

/// Recurses until the stack runs out, as a parser with no depth limit would.
static volatile bool keepRecursing = true;
static int recurseForever(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  if (!keepRecursing)
    return frame[0];
  return recurseForever(depth + 1) + frame[0];
}

/// Does what --inject-fault names where an import would run, so that the
/// ctest of the harness can check that each kind of failure is caught.
static bool injectedFault() {
  if (injectFault == "stack-overflow")
    return recurseForever(0) == 0;
  static volatile int *volatile nowhere = nullptr;
  if (injectFault == "crash")
    return *nowhere == 0;
  if (injectFault == "abort")
    std::abort();
  if (injectFault == "heap-overflow") {
    volatile char *p = new char[8];
    char c = p[8];
    delete[] p;
    return c == 0;
  }
  if (injectFault == "leak") {
    volatile char *lost = new char[64];
    lost[0] = 1;
    return true;
  }
  if (injectFault == "hang")
    for (;;)
      std::this_thread::sleep_for(std::chrono::seconds(1));
  errs() << "import-fuzz: unknown --inject-fault '" << injectFault << "'\n";
  std::exit(2);
}

/// Imports `text` in a fresh context and checks the importer's contract.
/// `why` receives the diagnostics, or what broke the contract.
static Outcome importOne(const std::string &text, StringRef fileName,
                         std::string &why) {
  mlir::MLIRContext ctx(mlir::MLIRContext::Threading::DISABLED);
  std::string diags;
  mlir::ScopedDiagnosticHandler handler(&ctx, [&](mlir::Diagnostic &d) {
    diags += d.str() + "\n";
    return mlir::success();
  });
  std::string errText;
  raw_string_ostream errs(errText);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      pipec::importModel(ctx, text, fileName, errs);
  errs.flush();
  why = errText + diags;
  if (!module) {
    if (why.empty()) {
      why = "rejected the input without printing a diagnostic";
      return Outcome::Failed;
    }
    return Outcome::Rejected;
  }
  if (mlir::failed(mlir::verify(*module))) {
    why = "accepted the input but returned a module that does not verify:\n" +
          diags;
    return Outcome::Failed;
  }
  // Every later stage may be run alone on textual IR (pipec-opt), so what the
  // importer builds must also survive printing and parsing back.
  std::string printed;
  raw_string_ostream os(printed);
  module->print(os);
  os.flush();
  mlir::OwningOpRef<mlir::ModuleOp> reparsed =
      mlir::parseSourceString<mlir::ModuleOp>(printed, &ctx);
  if (!reparsed) {
    why = "accepted the input but its module does not parse back from its "
          "printed form:\n" +
          diags;
    return Outcome::Failed;
  }
  return Outcome::Accepted;
}

static bool writeFile(const std::string &path, const std::string &text) {
  std::error_code ec;
  raw_fd_ostream os(path, ec);
  if (ec)
    return false;
  os << text;
  os.close();
  return !os.has_error();
}

/// The model files named on the command line; a folder gives its *.json.
static bool loadSeeds(pipec::fuzz::Mutator &mutator) {
  std::vector<std::string> files;
  for (const std::string &p : seedPaths) {
    if (!sys::fs::is_directory(p)) {
      files.push_back(p);
      continue;
    }
    std::error_code ec;
    std::vector<std::string> inDir;
    for (sys::fs::directory_iterator it(p, ec), end; it != end && !ec;
         it.increment(ec))
      if (sys::path::extension(it->path()) == ".json")
        inDir.push_back(it->path());
    std::sort(inDir.begin(), inDir.end()); // the same seed, the same mutants
    files.insert(files.end(), inDir.begin(), inDir.end());
  }
  for (const std::string &f : files) {
    auto buf = MemoryBuffer::getFile(f);
    if (!buf) {
      errs() << "import-fuzz: cannot read " << f << ": "
             << buf.getError().message() << "\n";
      return false;
    }
    std::string error;
    if (!mutator.addSeed(f, (*buf)->getBuffer().str(), error)) {
      errs() << "import-fuzz: " << error << "\n";
      return false;
    }
  }
  if (mutator.numSeeds() == 0) {
    errs() << "import-fuzz: no model files given (pass models/)\n";
    return false;
  }
  return true;
}

static int runReplay() {
  auto buf = MemoryBuffer::getFile(replay, /*IsText=*/false,
                                   /*RequiresNullTerminator=*/false);
  if (!buf) {
    errs() << "import-fuzz: cannot read " << replay << ": "
           << buf.getError().message() << "\n";
    return 2;
  }
  std::string why;
  Outcome o = importOne((*buf)->getBuffer().str(), replay, why);
  outs() << why;
  outs() << "import-fuzz: " << replay << ": "
         << (o == Outcome::Accepted   ? "accepted"
             : o == Outcome::Rejected ? "rejected with a diagnostic"
                                      : "FAILED")
         << "\n";
  return o == Outcome::Failed ? 1 : 0;
}

int main(int argc, char **argv) {
  cl::ParseCommandLineOptions(
      argc, argv,
      "pipec-import-fuzz: a seeded mutation fuzzer of the model importer\n");
  // Durations become integers and chrono counts: out-of-range values would
  // be undefined behaviour, not a longer run.
  if (!std::isfinite(timeBudget) || timeBudget < 0 || timeBudget > 1e6 ||
      !std::isfinite(hangTimeout) || hangTimeout <= 0 || hangTimeout > 1e6 ||
      onlyMutant < -1 || onlyMutant == std::numeric_limits<int64_t>::max()) {
    errs() << "import-fuzz: --time-budget must be from 0 to 1e6 s, "
              "--hang-timeout above 0 and at most 1e6 s, --mutant at least "
              "-1\n";
    return 2;
  }
  installDeathHandlers();
  if (!replay.empty())
    return runReplay();

  pipec::fuzz::Mutator mutator;
  if (!loadSeeds(mutator))
    return 2;

  if (onlyMutant >= 0 && printMutant) {
    pipec::fuzz::Mutant m = mutator.make(seed, onlyMutant);
    errs() << "import-fuzz: mutant " << onlyMutant << " of " << m.seedName
           << ": " << m.recipe << "\n";
    outs() << m.text;
    return 0;
  }

  uint64_t first = onlyMutant >= 0 ? onlyMutant : 0;
  uint64_t last = onlyMutant >= 0 ? onlyMutant + 1 : mutantCount.getValue();
  uint64_t accepted = 0, rejected = 0, unlocated = 0, failures = 0, run = 0;
  double slowest = 0;
  uint64_t slowestIndex = 0;
  Clock::time_point start = Clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  outs() << "import-fuzz: seed " << seed << ", " << mutator.numSeeds()
         << " model files, up to " << (last - first) << " mutants"
         << (timeBudget > 0 ? " or " + std::to_string(int(timeBudget)) + " s"
                            : std::string())
         << "; the mutant being imported is kept in " << crashFile << "\n";
  outs().flush();

  Watchdog watchdog(hangTimeout);
  for (uint64_t i = first; i < last; ++i) {
    if (timeBudget > 0 && elapsed() > timeBudget)
      break;
    pipec::fuzz::Mutant m = mutator.make(seed, i);
    if (!writeFile(crashFile, m.text)) {
      errs() << "import-fuzz: cannot write " << crashFile << "\n";
      return 2;
    }
    std::string fileName = "mutant-" + std::to_string(i) + ".json";
    std::string why;
    setDeathMessage("crashed", i);
    Clock::time_point t0 = Clock::now();
    watchdog.arm(i);
    Outcome o = !injectFault.empty() && i == first
                    ? (injectedFault(), Outcome::Accepted)
                    : importOne(m.text, fileName, why);
    watchdog.disarm();
    double took = std::chrono::duration<double>(Clock::now() - t0).count();
    deathMessageSet = false;
    ++run;
    if (took > slowest) {
      slowest = took;
      slowestIndex = i;
    }

    if (o == Outcome::Accepted)
      ++accepted;
    if (o == Outcome::Rejected) {
      ++rejected;
      // Every error should point into the file; count the ones that do not.
      if (StringRef(why).find(fileName) == StringRef::npos)
        ++unlocated;
    }
    if (verbose)
      outs() << "mutant " << i << " [" << m.seedName << ": " << m.recipe << "] "
             << (o == Outcome::Accepted ? "accepted" : "")
             << StringRef(why).split('\n').first << "\n";
    if (o == Outcome::Failed) {
      ++failures;
      SmallString<256> keep(crashFile.getValue());
      sys::path::replace_extension(keep,
                                   "failure-" + std::to_string(i) + ".json");
      writeFile(keep.str().str(), m.text);
      errs() << "import-fuzz: FAILED: mutant " << i << " of seed " << seed
             << " (" << m.seedName << ": " << m.recipe << "): the importer "
             << why << "\nimport-fuzz: reproducer: " << keep << "\n";
    }
    if (progressEvery && run % progressEvery == 0) {
      outs() << format("import-fuzz: %llu mutants, %.1f s\n",
                       static_cast<unsigned long long>(run), elapsed());
      outs().flush();
    }
  }
  sys::fs::remove(crashFile);

  outs() << format("import-fuzz: %llu mutants (%llu rejected with a "
                   "diagnostic, %llu accepted), 0 crashes, %llu failures, "
                   "%.1f s; slowest import %.3f s (mutant %llu)\n",
                   static_cast<unsigned long long>(run),
                   static_cast<unsigned long long>(rejected),
                   static_cast<unsigned long long>(accepted),
                   static_cast<unsigned long long>(failures), elapsed(),
                   slowest, static_cast<unsigned long long>(slowestIndex));
  if (unlocated)
    outs() << "import-fuzz: note: " << unlocated
           << " rejections did not name the file (FILE:LINE:COL)\n";
  return failures ? 1 : 0;
}
