//===- Gemm.h - pipec's own float GEMM, bits fixed by the shape alone -*- C++ -*-===//
//
// C[m, n] = op(A)[m, k] op(B)[k, n] + beta C, row-major, op = identity or
// transpose: the GEMM the matmul kernels need, without OpenBLAS, whose
// results change with its thread count (docs/NUMERICS.md).
//
// The order of every operation is a function of (m, n, k) only:
//  - k is cut into fixed blocks of kGemmKc; within a block, each element's
//    products are accumulated from zero in ascending k by fused
//    multiply-adds (one rounding each): s = fma(a_ik, b_kj, s);
//  - the blocks are added to C in ascending order: the first block gives
//    C = s when beta is 0, else C = beta C + s (beta C rounded first; beta
//    1 leaves C as it is), each later block C = C + s;
//  - C is cut into tiles of at most kGemmMc x kGemmNc, each computed whole
//    by one thread; the tiles (as many as the team can share evenly) only
//    say who computes an element, never how.
// So the bits do not depend on the thread count, on which thread takes a
// tile, or on whether the AVX-512 or the portable micro-kernel ran: both
// perform exactly these operations (std::fma rounds once, like the vector
// FMA), which test/unit/kernels/GemmTest.cpp checks against a plain
// reference loop of the same order.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_GEMM_H
#define PIPERT_KERNELS_CPU_GEMM_H

#include <cstdint>

namespace pipert::cpu {

/// The blocking (rows and columns of a micro-tile; k per block; rows and
/// columns of a thread's tile). kGemmKc fixes the summation order.
constexpr int64_t kGemmMr = 6, kGemmNr = 64, kGemmKc = 256;
constexpr int64_t kGemmMc = 8 * kGemmMr, kGemmNc = 8 * kGemmNr;

/// C = op(A) op(B) + beta C with the calling thread's OpenMP threads,
/// through the AVX-512 micro-kernel where the library was compiled for it.
/// `lda`, `ldb`, `ldc` are row strides in elements. With beta 0, C is not
/// read (it may hold anything, NaN included).
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          const float *a, int64_t lda, const float *b, int64_t ldb,
          float beta, float *c, int64_t ldc);

/// The same with the portable micro-kernel (same bits; for tests).
void gemmPortable(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                  const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *c, int64_t ldc);

/// Whether gemm() runs the AVX-512 micro-kernel.
bool gemmUsesAvx512();

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_GEMM_H
