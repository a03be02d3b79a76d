//===- StopSignal.h - SIGINT and SIGTERM end a run cleanly ------*- C++ -*-===//
//
// A run that receives SIGINT or SIGTERM stops at the next instruction
// boundary (pipert::Executor polls stopSignal() between instructions and in
// its waits; the reference executor between micro-batches), completes its
// metrics and trace, says which signal stopped it and exits with 128 + the
// signal number (130, 143), as a shell reports a killed command. A second
// signal exits at once with the same code.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_STOPSIGNAL_H
#define PIPERT_STOPSIGNAL_H

namespace pipert {

/// Installs the handlers of SIGINT and SIGTERM; `tool` begins the message
/// the second signal prints ("pipec-run").
void installStopSignals(const char *tool);

/// The signal that asked the run to stop, or 0.
int stopSignal();

/// "SIGINT", "SIGTERM" or "signal N".
const char *signalName(int signal);

/// For tests: as if `signal` had arrived (0 clears).
void raiseStopForTesting(int signal);

} // namespace pipert

#endif // PIPERT_STOPSIGNAL_H
