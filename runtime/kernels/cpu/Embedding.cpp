//===- Embedding.cpp - Id checks of the embedding kernels -----------------===//
//
// The out-of-line (non-template) part of Embedding.h; the kernels are in the
// header.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/Embedding.h"

#include <string>

namespace pipert::cpu::detail {

Status checkIds(const char *kernel, const int32_t *ids, int64_t tokens,
                int64_t vocab) {
  for (int64_t n = 0; n < tokens; ++n)
    if (ids[n] < 0 || ids[n] >= vocab)
      return Status::failure(std::string(kernel) + ": ids[" +
                             std::to_string(n) + "] = " +
                             std::to_string(ids[n]) + " is outside [0, " +
                             std::to_string(vocab) + ")");
  return Status::success();
}

} // namespace pipert::cpu::detail
