//===- pipec-run.cpp - runs a compiled plan -------------------------------===//
//
// `pipec-run OUT/ --data FILE --steps N [--log-dir DIR] [--init F]
// [--save F] [--shadow] [--cores N] [--quiet] [--sample N [--prompt TEXT]
// [--sample-seed N] [--temperature T]]`: checks the plan directory and the
// arguments, then hands over to OUT/pipec-plan (the executable `pipec
// compile` built for this plan), which validates the data and runs every
// rank as a thread, with progress lines and DIR/metrics.jsonl, then prints
// text sampled from the trained model when asked.
//
//===----------------------------------------------------------------------===//

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;

static int fail(const std::string &message) {
  std::fprintf(stderr, "pipec-run: error: %s\n", message.c_str());
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr,
                 "usage: pipec-run OUT/ --data FILE --steps N [--log-dir DIR] "
                 "[--init FILE.safetensors] [--save FILE.safetensors] "
                 "[--shadow] [--cores N] [--timeout-ms MS] [--quiet] "
                 "[--sample N [--prompt TEXT] [--sample-seed N] "
                 "[--temperature T]]\n");
    return 2;
  }
  std::string dir = argv[1];
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return fail(dir + ": not a directory (the -o of pipec compile)");
  if (!fs::is_regular_file(dir + "/manifest.json", ec))
    return fail(dir + ": no manifest.json (run pipec compile -o " + dir + ")");
  std::string exe = dir + "/pipec-plan";
  if (access(exe.c_str(), X_OK) != 0)
    return fail(exe + ": missing or not executable (pipec compile "
                      "--emit-only does not build it)");
  std::vector<std::string> args = {exe, "--plan", dir};
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--data" && i + 1 < argc &&
        !fs::is_regular_file(argv[i + 1], ec))
      return fail(std::string("--data ") + argv[i + 1] +
                  ": no such file");
    if (a == "--init" && i + 1 < argc &&
        !fs::is_regular_file(argv[i + 1], ec))
      return fail(std::string("--init ") + argv[i + 1] + ": no such file");
    args.push_back(a);
  }
  std::vector<char *> cargs;
  for (std::string &a : args)
    cargs.push_back(a.data());
  cargs.push_back(nullptr);
  execv(exe.c_str(), cargs.data());
  return fail(exe + ": cannot run: " + std::strerror(errno));
}
