//===- pipec-run.cpp - runs a compiled plan -------------------------------===//
//
// `pipec-run OUT/ --data FILE --steps N [--log-dir DIR] [--init F]
// [--save F] [--save-state F] [--resume F|DIR] [--checkpoint-dir DIR
// [--checkpoint-every N] [--keep K]] [--shadow] [--cores N] [--quiet]
// [--transport local|cuda-local|mpi|nccl]
// [--sample N [--prompt TEXT] [--sample-seed N] [--temperature T]]`: checks
// the plan directory and the arguments, then hands over to OUT/pipec-plan
// (the executable `pipec compile` built for this plan), which validates the
// data and runs every rank as a thread, with progress lines and
// DIR/metrics.jsonl, then prints text sampled from the trained model when
// asked. With --transport mpi it starts `mpirun -np RANKS OUT/pipec-plan`
// instead: one process per rank; with --transport nccl (a cuda plan) it
// starts the processes itself, one per rank on this machine
// (ProcessGroup.h).
//
//===----------------------------------------------------------------------===//

#include "runtime/runner/Help.h"
#include "runtime/runner/Runner.h"
#include "tools/pipec-run/NcclLayout.h"
#include "tools/pipec-run/ProcessGroup.h"
#include "tools/pipec-run/VisibleGpus.h"
#include "tools/pipec-run/WholeExecutable.h"

#include "pipert/InputFile.h"
#include "pipert/StopSignal.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;

static int fail(const std::string &message) {
  std::fprintf(stderr, "pipec-run: error: %s\n", message.c_str());
  return 1;
}

/// Runs mpirun and waits for it. mpirun forwards SIGINT and SIGTERM to the
/// ranks (which stop and report, docs/RUNTIME.md) but exits 1 itself, so
/// the signal's exit code (128 + N) is given here, as a local run gives it.
/// Each mpirun gets a session directory of its own (unless the user chose
/// one, or a batch system may place ranks on other machines, where this
/// machine's directory need not exist): Open MPI 4 keeps every job of a
/// user under one directory in /tmp, and one job's clean-up can remove it
/// while another job creates its own inside ("orte_session_dir failed":
/// two runs at once, as lit runs them).
static int runMpirun(const std::string &program, std::vector<char *> &args) {
  pipert::installStopSignals("pipec-run");
  std::string session;
  const bool batch = std::getenv("SLURM_JOB_ID") || std::getenv("PBS_JOBID") ||
                     std::getenv("LSB_JOBID");
  if (!batch && !std::getenv("OMPI_MCA_orte_tmpdir_base")) {
    const char *tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp && *tmp ? tmp : "/tmp") + "/pipec-mpi-XXXXXX";
    if (mkdtemp(pattern.data())) {
      session = pattern;
      setenv("OMPI_MCA_orte_tmpdir_base", session.c_str(), 1); // for mpirun
    }
  }
  struct RemoveAfter {
    const std::string &dir;
    ~RemoveAfter() {
      std::error_code ec;
      if (!dir.empty())
        fs::remove_all(dir, ec);
    }
  } removeAfter{session};
  pid_t child = fork();
  if (child < 0)
    return fail("cannot start " + program + ": " + std::strerror(errno));
  if (child == 0) {
    execv(program.c_str(), args.data());
    std::fprintf(stderr, "pipec-run: error: %s: cannot run: %s\n",
                 program.c_str(), std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR)
      return fail("waiting for " + program + ": " + std::strerror(errno));
    // A terminal's Ctrl-C reaches mpirun too; kill(1) reaches only us.
    if (int sig = pipert::stopSignal())
      kill(child, sig);
  }
  if (int sig = pipert::stopSignal())
    return 128 + sig;
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static const char kUsage[] =
    "usage: pipec-run OUT/ --data FILE --steps N [--log-dir DIR] "
    "[--init FILE.safetensors] [--save FILE.safetensors] [--save-state FILE] "
    "[--resume FILE|DIR] [--checkpoint-dir DIR [--checkpoint-every N] "
    "[--keep K]] [--shadow] [--cores N] [--timeout-ms MS] [--quiet] "
    "[--transport local|cuda-local|mpi|nccl] [--sample N [--prompt TEXT] "
    "[--sample-seed N] [--temperature T]] (--help explains each)\n";

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(pipecrun::kRunHelp, stdout);
      return 0;
    }
  if (argc < 2 || argv[1][0] == '-') {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string dir = argv[1];
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return fail(dir + ": not a directory (the -o of pipec compile)");
  if (!fs::is_regular_file(dir + "/manifest.json", ec))
    return fail(dir + ": no manifest.json (run pipec compile -o " + dir + ")");
  // --nccl-layout: the plan's NCCL communicators, from its files alone.
  for (int i = 2; i < argc; ++i)
    if (std::strcmp(argv[i], "--nccl-layout") == 0) {
      if (argc != 3)
        return fail("--nccl-layout takes the plan folder alone");
      return pipecrun::printNcclLayout(dir);
    }
  std::string exe = dir + "/pipec-plan";
  if (access(exe.c_str(), X_OK) != 0)
    return fail(exe + ": missing or not executable (pipec compile "
                      "--emit-only does not build it)");
  if (std::string e = pipecrun::checkWholeExecutable(exe); !e.empty())
    return fail(e);
  std::vector<std::string> args = {exe, "--plan", dir};
  std::string transport = "local";
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--transport" && i + 1 < argc)
      transport = argv[i + 1];
    // Checked here too, so that mpirun is not started for a bad path.
    // (--resume also takes a checkpoint directory, --init a Hugging Face
    // checkpoint's.)
    if ((a == "--data" || a == "--init" || a == "--resume") && i + 1 < argc &&
        !((a == "--resume" || a == "--init") &&
          fs::is_directory(argv[i + 1], ec)))
      if (pipert::Status s = pipert::checkInputFile(
              argv[i + 1], a == "--data"   ? "data file"
                           : a == "--init" ? "--init file"
                                           : "--resume file");
          !s.ok())
        return fail(a + " " + s.message());
    args.push_back(a);
  }
  // The runner's own argument checks, made once here before any process
  // starts (under mpirun each process would print the same refusal).
  {
    std::vector<char *> probe;
    for (std::string &s : args)
      probe.push_back(s.data());
    pipecrun::Args parsed;
    std::string error;
    if (!pipecrun::parseArgs(int(probe.size()), probe.data(), parsed, error))
      return fail(error);
  }
  std::string program = exe;
  // One process per rank (mpi, nccl): as many as the plan's ranks.
  auto ranksOfPlan = [&](int64_t &ranks) {
    try {
      std::ifstream in(dir + "/manifest.json");
      ranks = nlohmann::json::parse(in).at("ranks").get<int64_t>();
    } catch (const std::exception &e) {
      fail(dir + "/manifest.json: cannot read \"ranks\": " + e.what());
      return false;
    }
    if (ranks < 1 || ranks > 4096) {
      fail(dir + "/manifest.json: \"ranks\" is " + std::to_string(ranks) +
           " (one machine runs 1 to 4096 processes)");
      return false;
    }
    return true;
  };
  if (transport == "nccl") {
    int64_t ranks = 0;
    if (!ranksOfPlan(ranks))
      return 1;
    // NCCL needs a GPU per rank; it would say so only after every process
    // started and met.
    std::string from;
    if (int gpus = pipecrun::visibleGpus(from); gpus >= 0 && ranks > gpus)
      return fail("--transport nccl: the plan has " + std::to_string(ranks) +
                  " ranks but this machine shows " + std::to_string(gpus) +
                  " GPU" + (gpus == 1 ? "" : "s") + " (" + from +
                  "); NCCL needs a GPU per rank: run it across machines "
                  "(srun or mpirun, docs/NCCL.md), or on this one with "
                  "--transport cuda-local");
    std::string error;
    int code = pipecrun::runProcessGroup(exe, args, int32_t(ranks), error);
    return error.empty() ? code : fail(error);
  }
  if (transport == "mpi") {
#ifdef PIPEC_MPIEXEC
    int64_t ranks = 0;
    if (!ranksOfPlan(ranks))
      return 1;
    // --oversubscribe: more ranks than cores is allowed (slow, but the
    // waits are passive); --bind-to none: ranks float like the local
    // transport's threads; as root, Open MPI asks for --allow-run-as-root.
    std::vector<std::string> launch = {PIPEC_MPIEXEC, "-np",
                                       std::to_string(ranks),
                                       "--oversubscribe", "--bind-to", "none"};
    if (geteuid() == 0)
      launch.push_back("--allow-run-as-root");
    args.insert(args.begin(), launch.begin(), launch.end());
    program = PIPEC_MPIEXEC;
#else
    return fail("--transport mpi: pipec was built without MPI (install "
                "openmpi-bin and libopenmpi-dev, then reconfigure)");
#endif
  }
  std::vector<char *> cargs;
  for (std::string &a : args)
    cargs.push_back(a.data());
  cargs.push_back(nullptr);
  if (program != exe)
    return runMpirun(program, cargs);
  execv(program.c_str(), cargs.data());
  return fail(program + ": cannot run: " + std::strerror(errno));
}
