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
