//===- ShapeChecks.cu - the small kernels against their CPU emulation --------===//
//
// Bit for bit: the norms' W column sums, the broadcast binaries and their
// column sums (in ColumnSumPlan.h's order, with the workspace the call
// is given: none, a small one that forces longer chunks, the ranks'
// 32 MiB; an operand one element off 16 bytes takes the one-column path
// and must give the 16-byte path's bits), accumulate, copy, slice and its B, the 6-axis transpose (all
// fp32 arithmetic in the kernels' order, IEEE, no contraction). Softmax and
// its B within 1 bf16 ulp (device expf and host libm may differ in the last
// fp32 bits), its B bit for bit. Run by KernelHarness.cu's main.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include "kernels/cuda/ColumnSumPlan.h"
#include "kernels/cuda/Kernels.h"

namespace harness {
namespace {

std::string dims(std::initializer_list<std::pair<const char *, int64_t>> d) {
  std::string s;
  for (auto &[name, v] : d)
    s += (s.empty() ? "" : " ") + std::string(name) + "=" + std::to_string(v);
  return s;
}
std::string differing(int64_t n) {
  return "\"values_differing\": " + std::to_string(n);
}
std::vector<float> randomFloats(std::mt19937_64 &rng, size_t n) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto &x : v)
    x = d(rng);
  return v;
}
/// A poisoned device workspace of `bytes` (none for 0).
struct TestWorkspace {
  Device<uint8_t> memory;
  explicit TestWorkspace(int64_t bytes)
      : memory(static_cast<size_t>(bytes)) {}
  pipert::cuda::Workspace get() const {
    return {memory.n ? memory.p : nullptr, int64_t(memory.n)};
  }
};

int64_t floatsDiffer(const std::vector<float> &a, const std::vector<float> &b) {
  int64_t n = 0;
  for (size_t i = 0; i < a.size(); ++i)
    n += std::memcmp(&a[i], &b[i], 4) != 0;
  return n;
}

void checkNormW(int64_t rows, int64_t dim, int64_t wsBytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto x = randomBf16(rng, size_t(rows * dim), 3.0f);
  auto dy = randomBf16(rng, size_t(rows * dim), 1.0f);
  auto mean = randomFloats(rng, size_t(rows)), rstd = randomFloats(rng, size_t(rows));
  auto g0 = randomFloats(rng, size_t(dim)), b0 = randomFloats(rng, size_t(dim));
  Device<bf16> x_{x.size()}, dy_{dy.size()};
  Device<float> mean_{mean.size()}, rstd_{rstd.size()}, g_{g0.size()},
      b_{b0.size()}, r_{g0.size()};
  x_.put(x);
  dy_.put(dy);
  mean_.put(mean);
  rstd_.put(rstd);
  g_.put(g0);
  b_.put(b0);
  r_.put(g0);
  TestWorkspace ws(wsBytes);
  CHECK(pipert::cuda::layernormBackwardW(g_.p, b_.p, dy_.p, x_.p, mean_.p,
                                         rstd_.p, rows, dim, ws.get(),
                                         nullptr));
  CHECK(pipert::cuda::rmsnormBackwardW(r_.p, dy_.p, x_.p, rstd_.p, rows, dim,
                                       ws.get(), nullptr));
  CHECK(cudaDeviceSynchronize());
  auto wantG = g0, wantB = b0, wantR = g0;
  const auto two = pipert::cuda::planColumnSums(rows, dim, 2, wsBytes);
  const auto one = pipert::cuda::planColumnSums(rows, dim, 1, wsBytes);
  for (int64_t c = 0; c < dim; ++c) {
    auto gy = [&](int64_t r) { return f(dy[size_t(r * dim + c)]); };
    auto xv = [&](int64_t r) { return f(x[size_t(r * dim + c)]); };
    float sg = pipert::cuda::orderedColumnSum(two, [&](int64_t r) {
      return gy(r) * ((xv(r) - mean[size_t(r)]) * rstd[size_t(r)]);
    });
    float sb = pipert::cuda::orderedColumnSum(two, gy);
    float sr = pipert::cuda::orderedColumnSum(one, [&](int64_t r) {
      return gy(r) * (xv(r) * rstd[size_t(r)]);
    });
    wantG[size_t(c)] = wantG[size_t(c)] + sg;
    wantB[size_t(c)] = wantB[size_t(c)] + sb;
    wantR[size_t(c)] = wantR[size_t(c)] + sr;
  }
  auto shape = [&](int64_t chunks) {
    return dims({{"rows", rows},
                 {"dim", dim},
                 {"workspace", wsBytes},
                 {"chunks", chunks}});
  };
  int64_t ln = floatsDiffer(g_.get(), wantG) + floatsDiffer(b_.get(), wantB);
  report("layernorm_backward_w", shape(two.chunks), ln == 0, differing(ln));
  int64_t rn = floatsDiffer(r_.get(), wantR);
  report("rmsnorm_backward_w", shape(one.chunks), rn == 0, differing(rn));
}

void checkBroadcast(int64_t rows, int64_t bn, int64_t wsBytes,
                    uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t n = rows * bn;
  auto a = randomBf16(rng, size_t(n), 2.0f), b = randomBf16(rng, size_t(bn), 2.0f);
  auto acc0 = randomFloats(rng, size_t(bn));
  Device<bf16> a_{size_t(n)}, b_{size_t(bn)}, sum_{size_t(n)}, prod_{size_t(n)},
      col_{size_t(bn)}, colA_{size_t(bn)};
  Device<float> acc_{size_t(bn)}, accAll_{size_t(n)};
  a_.put(a);
  b_.put(b);
  acc_.put(acc0);
  auto accAll0 = randomFloats(rng, size_t(n));
  accAll_.put(accAll0);
  CHECK(pipert::cuda::addForward(sum_.p, a_.p, b_.p, n, bn, nullptr));
  CHECK(pipert::cuda::mulForward(prod_.p, a_.p, b_.p, n, bn, nullptr));
  TestWorkspace ws(wsBytes);
  CHECK(pipert::cuda::columnSums(col_.p, a_.p, nullptr, n, bn, ws.get(),
                                 nullptr));
  CHECK(pipert::cuda::columnSums(colA_.p, a_.p, sum_.p, n, bn, ws.get(),
                                 nullptr));
  CHECK(pipert::cuda::columnSumsInto(acc_.p, a_.p, prod_.p, n, bn, ws.get(),
                                     nullptr));
  CHECK(pipert::cuda::accumulate(accAll_.p, a_.p, n, nullptr));
  // The same sums of an operand one element past 16-byte alignment.
  Device<bf16> shifted_{size_t(n) + 1}, colShifted_{size_t(bn)};
  CHECK(cudaMemcpy(shifted_.p + 1, a_.p, size_t(n) * sizeof(bf16),
                   cudaMemcpyDeviceToDevice));
  CHECK(pipert::cuda::columnSums(colShifted_.p, shifted_.p + 1, nullptr, n, bn,
                                 ws.get(), nullptr));
  CHECK(cudaDeviceSynchronize());
  auto sum = sum_.get(), prod = prod_.get(), col = col_.get(), colA = colA_.get();
  auto colShifted = colShifted_.get();
  int64_t dAdd = 0, dMul = 0, dCol = 0, dAcc = 0;
  for (int64_t i = 0; i < n; ++i) {
    float x = f(a[size_t(i)]), z = f(b[size_t(i % bn)]);
    dAdd += bits(sum[size_t(i)]) != fromFloat(x + z);
    dMul += bits(prod[size_t(i)]) != fromFloat(x * z);
  }
  auto wantAcc = acc0;
  const auto plan = pipert::cuda::planColumnSums(rows, bn, 1, wsBytes);
  for (int64_t c = 0; c < bn; ++c) {
    auto at = [&](int64_t r) { return size_t(r * bn + c); };
    float s = pipert::cuda::orderedColumnSum(
        plan, [&](int64_t r) { return f(a[at(r)]); });
    float sa = pipert::cuda::orderedColumnSum(
        plan, [&](int64_t r) { return f(a[at(r)]) * f(sum[at(r)]); });
    float sp = pipert::cuda::orderedColumnSum(
        plan, [&](int64_t r) { return f(a[at(r)]) * f(prod[at(r)]); });
    dCol += bits(col[size_t(c)]) != fromFloat(s);
    dCol += bits(colShifted[size_t(c)]) != bits(col[size_t(c)]);
    dCol += bits(colA[size_t(c)]) != fromFloat(sa);
    wantAcc[size_t(c)] = wantAcc[size_t(c)] + sp;
  }
  dAcc += floatsDiffer(acc_.get(), wantAcc);
  auto wantAll = accAll0;
  for (int64_t i = 0; i < n; ++i)
    wantAll[size_t(i)] = wantAll[size_t(i)] + f(a[size_t(i)]);
  dAcc += floatsDiffer(accAll_.get(), wantAll);
  std::string shape = dims({{"rows", rows},
                            {"bn", bn},
                            {"workspace", wsBytes},
                            {"chunks", plan.chunks}});
  report("add_forward", shape, dAdd == 0, differing(dAdd));
  report("mul_forward", shape, dMul == 0, differing(dMul));
  report("column_sums", shape, dCol == 0, differing(dCol));
  report("column_sums_into_and_accumulate", shape, dAcc == 0, differing(dAcc));
}

void checkMovement(int64_t outer, int64_t dim, int64_t inner, int64_t offset,
                   int64_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t n = outer * dim * inner, m = outer * size * inner;
  auto x = randomBf16(rng, size_t(n), 1.0f);
  Device<bf16> x_{size_t(n)}, c_{size_t(n)}, s_{size_t(m)}, b_{size_t(n)};
  x_.put(x);
  CHECK(pipert::cuda::copy(c_.p, x_.p, n, nullptr));
  CHECK(pipert::cuda::slice(s_.p, x_.p, outer, dim, inner, offset, size, false,
                            nullptr));
  CHECK(pipert::cuda::slice(b_.p, s_.p, outer, dim, inner, offset, size, true,
                            nullptr));
  CHECK(cudaDeviceSynchronize());
  auto c = c_.get(), s = s_.get(), b = b_.get();
  int64_t d = 0;
  for (int64_t i = 0; i < n; ++i)
    d += bits(c[size_t(i)]) != bits(x[size_t(i)]);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < dim; ++k)
      for (int64_t in = 0; in < inner; ++in) {
        size_t xi = size_t((o * dim + k) * inner + in);
        bool inside = k >= offset && k < offset + size;
        if (inside)
          d += bits(s[size_t((o * size + k - offset) * inner + in)]) !=
               bits(x[xi]);
        d += bits(b[xi]) != (inside ? bits(x[xi]) : uint16_t(0));
      }
  report("copy_slice_and_slice_b",
         dims({{"outer", outer}, {"dim", dim}, {"inner", inner},
               {"offset", offset}, {"size", size}}),
         d == 0, differing(d));
}

/// slices3_backward_b: each window holds its dy (+0 for -0, as the adds it
/// replaces give), zeros elsewhere; windows in any order, with gaps.
void checkSlices3(int64_t outer, int64_t dim, int64_t inner,
                  const int64_t off[3], const int64_t size[3], uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t n = outer * dim * inner;
  std::vector<std::vector<bf16>> dy(3);
  for (int k = 0; k < 3; ++k) {
    dy[size_t(k)] = randomBf16(rng, size_t(outer * size[k] * inner), 1.0f);
    dy[size_t(k)][0] = __float2bfloat16_rn(-0.0f);
  }
  Device<bf16> dy0_{dy[0].size()}, dy1_{dy[1].size()}, dy2_{dy[2].size()},
      dx_{size_t(n)};
  dy0_.put(dy[0]);
  dy1_.put(dy[1]);
  dy2_.put(dy[2]);
  CHECK(pipert::cuda::slices3(dx_.p, dy0_.p, dy1_.p, dy2_.p, outer, dim, inner,
                              off, size, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto dx = dx_.get();
  int64_t d = 0;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < dim; ++j)
      for (int64_t in = 0; in < inner; ++in) {
        uint16_t want = 0;
        for (int k = 0; k < 3; ++k)
          if (j >= off[k] && j < off[k] + size[k]) {
            uint16_t b = bits(
                dy[size_t(k)][size_t((o * size[k] + j - off[k]) * inner + in)]);
            want = b == 0x8000 ? uint16_t(0) : b;
          }
        d += bits(dx[size_t((o * dim + j) * inner + in)]) != want;
      }
  report("slices3_backward_b",
         dims({{"outer", outer}, {"dim", dim}, {"inner", inner}}), d == 0,
         differing(d));
}

void checkTranspose(std::vector<int64_t> shape, std::vector<int64_t> perm,
                    uint64_t seed) {
  std::mt19937_64 rng(seed);
  int64_t n = 1;
  for (int64_t e : shape)
    n *= e;
  auto x = randomBf16(rng, size_t(n), 1.0f);
  Device<bf16> x_{size_t(n)}, y_{size_t(n)};
  x_.put(x);
  CHECK(pipert::cuda::transpose(y_.p, x_.p, shape.data(), perm.data(), nullptr));
  CHECK(cudaDeviceSynchronize());
  auto y = y_.get();
  int64_t stride[6], s = 1;
  for (int a = 5; a >= 0; --a) {
    stride[a] = s;
    s *= shape[size_t(a)];
  }
  int64_t d = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, xi = 0;
    for (int a = 5; a >= 0; --a) {
      int64_t e = shape[size_t(perm[size_t(a)])];
      xi += (rest % e) * stride[perm[size_t(a)]];
      rest /= e;
    }
    d += bits(y[size_t(i)]) != bits(x[size_t(xi)]);
  }
  std::string name;
  for (int a = 0; a < 6; ++a)
    name += std::to_string(shape[size_t(a)]) + (a < 5 ? "x" : "");
  std::string p;
  for (int64_t v : perm)
    p += std::to_string(v);
  report("transpose", name + " perm=" + p, d == 0, differing(d));
}

void checkSoftmax(int64_t rows, int64_t dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto x = randomBf16(rng, size_t(rows * dim), 4.0f);
  auto dy = randomBf16(rng, size_t(rows * dim), 1.0f);
  Device<bf16> x_{x.size()}, y_{x.size()}, dy_{dy.size()}, dx_{x.size()};
  x_.put(x);
  dy_.put(dy);
  CHECK(pipert::cuda::softmaxForward(y_.p, x_.p, rows, dim, nullptr));
  CHECK(pipert::cuda::softmaxBackwardB(dx_.p, dy_.p, y_.p, rows, dim, nullptr));
  CHECK(cudaDeviceSynchronize());
  auto y = y_.get(), dx = dx_.get();
  int worstF = 0, worstB = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const bf16 *xr = x.data() + r * dim, *gr = dy.data() + r * dim;
    const bf16 *yr = y.data() + r * dim;
    float mx = -INFINITY;
    for (int64_t i = 0; i < dim; ++i)
      mx = std::max(mx, f(xr[i]));
    float sum = warpSumRef(dim, [&](int64_t i) { return std::exp(f(xr[i]) - mx); });
    float dot = warpSumRef(dim, [&](int64_t i) { return f(gr[i]) * f(yr[i]); });
    for (int64_t i = 0; i < dim; ++i) {
      worstF = std::max(worstF, ulps(bits(yr[i]),
                                     fromFloat(std::exp(f(xr[i]) - mx) / sum)));
      worstB = std::max(worstB, ulps(bits(dx[size_t(r * dim + i)]),
                                     fromFloat(f(yr[i]) * (f(gr[i]) - dot))));
    }
  }
  std::string shape = dims({{"rows", rows}, {"dim", dim}});
  report("softmax_forward", shape, worstF <= 1,
         "\"max_bf16_ulps\": " + std::to_string(worstF));
  // B's terms are exact products of bf16 values in the kernel's order: only
  // y, an input here, carries the expf difference.
  report("softmax_backward_b", shape, worstB == 0,
         "\"max_bf16_ulps\": " + std::to_string(worstB));
}

} // namespace

void runShapeChecks() {
  // One pass (no workspace; a short chunk), the second pass over 64-row
  // chunks (the ranks' workspace; odd and vectorised widths), and a
  // workspace too small for 64-row chunks.
  const int64_t rank = int64_t(32) << 20;
  checkNormW(37, 97, rank, 21);
  checkNormW(4096, 768, rank, 22);
  checkNormW(4096, 768, 0, 25);
  checkNormW(1000, 97, 4 * 97 * 2 * 5, 26);
  checkNormW(300, 776, rank, 34); // a 16-byte path's partial last tile
  checkBroadcast(37, 97, rank, 23);
  checkBroadcast(1024, 768, rank, 24);
  checkBroadcast(1027, 2304, rank, 27);
  checkBroadcast(999, 768, 4 * 768 * 3, 28);
  checkBroadcast(513, 97, 0, 29);
  checkBroadcast(1000, 1000, rank, 35);
  checkBroadcast(1, 4096, rank, 36); // bn = n: the backward's gradient sums
  checkMovement(3, 17, 5, 4, 9, 25);
  checkMovement(8, 2304, 1, 768, 768, 26);
  const int64_t qkvOff[3] = {1536, 768, 0}, qkvSize[3] = {768, 768, 768};
  checkSlices3(8, 2304, 1, qkvOff, qkvSize, 31);
  const int64_t gapOff[3] = {9, 1, 5}, gapSize[3] = {2, 3, 4};
  checkSlices3(5, 13, 3, gapOff, gapSize, 32);
  checkTranspose({1, 1, 2, 3, 5, 7}, {0, 1, 4, 2, 5, 3}, 27);
  checkTranspose({1, 1, 4, 64, 12, 64}, {0, 1, 2, 4, 3, 5}, 28);
  checkSoftmax(37, 97, 29);
  checkSoftmax(512, 1024, 30);
}

} // namespace harness
