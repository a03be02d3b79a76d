//===- Bf16.h - bf16 storage: round to nearest even from fp32 ----------------===//
//
// The cuda target stores activations and the working copies of weights in
// bf16 (docs/CUDA.md): fp32 values rounded to nearest, ties to even, once,
// at each storage point. These two functions are that rounding, bit for
// bit what __float2bfloat16_rn does on the GPU, on the host and on the
// device alike, so that the reference executor's bf16 emulation and the
// GPU kernels store the same bits. A NaN stays a (quiet) NaN.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_BF16_H
#define PIPERT_KERNELS_CUDA_BF16_H

#include <cstdint>
#include <cstring>

#include "kernels/cuda/HostDevice.h"

namespace pipert::bf16 {

/// The bf16 bits of x rounded to nearest, ties to even.
PIPERT_HOST_DEVICE inline uint16_t fromFloat(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) // NaN: keep the sign, quiet it
    return uint16_t((bits >> 16) | 0x0040u);
  // Add half an ulp of bf16, plus one when the kept part is odd (ties to
  // even), then truncate; an overflow carries into the exponent, and the
  // largest finite floats round to infinity as they must.
  uint32_t odd = (bits >> 16) & 1u;
  bits += 0x7fffu + odd;
  return uint16_t(bits >> 16);
}

/// The fp32 value of bf16 bits (exact).
PIPERT_HOST_DEVICE inline float toFloat(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

} // namespace pipert::bf16

#endif // PIPERT_KERNELS_CUDA_BF16_H
