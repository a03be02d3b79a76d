//===- KernelHarness.cu - every cuda kernel against its CPU emulation -------===//
//
// Run by scripts/gpu-check.sh on a GPU machine (built on the build machine,
// where it only compiles). Each kernel of libpipert_kernels_cuda runs on
// fresh random data at odd shapes, its outputs poisoned (all bits set, a
// NaN) before the launch, and is compared with the same computation on the
// CPU with bf16 storage emulated by pipert::bf16 (Bf16.h):
//
//   layernorm fwd, B   bit for bit (the CPU repeats the warp's lane order and
//                      xor-butterfly; IEEE division and sqrt on both sides)
//   embedding fwd, W   bit for bit (a copy; fp32 adds in token order)
//   rmsnorm fwd, B     bit for bit (the same lane order and butterfly)
//   rope fwd, B        bit for bit (the same fp32 tables and products)
//   gelu, silu         within 1 bf16 ulp (device tanhf / expf and host libm
//                      may differ in the last fp32 bits before the rounding)
//   adamw              within 1e-6 relative (device and host pow)
//
// Prints one JSON object per check and a summary line; exits 0 when every
// check passes, 1 when one fails, 3 when there is no GPU.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include "kernels/cuda/Kernels.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace harness {
namespace {

float geluRef(float v) {
  float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
  return 0.5f * v * (1.0f + std::tanh(u));
}
float geluGradRef(float v) {
  float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
  float th = std::tanh(u);
  float du = 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * v * v);
  return 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * du;
}

/// The activations' 16-byte path (n a multiple of 8, aligned) against
/// their one-element path (the same inputs one element in, misaligned):
/// the same bits. Returns the values differing.
template <typename Forward, typename Backward>
int64_t vectorAgainstScalar(const Device<bf16> &x_, const Device<bf16> &dy_,
                            int64_t n, Forward forward, Backward backward) {
  if (n % 8 != 0 || n < 16)
    return 0;
  Device<bf16> y8_{size_t(n)}, y1_{size_t(n)}, b8_{size_t(n)}, b1_{size_t(n)};
  CHECK(forward(y8_.p, x_.p, n));
  CHECK(forward(y1_.p + 1, x_.p + 1, n - 1));
  CHECK(backward(b8_.p, dy_.p, x_.p, n));
  CHECK(backward(b1_.p + 1, dy_.p + 1, x_.p + 1, n - 1));
  CHECK(cudaDeviceSynchronize());
  auto y8 = y8_.get(), y1 = y1_.get(), b8 = b8_.get(), b1 = b1_.get();
  int64_t differ = 0;
  for (int64_t i = 1; i < n; ++i)
    differ += (bits(y8[size_t(i)]) != bits(y1[size_t(i)])) +
              (bits(b8[size_t(i)]) != bits(b1[size_t(i)]));
  return differ;
}

void checkGelu(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto x = randomBf16(rng, size_t(n), 4.0f), dy = randomBf16(rng, size_t(n), 1.0f);
  Device<bf16> dx_{size_t(n)}, x_{size_t(n)}, y_{size_t(n)}, dy_{size_t(n)};
  x_.put(x);
  dy_.put(dy);
  CHECK(pipert::cuda::geluForward(y_.p, x_.p, n, nullptr));
  CHECK(pipert::cuda::geluBackward(dx_.p, dy_.p, x_.p, n, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto y = y_.get(), dx = dx_.get();
  int worstF = 0, worstB = 0;
  for (int64_t i = 0; i < n; ++i) {
    worstF = std::max(worstF, ulps(bits(y[size_t(i)]),
                                   fromFloat(geluRef(f(x[size_t(i)])))));
    worstB = std::max(
        worstB, ulps(bits(dx[size_t(i)]),
                     fromFloat(f(dy[size_t(i)]) * geluGradRef(f(x[size_t(i)])))));
  }
  const int64_t paths = vectorAgainstScalar(
      x_, dy_, n,
      [](bf16 *y, const bf16 *x, int64_t m) {
        return pipert::cuda::geluForward(y, x, m, nullptr);
      },
      [](bf16 *dx, const bf16 *dy, const bf16 *x, int64_t m) {
        return pipert::cuda::geluBackward(dx, dy, x, m, nullptr);
      });
  std::string shape = "n=" + std::to_string(n);
  std::string vs = ", \"vector_vs_scalar_differing\": " + std::to_string(paths);
  report("gelu_forward", shape, worstF <= 1 && paths == 0,
         "\"max_bf16_ulps\": " + std::to_string(worstF) + vs);
  report("gelu_backward", shape, worstB <= 1 && paths == 0,
         "\"max_bf16_ulps\": " + std::to_string(worstB) + vs);
}

void checkSilu(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto x = randomBf16(rng, size_t(n), 6.0f), dy = randomBf16(rng, size_t(n), 1.0f);
  Device<bf16> x_{size_t(n)}, y_{size_t(n)}, dy_{size_t(n)}, dx_{size_t(n)};
  x_.put(x);
  dy_.put(dy);
  CHECK(pipert::cuda::siluForward(y_.p, x_.p, n, nullptr));
  CHECK(pipert::cuda::siluBackward(dx_.p, dy_.p, x_.p, n, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto y = y_.get(), dx = dx_.get();
  int worstF = 0, worstB = 0;
  for (int64_t i = 0; i < n; ++i) {
    float v = f(x[size_t(i)]);
    float sg = 1.0f / (1.0f + std::exp(-v));
    worstF = std::max(worstF, ulps(bits(y[size_t(i)]),
                                   fromFloat(v / (1.0f + std::exp(-v)))));
    worstB = std::max(worstB,
                      ulps(bits(dx[size_t(i)]),
                           fromFloat(f(dy[size_t(i)]) *
                                     (sg * (1.0f + v * (1.0f - sg))))));
  }
  const int64_t paths = vectorAgainstScalar(
      x_, dy_, n,
      [](bf16 *y, const bf16 *x, int64_t m) {
        return pipert::cuda::siluForward(y, x, m, nullptr);
      },
      [](bf16 *dx, const bf16 *dy, const bf16 *x, int64_t m) {
        return pipert::cuda::siluBackward(dx, dy, x, m, nullptr);
      });
  std::string shape = "n=" + std::to_string(n);
  std::string vs = ", \"vector_vs_scalar_differing\": " + std::to_string(paths);
  report("silu_forward", shape, worstF <= 1 && paths == 0,
         "\"max_bf16_ulps\": " + std::to_string(worstF) + vs);
  report("silu_backward", shape, worstB <= 1 && paths == 0,
         "\"max_bf16_ulps\": " + std::to_string(worstB) + vs);
}


/// Bits of a and b that differ.
template <typename T>
int64_t bitsDiffer(const std::vector<T> &a, const std::vector<T> &b) {
  int64_t n = 0;
  for (size_t i = 0; i < a.size(); ++i)
    n += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  return n;
}

/// x (n values) at one element past 16-byte alignment: the kernels read
/// it one element at a time, in the same order.
struct Shifted {
  Device<bf16> d;
  explicit Shifted(const std::vector<bf16> &x) : d(x.size() + 1) {
    CHECK(cudaMemcpy(d.p + 1, x.data(), x.size() * sizeof(bf16),
                     cudaMemcpyHostToDevice));
  }
  bf16 *p() const { return d.p + 1; }
  std::vector<bf16> get() const {
    std::vector<bf16> h(d.n - 1);
    CHECK(cudaMemcpy(h.data(), d.p + 1, h.size() * sizeof(bf16),
                     cudaMemcpyDeviceToHost));
    return h;
  }
};

/// The forward against the CPU; the residual form (x = bf16(a + b))
/// against the plain one on the host-added sum; both again one element
/// off 16-byte alignment: bit for bit.
void checkLayernorm(int64_t rows, int64_t dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto a = randomBf16(rng, size_t(rows * dim), 2.0f);
  auto r = randomBf16(rng, size_t(rows * dim), 2.0f);
  std::vector<bf16> x(a.size());
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = toBf16(fromFloat(f(a[i]) + f(r[i])));
  auto g = randomBf16(rng, size_t(dim), 1.0f), b = randomBf16(rng, size_t(dim), 1.0f);
  Device<bf16> x_(x.size()), g_(g.size()), b_(b.size()), y_(x.size()),
      a_(a.size()), r_(r.size()), sum_(x.size()), y2_(x.size());
  Device<float> mean_{size_t(rows)}, rstd_{size_t(rows)}, mean2_{size_t(rows)},
      rstd2_{size_t(rows)};
  x_.put(x);
  g_.put(g);
  b_.put(b);
  a_.put(a);
  r_.put(r);
  Shifted xs(x), ys(std::vector<bf16>(x.size()));
  Shifted as(a), rs_(r), sums(std::vector<bf16>(x.size())),
      y2s(std::vector<bf16>(x.size()));
  const float eps = 1e-5f;
  CHECK(pipert::cuda::layernormForward(y_.p, mean_.p, rstd_.p, x_.p, g_.p, b_.p,
                                       rows, dim, eps, nullptr));
  CHECK(pipert::cuda::addLayernormForward(sum_.p, y2_.p, mean2_.p, rstd2_.p,
                                          a_.p, r_.p, g_.p, b_.p, rows, dim,
                                          eps, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto y = y_.get();
  auto mean = mean_.get(), rstd = rstd_.get();
  int64_t fused = bitsDiffer(sum_.get(), x) + bitsDiffer(y2_.get(), y) +
                  bitsDiffer(mean2_.get(), mean) + bitsDiffer(rstd2_.get(), rstd);
  mean2_.poison();
  rstd2_.poison();
  CHECK(pipert::cuda::layernormForward(ys.p(), mean2_.p, rstd2_.p, xs.p(), g_.p,
                                       b_.p, rows, dim, eps, nullptr));
  CHECK(cudaDeviceSynchronize());
  int64_t shifted = bitsDiffer(ys.get(), y) + bitsDiffer(mean2_.get(), mean) +
                    bitsDiffer(rstd2_.get(), rstd);
  mean2_.poison();
  rstd2_.poison();
  CHECK(pipert::cuda::addLayernormForward(sums.p(), y2s.p(), mean2_.p,
                                          rstd2_.p, as.p(), rs_.p(), g_.p,
                                          b_.p, rows, dim, eps, nullptr));
  CHECK(cudaDeviceSynchronize());
  shifted += bitsDiffer(sums.get(), x) + bitsDiffer(y2s.get(), y) +
             bitsDiffer(mean2_.get(), mean) + bitsDiffer(rstd2_.get(), rstd);
  int64_t differ = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const bf16 *xr = x.data() + r * dim;
    float mu = rowSumRef(dim, [&](int64_t i) { return f(xr[i]); }) / float(dim);
    float sq = rowSumRef(dim, [&](int64_t i) {
      float d = f(xr[i]) - mu;
      return d * d;
    });
    float rs = 1.0f / std::sqrt(sq / float(dim) + eps);
    differ += std::memcmp(&mu, &mean[size_t(r)], 4) != 0;
    differ += std::memcmp(&rs, &rstd[size_t(r)], 4) != 0;
    for (int64_t i = 0; i < dim; ++i) {
      uint16_t want = fromFloat((f(xr[i]) - mu) * rs * f(g[size_t(i)]) +
                                f(b[size_t(i)]));
      differ += bits(y[size_t(r * dim + i)]) != want;
    }
  }
  const std::string shape =
      "rows=" + std::to_string(rows) + " dim=" + std::to_string(dim);
  report("layernorm_forward", shape, differ == 0 && shifted == 0,
         "\"values_differing\": " + std::to_string(differ) +
             ", \"unaligned_differing\": " + std::to_string(shifted));
  report("add_layernorm_forward", shape, fused == 0,
         "\"against_add_then_layernorm_differing\": " + std::to_string(fused));
}

void checkRmsnorm(int64_t rows, int64_t dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto a = randomBf16(rng, size_t(rows * dim), 2.0f);
  auto r = randomBf16(rng, size_t(rows * dim), 2.0f);
  std::vector<bf16> x(a.size());
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = toBf16(fromFloat(f(a[i]) + f(r[i])));
  auto dy = randomBf16(rng, size_t(rows * dim), 1.0f);
  auto g = randomBf16(rng, size_t(dim), 1.0f);
  Device<bf16> x_{x.size()}, dy_{dy.size()}, g_{g.size()}, y_{x.size()},
      dx_{x.size()};
  Device<float> rstd_{size_t(rows)};
  x_.put(x);
  dy_.put(dy);
  g_.put(g);
  const float eps = 1e-5f;
  CHECK(pipert::cuda::rmsnormForward(y_.p, rstd_.p, x_.p, g_.p, rows, dim, eps,
                                     nullptr));
  CHECK(pipert::cuda::rmsnormBackwardB(dx_.p, dy_.p, x_.p, rstd_.p, g_.p, rows,
                                       dim, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto y = y_.get(), dx = dx_.get();
  auto rstd = rstd_.get();
  // The residual form against the plain one, and both one element off
  // 16-byte alignment: bit for bit.
  Device<bf16> a_{a.size()}, r_{r.size()}, sum_{x.size()}, y2_{x.size()};
  Device<float> rstd2_{size_t(rows)};
  a_.put(a);
  r_.put(r);
  CHECK(pipert::cuda::addRmsnormForward(sum_.p, y2_.p, rstd2_.p, a_.p, r_.p,
                                        g_.p, rows, dim, eps, nullptr));
  CHECK(cudaDeviceSynchronize());
  int64_t fused = bitsDiffer(sum_.get(), x) + bitsDiffer(y2_.get(), y) +
                  bitsDiffer(rstd2_.get(), rstd);
  Shifted xs(x), ys(std::vector<bf16>(x.size())), dys(dy),
      dxs(std::vector<bf16>(x.size()));
  rstd2_.poison();
  CHECK(pipert::cuda::rmsnormForward(ys.p(), rstd2_.p, xs.p(), g_.p, rows, dim,
                                     eps, nullptr));
  CHECK(pipert::cuda::rmsnormBackwardB(dxs.p(), dys.p(), xs.p(), rstd_.p, g_.p,
                                       rows, dim, nullptr));
  CHECK(cudaDeviceSynchronize());
  int64_t shifted = bitsDiffer(ys.get(), y) + bitsDiffer(rstd2_.get(), rstd) +
                    bitsDiffer(dxs.get(), dx);
  int64_t differF = 0, differB = 0;
  for (int64_t row = 0; row < rows; ++row) {
    const bf16 *xr = x.data() + row * dim, *gr = dy.data() + row * dim;
    float rs = 1.0f / std::sqrt(rowSumRef(dim, [&](int64_t i) {
                                  float v = f(xr[i]);
                                  return v * v;
                                }) / float(dim) +
                                eps);
    differF += std::memcmp(&rs, &rstd[size_t(row)], 4) != 0;
    auto grad = [&](int64_t i) { return f(gr[i]) * f(g[size_t(i)]); };
    float meanGX = rowSumRef(dim, [&](int64_t i) {
                     return grad(i) * (f(xr[i]) * rs);
                   }) /
                   float(dim);
    for (int64_t i = 0; i < dim; ++i) {
      differF += bits(y[size_t(row * dim + i)]) !=
                 fromFloat(f(xr[i]) * rs * f(g[size_t(i)]));
      differB += bits(dx[size_t(row * dim + i)]) !=
                 fromFloat((grad(i) - (f(xr[i]) * rs) * meanGX) * rs);
    }
  }
  std::string shape = "rows=" + std::to_string(rows) + " dim=" + std::to_string(dim);
  const std::string unaligned =
      ", \"unaligned_differing\": " + std::to_string(shifted);
  report("rmsnorm_forward", shape, differF == 0 && shifted == 0,
         "\"values_differing\": " + std::to_string(differF) + unaligned);
  report("rmsnorm_backward_b", shape, differB == 0 && shifted == 0,
         "\"values_differing\": " + std::to_string(differB) + unaligned);
  report("add_rmsnorm_forward", shape, fused == 0,
         "\"against_add_then_rmsnorm_differing\": " + std::to_string(fused));
}

void checkRope(int64_t batch, int64_t seq, int64_t heads, int64_t headDim,
               uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t half = headDim / 2, n = batch * seq * heads * headDim;
  auto x = randomBf16(rng, size_t(n), 2.0f);
  // The tables as the cpu kernel makes them: double angles, rounded once.
  std::vector<float> cosT(size_t(seq * half)), sinT(cosT.size());
  for (int64_t i = 0; i < half; ++i) {
    double invFreq = 1.0 / std::pow(10000.0, double(2 * i) / double(headDim));
    for (int64_t t = 0; t < seq; ++t) {
      cosT[size_t(t * half + i)] = float(std::cos(double(t) * invFreq));
      sinT[size_t(t * half + i)] = float(std::sin(double(t) * invFreq));
    }
  }
  Device<bf16> x_{size_t(n)}, y_{size_t(n)}, b_{size_t(n)};
  Device<float> cos_{cosT.size()}, sin_{sinT.size()};
  x_.put(x);
  cos_.put(cosT);
  sin_.put(sinT);
  CHECK(pipert::cuda::rope(y_.p, x_.p, cos_.p, sin_.p, batch, seq, heads,
                           headDim, false, nullptr));
  CHECK(pipert::cuda::rope(b_.p, x_.p, cos_.p, sin_.p, batch, seq, heads,
                           headDim, true, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto y = y_.get(), yb = b_.get();
  int64_t differ = 0;
  for (int64_t r = 0; r < batch * seq; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        int64_t base = (r * heads + h) * headDim, t = r % seq;
        float c = cosT[size_t(t * half + i)], sn = sinT[size_t(t * half + i)];
        float a = f(x[size_t(base + i)]), b = f(x[size_t(base + i + half)]);
        differ += bits(y[size_t(base + i)]) != fromFloat(a * c - b * sn);
        differ += bits(y[size_t(base + i + half)]) != fromFloat(b * c + a * sn);
        differ += bits(yb[size_t(base + i)]) != fromFloat(a * c + b * sn);
        differ += bits(yb[size_t(base + i + half)]) != fromFloat(b * c - a * sn);
      }
  report("rope_forward_and_b",
         "batch=" + std::to_string(batch) + " seq=" + std::to_string(seq) +
             " heads=" + std::to_string(heads) + " head_dim=" +
             std::to_string(headDim),
         differ == 0, "\"values_differing\": " + std::to_string(differ));
}

void checkLayernormBackward(int64_t rows, int64_t dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto x = randomBf16(rng, size_t(rows * dim), 3.0f);
  auto dy = randomBf16(rng, size_t(rows * dim), 1.0f);
  auto g = randomBf16(rng, size_t(dim), 1.0f);
  std::uniform_real_distribution<float> d(-0.5f, 0.5f), r(0.5f, 2.0f);
  std::vector<float> mean(static_cast<size_t>(rows)), rstd(mean.size());
  for (size_t i = 0; i < mean.size(); ++i) {
    mean[i] = d(rng);
    rstd[i] = r(rng);
  }
  Device<bf16> x_{x.size()}, dy_{dy.size()}, g_{g.size()}, dx_{x.size()};
  Device<float> mean_{mean.size()}, rstd_{rstd.size()};
  x_.put(x);
  dy_.put(dy);
  g_.put(g);
  mean_.put(mean);
  rstd_.put(rstd);
  CHECK(pipert::cuda::layernormBackwardB(dx_.p, dy_.p, x_.p, mean_.p, rstd_.p,
                                         g_.p, rows, dim, nullptr));
  Shifted xs(x), dys(dy), dxs(std::vector<bf16>(x.size()));
  CHECK(pipert::cuda::layernormBackwardB(dxs.p(), dys.p(), xs.p(), mean_.p,
                                         rstd_.p, g_.p, rows, dim, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto dx = dx_.get();
  int64_t differ = bitsDiffer(dxs.get(), dx);
  for (int64_t row = 0; row < rows; ++row) {
    const bf16 *xr = x.data() + row * dim, *gr = dy.data() + row * dim;
    const float mu = mean[size_t(row)], rs = rstd[size_t(row)];
    auto grad = [&](int64_t i) { return f(gr[i]) * f(g[size_t(i)]); };
    float meanG = rowSumRef(dim, grad) / float(dim);
    float meanGX = rowSumRef(dim, [&](int64_t i) {
                     return grad(i) * ((f(xr[i]) - mu) * rs);
                   }) /
                   float(dim);
    for (int64_t i = 0; i < dim; ++i) {
      float xhat = (f(xr[i]) - mu) * rs;
      uint16_t want = fromFloat((grad(i) - meanG - xhat * meanGX) * rs);
      differ += bits(dx[size_t(row * dim + i)]) != want;
    }
  }
  report("layernorm_backward_b",
         "rows=" + std::to_string(rows) + " dim=" + std::to_string(dim),
         differ == 0, "\"values_differing\": " + std::to_string(differ));
}

/// The W gradient grouped by id (the ranks' workspace) or, without one,
/// one thread per column: the cpu's order either way.
void checkEmbedding(int64_t tokens, int64_t vocab, int64_t dim,
                    int64_t wsBytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto table = randomBf16(rng, size_t(vocab * dim), 1.0f);
  auto dout = randomBf16(rng, size_t(tokens * dim), 1.0f);
  std::uniform_int_distribution<int32_t> pick(0, int32_t(vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(tokens));
  for (auto &id : ids)
    id = pick(rng) % 7; // few distinct ids: many tokens add into one row
  // Some spread over the vocabulary, and two out of it (skipped).
  for (size_t t = 0; t < ids.size(); t += 5)
    ids[t] = pick(rng);
  ids[ids.size() / 2] = -1;
  ids[ids.size() / 3] = int32_t(vocab);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> dtable(static_cast<size_t>(vocab * dim));
  for (auto &v : dtable)
    v = d(rng);
  Device<bf16> table_{table.size()}, out_{size_t(tokens * dim)},
      dout_{dout.size()};
  Device<int32_t> ids_{ids.size()};
  Device<float> dtable_{dtable.size()};
  table_.put(table);
  dout_.put(dout);
  ids_.put(ids);
  dtable_.put(dtable);
  CHECK(pipert::cuda::embeddingForward(out_.p, table_.p, ids_.p, tokens, vocab,
                                       dim, nullptr));
  Device<uint8_t> ws_{static_cast<size_t>(wsBytes)};
  CHECK(pipert::cuda::embeddingBackwardW(
      dtable_.p, dout_.p, ids_.p, tokens, vocab, dim,
      {wsBytes ? ws_.p : nullptr, wsBytes}, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto out = out_.get();
  auto dt = dtable_.get();
  int64_t differF = 0, differW = 0;
  auto valid = [&](int64_t t) {
    return ids[size_t(t)] >= 0 && ids[size_t(t)] < vocab;
  };
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t c = 0; c < dim; ++c)
      differF += bits(out[size_t(t * dim + c)]) !=
                 (valid(t) ? bits(table[size_t(ids[size_t(t)] * dim + c)])
                           : uint16_t(0));
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t c = 0; valid(t) && c < dim; ++c) {
      float &cell = dtable[size_t(ids[size_t(t)] * dim + c)];
      cell = cell + f(dout[size_t(t * dim + c)]);
    }
  for (size_t i = 0; i < dtable.size(); ++i)
    differW += std::memcmp(&dtable[i], &dt[i], 4) != 0;
  std::string shape = "tokens=" + std::to_string(tokens) +
                      " vocab=" + std::to_string(vocab) +
                      " dim=" + std::to_string(dim) +
                      " workspace=" + std::to_string(wsBytes);
  report("embedding_forward", shape, differF == 0,
         "\"values_differing\": " + std::to_string(differF));
  report("embedding_backward_w", shape, differW == 0,
         "\"values_differing\": " + std::to_string(differW));
}

void checkAdamw(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> p(static_cast<size_t>(n)), g(p.size()), m(p.size()), v(p.size());
  for (int64_t i = 0; i < n; ++i) {
    p[size_t(i)] = d(rng);
    g[size_t(i)] = d(rng);
    m[size_t(i)] = 0.1f * d(rng);
    v[size_t(i)] = 0.01f * std::fabs(d(rng));
  }
  struct {
    double lr, clip;
    int64_t step;
  } step{3e-4, 0.7, 4};
  Device<float> p_(p.size()), g_(g.size()), m_(m.size()), v_(v.size());
  Device<bf16> copy_(p.size());
  Device<double> lr_(1), clip_(1);
  Device<int64_t> s_(1);
  p_.put(p);
  g_.put(g);
  m_.put(m);
  v_.put(v);
  lr_.put({step.lr});
  clip_.put({step.clip});
  s_.put({step.step});
  // The betas in double, as the contract's (cpu/AdamW.h): 1 - beta and
  // the bias corrections come from them, not from their fp32 roundings.
  const double b1 = 0.9, b2 = 0.999;
  const float eps = 1e-8f, wd = 0.1f;
  // The same update one element past 16-byte alignment (one element a
  // thread): the same bits as the aligned run's (four a thread).
  auto shifted = [&](const std::vector<float> &h) {
    auto d = std::make_unique<Device<float>>(h.size() + 1);
    CHECK(cudaMemcpy(d->p + 1, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
    return d;
  };
  auto ps = shifted(p), gs = shifted(g), ms = shifted(m), vs = shifted(v);
  Device<bf16> copys_(p.size() + 1);
  CHECK(pipert::cuda::adamw(p_.p, copy_.p, g_.p, m_.p, v_.p, n, lr_.p,
                            clip_.p, s_.p, b1, b2, eps, wd, nullptr));
  CHECK(pipert::cuda::adamw(ps->p + 1, copys_.p + 1, gs->p + 1, ms->p + 1,
                            vs->p + 1, n, lr_.p, clip_.p, s_.p, b1, b2, eps,
                            wd, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto pd = p_.get(), md = m_.get(), vd = v_.get();
  auto copy = copy_.get();
  int64_t paths = 0;
  {
    auto p1 = ps->get(), m1 = ms->get(), v1 = vs->get();
    auto c1 = copys_.get();
    for (int64_t i = 0; i < n; ++i) {
      const size_t a = size_t(i), b = size_t(i + 1);
      paths += std::memcmp(&pd[a], &p1[b], 4) != 0;
      paths += std::memcmp(&md[a], &m1[b], 4) != 0;
      paths += std::memcmp(&vd[a], &v1[b], 4) != 0;
      paths += bits(copy[a]) != bits(c1[b]);
    }
  }
  double worst = 0;
  int64_t copyDiffer = 0, momentsDiffer = 0;
  double t = double(step.step + 1);
  float b1c = float(1.0 - std::pow(b1, t));
  float b2c = float(1.0 - std::pow(b2, t));
  for (int64_t i = 0; i < n; ++i) {
    float gi = g[size_t(i)] * float(step.clip);
    float mi = float(b1) * m[size_t(i)] + float(1.0 - b1) * gi;
    float vi = float(b2) * v[size_t(i)] + float(1.0 - b2) * (gi * gi);
    momentsDiffer += std::memcmp(&mi, &md[size_t(i)], 4) != 0;
    momentsDiffer += std::memcmp(&vi, &vd[size_t(i)], 4) != 0;
    float pi = p[size_t(i)];
    pi = pi - float(step.lr) *
                  (mi / b1c / (std::sqrt(vi / b2c) + eps) + wd * pi);
    worst = std::max(worst, std::fabs(double(pd[size_t(i)]) - pi) /
                                std::max(1e-30, std::fabs(double(pi))));
    copyDiffer += bits(copy[size_t(i)]) != fromFloat(pd[size_t(i)]);
  }
  report("adamw", "n=" + std::to_string(n),
         worst <= 1e-6 && copyDiffer == 0 && momentsDiffer == 0 && paths == 0,
         "\"max_relative\": " + std::to_string(worst) +
             ", \"bf16_copies_differing\": " + std::to_string(copyDiffer) +
             ", \"moments_differing\": " + std::to_string(momentsDiffer) +
             ", \"vector_vs_scalar_differing\": " + std::to_string(paths));
}

/// The multi-tensor AdamW against one adamw launch per tensor, bit for
/// bit: 37 tensors (three launches of up to 16), sizes with and without 4
/// a thread, one unaligned, one empty, mixed betas and weight decays.
void checkAdamwMulti(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  const int count = 37;
  struct Host {
    std::vector<float> p, g, m, v;
  };
  std::vector<Host> host(count);
  std::vector<std::unique_ptr<Device<float>>> mem;  // p, g, m, v per run
  std::vector<std::unique_ptr<Device<bf16>>> copies;
  std::vector<pipert::cuda::AdamWTensor> multi, single;
  auto upload = [&](const std::vector<float> &h, int64_t shift) {
    mem.push_back(std::make_unique<Device<float>>(h.size() + 1));
    CHECK(cudaMemcpy(mem.back()->p + shift, h.data(), h.size() * 4,
                     cudaMemcpyHostToDevice));
    return mem.back()->p + shift;
  };
  for (int k = 0; k < count; ++k) {
    const int64_t n = k == 5 ? 0 : (k % 3 == 0 ? 4096 * (k + 1) : 1000 + 37 * k);
    Host &h = host[size_t(k)];
    for (auto *vec : {&h.p, &h.g, &h.m, &h.v}) {
      vec->resize(size_t(n));
      for (auto &x : *vec)
        x = d(rng);
    }
    for (auto &x : h.v)
      x = 0.01f * std::fabs(x);
    // Unaligned: one a thread (k = 6 is a multiple of 4, k = 7 is not).
    const int64_t shift = k == 6 || k == 7 ? 1 : 0;
    const double b1 = k % 2 ? 0.9 : 0.8;
    const float wd = k % 4 ? 0.1f : 0.0f;
    for (auto *out : {&multi, &single}) {
      copies.push_back(std::make_unique<Device<bf16>>(size_t(n) + 1));
      pipert::cuda::AdamWTensor t{};
      t.param = upload(h.p, shift);
      t.copy = copies.back()->p + shift;
      t.grad = upload(h.g, shift);
      t.m = upload(h.m, shift);
      t.v = upload(h.v, shift);
      t.n = n;
      t.beta1 = b1;
      t.beta2 = 0.95;
      t.eps = 1e-8f;
      t.weightDecay = wd;
      out->push_back(t);
    }
  }
  Device<double> lr_(1), clip_(1);
  Device<int64_t> s_(1);
  lr_.put({3e-4});
  clip_.put({0.7});
  s_.put({int64_t(9)});
  CHECK(pipert::cuda::adamwMulti(multi.data(), count, lr_.p, clip_.p, s_.p,
                                 nullptr));
  for (const auto &t : single)
    CHECK(pipert::cuda::adamw(t.param, t.copy, t.grad, t.m, t.v, t.n, lr_.p,
                              clip_.p, s_.p, t.beta1, t.beta2, t.eps,
                              t.weightDecay, nullptr));
  CHECK(cudaDeviceSynchronize());
  int64_t differ = 0, values = 0;
  auto fetch = [](const float *p, int64_t n) {
    std::vector<float> h(static_cast<size_t>(n));
    CHECK(cudaMemcpy(h.data(), p, size_t(n) * 4, cudaMemcpyDeviceToHost));
    return h;
  };
  for (int k = 0; k < count; ++k) {
    const auto &a = multi[size_t(k)], &b = single[size_t(k)];
    for (auto [x, y] : {std::pair{a.param, b.param}, std::pair{a.m, b.m},
                        std::pair{a.v, b.v}})
      differ += bitsDiffer(fetch(x, a.n), fetch(y, b.n));
    std::vector<bf16> ca(static_cast<size_t>(a.n)), cb(ca.size());
    CHECK(cudaMemcpy(ca.data(), a.copy, ca.size() * 2, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(cb.data(), b.copy, cb.size() * 2, cudaMemcpyDeviceToHost));
    differ += bitsDiffer(ca, cb);
    values += 4 * a.n;
  }
  report("adamw_multi", "tensors=37 values=" + std::to_string(values),
         differ == 0, "\"against_one_launch_each_differing\": " +
                          std::to_string(differ));
}

} // namespace
} // namespace harness

int main(int argc, char **argv) {
  using namespace harness;
  if (argc > 1 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help")) {
    std::printf("pipec-cuda-harness: runs every kernel of libpipert_kernels_cuda "
                "against its CPU emulation (bf16 storage) and prints JSON; exit 0 "
                "all pass, 1 a failure, 3 no GPU\n");
    return 0;
  }
  int devices = 0;
  cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    std::printf("{\"gpu\": null, \"error\": \"no GPU: %s\"}\n",
                e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return 3;
  }
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  std::printf("{\"gpu\": \"%s\", \"cc\": \"%d.%d\", \"driver\": %d, "
              "\"runtime\": %d}\n",
              prop.name, prop.major, prop.minor, driver, runtime);
  checkGelu(1001, 1);
  checkGelu((1 << 20) + 3, 2);
  checkGelu(4096 * 3072, 32); // GPT-2's MLP activation, 16-byte path
  checkLayernorm(37, 97, 3);
  checkLayernorm(1024, 768, 4);
  checkLayernorm(5, 1, 5);
  checkLayernorm(33, 264, 37); // 16-byte rows, lanes past the row's end
  checkLayernorm(7, 8, 38);
  checkSilu(1001, 12);
  checkSilu((1 << 20) + 5, 13);
  checkSilu(1 << 20, 33);
  checkRmsnorm(37, 97, 14);
  checkRmsnorm(1024, 768, 15);
  checkRmsnorm(33, 264, 39);
  checkRope(3, 41, 5, 6, 16);
  checkRope(4, 1024, 12, 64, 17);
  checkLayernormBackward(37, 97, 8);
  checkLayernormBackward(1024, 768, 9);
  checkLayernormBackward(33, 264, 40);
  const int64_t rankWorkspace = int64_t(32) << 20;
  checkEmbedding(257, 301, 37, rankWorkspace, 10);
  checkEmbedding(4096, 50257, 64, rankWorkspace, 11);
  checkEmbedding(4096, 50257, 768, rankWorkspace, 30);
  checkEmbedding(1000, 65, 96, 0, 31);
  checkAdamw(1001, 6);
  checkAdamw((1 << 20) + 7, 7);
  checkAdamw(1 << 20, 36); // 16-byte accesses
  checkAdamwMulti(41);
  runShapeChecks();
  runModelChecks();
  std::printf("{\"summary\": \"%d of %d checks pass\", \"failures\": %d}\n",
              checks - failures, checks, failures);
  return failures ? 1 : 0;
}
