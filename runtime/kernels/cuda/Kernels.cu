//===- Kernels.cu - the cuda kernel library, one translation unit ------------===//
//
// llm.c's layout: one header per kernel family (kernels, then launchers),
// all compiled here, so each kernel is built once for every architecture
// (sm_90a and sm_80) of libpipert_kernels_cuda.
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/Kernels.h"

#include "kernels/cuda/Activation.cuh"
#include "kernels/cuda/AdamW.cuh"
#include "kernels/cuda/Attention.cuh"
#include "kernels/cuda/ColumnSums.cuh"
#include "kernels/cuda/CrossEntropy.cuh"
#include "kernels/cuda/Elementwise.cuh"
#include "kernels/cuda/Embedding.cuh"
#include "kernels/cuda/FlashAttention.cuh"
#include "kernels/cuda/Layernorm.cuh"
#include "kernels/cuda/Optimizer.cuh"
#include "kernels/cuda/Rmsnorm.cuh"
#include "kernels/cuda/Rope.cuh"
#include "kernels/cuda/Softmax.cuh"
