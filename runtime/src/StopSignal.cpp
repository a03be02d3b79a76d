//===- StopSignal.cpp - SIGINT and SIGTERM end a run cleanly --------------===//

#include "pipert/StopSignal.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <unistd.h>

namespace pipert {

namespace {
std::atomic<int> received{0};
const char *toolName = "pipec";

void onSignal(int sig) {
  int expected = 0;
  if (received.compare_exchange_strong(expected, sig))
    return; // the run stops at its next instruction boundary
  // A second signal: only async-signal-safe calls from here.
  const char *parts[] = {toolName, ": ", signalName(sig),
                         " again: exiting at once\n"};
  for (const char *p : parts)
    (void)!::write(2, p, std::strlen(p));
  ::_exit(128 + sig);
}
} // namespace

void installStopSignals(const char *tool) {
  toolName = tool;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: a blocking read or sleep returns and the loop polls.
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int stopSignal() { return received.load(std::memory_order_relaxed); }

const char *signalName(int sig) {
  switch (sig) {
  case SIGINT:
    return "SIGINT";
  case SIGTERM:
    return "SIGTERM";
  case SIGHUP:
    return "SIGHUP";
  default:
    return "a signal";
  }
}

void raiseStopForTesting(int sig) { received.store(sig); }

} // namespace pipert
