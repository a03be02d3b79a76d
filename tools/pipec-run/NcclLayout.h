//===- NcclLayout.h - pipec-run OUT/ --nccl-layout ---------------*- C++ -*-===//
//
// What a job of this plan over NCCL will create, known before it starts:
// the communicators (pipert/CommLayout.h), the ncclCommSplit rounds that
// make them, the most any one rank joins, and the proof that both sides
// of every communicator issue matching operations in one order. Reads the
// plan folder's manifest and stream files only: no GPU, no NCCL.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_TOOLS_PIPEC_RUN_NCCLLAYOUT_H
#define PIPEC_TOOLS_PIPEC_RUN_NCCLLAYOUT_H

#include <string>

namespace pipecrun {

/// Prints the layout of the plan in `dir`; the exit code (1 with the
/// reason on stderr when the streams cannot run on NCCL).
int printNcclLayout(const std::string &dir);

} // namespace pipecrun

#endif // PIPEC_TOOLS_PIPEC_RUN_NCCLLAYOUT_H
