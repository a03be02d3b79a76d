//===- Status.h - Error result of the CPU kernels that can fail -----------===//
//
// Only kernels that read data they cannot trust (token ids, targets) can fail;
// everything else has shapes checked by the compiler and returns void. A
// failure carries a message naming the kernel and the offending element, so the
// runtime can report it with its rank and instruction instead of crashing.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_STATUS_H
#define PIPERT_KERNELS_CPU_STATUS_H

#include <string>
#include <utility>

namespace pipert::cpu {

/// The result of a kernel that validates its inputs.
class [[nodiscard]] Status {
public:
  static Status success() { return Status(); }
  static Status failure(std::string message) {
    Status s;
    s.failed = true;
    s.text = std::move(message);
    return s;
  }
  bool ok() const { return !failed; }
  /// What went wrong, e.g. "embedding: ids[17] = 300 is outside [0, 256)".
  const std::string &message() const { return text; }

private:
  bool failed = false;
  std::string text;
};

/// The failure `st` with `where` (an op's location) in front. Cold and out
/// of line: a compiled chunk checks every one of its many kernel calls, and
/// the string work of the rare failure stays out of those call sites.
[[gnu::cold, gnu::noinline]] inline Status failureAt(const char *where,
                                                     const Status &st) {
  return Status::failure(std::string(where) + ": " + st.message());
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_STATUS_H
