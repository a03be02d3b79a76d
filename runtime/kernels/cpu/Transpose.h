//===- Transpose.h - A 16 x 16 float transpose for packing (AVX-512) ------===//
//
// Internal to the kernel library's .cpp files (Gemm.cpp, Attention.cpp):
// packing a panel transposed, 16 x 16 floats at a time. It moves values
// only, so it never changes a result's bits.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_TRANSPOSE_H
#define PIPERT_KERNELS_CPU_TRANSPOSE_H

#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>

namespace pipert::cpu::detail {

/// The 16 x 16 floats at x (row stride ldx) transposed into out (row
/// stride ldo): unpack pairs of rows, shuffle quads, then 128-bit lanes.
inline void transpose16(const float *x, int64_t ldx, float *out, int64_t ldo) {
  // The zero-masking forms with every lane kept: GCC 12's plain unpack and
  // shuffle intrinsics start from _mm512_undefined_ps(), which
  // -Wuninitialized reports once inlined.
  const __mmask16 kAll = 0xFFFF;
  __m512 a[16], t[16];
  for (int i = 0; i < 16; ++i)
    a[i] = _mm512_loadu_ps(x + i * ldx);
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_maskz_unpacklo_ps(kAll, a[2 * i], a[2 * i + 1]);
    t[2 * i + 1] = _mm512_maskz_unpackhi_ps(kAll, a[2 * i], a[2 * i + 1]);
  }
  // a[4 g + j]'s 128-bit lane L: column 4 L + j of rows 4 g .. 4 g + 3.
  for (int g = 0; g < 4; ++g) {
    a[4 * g] = _mm512_maskz_shuffle_ps(kAll, t[4 * g], t[4 * g + 2], 0x44);
    a[4 * g + 1] = _mm512_maskz_shuffle_ps(kAll, t[4 * g], t[4 * g + 2], 0xEE);
    a[4 * g + 2] =
        _mm512_maskz_shuffle_ps(kAll, t[4 * g + 1], t[4 * g + 3], 0x44);
    a[4 * g + 3] =
        _mm512_maskz_shuffle_ps(kAll, t[4 * g + 1], t[4 * g + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 even01 =
        _mm512_maskz_shuffle_f32x4(kAll, a[j], a[4 + j], 0x88);
    const __m512 even23 =
        _mm512_maskz_shuffle_f32x4(kAll, a[8 + j], a[12 + j], 0x88);
    const __m512 odd01 = _mm512_maskz_shuffle_f32x4(kAll, a[j], a[4 + j], 0xDD);
    const __m512 odd23 =
        _mm512_maskz_shuffle_f32x4(kAll, a[8 + j], a[12 + j], 0xDD);
    _mm512_storeu_ps(out + j * ldo,
                     _mm512_maskz_shuffle_f32x4(kAll, even01, even23, 0x88));
    _mm512_storeu_ps(out + (8 + j) * ldo,
                     _mm512_maskz_shuffle_f32x4(kAll, even01, even23, 0xDD));
    _mm512_storeu_ps(out + (4 + j) * ldo,
                     _mm512_maskz_shuffle_f32x4(kAll, odd01, odd23, 0x88));
    _mm512_storeu_ps(out + (12 + j) * ldo,
                     _mm512_maskz_shuffle_f32x4(kAll, odd01, odd23, 0xDD));
  }
}

} // namespace pipert::cpu::detail

#endif // defined(__AVX512F__)

#endif // PIPERT_KERNELS_CPU_TRANSPOSE_H
