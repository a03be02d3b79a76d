//===- Gemm.cpp - pipec's own float GEMM: packing, micro-kernels, tiles ---===//
//
// The order of operations is Gemm.h's; this file only chooses where they
// run. The rank's team cuts C into one rectangle per thread (regionOf);
// within its own, for each panel of kGemmNc columns and each k block in
// order, a thread packs op(B)'s block into slivers of kGemmNr columns, then
// for each row tile of up to kGemmMc rows packs op(A)'s block into slivers
// of kGemmMr rows, and the micro-kernel accumulates one kGemmMr x kGemmNr
// block of sums in registers and adds it to C. Slivers are zero past the
// matrix. Packing copies where op(X)'s sliver values lie contiguous and
// transposes 16 x 16 blocks (AVX-512) where they do not; it moves values
// only. Between micro-kernel calls a thread prefetches the op(A) block it
// packs next and, before each call, the C tile the call writes: a GEMM
// whose operands come cold from memory (a model's step, unlike a
// benchmark's loop) then runs as fast as a warm one.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/Gemm.h"

#include "kernels/cpu/Transpose.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace pipert::cpu {

namespace {

/// A row-major operand as op(X): element (r, c) of op(X).
struct Operand {
  const float *p;
  int64_t ld;
  bool trans;
  float at(int64_t r, int64_t c) const {
    return trans ? p[c * ld + r] : p[r * ld + c];
  }
};

/// How a k block's sums meet C: C = s (the first block, beta 0),
/// C = C + s (later blocks, or beta 1), C = beta C + s (the first, beta
/// otherwise).
enum class Update { Set, Add, ScaleAdd };

/// Rows [r0, r0 + rows) and columns [k0, k0 + kc) of x, as slivers of W
/// rows: sliver s holds, per column k, its W values (zero past `rows`).
/// op(A)'s slivers are its rows (W = kGemmMr); op(B)'s are its columns,
/// the rows of its transpose (W = kGemmNr).
template <int64_t W>
void packSlivers(const Operand &x, int64_t r0, int64_t rows, int64_t k0,
                 int64_t kc, float *out) {
  for (int64_t s = 0; s * W < rows; ++s) {
    const int64_t valid = std::min(W, rows - s * W);
    float *dst = out + s * kc * W;
    if (valid < W)
      std::fill(dst, dst + kc * W, 0.0f);
    if (x.trans) {
      // A sliver's W values of one k are contiguous in x: copies.
      const float *src = x.p + k0 * x.ld + r0 + s * W;
      if (valid == W) {
        // A whole sliver: W a compile-time count (no call per k).
        for (int64_t kk = 0; kk < kc; ++kk)
#pragma GCC unroll 64
          for (int64_t i = 0; i < W; ++i)
            dst[kk * W + i] = src[kk * x.ld + i];
      } else {
        for (int64_t kk = 0; kk < kc; ++kk)
          std::copy(src + kk * x.ld, src + kk * x.ld + valid, dst + kk * W);
      }
    } else {
      // Each of the sliver's rows is contiguous along k: a transpose, one
      // row at a time (reads stream, writes stay in the sliver).
      const float *src = x.p + (r0 + s * W) * x.ld + k0;
      int64_t r = 0;
#if defined(__AVX512F__)
      // 16 x 16 blocks, then the rest of the rows and of k one by one.
      const int64_t k16 = kc / 16 * 16;
      for (; r + 16 <= valid; r += 16)
        for (int64_t kk = 0; kk < k16; kk += 16)
          detail::transpose16(src + r * x.ld + kk, x.ld, dst + kk * W + r, W);
      for (int64_t rr = 0; rr < r; ++rr)
        for (int64_t kk = k16; kk < kc; ++kk)
          dst[kk * W + rr] = src[rr * x.ld + kk];
#endif
      for (; r < valid; ++r)
        for (int64_t kk = 0; kk < kc; ++kk)
          dst[kk * W + r] = src[r * x.ld + kk];
    }
  }
}

/// The cache lines op(A)'s packing reads for rows [r0, r0 + rows) and k
/// [k0, k0 + kc): per row its kc values (A as stored), or per k its rows
/// (A transposed), 16 floats a line. Fetched a few at a time between the
/// micro-kernel calls of the block before, they are in cache when that
/// packing runs: read cold, op(A) cost gpt-512's GEMMs up to 9% (the
/// packing waits on memory while the FMA units idle).
struct BlockLines {
  const float *base = nullptr;
  int64_t stride = 0, outer = 0, perOuter = 0;

  BlockLines() = default;
  BlockLines(const Operand &x, int64_t r0, int64_t rows, int64_t k0,
             int64_t kc)
      : base(x.trans ? x.p + k0 * x.ld + r0 : x.p + r0 * x.ld + k0),
        stride(x.ld), outer(x.trans ? kc : rows),
        perOuter(((x.trans ? rows : kc) + 15) / 16) {}
  int64_t count() const { return outer * perOuter; }
  const float *at(int64_t i) const {
    return base + i / perOuter * stride + i % perOuter * 16;
  }
};

/// C's element after a block: the update of Gemm.h's order.
inline float updated(float c, float s, Update u, float beta) {
  switch (u) {
  case Update::Set:
    return s;
  case Update::Add:
    return c + s;
  case Update::ScaleAdd:
    return beta * c + s;
  }
  return s;
}

/// The portable micro-kernel: one block of sums by scalar FMAs.
void microPortable(int64_t kc, const float *a, const float *b, float *c,
                   int64_t ldc, int64_t rows, int64_t cols, Update u,
                   float beta) {
  float acc[kGemmMr][kGemmNr] = {};
  for (int64_t kk = 0; kk < kc; ++kk)
    for (int64_t r = 0; r < kGemmMr; ++r)
      for (int64_t j = 0; j < kGemmNr; ++j)
        acc[r][j] =
            std::fma(a[kk * kGemmMr + r], b[kk * kGemmNr + j], acc[r][j]);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j)
      c[r * ldc + j] = updated(c[r * ldc + j], acc[r][j], u, beta);
}

#if defined(__AVX512F__)
/// The AVX-512 micro-kernel: kGemmMr x 64 sums in 4 kGemmMr registers
/// (6 x 64 in 24: each k step's 4 loads of B and 6 broadcasts of A feed 24
/// multiply-adds, so the load ports keep up with the FMA units), the same
/// FMAs.
void microAvx512(int64_t kc, const float *a, const float *b, float *c,
                 int64_t ldc, int64_t rows, int64_t cols, Update u,
                 float beta) {
  static_assert(kGemmNr == 64 && kGemmMr <= 6, "the kernel's registers");
  __m512 acc[4 * kGemmMr];
#pragma GCC unroll 24
  for (int i = 0; i < 4 * int(kGemmMr); ++i)
    acc[i] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < kc; ++kk) {
    __m512 bv[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v)
      bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 6
    for (int r = 0; r < int(kGemmMr); ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v)
        acc[4 * r + v] = _mm512_fmadd_ps(ar, bv[v], acc[4 * r + v]);
    }
    a += kGemmMr;
    b += kGemmNr;
  }
  __mmask16 m[4];
  for (int v = 0; v < 4; ++v) {
    const int64_t valid = std::clamp<int64_t>(cols - 16 * v, 0, 16);
    m[v] = __mmask16((1u << valid) - 1);
  }
  const __m512 vbeta = _mm512_set1_ps(beta);
  for (int64_t r = 0; r < rows; ++r) {
    float *row = c + r * ldc;
    for (int v = 0; v < 4; ++v) {
      __m512 s = acc[4 * r + v];
      if (u != Update::Set) {
        __m512 cv = _mm512_maskz_loadu_ps(m[v], row + 16 * v);
        if (u == Update::ScaleAdd)
          cv = _mm512_mul_ps(vbeta, cv);
        s = _mm512_add_ps(cv, s);
      }
      _mm512_mask_storeu_ps(row + 16 * v, m[v], s);
    }
  }
}
#endif

using MicroKernel = void (*)(int64_t, const float *, const float *, float *,
                             int64_t, int64_t, int64_t, Update, float);

/// A packing buffer of `floats` floats, 64-byte aligned, made on its
/// thread's first GEMM and kept.
struct PackBuffer {
  struct Free {
    void operator()(float *p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data;
  explicit PackBuffer(int64_t floats)
      : data(static_cast<float *>(
            std::aligned_alloc(64, sizeof(float) * size_t(floats)))) {}
};

/// Products below this many multiply-adds run on the calling thread alone.
constexpr double kParallelFlops = 1 << 18;

/// The rows [r0, r1) and columns [c0, c1) of C one thread computes.
struct Region {
  int64_t r0, r1, c0, c1;
};

/// Thread `tid`'s rectangle when a team of `team` cuts C [m, n] into a
/// grid of rows x cols = team rectangles on micro-tile boundaries. Rows
/// first (one column: gpt-tiny's square GEMMs measured fastest so); a grid
/// of more columns is taken only when it cuts the largest rectangle's
/// multiply-adds plus its packing (a packed value weighs kPackWeight
/// multiply-adds: a load and a store, where a vector FMA does 16) by a
/// tenth, as for a weight gradient of few rows (64 x 256 x 256 on 2
/// threads: 1.51x one thread by rows, 1.56x by columns).
/// Which thread computes an element never changes its operations (Gemm.h).

Region regionOf(int64_t m, int64_t n, int64_t k, int64_t team, int64_t tid) {
  constexpr double kPackWeight = 16;
  const int64_t rowSlivers = (m + kGemmMr - 1) / kGemmMr;
  const int64_t colSlivers = (n + kGemmNr - 1) / kGemmNr;
  int64_t bestCols = 1;
  double bestCost = -1;
  for (int64_t cols = 1; cols <= team; ++cols) {
    if (team % cols)
      continue;
    const int64_t rows = team / cols;
    const double rowsT = double((rowSlivers + rows - 1) / rows * kGemmMr);
    const double colsT = double((colSlivers + cols - 1) / cols * kGemmNr);
    const double panels = std::ceil(colsT / double(kGemmNc));
    const double cost = rowsT * colsT * double(k) +
                        kPackWeight * double(k) * (rowsT * panels + colsT);
    if (bestCost < 0 || cost < 0.9 * bestCost) {
      bestCost = cost;
      bestCols = cols;
    }
  }
  const int64_t rows = team / bestCols;
  const int64_t ri = tid / bestCols, ci = tid % bestCols;
  return {std::min(m, ri * rowSlivers / rows * kGemmMr),
          std::min(m, (ri + 1) * rowSlivers / rows * kGemmMr),
          std::min(n, ci * colSlivers / bestCols * kGemmNr),
          std::min(n, (ci + 1) * colSlivers / bestCols * kGemmNr)};
}

void run(MicroKernel micro, bool transA, bool transB, int64_t m, int64_t n,
         int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
         float beta, float *c, int64_t ldc) {
  if (m <= 0 || n <= 0)
    return;
  if (k <= 0) {
    // No products: C = beta C (beta 0 writes zeros without reading C).
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  // op(B)^T: its rows are op(B)'s columns, packed as op(A)'s rows are.
  const Operand opA{a, lda, transA}, opBt{b, ldb, !transB};
  const Update first = beta == 0.0f   ? Update::Set
                       : beta == 1.0f ? Update::Add
                                      : Update::ScaleAdd;
  const bool parallel = double(m) * double(n) * double(k) >= kParallelFlops;
#pragma omp parallel if (parallel)
  {
    // Each thread computes its own rectangle of C and packs what it reads
    // itself: no barrier, and no packed panel read from another core's
    // cache (sharing one B panel across the team cost more than packing
    // it twice: gpt-tiny's 256-row GEMMs ran 1.3x faster on 2 threads
    // than on one, 1.8x now).
    static thread_local PackBuffer panel(kGemmKc * kGemmNc);
    static thread_local PackBuffer block(kGemmMc * kGemmKc);
    float *packedB = panel.data.get(), *packedA = block.data.get();
    const Region mine = regionOf(m, n, k, omp_get_num_threads(),
                                 omp_get_thread_num());
    for (int64_t j0 = mine.c0; mine.r0 < mine.r1 && j0 < mine.c1;
         j0 += kGemmNc) {
      const int64_t nc = std::min(kGemmNc, mine.c1 - j0);
      const int64_t slivers = (nc + kGemmNr - 1) / kGemmNr;
      for (int64_t k0 = 0; k0 < k; k0 += kGemmKc) {
        const int64_t kc = std::min(kGemmKc, k - k0);
        for (int64_t sv = 0; sv < slivers; ++sv)
          packSlivers<kGemmNr>(opBt, j0 + sv * kGemmNr,
                               std::min(kGemmNr, nc - sv * kGemmNr), k0, kc,
                               packedB + sv * kc * kGemmNr);
        const Update u = k0 == 0 ? first : Update::Add;
        for (int64_t i0 = mine.r0; i0 < mine.r1; i0 += kGemmMc) {
          const int64_t mc = std::min(kGemmMc, mine.r1 - i0);
          packSlivers<kGemmMr>(opA, i0, mc, k0, kc, packedA);
          // The block of op(A) packed next: the next rows, else the first
          // rows of the next k block, else of the next panel's first.
          BlockLines next;
          if (i0 + kGemmMc < mine.r1)
            next = BlockLines(opA, i0 + kGemmMc,
                              std::min(kGemmMc, mine.r1 - i0 - kGemmMc), k0,
                              kc);
          else if (k0 + kGemmKc < k || j0 + kGemmNc < mine.c1) {
            const int64_t nk0 = k0 + kGemmKc < k ? k0 + kGemmKc : 0;
            next = BlockLines(opA, mine.r0,
                              std::min(kGemmMc, mine.r1 - mine.r0), nk0,
                              std::min(kGemmKc, k - nk0));
          }
          const int64_t calls = slivers * ((mc + kGemmMr - 1) / kGemmMr);
          const int64_t perCall = (next.count() + calls - 1) / calls;
          int64_t line = 0;
          for (int64_t js = 0; js < slivers; ++js)
            for (int64_t is = 0; is * kGemmMr < mc; ++is) {
              for (int64_t e = 0; e < perCall && line < next.count();
                   ++e, ++line)
                __builtin_prefetch(next.at(line), 0, 3);
              float *tile = c + (i0 + is * kGemmMr) * ldc + j0 + js * kGemmNr;
              const int64_t rows = std::min(kGemmMr, mc - is * kGemmMr);
              const int64_t cols = std::min(kGemmNr, nc - js * kGemmNr);
              // The tile's lines of C, for writing at the end of the call
              // (a cold C cost a GEMM of beta 0 up to 5%).
              for (int64_t r = 0; r < rows; ++r)
                for (int64_t j = 0; j < cols; j += 16)
                  __builtin_prefetch(tile + r * ldc + j, 1, 3);
              micro(kc, packedA + is * kc * kGemmMr,
                    packedB + js * kc * kGemmNr, tile, ldc, rows, cols, u,
                    beta);
            }
        }
      }
    }
  }
}

} // namespace

void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
          float *c, int64_t ldc) {
#if defined(__AVX512F__)
  run(microAvx512, transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc);
#else
  run(microPortable, transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc);
#endif
}

void gemmPortable(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                  const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *c, int64_t ldc) {
  run(microPortable, transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

bool gemmUsesAvx512() {
#if defined(__AVX512F__)
  return true;
#else
  return false;
#endif
}

} // namespace pipert::cpu
