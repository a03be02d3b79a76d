//===- RowOrder.h - the order in which a warp walks a row -----------===//
//
// The norms (Layernorm.cuh, Rmsnorm.cuh) give a row to a warp. Lane l takes
// the elements (32 j + l) V + v for j = 0, 1, ... and v = 0 .. V - 1, in that
// order, and adds them from an fp32 zero; the 32 lane sums are then combined
// by the xor butterfly (warpSum, Launch.cuh). V = rowVector(dim): 8 where
// the row is a multiple of 8 elements (a lane reads 16 bytes at a time),
// else 1 (lane l takes l, l + 32, ...). The order depends on the row's
// length only: an operand that is not 16-byte aligned is read one element
// at a time in the same order. The GPU harness replays it on the host.
//
// Plain C++, for the kernels and the harness.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_ROWORDER_H
#define PIPERT_KERNELS_CUDA_ROWORDER_H

#include <cstdint>

#include "kernels/cuda/HostDevice.h"

namespace pipert::cuda {

/// Elements a lane takes at a time in a row of `dim`.
PIPERT_HOST_DEVICE constexpr int rowVector(int64_t dim) {
  return dim % 8 == 0 ? 8 : 1;
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_ROWORDER_H
