//===- Status.h - errors of the runtime, with rank and instruction -*- C++ -*-===//
//
// The runtime never exits or throws on bad input or a failed run: every
// entry point returns a Status. A failure during execution names the rank and
// the stream index of the instruction that failed, so a hang turned into an
// error, a mismatched message or a failed kernel can be traced to its source.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_STATUS_H
#define PIPERT_STATUS_H

#include <cstdint>
#include <string>
#include <utility>

namespace pipert {

/// Success, or a message with the rank and instruction it concerns.
class [[nodiscard]] Status {
public:
  static Status success() { return Status(); }
  /// A failure; rank and instr are -1 where they do not apply.
  static Status failure(std::string message, int32_t rank = -1,
                        int64_t instr = -1) {
    Status s;
    s.failed = true;
    s.text = std::move(message);
    s.rankId = rank;
    s.instrId = instr;
    return s;
  }
  bool ok() const { return !failed; }
  /// The whole message, e.g. "rank 1 #14 wait(...): timed out after 200 ms".
  const std::string &message() const { return text; }
  /// The rank that failed, or -1.
  int32_t rank() const { return rankId; }
  /// The stream index of the instruction that failed, or -1.
  int64_t instr() const { return instrId; }

private:
  bool failed = false;
  std::string text;
  int32_t rankId = -1;
  int64_t instrId = -1;
};

} // namespace pipert

#endif // PIPERT_STATUS_H
