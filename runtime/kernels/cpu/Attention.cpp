//===- Attention.cpp - Blockwise attention: online softmax, micro-kernels
//--===//
//
// The order of every operation is Attention.h's; this file chooses where
// they run. Both passes are made of one product shape, a rank update
// C[i, j] = fma(A(i, kk), B[kk, j], C[i, j]) over kk ascending, with A read
// through two strides so that one micro-kernel serves q k^T, p v, p^T dout
// and ds^T q alike. Each element of C is its own fused multiply-add chain,
// so the micro-kernel's tiling (6 rows x 64 columns in 24 AVX-512
// registers, or the portable loops) never changes a bit.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/Attention.h"

#include "kernels/cpu/Reduce.h"
#include "kernels/cpu/Transpose.h"
#include "kernels/cpu/VecMath.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace pipert::cpu {

namespace {

constexpr int64_t kBlock = kAttentionBlock;

/// C[i, j] = fma(a[i * sai + kk * sak], b[kk * ldb + j], C[i, j]) for kk in
/// [0, depth) ascending, i < rows, j < cols; C starts from its own values
/// (accumulate) or from zero.
template <typename T> struct Product {
  const T *a;
  int64_t sai, sak;
  const T *b;
  int64_t ldb;
  T *c;
  int64_t ldc;
  int64_t rows, cols, depth;
  bool accumulate;
};

template <typename T> using Update = void (*)(const Product<T> &);

/// The portable micro-kernel: a 4 x 16 block of chains at a time.
template <typename T> void updatePortable(const Product<T> &p) {
  constexpr int64_t R = 4, C = 16;
  for (int64_t i0 = 0; i0 < p.rows; i0 += R) {
    const int64_t ri = std::min(R, p.rows - i0);
    for (int64_t j0 = 0; j0 < p.cols; j0 += C) {
      const int64_t cj = std::min(C, p.cols - j0);
      T acc[R][C] = {};
      if (p.accumulate)
        for (int64_t i = 0; i < ri; ++i)
          for (int64_t j = 0; j < cj; ++j)
            acc[i][j] = p.c[(i0 + i) * p.ldc + j0 + j];
      for (int64_t kk = 0; kk < p.depth; ++kk) {
        const T *brow = p.b + kk * p.ldb + j0;
        for (int64_t i = 0; i < ri; ++i) {
          const T a = p.a[(i0 + i) * p.sai + kk * p.sak];
          for (int64_t j = 0; j < cj; ++j)
            acc[i][j] = std::fma(a, brow[j], acc[i][j]);
        }
      }
      for (int64_t i = 0; i < ri; ++i)
        for (int64_t j = 0; j < cj; ++j)
          p.c[(i0 + i) * p.ldc + j0 + j] = acc[i][j];
    }
  }
}

#if defined(__AVX512F__)
/// R rows x 16 V columns of chains in R V registers (masked past the
/// product's columns). 6 x 64 where the product is that wide: each step's 4
/// loads of B and 6 broadcasts of A feed 24 multiply-adds, so the load
/// ports keep up; narrower V for narrow products (small head dims), so that
/// no multiply-add is spent on masked lanes.
template <int R, int V>
void tileAvx512(const Product<float> &p, int64_t i0, int64_t j0,
                const __mmask16 (&m)[4]) {
  // Locals, so that the loop keeps them in registers.
  const int64_t sai = p.sai, sak = p.sak, ldb = p.ldb, ldc = p.ldc;
  const int64_t depth = p.depth;
  const float *a = p.a + i0 * sai;
  const float *b = p.b + j0;
  float *c = p.c + i0 * ldc + j0;
  __m512 acc[V * R];
  if (p.accumulate) {
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v)
        acc[V * r + v] = _mm512_maskz_loadu_ps(m[v], c + r * ldc + 16 * v);
  } else {
#pragma GCC unroll 24
    for (int r = 0; r < V * R; ++r)
      acc[r] = _mm512_setzero_ps();
  }
  for (int64_t kk = 0; kk < depth; ++kk) {
    __m512 bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v)
      bv[v] = _mm512_maskz_loadu_ps(m[v], b + kk * ldb + 16 * v);
    const float *ak = a + kk * sak;
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m512 ar = _mm512_set1_ps(ak[r * sai]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v)
        acc[V * r + v] = _mm512_fmadd_ps(ar, bv[v], acc[V * r + v]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v)
      _mm512_mask_storeu_ps(c + r * ldc + 16 * v, m[v], acc[V * r + v]);
}

/// Rows of p in tiles of 6, each 16 V columns wide from column j0.
template <int V>
void rowsAvx512(const Product<float> &p, int64_t j0, const __mmask16 (&m)[4]) {
  int64_t i0 = 0;
  for (; i0 + 6 <= p.rows; i0 += 6)
    tileAvx512<6, V>(p, i0, j0, m);
  switch (p.rows - i0) {
  case 5:
    tileAvx512<5, V>(p, i0, j0, m);
    break;
  case 4:
    tileAvx512<4, V>(p, i0, j0, m);
    break;
  case 3:
    tileAvx512<3, V>(p, i0, j0, m);
    break;
  case 2:
    tileAvx512<2, V>(p, i0, j0, m);
    break;
  case 1:
    tileAvx512<1, V>(p, i0, j0, m);
    break;
  default:
    break;
  }
}

/// The AVX-512 micro-kernel: the same chains as updatePortable.
void updateAvx512(const Product<float> &p) {
  for (int64_t j0 = 0; j0 < p.cols; j0 += 64) {
    const int64_t cj = p.cols - j0;
    __mmask16 m[4];
    for (int v = 0; v < 4; ++v) {
      const int64_t valid = std::clamp<int64_t>(cj - 16 * v, 0, 16);
      m[v] = __mmask16((1u << valid) - 1);
    }
    switch ((std::min<int64_t>(cj, 64) + 15) / 16) {
    case 1:
      rowsAvx512<1>(p, j0, m);
      break;
    case 2:
      rowsAvx512<2>(p, j0, m);
      break;
    case 3:
      rowsAvx512<3>(p, j0, m);
      break;
    default:
      rowsAvx512<4>(p, j0, m);
      break;
    }
  }
}
#endif

template <typename T> Update<T> fastest(bool portable) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    if (!portable)
      return updateAvx512;
#endif
  (void)portable;
  return updatePortable<T>;
}

/// The attention's dimensions and strides.
struct Dims {
  int64_t batch, seqQ, seqKV, heads, kvHeads, dh, group, qStride, kvStride;
  bool causal;
  explicit Dims(const AttentionShape &s)
      : batch(s.batch), seqQ(s.seqQ), seqKV(s.seqKV), heads(s.heads),
        kvHeads(s.kvHeads), dh(s.headDim),
        group(s.kvHeads > 0 ? s.heads / s.kvHeads : 0),
        qStride(s.heads * s.headDim), kvStride(s.kvHeads * s.headDim),
        causal(s.causal) {}
  /// Number of keys query t may see.
  int64_t visible(int64_t t) const {
    if (!causal)
      return seqKV;
    return std::clamp<int64_t>(t + 1 + (seqKV - seqQ), 0, seqKV);
  }
  /// Keys of the block starting at j0 (of bk keys) that query t sees.
  int64_t visibleIn(int64_t t, int64_t j0, int64_t bk) const {
    return std::clamp<int64_t>(visible(t) - j0, 0, bk);
  }
  /// The first query that sees key j.
  int64_t firstQuery(int64_t j) const {
    return causal ? std::max<int64_t>(0, j - (seqKV - seqQ)) : 0;
  }
};

/// Rows of a band: the diagonal block's products are computed band by band,
/// each over the keys (or queries) some row of the band sees, so that the
/// masked corner costs nothing. The micro-kernel's tile height.
constexpr int64_t kBand = 6;

/// Products whose rows are the queries i0 + r and whose `keys` extent
/// (Product::cols: the scores q k^T and dout v^T; Product::depth: the sums
/// p v and ds k) runs over the block's keys from j0: each band of rows
/// computes only the keys its last row sees. Of the scores, the rest of C
/// is left as it was (the callers zero a row's masked keys); of the sums,
/// the terms left out are 0 * v (a masked key's p or ds is 0), which leave
/// a sum of finite values as it is. Every computed chain is the block's.
template <typename T>
void queriesBanded(Update<T> update, const Product<T> &p,
                   int64_t Product<T>::*keys, const Dims &n, int64_t i0,
                   int64_t j0) {
  if (n.visibleIn(i0, j0, p.*keys) == p.*keys) {
    update(p); // every row sees every key of the block
    return;
  }
  for (int64_t r0 = 0; r0 < p.rows; r0 += kBand) {
    const int64_t rows = std::min(kBand, p.rows - r0);
    const int64_t seen = n.visibleIn(i0 + r0 + rows - 1, j0, p.*keys);
    if (seen == 0)
      continue;
    Product<T> band = p;
    band.a += r0 * p.sai;
    band.c += r0 * p.ldc;
    band.rows = rows;
    band.*keys = seen;
    update(band);
  }
}

/// Products summed over the block's queries per key row (p^T dout, ds^T q:
/// rows are keys j0 + c, depth the queries from i0), each band of keys over
/// the queries that see some key of it: the leading terms left out are 0 *
/// x, as above.
template <typename T>
void keysBanded(Update<T> update, const Product<T> &p, const Dims &n,
                int64_t i0, int64_t j0) {
  if (n.firstQuery(j0 + p.rows - 1) <= i0) {
    update(p); // every query of the block sees every key
    return;
  }
  for (int64_t c0 = 0; c0 < p.rows; c0 += kBand) {
    const int64_t rows = std::min(kBand, p.rows - c0);
    const int64_t first =
        std::clamp<int64_t>(n.firstQuery(j0 + c0) - i0, 0, p.depth);
    if (first == p.depth)
      continue;
    Product<T> band = p;
    band.a += c0 * p.sai + first * p.sak;
    band.b += first * p.ldb;
    band.c += c0 * p.ldc;
    band.rows = rows;
    band.depth = p.depth - first;
    update(band);
  }
}

/// rows c < keys of x (row stride ld), dh wide, transposed into
/// out[d * ldo + c]. Packing moves values only.
template <typename T>
void packTransposed(const T *x, int64_t ld, int64_t keys, int64_t dh, T *out,
                    int64_t ldo, bool portable) {
  int64_t c0 = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    if (!portable)
      for (; c0 + 16 <= keys; c0 += 16) {
        int64_t d0 = 0;
        for (; d0 + 16 <= dh; d0 += 16)
          detail::transpose16(x + c0 * ld + d0, ld, out + d0 * ldo + c0, ldo);
        for (int64_t c = c0; c < c0 + 16; ++c)
          for (int64_t d = d0; d < dh; ++d)
            out[d * ldo + c] = x[c * ld + d];
      }
#endif
  (void)portable;
  for (int64_t c = c0; c < keys; ++c)
    for (int64_t d = 0; d < dh; ++d)
      out[d * ldo + c] = x[c * ld + d];
}

/// The largest of x[0 .. n) (-inf when n is 0). The maximum is exact, so
/// its 16 lanes may meet in any order.
template <typename T> T maxOf(const T *x, int64_t n) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      m = _mm512_mask_max_ps(m, __mmask16(0xFFFF), m, _mm512_loadu_ps(x + i));
    if (i < n) {
      const __mmask16 tail = __mmask16((1u << (n - i)) - 1);
      m = _mm512_mask_max_ps(m, tail, m, _mm512_maskz_loadu_ps(tail, x + i));
    }
    // The lanes by halves, in registers: a maximum is exact in any order.
    const __mmask16 all = 0xFFFF;
    m = _mm512_mask_max_ps(m, all, m,
                           _mm512_mask_shuffle_f32x4(m, all, m, m, 0x4E));
    m = _mm512_mask_max_ps(m, all, m,
                           _mm512_mask_shuffle_f32x4(m, all, m, m, 0xB1));
    m = _mm512_mask_max_ps(m, all, m, _mm512_mask_permute_ps(m, all, m, 0x4E));
    m = _mm512_mask_max_ps(m, all, m, _mm512_mask_permute_ps(m, all, m, 0xB1));
    return _mm512_cvtss_f32(m);
  }
#endif
  T lane[16];
  for (T &v : lane)
    v = T(-INFINITY);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l)
      lane[l] = x[i + l] > lane[l] ? x[i + l] : lane[l];
  for (int l = 0; i + l < n; ++l)
    lane[l] = x[i + l] > lane[l] ? x[i + l] : lane[l];
  T m = lane[0];
  for (int l = 1; l < 16; ++l)
    m = lane[l] > m ? lane[l] : m;
  return m;
}

template <typename T>
void forward(T *out, T *lse, const T *q, const T *k, const T *v,
             const AttentionShape &s, bool portable) {
  const Update<T> update = fastest<T>(portable);
  const Dims n(s);
  const T scale = T(s.scale);
  const int64_t qBlocks = (n.seqQ + kBlock - 1) / kBlock;
  const int64_t units = n.batch * n.heads * qBlocks;
  const int64_t dh = n.dh;
  // k^T of every (batch, kv head), [dh, seqKV] each, packed once per call
  // and shared by the threads (kept between calls).
  static thread_local std::vector<T> packedK;
  packedK.resize(
      size_t(std::max<int64_t>(1, n.batch * n.kvHeads * dh * n.seqKV)));
  T *kT = packedK.data();
#pragma omp parallel if (n.batch * n.heads * n.seqQ * n.seqKV * dh * 2 >=      \
                         detail::kParallelWork)
  {
    // The thread's scratch, kept between calls (no allocation per call).
    const size_t block = size_t(kBlock), width = size_t(dh > 0 ? dh : 1);
    static thread_local std::vector<T> scBuf, oBuf, mBuf, lBuf;
    scBuf.resize(block * block);
    oBuf.resize(block * width);
    mBuf.resize(block);
    lBuf.resize(block);
    // Plain pointers: a thread_local's every use would look it up again.
    T *sc = scBuf.data(), *o = oBuf.data(), *m = mBuf.data(), *l = lBuf.data();
#pragma omp for schedule(static)
    for (int64_t unit = 0; unit < n.batch * n.kvHeads; ++unit)
      packTransposed(
          k + unit / n.kvHeads * n.seqKV * n.kvStride + unit % n.kvHeads * dh,
          n.kvStride, n.seqKV, dh, kT + unit * dh * n.seqKV, n.seqKV, portable);
#pragma omp for schedule(dynamic, 1)
    for (int64_t unit = 0; unit < units; ++unit) {
      const int64_t qb = unit % qBlocks, h = (unit / qBlocks) % n.heads;
      const int64_t b = unit / (qBlocks * n.heads), kvh = h / n.group;
      const int64_t i0 = qb * kBlock, bq = std::min(kBlock, n.seqQ - i0);
      const T *qb0 = q + (b * n.seqQ + i0) * n.qStride + h * dh;
      const T *kTb = kT + (b * n.kvHeads + kvh) * dh * n.seqKV;
      const T *vb = v + b * n.seqKV * n.kvStride + kvh * dh;
      std::fill(o, o + block * width, T(0));
      std::fill(m, m + block, T(-INFINITY));
      std::fill(l, l + block, T(0));
      // The block's last query sees the most keys.
      const int64_t keys = n.visible(i0 + bq - 1);
      for (int64_t j0 = 0; j0 < keys; j0 += kBlock) {
        const int64_t bk = std::min(kBlock, keys - j0);
        queriesBanded(update,
                      {qb0, n.qStride, 1, kTb + j0, n.seqKV, sc, kBlock, bq,
                       bk, dh, false},
                      &Product<T>::cols, n, i0, j0);
        for (int64_t r = 0; r < bq; ++r) {
          T *p = sc + r * kBlock;
          const int64_t seen = n.visibleIn(i0 + r, j0, bk);
          for (int64_t c = seen; c < bk; ++c)
            p[c] = T(0);
          if (seen == 0)
            continue; // a = 1, p = 0: nothing of this block reaches the row
#pragma omp simd
          for (int64_t c = 0; c < seen; ++c)
            p[c] = p[c] * scale;
          const T mb = maxOf(p, seen);
          const T mNew = m[r] > mb ? m[r] : mb;
          const T alpha = vecExp(m[r] - mNew);
#pragma omp simd
          for (int64_t c = 0; c < seen; ++c)
            p[c] = vecExp(p[c] - mNew);
          l[r] = l[r] * alpha + detail::sumFixed(p, bk);
          T *orow = o + r * dh;
#pragma omp simd
          for (int64_t d = 0; d < dh; ++d)
            orow[d] = orow[d] * alpha;
          m[r] = mNew;
        }
        queriesBanded(update,
                      {sc, kBlock, 1, vb + j0 * n.kvStride, n.kvStride, o, dh,
                       bq, dh, bk, true},
                      &Product<T>::depth, n, i0, j0);
      }
      for (int64_t r = 0; r < bq; ++r) {
        const int64_t t = i0 + r;
        T *orow = out + (b * n.seqQ + t) * n.qStride + h * dh;
        T &rowLse = lse[(b * n.heads + h) * n.seqQ + t];
        if (n.visible(t) == 0) {
          std::fill(orow, orow + dh, T(0));
          rowLse = T(-INFINITY);
          continue;
        }
        const T *orowAcc = o + r * dh;
#pragma omp simd
        for (int64_t d = 0; d < dh; ++d)
          orow[d] = orowAcc[d] / l[r];
        rowLse = m[r] + std::log(l[r]);
      }
    }
  }
}

template <typename T>
void backwardB(T *dq, T *dk, T *dv, const T *dout, const T *q, const T *k,
               const T *v, const T *out, const T *lse, const AttentionShape &s,
               bool portable) {
  const Update<T> update = fastest<T>(portable);
  const Dims n(s);
  const T scale = T(s.scale);
  const int64_t units = n.batch * n.kvHeads, dh = n.dh;
#pragma omp parallel if (n.batch * n.heads * n.seqQ * n.seqKV * dh * 4 >=      \
                         detail::kParallelWork)
  {
    const size_t block = size_t(kBlock), width = size_t(dh > 0 ? dh : 1);
    static thread_local std::vector<T> ktBuf, vtBuf, pBuf, dsBuf, projBuf;
    ktBuf.resize(width * block);
    vtBuf.resize(width * block);
    pBuf.resize(block * block);
    dsBuf.resize(block * block);
    projBuf.resize(size_t(std::max<int64_t>(1, n.group * n.seqQ)));
    T *kt = ktBuf.data(), *vt = vtBuf.data(), *p = pBuf.data(),
      *ds = dsBuf.data(), *proj = projBuf.data();
#pragma omp for schedule(dynamic, 1)
    for (int64_t unit = 0; unit < units; ++unit) {
      const int64_t b = unit / n.kvHeads, kvh = unit % n.kvHeads;
      const int64_t h0 = kvh * n.group;
      const T *kb = k + b * n.seqKV * n.kvStride + kvh * dh;
      const T *vb = v + b * n.seqKV * n.kvStride + kvh * dh;
      T *dkb = dk + b * n.seqKV * n.kvStride + kvh * dh;
      T *dvb = dv + b * n.seqKV * n.kvStride + kvh * dh;
      for (int64_t j = 0; j < n.seqKV; ++j)
        for (int64_t d = 0; d < dh; ++d)
          dkb[j * n.kvStride + d] = dvb[j * n.kvStride + d] = T(0);
      // D = dout . out = sum_j p_j (dout . v_j), the softmax projection.
      for (int64_t g = 0; g < n.group; ++g)
        for (int64_t t = 0; t < n.seqQ; ++t) {
          const int64_t off = (b * n.seqQ + t) * n.qStride + (h0 + g) * dh;
          proj[size_t(g * n.seqQ + t)] =
              detail::dotFixed(dout + off, out + off, dh);
          std::fill(dq + off, dq + off + dh, T(0));
        }
      for (int64_t j0 = 0; j0 < n.seqKV; j0 += kBlock) {
        const int64_t bk = std::min(kBlock, n.seqKV - j0);
        packTransposed(kb + j0 * n.kvStride, n.kvStride, bk, dh, kt,
                       kBlock, portable);
        packTransposed(vb + j0 * n.kvStride, n.kvStride, bk, dh, vt,
                       kBlock, portable);
        const int64_t iFirst = n.firstQuery(j0) / kBlock * kBlock;
        for (int64_t g = 0; g < n.group; ++g) {
          const int64_t h = h0 + g;
          for (int64_t i0 = iFirst; i0 < n.seqQ; i0 += kBlock) {
            const int64_t bq = std::min(kBlock, n.seqQ - i0);
            const int64_t off = (b * n.seqQ + i0) * n.qStride + h * dh;
            const T *qb0 = q + off, *gb0 = dout + off;
            // Scores and dout . v for the block.
            queriesBanded(update,
                          {qb0, n.qStride, 1, kt, kBlock, p, kBlock, bq, bk,
                           dh, false},
                          &Product<T>::cols, n, i0, j0);
            queriesBanded(update,
                          {gb0, n.qStride, 1, vt, kBlock, ds, kBlock, bq, bk,
                           dh, false},
                          &Product<T>::cols, n, i0, j0);
            for (int64_t r = 0; r < bq; ++r) {
              const int64_t t = i0 + r;
              const int64_t seen = n.visibleIn(t, j0, bk);
              T *pr = p + r * kBlock, *dsr = ds + r * kBlock;
              const T rowLse = lse[(b * n.heads + h) * n.seqQ + t];
              const T dProj = proj[size_t(g * n.seqQ + t)];
#pragma omp simd
              for (int64_t c = 0; c < seen; ++c) {
                const T pc = vecExp(pr[c] * scale - rowLse);
                pr[c] = pc;
                dsr[c] = pc * (dsr[c] - dProj) * scale;
              }
              for (int64_t c = seen; c < bk; ++c)
                pr[c] = dsr[c] = T(0);
            }
            // dv += p^T dout, dk += ds^T q, dq += ds k.
            keysBanded(update,
                       {p, 1, kBlock, gb0, n.qStride,
                        dvb + j0 * n.kvStride, n.kvStride, bk, dh, bq, true},
                       n, i0, j0);
            keysBanded(update,
                       {ds, 1, kBlock, qb0, n.qStride,
                        dkb + j0 * n.kvStride, n.kvStride, bk, dh, bq, true},
                       n, i0, j0);
            queriesBanded(update,
                          {ds, kBlock, 1, kb + j0 * n.kvStride, n.kvStride,
                           dq + off, n.qStride, bq, dh, bk, true},
                          &Product<T>::depth, n, i0, j0);
          }
        }
      }
    }
  }
}

} // namespace

namespace detail {

void attentionForward(float *out, float *lse, const float *q, const float *k,
                      const float *v, const AttentionShape &s, bool portable) {
  forward<float>(out, lse, q, k, v, s, portable);
}

void attentionForward(double *out, double *lse, const double *q,
                      const double *k, const double *v, const AttentionShape &s,
                      bool portable) {
  forward<double>(out, lse, q, k, v, s, portable);
}

void attentionBackwardB(float *dq, float *dk, float *dv, const float *dout,
                        const float *q, const float *k, const float *v,
                        const float *out, const float *lse,
                        const AttentionShape &s, bool portable) {
  backwardB<float>(dq, dk, dv, dout, q, k, v, out, lse, s, portable);
}

void attentionBackwardB(double *dq, double *dk, double *dv, const double *dout,
                        const double *q, const double *k, const double *v,
                        const double *out, const double *lse,
                        const AttentionShape &s, bool portable) {
  backwardB<double>(dq, dk, dv, dout, q, k, v, out, lse, s, portable);
}

} // namespace detail

} // namespace pipert::cpu
