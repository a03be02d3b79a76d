//===- ModelChecks.cu - classifier, attention and GEMMs against the CPU ------===//
//
// The classifier against its CPU emulation (the block's strided partial
// sums and fixed tree, host expf): the mean loss within 1e-6 relative,
// dlogits within 1 bf16 ulp, the vocabulary padding's gradient zero, a bad
// target a NaN loss. Attention (fwd, B) and the cuBLASLt GEMMs (fwd with
// and without bias, B, W into fp32, both weight layouts) against double
// references on the same bf16 inputs: their summation orders are not the
// CPU's, so the gate is the largest error over the largest value (1e-2 for
// bf16 results, 1e-5 for fp32 accumulators), and every GEMM (fwd, B, W) run
// twice must give the same bits; the classifier in place gives the bits of
// separate buffers. Run by KernelHarness.cu's main.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include <memory>

#include "kernels/cuda/Gemm.h"
#include "kernels/cuda/Kernels.h"
#include "pipert/LrSchedule.h"
#include "pipert/ZeroShard.h"

namespace harness {
namespace {

std::string num(const char *key, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "\"%s\": %.3g", key, v);
  return buf;
}

/// CrossEntropy.cuh's first pass on the host: each of 256 threads' online
/// (max, sum of exp(x - max)) over its columns (256 j + t) V + v (V = 8
/// where the stride is a multiple of 8), then the pairwise tree. Host
/// std::exp may differ from device expf in the last bit, so the sums agree
/// to a few fp32 ulps, not bit for bit.
struct SoftmaxRef {
  float max = -INFINITY, sum = 0.0f;
  void add(float x) {
    if (x > max) {
      sum = sum * std::exp(max - x) + 1.0f;
      max = x;
    } else if (x != -INFINITY) {
      sum += std::exp(x - max);
    }
  }
  static SoftmaxRef merge(SoftmaxRef a, SoftmaxRef b) {
    SoftmaxRef m;
    m.max = std::max(a.max, b.max);
    if (m.max != -INFINITY)
      m.sum = a.sum * std::exp(a.max - m.max) + b.sum * std::exp(b.max - m.max);
    return m;
  }
};
SoftmaxRef softmaxRowRef(const bf16 *x, int64_t vocab, int64_t stride) {
  constexpr int kBlock = 256;
  const int V = stride % 8 == 0 ? 8 : 1;
  SoftmaxRef part[kBlock];
  for (int t = 0; t < kBlock; ++t)
    for (int64_t i = int64_t(t) * V; i < vocab; i += kBlock * V)
      for (int k = 0; k < V && i + k < vocab; ++k)
        part[t].add(f(x[i + k]));
  for (int half = kBlock / 2; half > 0; half /= 2)
    for (int t = 0; t < half; ++t)
      part[t] = SoftmaxRef::merge(part[t], part[t + half]);
  return part[0];
}

void checkCrossEntropy(int64_t rows, int64_t vocab, int64_t stride,
                       uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto logits = randomBf16(rng, size_t(rows * stride), 6.0f);
  std::uniform_int_distribution<int32_t> pick(0, int32_t(vocab - 1));
  std::vector<int32_t> targets(static_cast<size_t>(rows));
  for (auto &t : targets)
    t = pick(rng);
  const double lossScale = 0.75;
  Device<bf16> logits_{logits.size()}, dlogits_{logits.size()};
  Device<int32_t> targets_{targets.size()};
  Device<float> loss_{1}, rowLoss_{size_t(rows)};
  Device<double> scale_{1};
  logits_.put(logits);
  targets_.put(targets);
  scale_.put({lossScale});
  CHECK(pipert::cuda::softmaxCrossEntropy(loss_.p, rowLoss_.p, dlogits_.p,
                                          logits_.p, targets_.p, scale_.p,
                                          rows, vocab, stride, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto dl = dlogits_.get();
  float loss = loss_.get()[0];
  const float sc = float(lossScale / double(rows));
  double total = 0;
  int worst = 0;
  int64_t padNonZero = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const bf16 *x = logits.data() + r * stride;
    const SoftmaxRef row = softmaxRowRef(x, vocab, stride);
    const float mx = row.max, sum = row.sum;
    int32_t t = targets[size_t(r)];
    total += double((mx + std::log(sum)) - f(x[t]));
    for (int64_t i = 0; i < stride; ++i) {
      uint16_t got = bits(dl[size_t(r * stride + i)]);
      if (i >= vocab) {
        padNonZero += got != 0;
        continue;
      }
      float p = std::exp(f(x[i]) - mx) / sum;
      worst = std::max(worst, ulps(got, fromFloat((i == t ? p - 1.0f : p) * sc)));
    }
  }
  float want = float(total / double(rows));
  double rel = std::fabs(double(loss) - want) / std::max(1e-30, double(std::fabs(want)));
  report("softmax_cross_entropy",
         "rows=" + std::to_string(rows) + " vocab=" + std::to_string(vocab) +
             " stride=" + std::to_string(stride),
         rel <= 1e-6 && worst <= 1 && padNonZero == 0,
         num("loss_relative", rel) + ", \"max_bf16_ulps\": " +
             std::to_string(worst) + ", \"padding_nonzero\": " +
             std::to_string(padNonZero));

  // In place (dlogits over the logits, as the lowering may plan it): the
  // same loss and gradient bits.
  Device<bf16> inPlace_{logits.size()};
  inPlace_.put(logits);
  CHECK(pipert::cuda::softmaxCrossEntropy(loss_.p, rowLoss_.p, inPlace_.p,
                                          inPlace_.p, targets_.p, scale_.p,
                                          rows, vocab, stride, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto inPlace = inPlace_.get();
  bool same = loss_.get()[0] == loss &&
              std::memcmp(inPlace.data(), dl.data(), dl.size() * 2) == 0;
  report("softmax_cross_entropy_in_place",
         "rows=" + std::to_string(rows) + " vocab=" + std::to_string(vocab),
         same, std::string("\"equal_to_separate\": ") + (same ? "true" : "false"));

  // One element off 16-byte alignment (read and written an element at a
  // time, in the same order): the same loss and gradient bits.
  Device<bf16> shiftedIn_{logits.size() + 1}, shiftedOut_{logits.size() + 1};
  CHECK(cudaMemcpy(shiftedIn_.p + 1, logits.data(), logits.size() * 2,
                   cudaMemcpyHostToDevice));
  CHECK(pipert::cuda::softmaxCrossEntropy(loss_.p, rowLoss_.p,
                                          shiftedOut_.p + 1, shiftedIn_.p + 1,
                                          targets_.p, scale_.p, rows, vocab,
                                          stride, nullptr));
  CHECK(cudaDeviceSynchronize());
  std::vector<bf16> shifted(logits.size());
  CHECK(cudaMemcpy(shifted.data(), shiftedOut_.p + 1, shifted.size() * 2,
                   cudaMemcpyDeviceToHost));
  bool sameShifted = loss_.get()[0] == loss &&
                     std::memcmp(shifted.data(), dl.data(), dl.size() * 2) == 0;
  report("softmax_cross_entropy_unaligned",
         "rows=" + std::to_string(rows) + " vocab=" + std::to_string(vocab),
         sameShifted, std::string("\"equal_to_aligned\": ") +
                          (sameShifted ? "true" : "false"));

  // A target outside the vocabulary (a padded column included) poisons the
  // loss and gets a zero gradient row.
  targets[0] = int32_t(vocab);
  targets_.put(targets);
  CHECK(pipert::cuda::softmaxCrossEntropy(loss_.p, rowLoss_.p, dlogits_.p,
                                          logits_.p, targets_.p, scale_.p,
                                          rows, vocab, stride, nullptr));
  CHECK(cudaDeviceSynchronize());
  dl = dlogits_.get();
  int64_t nonZero = 0;
  for (int64_t i = 0; i < stride; ++i)
    nonZero += bits(dl[size_t(i)]) != 0;
  report("softmax_cross_entropy_bad_target", "rows=" + std::to_string(rows),
         std::isnan(loss_.get()[0]) && nonZero == 0,
         "\"row_nonzero\": " + std::to_string(nonZero));
}

struct AttentionRef {
  std::vector<double> out, lse, dq, dk, dv;
};

/// Attention and its gradients in double from the bf16 inputs.
AttentionRef attentionRef(const pipert::cuda::AttentionShape &s,
                          const std::vector<float> &q,
                          const std::vector<float> &k,
                          const std::vector<float> &v,
                          const std::vector<float> &dout) {
  const int64_t dh = s.headDim, group = s.heads / s.kvHeads;
  const int64_t qs = s.heads * dh, kvs = s.kvHeads * dh;
  AttentionRef r;
  r.out.assign(q.size(), 0);
  r.dq.assign(q.size(), 0);
  r.dk.assign(k.size(), 0);
  r.dv.assign(v.size(), 0);
  r.lse.assign(size_t(s.batch * s.heads * s.seqQ), 0);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t t = 0; t < s.seqQ; ++t) {
        int64_t kvh = h / group, at = (b * s.seqQ + t) * qs + h * dh;
        int64_t n = s.causal ? std::min(s.seqKV, std::max<int64_t>(0, t + 1 + s.seqKV - s.seqQ)) : s.seqKV;
        std::vector<double> p(static_cast<size_t>(n));
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < dh; ++d)
            dot += double(q[size_t(at + d)]) * k[size_t((b * s.seqKV + j) * kvs + kvh * dh + d)];
          p[size_t(j)] = dot * s.scale;
          mx = std::max(mx, p[size_t(j)]);
        }
        for (auto &x : p)
          sum += (x = std::exp(x - mx));
        r.lse[size_t((b * s.heads + h) * s.seqQ + t)] = n ? mx + std::log(sum) : -INFINITY;
        for (int64_t j = 0; j < n; ++j)
          p[size_t(j)] /= sum;
        for (int64_t d = 0; d < dh; ++d)
          for (int64_t j = 0; j < n; ++j)
            r.out[size_t(at + d)] += p[size_t(j)] * v[size_t((b * s.seqKV + j) * kvs + kvh * dh + d)];
        double D = 0;
        for (int64_t d = 0; d < dh; ++d)
          D += double(dout[size_t(at + d)]) * r.out[size_t(at + d)];
        for (int64_t j = 0; j < n; ++j) {
          int64_t kv = (b * s.seqKV + j) * kvs + kvh * dh;
          double dp = 0;
          for (int64_t d = 0; d < dh; ++d)
            dp += double(dout[size_t(at + d)]) * v[size_t(kv + d)];
          double ds = p[size_t(j)] * (dp - D) * s.scale;
          for (int64_t d = 0; d < dh; ++d) {
            r.dq[size_t(at + d)] += ds * k[size_t(kv + d)];
            r.dk[size_t(kv + d)] += ds * q[size_t(at + d)];
            r.dv[size_t(kv + d)] += p[size_t(j)] * dout[size_t(at + d)];
          }
        }
      }
  return r;
}

/// Attention's forward and B against the double reference: the warp-per-
/// row kernels, or with `flash` the tiled tensor-core ones (which must also
/// repeat bit for bit: their sums run in an order fixed by the shape).
void checkAttention(pipert::cuda::AttentionShape s, uint64_t seed,
                    bool flash = false) {
  std::mt19937_64 rng(seed);
  const size_t nq = size_t(s.batch * s.seqQ * s.heads * s.headDim);
  const size_t nkv = size_t(s.batch * s.seqKV * s.kvHeads * s.headDim);
  auto q = randomBf16(rng, nq, 1.5f), k = randomBf16(rng, nkv, 1.5f);
  auto v = randomBf16(rng, nkv, 1.0f), dout = randomBf16(rng, nq, 1.0f);
  Device<bf16> q_{nq}, k_{nkv}, v_{nkv}, dout_{nq}, out_{nq}, dq_{nq},
      dk_{nkv}, dv_{nkv};
  Device<float> lse_{size_t(s.batch * s.heads * s.seqQ)};
  q_.put(q);
  k_.put(k);
  v_.put(v);
  dout_.put(dout);
  Device<float> rowDot_{size_t(s.batch * s.heads * s.seqQ) + 1};
  auto run = [&] {
    if (flash) {
      CHECK(pipert::cuda::flashAttentionForward(out_.p, lse_.p, q_.p, k_.p,
                                                v_.p, s, nullptr));
      CHECK(pipert::cuda::flashAttentionBackwardB(
          dq_.p, dk_.p, dv_.p, rowDot_.p, dout_.p, q_.p, k_.p, v_.p, out_.p,
          lse_.p, s, nullptr));
    } else {
      CHECK(pipert::cuda::attentionForward(out_.p, lse_.p, q_.p, k_.p, v_.p,
                                           s, nullptr));
      CHECK(pipert::cuda::attentionBackwardB(dq_.p, dk_.p, dv_.p, dout_.p,
                                             q_.p, k_.p, v_.p, out_.p, lse_.p,
                                             s, nullptr));
    }
    CHECK(cudaDeviceSynchronize());
  };
  run();
  bool repeats = true;
  if (flash) {
    // Poisoned again and run again: the same bits.
    auto out1 = out_.get(), dq1 = dq_.get(), dk1 = dk_.get(), dv1 = dv_.get();
    auto lse1 = lse_.get();
    for (auto *d : {&out_, &dq_, &dk_, &dv_})
      d->poison();
    lse_.poison();
    run();
    repeats = std::memcmp(out1.data(), out_.get().data(), nq * 2) == 0 &&
              std::memcmp(dq1.data(), dq_.get().data(), nq * 2) == 0 &&
              std::memcmp(dk1.data(), dk_.get().data(), nkv * 2) == 0 &&
              std::memcmp(dv1.data(), dv_.get().data(), nkv * 2) == 0 &&
              std::memcmp(lse1.data(), lse_.get().data(), lse1.size() * 4) == 0;
  }
  AttentionRef r = attentionRef(s, floats(q), floats(k), floats(v), floats(dout));
  double eOut = relativeError(floats(out_.get()), r.out);
  double eLse = relativeError(lse_.get(), r.lse);
  double eDq = relativeError(floats(dq_.get()), r.dq);
  double eDk = relativeError(floats(dk_.get()), r.dk);
  double eDv = relativeError(floats(dv_.get()), r.dv);
  std::string shape = "batch=" + std::to_string(s.batch) + " seq=" +
                      std::to_string(s.seqQ) + "/" + std::to_string(s.seqKV) +
                      " heads=" + std::to_string(s.heads) + "/" +
                      std::to_string(s.kvHeads) + " head_dim=" +
                      std::to_string(s.headDim) + (s.causal ? " causal" : "");
  const std::string prefix = flash ? "flash_" : "";
  const std::string again =
      flash ? std::string(", \"repeats_bitwise\": ") +
                  (repeats ? "true" : "false")
            : "";
  report(prefix + "attention_forward", shape,
         eOut <= 1e-2 && eLse <= 1e-5 && repeats,
         num("out_error", eOut) + ", " + num("lse_error", eLse) + again);
  report(prefix + "attention_backward_b", shape,
         eDq <= 1e-2 && eDk <= 1e-2 && eDv <= 1e-2 && repeats,
         num("dq_error", eDq) + ", " + num("dk_error", eDk) + ", " +
             num("dv_error", eDv) + again);
}

void checkGemm(pipert::cuda::Gemm &gemm, int64_t m, int64_t k, int64_t n,
               bool transposeRhs, bool bias, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto x = randomBf16(rng, size_t(m * k), 1.0f), w = randomBf16(rng, size_t(k * n), 1.0f);
  auto dy = randomBf16(rng, size_t(m * n), 1.0f), bv = randomBf16(rng, size_t(n), 1.0f);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> acc0(static_cast<size_t>(k * n));
  for (auto &a : acc0)
    a = d(rng);
  Device<bf16> x_{x.size()}, w_{w.size()}, dy_{dy.size()}, b_{bv.size()},
      y_{size_t(m * n)}, y2_{size_t(m * n)}, dx_{x.size()};
  Device<float> dw_{acc0.size()};
  x_.put(x);
  w_.put(w);
  dy_.put(dy);
  b_.put(bv);
  dw_.put(acc0);
  std::string shape = "m=" + std::to_string(m) + " k=" + std::to_string(k) +
                      " n=" + std::to_string(n) +
                      (transposeRhs ? " w=[n,k]" : " w=[k,n]") +
                      (bias ? " bias" : "");
  Device<bf16> dx2_{x.size()};
  Device<float> dw2_{acc0.size()};
  dw2_.put(acc0);
  const bf16 *bp = bias ? b_.p : nullptr;
  cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
  // Every product twice: the second must repeat the first's bits.
  for (int rep = 0; rep < 2 && st == CUBLAS_STATUS_SUCCESS; ++rep) {
    st = gemm.forward(rep ? y2_.p : y_.p, x_.p, w_.p, bp, m, k, n,
                      transposeRhs, nullptr);
    if (st == CUBLAS_STATUS_SUCCESS)
      st = gemm.backwardB(rep ? dx2_.p : dx_.p, dy_.p, w_.p, m, k, n,
                          transposeRhs, nullptr);
    if (st == CUBLAS_STATUS_SUCCESS)
      st = gemm.backwardW(rep ? dw2_.p : dw_.p, x_.p, dy_.p, m, k, n,
                          transposeRhs, nullptr);
  }
  if (st != CUBLAS_STATUS_SUCCESS) {
    report("gemm", shape, false,
           std::string("\"cublaslt\": \"") + pipert::cuda::gemmStatusString(st) + "\"");
    return;
  }
  CHECK(cudaDeviceSynchronize());
  // W as [k, n] whatever its storage.
  auto W = [&](int64_t kk, int64_t nn) {
    return double(f(w[size_t(transposeRhs ? nn * k + kk : kk * n + nn)]));
  };
  std::vector<double> y(static_cast<size_t>(m * n)),
      dx(static_cast<size_t>(m * k)), dw(acc0.size());
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = bias ? f(bv[size_t(j)]) : 0.0;
      for (int64_t c = 0; c < k; ++c)
        s += double(f(x[size_t(i * k + c)])) * W(c, j);
      y[size_t(i * n + j)] = s;
    }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < k; ++c) {
      double s = 0;
      for (int64_t j = 0; j < n; ++j)
        s += double(f(dy[size_t(i * n + j)])) * W(c, j);
      dx[size_t(i * k + c)] = s;
    }
  for (int64_t c = 0; c < k; ++c)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t i = 0; i < m; ++i)
        s += double(f(x[size_t(i * k + c)])) * f(dy[size_t(i * n + j)]);
      size_t at = size_t(transposeRhs ? j * k + c : c * n + j);
      dw[at] = acc0[at] + s;
    }
  auto yg = y_.get(), dxg = dx_.get();
  auto dwg = dw_.get();
  auto repeats = [](const void *a, const void *b, size_t bytes) {
    return std::string(", \"repeats_bitwise\": ") +
           (std::memcmp(a, b, bytes) == 0 ? "true" : "false");
  };
  std::string rY = repeats(yg.data(), y2_.get().data(), yg.size() * 2);
  std::string rB = repeats(dxg.data(), dx2_.get().data(), dxg.size() * 2);
  std::string rW = repeats(dwg.data(), dw2_.get().data(), dwg.size() * 4);
  auto ok = [](const std::string &r) { return r.find("true") != std::string::npos; };
  double eY = relativeError(floats(yg), y), eB = relativeError(floats(dxg), dx);
  double eW = relativeError(dwg, dw);
  report("gemm_forward", shape, eY <= 1e-2 && ok(rY), num("error", eY) + rY);
  report("gemm_backward_b", shape, eB <= 1e-2 && ok(rB), num("error", eB) + rB);
  report("gemm_backward_w", shape, eW <= 1e-5 && ok(rW), num("error", eW) + rW);
}

/// The optimizer's reductions and scalars: sum_uses bit for bit (fp32 adds
/// in use order), sum_squares within 1e-12 relative of a double sum (the
/// blocks' order is not a sequential one) and, in chunks through a
/// workspace, the same bits when run again, the global norm over 150
/// squares (three launches of 64) bit for bit against the ordered sum, the
/// clip scale within 1e-15 and the learning rate (against
/// pipert::LrSchedule) within 1e-14 relative.
void checkOptimizer(int64_t n, int64_t uses, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<std::vector<float>> accs(static_cast<size_t>(uses),
                                      std::vector<float>(static_cast<size_t>(n)));
  std::vector<std::unique_ptr<Device<float>>> accs_;
  std::vector<const float *> accPtrs;
  for (auto &a : accs) {
    for (auto &x : a)
      x = d(rng);
    accs_.push_back(std::make_unique<Device<float>>(a.size()));
    accs_.back()->put(a);
    accPtrs.push_back(accs_.back()->p);
  }
  Device<float> g_{size_t(n)};
  Device<double> sq_{1}, again_{1}, single_{1};
  Device<uint8_t> ws_{size_t(1) << 20};
  const pipert::cuda::Workspace ws{ws_.p, int64_t(ws_.n)};
  CHECK(pipert::cuda::sumUses(g_.p, accPtrs.data(), uses, n, nullptr));
  CHECK(pipert::cuda::sumSquares(sq_.p, g_.p, n, ws, nullptr));
  ws_.poison();
  CHECK(pipert::cuda::sumSquares(again_.p, g_.p, n, ws, nullptr));
  CHECK(pipert::cuda::sumSquares(single_.p, g_.p, n, {}, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto g = g_.get();
  int64_t differ = 0;
  double squares = 0;
  for (int64_t i = 0; i < n; ++i) {
    float s = uses ? accs[0][size_t(i)] : 0.0f;
    for (int64_t u = 1; u < uses; ++u)
      s = s + accs[size_t(u)][size_t(i)];
    differ += std::memcmp(&s, &g[size_t(i)], 4) != 0;
    squares += double(s) * double(s);
  }
  double sq = sq_.get()[0], again = again_.get()[0];
  double rel = std::fabs(sq - squares) / std::max(1e-300, squares);
  rel = std::max(rel, std::fabs(single_.get()[0] - squares) /
                          std::max(1e-300, squares));
  std::string shape = "n=" + std::to_string(n) + " uses=" + std::to_string(uses);
  report("sum_uses", shape, differ == 0,
         "\"values_differing\": " + std::to_string(differ));
  report("sum_squares", shape,
         rel <= 1e-12 && std::memcmp(&sq, &again, 8) == 0,
         num("relative", rel) + ", \"repeats\": " +
             (std::memcmp(&sq, &again, 8) == 0 ? "true" : "false"));
}

/// The multi-tensor sum of squares against one sumSquares a tensor, bit
/// for bit: 40 tensors (two packs), empty, single-block (up to 16,384) and
/// chunked (16,385 and more) ones mixed.
void checkSquaresMulti(int64_t wsBytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  const int count = 40;
  std::vector<std::unique_ptr<Device<float>>> xs;
  Device<double> multi_{size_t(count)}, single_{size_t(count)};
  Device<uint8_t> ws_{static_cast<size_t>(wsBytes)};
  const pipert::cuda::Workspace ws{wsBytes ? ws_.p : nullptr, wsBytes};
  std::vector<pipert::cuda::SquaresTensor> tensors;
  for (int k = 0; k < count; ++k) {
    const int64_t n = k == 3 ? 0 : k == 4 ? 16384 : k == 5 ? 16385
                    : k % 2 ? 100 + 77 * k : 20000 * k + 1;
    std::vector<float> h(static_cast<size_t>(n));
    for (auto &x : h)
      x = d(rng);
    xs.push_back(std::make_unique<Device<float>>(h.size()));
    xs.back()->put(h);
    tensors.push_back({xs.back()->p, n, multi_.p + k});
    CHECK(pipert::cuda::sumSquares(single_.p + k, xs.back()->p, n, ws,
                                   nullptr));
  }
  CHECK(pipert::cuda::sumSquaresMulti(tensors.data(), count, ws, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto multi = multi_.get(), single = single_.get();
  int64_t differ = 0;
  for (int k = 0; k < count; ++k)
    differ += std::memcmp(&multi[size_t(k)], &single[size_t(k)], 8) != 0;
  report("sum_squares_multi", "tensors=40 workspace=" + std::to_string(wsBytes),
         differ == 0,
         "\"against_one_call_each_differing\": " + std::to_string(differ));
}

/// ZeRO-1's norm (docs/NUMERICS.md): each of D replicas squares its part
/// of every gradient (pipert::zeroShard) into the chunk slots, the slots
/// are summed over the replicas in replica order (as the all-reduce does,
/// each slot from one replica), and normTotals must give sumSquares' bits
/// of the whole gradient, for one-chunk, ragged and empty tensors, every
/// key. A part that starts inside a chunk is refused.
void checkZeroSquares(int32_t replicas, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  const int64_t C = pipert::kNormChunk;
  const std::vector<int64_t> sizes = {0,         1,         777,     C,
                                      C + 1,     2 * C,     3 * C + 17,
                                      7 * C - 5, 11 * C + 5, 40 * C + 3};
  const int count = int(sizes.size());
  std::vector<std::unique_ptr<Device<float>>> xs;
  std::vector<int64_t> slotFirst(1, 0);
  for (int64_t n : sizes)
    slotFirst.push_back(slotFirst.back() + pipert::normChunks(n));
  const int64_t slots = slotFirst.back();
  Device<double> whole_{size_t(count)}, totals_{size_t(count)};
  Device<double> slots_{size_t(std::max<int64_t>(slots, 1))};
  Device<uint8_t> ws_{size_t(32) << 20};
  const pipert::cuda::Workspace ws{ws_.p, int64_t(ws_.n)};
  for (int k = 0; k < count; ++k) {
    std::vector<float> h(static_cast<size_t>(sizes[size_t(k)]));
    for (auto &x : h)
      x = d(rng);
    xs.push_back(std::make_unique<Device<float>>(h.size()));
    xs.back()->put(h);
    CHECK(pipert::cuda::sumSquares(whole_.p + k, xs.back()->p, sizes[size_t(k)],
                                   ws, nullptr));
  }
  // Each replica's slots (zero where another replica's chunks are), then
  // their sum in replica order.
  std::vector<double> summed(size_t(slots), 0.0);
  for (int32_t q = 0; q < replicas; ++q) {
    CHECK(cudaMemset(slots_.p, 0, size_t(std::max<int64_t>(slots, 1)) * 8));
    std::vector<pipert::cuda::ShardSquaresTensor> parts;
    for (int k = 0; k < count; ++k) {
      const pipert::ShardRange r =
          pipert::zeroShard(sizes[size_t(k)], k % replicas, q, replicas);
      parts.push_back({xs[size_t(k)]->p, sizes[size_t(k)], r.first, r.count,
                       slots_.p + slotFirst[size_t(k)]});
    }
    CHECK(pipert::cuda::shardSquaresMulti(parts.data(), count, nullptr));
    CHECK(cudaDeviceSynchronize());
    auto mine = slots_.get();
    for (int64_t i = 0; i < slots; ++i)
      summed[size_t(i)] = q == 0 ? mine[size_t(i)]
                                 : summed[size_t(i)] + mine[size_t(i)];
  }
  CHECK(cudaMemcpy(slots_.p, summed.data(), summed.size() * 8,
                   cudaMemcpyHostToDevice));
  totals_.poison();
  std::vector<pipert::cuda::NormTotalTensor> totals;
  for (int k = 0; k < count; ++k)
    totals.push_back({slots_.p + slotFirst[size_t(k)], sizes[size_t(k)],
                      totals_.p + k});
  CHECK(pipert::cuda::normTotals(totals.data(), count, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto whole = whole_.get(), got = totals_.get();
  int64_t differ = 0;
  for (int k = 0; k < count; ++k)
    differ += std::memcmp(&whole[size_t(k)], &got[size_t(k)], 8) != 0;
  // Parts that break the rule are refused: one starting inside a chunk,
  // one ending inside a chunk (not at n), part of a one-chunk tensor.
  const pipert::cuda::ShardSquaresTensor bad[] = {
      {xs.back()->p, sizes.back(), C / 2, C, slots_.p},
      {xs.back()->p, sizes.back(), C, C + 7, slots_.p},
      {xs[2]->p, sizes[2], 0, sizes[2] - 1, slots_.p}};
  bool refused = true;
  for (const pipert::cuda::ShardSquaresTensor &b : bad)
    refused = refused && pipert::cuda::shardSquaresMulti(&b, 1, nullptr) ==
                             cudaErrorInvalidValue;
  report("zero_squares", "replicas=" + std::to_string(replicas) + " tensors=" +
                             std::to_string(count),
         differ == 0 && refused,
         "\"against_the_whole_differing\": " + std::to_string(differ) +
             ", \"parts_off_the_chunks_refused\": " +
             (refused ? "true" : "false"));
}

/// The multi-tensor sum over uses against one sumUses a tensor, bit for
/// bit: 30 gradients (two launches) of 0 to 3 uses, one of 70 (more than a
/// launch carries: its own sumUses), one empty.
void checkSumUsesMulti(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  const int count = 30;
  std::vector<std::unique_ptr<Device<float>>> mem;
  std::vector<std::vector<const float *>> accs(count);
  std::vector<pipert::cuda::SumUsesTensor> multi;
  std::vector<float *> single;
  for (int k = 0; k < count; ++k) {
    const int64_t n = k == 2 ? 0 : 300 + 1000 * k;
    const int64_t uses = k == 9 ? 70 : k % 4;
    for (int64_t u = 0; u < uses; ++u) {
      std::vector<float> h(static_cast<size_t>(n));
      for (auto &x : h)
        x = d(rng);
      mem.push_back(std::make_unique<Device<float>>(h.size()));
      mem.back()->put(h);
      accs[size_t(k)].push_back(mem.back()->p);
    }
    mem.push_back(std::make_unique<Device<float>>(size_t(n)));
    multi.push_back({mem.back()->p, accs[size_t(k)].data(), uses, n});
    mem.push_back(std::make_unique<Device<float>>(size_t(n)));
    single.push_back(mem.back()->p);
    CHECK(pipert::cuda::sumUses(single.back(), accs[size_t(k)].data(), uses,
                                n, nullptr));
  }
  CHECK(pipert::cuda::sumUsesMulti(multi.data(), count, nullptr));
  CHECK(cudaDeviceSynchronize());
  int64_t differ = 0;
  for (int k = 0; k < count; ++k) {
    const int64_t n = multi[size_t(k)].n;
    std::vector<float> a(static_cast<size_t>(n)), b(a.size());
    CHECK(cudaMemcpy(a.data(), multi[size_t(k)].g, a.size() * 4,
                     cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(b.data(), single[size_t(k)], b.size() * 4,
                     cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < a.size(); ++i)
      differ += std::memcmp(&a[i], &b[i], 4) != 0;
  }
  report("sum_uses_multi", "tensors=30", differ == 0,
         "\"against_one_call_each_differing\": " + std::to_string(differ));
}

void checkNormClipLr() {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> d(0.0, 3.0);
  const int count = 150;
  std::vector<std::unique_ptr<Device<double>>> sq;
  std::vector<const double *> ptrs;
  double total = 0;
  for (int i = 0; i < count; ++i) {
    double v = d(rng);
    total += v;
    sq.push_back(std::make_unique<Device<double>>(1));
    sq.back()->put({v});
    ptrs.push_back(sq.back()->p);
  }
  Device<double> norm_{1}, clip_{1}, lr_{1};
  Device<int64_t> step_{1};
  CHECK(pipert::cuda::gradNorm(norm_.p, ptrs.data(), count, nullptr));
  CHECK(pipert::cuda::clipScale(clip_.p, norm_.p, 1.0, nullptr));
  CHECK(cudaDeviceSynchronize());
  double norm = norm_.get()[0], clip = clip_.get()[0];
  double want = std::sqrt(total);
  report("grad_norm_and_clip", "count=150",
         norm == want && std::fabs(clip - 1.0 / want) <= 1e-15 * (1.0 / want),
         num("norm", norm) + ", " + num("clip", clip));
  pipert::LrSchedule s;
  s.lr = 6e-4;
  s.minLr = 6e-5;
  s.warmupSteps = 10;
  s.decaySteps = 100;
  double worst = 0;
  for (bool cosine : {true, false})
    for (int64_t step : {0, 5, 9, 10, 11, 57, 99, 100, 250}) {
      s.cosine = cosine;
      step_.put({step});
      CHECK(pipert::cuda::lrSchedule(lr_.p, step_.p, s.warmupSteps,
                                     s.decaySteps, cosine, s.lr, s.minLr,
                                     nullptr));
      CHECK(cudaDeviceSynchronize());
      double got = lr_.get()[0], w = s.at(step);
      worst = std::max(worst, std::fabs(got - w) / w);
    }
  report("lr_schedule", "warmup=10 decay=100", worst <= 1e-14,
         num("max_relative", worst));
}

} // namespace

void runModelChecks() {
  checkOptimizer(1001, 1, 42);
  checkOptimizer(1 << 20, 2, 43);
  checkOptimizer(5000, 70, 44);
  checkOptimizer(77, 0, 45);
  checkOptimizer((1 << 22) + 13, 1, 46); // 513 chunks
  // The ranks' workspace; one too small for a pack's partials (each
  // tensor then on its own); none.
  checkSquaresMulti(int64_t(32) << 20, 48);
  checkSquaresMulti(8 * 200, 50);
  checkSquaresMulti(0, 51);
  checkSumUsesMulti(49);
  checkZeroSquares(2, 52);
  checkZeroSquares(3, 53);
  checkNormClipLr();
  checkCrossEntropy(7, 1000, 1024, 31);
  checkCrossEntropy(64, 50257, 50304, 32);
  checkCrossEntropy(5, 333, 333, 47); // one column a thread
  pipert::cuda::AttentionShape s;
  s = {2, 37, 37, 4, 2, 24, true, 1.0 / std::sqrt(24.0)};
  checkAttention(s, 33);
  s = {1, 13, 29, 3, 3, 64, true, 0.125};
  checkAttention(s, 34);
  s = {1, 9, 9, 2, 1, 100, false, 0.1};
  checkAttention(s, 35);
  s = {2, 256, 256, 12, 12, 64, true, 0.125};
  checkAttention(s, 36);
  // Causal with fewer keys than queries: the first rows see no key (zero
  // output, lse -inf, zero gradients).
  s = {1, 29, 13, 2, 1, 32, true, 0.2};
  checkAttention(s, 41);
  // The tiled kernels (head sizes 64 and 128): sequences that are not
  // multiples of the 64-row tiles, grouped-query heads, causal with more
  // and with fewer keys than queries, full attention, GPT-2's shape.
  s = {2, 100, 100, 4, 2, 64, true, 0.125};
  checkAttention(s, 51, true);
  s = {1, 77, 130, 3, 3, 64, true, 0.125};
  checkAttention(s, 52, true);
  s = {1, 130, 50, 2, 1, 64, true, 0.125};
  checkAttention(s, 53, true);
  s = {2, 65, 91, 4, 4, 64, false, 0.1};
  checkAttention(s, 54, true);
  s = {1, 150, 150, 4, 2, 128, true, 1.0 / std::sqrt(128.0)};
  checkAttention(s, 55, true);
  s = {1, 33, 97, 2, 2, 128, false, 0.09};
  checkAttention(s, 56, true);
  s = {2, 256, 256, 12, 12, 64, true, 0.125};
  checkAttention(s, 57, true);

  // One rank's GEMM state: a 32 MiB workspace, llm.c's size for Hopper.
  const size_t workspace = size_t(32) << 20;
  void *ws = nullptr;
  CHECK(cudaMalloc(&ws, workspace));
  std::string error;
  auto gemm = pipert::cuda::Gemm::create(ws, workspace, error);
  if (!gemm) {
    report("gemm_create", "", false, "\"error\": \"" + error + "\"");
    return;
  }
  checkGemm(*gemm, 37, 97, 61, false, false, 37);
  checkGemm(*gemm, 37, 97, 61, true, true, 38);
  // GPT-2's shapes with few rows: the double references are the host's
  // work, kept to seconds.
  checkGemm(*gemm, 64, 768, 2304, false, true, 39);
  checkGemm(*gemm, 16, 768, 50304, true, false, 40);
  gemm.reset();
  cudaFree(ws);
}

} // namespace harness
