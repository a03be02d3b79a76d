//===- CrossEntropy.cpp - Target checks of the cross-entropy kernels ------===//
//
// The out-of-line (non-template) part of CrossEntropy.h; the kernels are in
// the header.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/CrossEntropy.h"

#include <string>

namespace pipert::cpu::detail {

Status checkTargets(const char *kernel, const int32_t *targets, int64_t rows,
                    int64_t vocab) {
  for (int64_t r = 0; r < rows; ++r)
    if (targets[r] < 0 || targets[r] >= vocab)
      return Status::failure(std::string(kernel) + ": targets[" +
                             std::to_string(r) + "] = " +
                             std::to_string(targets[r]) + " is outside [0, " +
                             std::to_string(vocab) + ")");
  return Status::success();
}

} // namespace pipert::cpu::detail
