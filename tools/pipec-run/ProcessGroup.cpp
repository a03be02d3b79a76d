//===- ProcessGroup.cpp - start, watch and end a job's processes ----------===//

#include "tools/pipec-run/ProcessGroup.h"

#include "pipert/StopSignal.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace pipecrun {
namespace {

/// A port the kernel just gave and released; rank 0 binds it at once.
int freeLocalPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

int exitCode(int status) {
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

} // namespace

int runProcessGroup(const std::string &program,
                    const std::vector<std::string> &args, int32_t ranks,
                    std::string &error) {
  int port = freeLocalPort();
  if (port < 0) {
    error = std::string("no free local port for the rendezvous: ") +
            std::strerror(errno);
    return 1;
  }
  pipert::installStopSignals("pipec-run");
  const std::string job = std::to_string(getpid()) + "-" +
                          std::to_string(std::chrono::system_clock::now()
                                             .time_since_epoch()
                                             .count());
  std::vector<pid_t> children;
  auto endAll = [&](int sig) {
    for (pid_t c : children)
      if (c > 0)
        kill(c, sig);
  };
  for (int32_t r = 0; r < ranks; ++r) {
    pid_t child = fork();
    if (child < 0) {
      error = "cannot start rank " + std::to_string(r) + ": " +
              std::strerror(errno);
      endAll(SIGKILL);
      for (pid_t c : children)
        waitpid(c, nullptr, 0);
      return 1;
    }
    if (child == 0) {
      // A process group of its own: a terminal's Ctrl-C reaches pipec-run
      // alone, which passes it on once (a second signal would make a rank
      // exit at once instead of at a step boundary). And if pipec-run
      // dies, so does the rank.
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() == 1)
        _exit(1);
      setenv("PIPEC_RANK", std::to_string(r).c_str(), 1);
      setenv("PIPEC_WORLD_SIZE", std::to_string(ranks).c_str(), 1);
      setenv("PIPEC_LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("PIPEC_JOB_ID", job.c_str(), 1);
      setenv("PIPEC_RENDEZVOUS",
             ("tcp:127.0.0.1:" + std::to_string(port)).c_str(), 1);
      std::vector<char *> argv;
      for (const std::string &a : args)
        argv.push_back(const_cast<char *>(a.c_str()));
      argv.push_back(nullptr);
      execv(program.c_str(), argv.data());
      std::fprintf(stderr, "pipec-run: error: %s: cannot run: %s\n",
                   program.c_str(), std::strerror(errno));
      _exit(127);
    }
    children.push_back(child);
  }
  int first = 0, running = ranks;
  bool ending = false, stopping = false;
  auto endedAt = std::chrono::steady_clock::now();
  while (running > 0) {
    int status = 0;
    pid_t done = waitpid(-1, &status, WNOHANG);
    if (done < 0 && errno != EINTR)
      break;
    if (done > 0) {
      for (pid_t &c : children)
        if (c == done) {
          c = -1;
          --running;
          int code = exitCode(status);
          if (code != 0 && first == 0)
            first = code;
          if (code != 0 && !ending && !stopping) {
            // One rank failed: the others may wait on it forever. (After
            // a stop, ranks end with 128 + the signal of their own accord.)
            ending = true;
            endedAt = std::chrono::steady_clock::now();
            endAll(SIGTERM);
          }
        }
      continue;
    }
    if (int sig = pipert::stopSignal(); sig && !stopping && !ending) {
      // Every rank stops at a step boundary (a checkpoint there, when
      // asked) and rank 0 reports; however long that takes.
      stopping = true;
      endAll(sig);
    }
    // After a failure, the others get 10 s to say where they stood.
    if (ending &&
        std::chrono::steady_clock::now() - endedAt > std::chrono::seconds(10))
      endAll(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (int sig = pipert::stopSignal())
    return 128 + sig;
  return first;
}

} // namespace pipecrun
