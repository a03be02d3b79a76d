//===- FlashSupport.h - which attention shapes the tiled kernels take -*- C++ -*-===//
//
// One rule, read by --nn-lower-to-kernels{target=cuda} (which chooses
// flash_attention_* at compile time, never at run time) and by the cuda
// library's launchers (FlashAttention.cuh): the head sizes the tiled
// tensor-core kernels are built for. Plain C++, no CUDA headers.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_FLASHSUPPORT_H
#define PIPERT_KERNELS_CUDA_FLASHSUPPORT_H

#include <cstdint>

namespace pipert::cuda {

/// GPT-2's 64 and Llama's 128; other head sizes keep Attention.cuh's
/// warp-per-row kernels.
inline bool flashAttentionSupports(int64_t headDim) {
  return headDim == 64 || headDim == 128;
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_FLASHSUPPORT_H
