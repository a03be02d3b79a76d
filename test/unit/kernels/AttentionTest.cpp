//===- AttentionTest.cpp - causal grouped-query attention kernels ---------===//

#include "KernelTestUtil.h"

#include "kernels/cpu/Attention.h"

#include <gtest/gtest.h>

using namespace pipert::cpu;
using namespace kerneltest;

/// softmax(scale q k^T + mask) v with an explicit [seqQ, seqKV] mask, query
/// head h reading kv head h / (heads / kvHeads); also the log-sum-exp.
static void naiveAttention(std::vector<double> &out, std::vector<double> &lse,
                           const std::vector<double> &q,
                           const std::vector<double> &k,
                           const std::vector<double> &v,
                           const AttentionShape &s) {
  int64_t dh = s.headDim, group = s.heads / s.kvHeads;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t t = 0; t < s.seqQ; ++t) {
        std::vector<double> score(static_cast<size_t>(s.seqKV));
        double mx = -INFINITY;
        for (int64_t j = 0; j < s.seqKV; ++j) {
          bool masked = s.causal && j > t + (s.seqKV - s.seqQ);
          double dotqk = 0;
          for (int64_t d = 0; d < dh; ++d)
            dotqk += q[((b * s.seqQ + t) * s.heads + h) * dh + d] *
                     k[((b * s.seqKV + j) * s.kvHeads + h / group) * dh + d];
          score[j] = masked ? -INFINITY : s.scale * dotqk;
          mx = std::max(mx, score[j]);
        }
        if (mx == -INFINITY) { // the row sees no key
          lse[(b * s.heads + h) * s.seqQ + t] = -INFINITY;
          for (int64_t d = 0; d < dh; ++d)
            out[((b * s.seqQ + t) * s.heads + h) * dh + d] = 0;
          continue;
        }
        double z = 0;
        for (int64_t j = 0; j < s.seqKV; ++j)
          z += std::exp(score[j] - mx);
        lse[(b * s.heads + h) * s.seqQ + t] = mx + std::log(z);
        for (int64_t d = 0; d < dh; ++d) {
          double o = 0;
          for (int64_t j = 0; j < s.seqKV; ++j)
            o += std::exp(score[j] - mx) / z *
                 v[((b * s.seqKV + j) * s.kvHeads + h / group) * dh + d];
          out[((b * s.seqQ + t) * s.heads + h) * dh + d] = o;
        }
      }
}

/// dq, dk, dv of sum(dy * out) from the explicit probabilities:
/// dv = p^T dy, ds = p (dy v^T - rowsum(p dy v^T)), dq = scale ds k,
/// dk = scale ds^T q (summed over the query heads of a kv head).
static void naiveAttentionBackward(std::vector<double> &dq,
                                   std::vector<double> &dk,
                                   std::vector<double> &dv,
                                   const std::vector<double> &dy,
                                   const std::vector<double> &q,
                                   const std::vector<double> &k,
                                   const std::vector<double> &v,
                                   const std::vector<double> &lse,
                                   const AttentionShape &s) {
  int64_t dh = s.headDim, group = s.heads / s.kvHeads;
  std::fill(dq.begin(), dq.end(), 0.0);
  std::fill(dk.begin(), dk.end(), 0.0);
  std::fill(dv.begin(), dv.end(), 0.0);
  auto qi = [&](int64_t b, int64_t t, int64_t h, int64_t d) {
    return ((b * s.seqQ + t) * s.heads + h) * dh + d;
  };
  auto ki = [&](int64_t b, int64_t j, int64_t h, int64_t d) {
    return ((b * s.seqKV + j) * s.kvHeads + h / group) * dh + d;
  };
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t t = 0; t < s.seqQ; ++t) {
        double rowLse = lse[(b * s.heads + h) * s.seqQ + t];
        if (rowLse == -INFINITY)
          continue;
        std::vector<double> p(static_cast<size_t>(s.seqKV)), dp(p.size());
        double proj = 0;
        for (int64_t j = 0; j < s.seqKV; ++j) {
          if (s.causal && j > t + (s.seqKV - s.seqQ))
            continue;
          double qk = 0, gv = 0;
          for (int64_t d = 0; d < dh; ++d) {
            qk += q[qi(b, t, h, d)] * k[ki(b, j, h, d)];
            gv += dy[qi(b, t, h, d)] * v[ki(b, j, h, d)];
          }
          p[j] = std::exp(s.scale * qk - rowLse);
          dp[j] = gv;
          proj += p[j] * gv;
        }
        for (int64_t j = 0; j < s.seqKV; ++j) {
          double ds = p[j] * (dp[j] - proj) * s.scale;
          for (int64_t d = 0; d < dh; ++d) {
            dv[ki(b, j, h, d)] += p[j] * dy[qi(b, t, h, d)];
            dq[qi(b, t, h, d)] += ds * k[ki(b, j, h, d)];
            dk[ki(b, j, h, d)] += ds * q[qi(b, t, h, d)];
          }
        }
      }
}

/// Forward against the naive formula, then gradients of q, k, v against
/// finite differences.
static void checkAttention(const AttentionShape &s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  int64_t qn = s.batch * s.seqQ * s.heads * s.headDim;
  int64_t kvn = s.batch * s.seqKV * s.kvHeads * s.headDim;
  auto q = randomVector(rng, qn), k = randomVector(rng, kvn),
       v = randomVector(rng, kvn), dy = randomVector(rng, qn);
  std::vector<double> out(static_cast<size_t>(qn)), lse(static_cast<size_t>(s.batch * s.heads * s.seqQ));
  auto loss = [&] {
    attentionForward(out.data(), lse.data(), q.data(), k.data(), v.data(), s);
    return dot(dy, out);
  };
  loss();
  std::vector<double> refOut(out.size()), refLse(lse.size());
  naiveAttention(refOut, refLse, q, k, v, s);
  for (size_t i = 0; i < out.size(); ++i)
    EXPECT_NEAR(out[i], refOut[i], 1e-13) << "out[" << i << "]";
  for (size_t i = 0; i < lse.size(); ++i)
    EXPECT_NEAR(lse[i], refLse[i], 1e-13) << "lse[" << i << "]";

  std::vector<double> dq(static_cast<size_t>(qn)), dk(static_cast<size_t>(kvn), 7.0), dv(static_cast<size_t>(kvn), 7.0);
  attentionBackwardB(dq.data(), dk.data(), dv.data(), dy.data(), q.data(),
                     k.data(), v.data(), out.data(), lse.data(), s);
  EXPECT_LT(normwiseError(dq, finiteDifference(q, loss)), kTolerance);
  EXPECT_LT(normwiseError(dk, finiteDifference(k, loss)), kTolerance);
  EXPECT_LT(normwiseError(dv, finiteDifference(v, loss)), kTolerance);
}

TEST(Attention, CausalGroupedQueryMatchesReference) {
  AttentionShape s;
  s.batch = 2, s.seqQ = s.seqKV = 5, s.heads = 4, s.kvHeads = 2, s.headDim = 3;
  s.causal = true, s.scale = 1 / std::sqrt(3.0);
  checkAttention(s, 30);
}

TEST(Attention, CausalMultiHeadMatchesReference) {
  AttentionShape s;
  s.batch = 1, s.seqQ = s.seqKV = 6, s.heads = 2, s.kvHeads = 2, s.headDim = 4;
  s.causal = true, s.scale = 0.7;
  checkAttention(s, 31);
}

TEST(Attention, NonCausalCrossLengthMatchesReference) {
  AttentionShape s;
  s.batch = 2, s.seqQ = 3, s.seqKV = 5, s.heads = 3, s.kvHeads = 1,
  s.headDim = 2;
  s.causal = false, s.scale = 0.5;
  checkAttention(s, 32);
}

TEST(Attention, GroupedQueryEqualsMultiHeadWithRepeatedKv) {
  // Hugging Face repeat_kv: kv head j serves query heads j*group ..
  // (j+1)*group - 1, so repeating each kv head group times in place must
  // give the same result bit for bit.
  std::mt19937_64 rng(33);
  AttentionShape g;
  g.batch = 2, g.seqQ = g.seqKV = 4, g.heads = 6, g.kvHeads = 2, g.headDim = 3;
  g.scale = 0.4;
  int64_t group = 3, dh = 3;
  int64_t qn = g.batch * g.seqQ * g.heads * dh;
  int64_t kvn = g.batch * g.seqKV * g.kvHeads * dh;
  auto q = randomVector(rng, qn), k = randomVector(rng, kvn),
       v = randomVector(rng, kvn);
  std::vector<double> kr(static_cast<size_t>(qn)), vr(static_cast<size_t>(qn));
  for (int64_t row = 0; row < g.batch * g.seqKV; ++row)
    for (int64_t h = 0; h < g.heads; ++h)
      for (int64_t d = 0; d < dh; ++d) {
        kr[(row * g.heads + h) * dh + d] = k[(row * g.kvHeads + h / group) * dh + d];
        vr[(row * g.heads + h) * dh + d] = v[(row * g.kvHeads + h / group) * dh + d];
      }
  AttentionShape m = g;
  m.kvHeads = g.heads;
  std::vector<double> outG(static_cast<size_t>(qn)), outM(static_cast<size_t>(qn)),
      lseG(static_cast<size_t>(g.batch * g.heads * g.seqQ)), lseM(lseG.size());
  attentionForward(outG.data(), lseG.data(), q.data(), k.data(), v.data(), g);
  attentionForward(outM.data(), lseM.data(), q.data(), kr.data(), vr.data(), m);
  EXPECT_EQ(outG, outM);
  EXPECT_EQ(lseG, lseM);
}

/// Shapes that span several blocks of kAttentionBlock queries and keys,
/// with partial last blocks, head dims that are not a multiple of the
/// vector width, grouped queries, and causal masks with seqQ != seqKV
/// (rows that see every key, rows that see none).
static std::vector<AttentionShape> blockShapes() {
  auto shape = [](int64_t batch, int64_t seqQ, int64_t seqKV, int64_t heads,
                  int64_t kvHeads, int64_t dh, bool causal) {
    AttentionShape s;
    s.batch = batch, s.seqQ = seqQ, s.seqKV = seqKV, s.heads = heads,
    s.kvHeads = kvHeads, s.headDim = dh, s.causal = causal,
    s.scale = 1 / std::sqrt(double(dh));
    return s;
  };
  return {shape(1, 150, 150, 2, 1, 72, true),
          shape(2, 130, 130, 4, 2, 20, true),
          shape(1, 70, 200, 2, 2, 64, true),
          shape(1, 100, 80, 3, 1, 17, true),
          shape(1, 129, 65, 2, 1, 33, false)};
}

TEST(Attention, BlocksMatchTheExplicitFormulaInFloat64) {
  std::mt19937_64 rng(34);
  for (const AttentionShape &s : blockShapes()) {
    SCOPED_TRACE("seqQ " + std::to_string(s.seqQ) + " seqKV " +
                 std::to_string(s.seqKV) + " dh " +
                 std::to_string(s.headDim));
    int64_t qn = s.batch * s.seqQ * s.heads * s.headDim;
    int64_t kvn = s.batch * s.seqKV * s.kvHeads * s.headDim;
    auto q = randomVector(rng, qn, 2.0), k = randomVector(rng, kvn, 2.0),
         v = randomVector(rng, kvn), dy = randomVector(rng, qn);
    size_t rows = static_cast<size_t>(s.batch * s.heads * s.seqQ);
    std::vector<double> out(static_cast<size_t>(qn)), lse(rows),
        refOut(out.size()), refLse(rows);
    attentionForward(out.data(), lse.data(), q.data(), k.data(), v.data(), s);
    naiveAttention(refOut, refLse, q, k, v, s);
    EXPECT_LT(normwiseError(out, refOut), 1e-14);
    for (size_t i = 0; i < rows; ++i)
      if (refLse[i] == -INFINITY)
        EXPECT_EQ(lse[i], -INFINITY) << "lse[" << i << "]";
      else
        EXPECT_NEAR(lse[i], refLse[i], 1e-13) << "lse[" << i << "]";

    std::vector<double> dq(static_cast<size_t>(qn), 7.0),
        dk(static_cast<size_t>(kvn), 7.0), dv(dk.size(), 7.0), refDq(dq.size()),
        refDk(dk.size()), refDv(dv.size());
    attentionBackwardB(dq.data(), dk.data(), dv.data(), dy.data(), q.data(),
                       k.data(), v.data(), out.data(), lse.data(), s);
    naiveAttentionBackward(refDq, refDk, refDv, dy, q, k, v, refLse, s);
    EXPECT_LT(normwiseError(dq, refDq), 1e-13);
    EXPECT_LT(normwiseError(dk, refDk), 1e-13);
    EXPECT_LT(normwiseError(dv, refDv), 1e-13);
  }
}

/// Random float q, k (scale 2), v and dy of shape s.
struct FloatInputs {
  std::vector<float> q, k, v, dy;
};
static FloatInputs randomInputs(std::mt19937_64 &rng, const AttentionShape &s) {
  int64_t qn = s.batch * s.seqQ * s.heads * s.headDim;
  int64_t kvn = s.batch * s.seqKV * s.kvHeads * s.headDim;
  FloatInputs in;
  in.q = randomVector<float>(rng, qn, 2.0);
  in.k = randomVector<float>(rng, kvn, 2.0);
  in.v = randomVector<float>(rng, kvn);
  in.dy = randomVector<float>(rng, qn);
  return in;
}

/// out, lse, dq, dk and dv of the kernels in T on `in` (converted to T),
/// through the portable micro-kernel when asked.
template <typename T>
static std::vector<std::vector<T>> runAttention(const FloatInputs &in,
                                                const AttentionShape &s,
                                                bool portable = false) {
  auto as = [](const std::vector<float> &x) {
    return std::vector<T>(x.begin(), x.end());
  };
  std::vector<T> q = as(in.q), k = as(in.k), v = as(in.v), dy = as(in.dy);
  std::vector<T> out(q.size()), dq(q.size()), dk(k.size()), dv(k.size()),
      lse(static_cast<size_t>(s.batch * s.heads * s.seqQ));
  detail::attentionForward(out.data(), lse.data(), q.data(), k.data(),
                           v.data(), s, portable);
  detail::attentionBackwardB(dq.data(), dk.data(), dv.data(), dy.data(),
                             q.data(), k.data(), v.data(), out.data(),
                             lse.data(), s, portable);
  return {out, lse, dq, dk, dv};
}

TEST(Attention, FloatWithinItsBoundOfFloat64) {
  // The float kernels against the float64 ones on the same (float) inputs:
  // each output is a short sum (headDim, one block of keys) of rounded
  // products, so the error stays at a few float ulps of the result.
  std::mt19937_64 rng(35);
  for (const AttentionShape &s : blockShapes()) {
    FloatInputs in = randomInputs(rng, s);
    auto wide = runAttention<double>(in, s);
    auto narrow = runAttention<float>(in, s);
    auto widened = [](const std::vector<float> &x) {
      return std::vector<double>(x.begin(), x.end());
    };
    const double bound[5] = {1e-6, 0, 1e-5, 1e-5, 1e-6}; // out, -, dq, dk, dv
    for (int i : {0, 2, 3, 4})
      EXPECT_LT(normwiseError(widened(narrow[size_t(i)]), wide[size_t(i)]),
                bound[i])
          << "output " << i << ", seqQ " << s.seqQ << " dh " << s.headDim;
  }
}

TEST(Attention, BothMicroKernelsGiveTheSameBits) {
  // The AVX-512 micro-kernel (where the library has it) and the portable
  // one perform the same fused multiply-add chains.
  std::mt19937_64 rng(36);
  for (const AttentionShape &s : blockShapes()) {
    FloatInputs in = randomInputs(rng, s);
    EXPECT_EQ(runAttention<float>(in, s, false),
              runAttention<float>(in, s, true))
        << "seqQ " << s.seqQ << " dh " << s.headDim;
  }
}
