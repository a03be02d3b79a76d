//===- pipec-gemm-bench.cpp - pipec's GEMM against its ceilings -----------===//
//
// Prints GFLOP/s of pipec's GEMM (Gemm.h) and of OpenBLAS as this process
// configures it (OPENBLAS_CORETYPE and all) on the matmul shapes of a
// GPT-2-architecture layer, with 1 and with --threads threads, beside the
// core's own ceiling: a loop of independent multiply-adds measured in the
// same run. Speed is measured, never asserted.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/Gemm.h"
#include "kernels/cpu/Matmul.h"

#include <cblas.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// GFLOP/s of independent multiply-adds on one thread: the core's peak.
double fmaPeak() {
#if defined(__AVX512F__)
  __m512 acc[16];
  for (int i = 0; i < 16; ++i)
    acc[i] = _mm512_set1_ps(float(i) * 1e-3f);
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  const int64_t iters = 20000000;
  auto t0 = Clock::now();
  for (int64_t it = 0; it < iters; ++it)
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i)
      acc[i] = _mm512_fmadd_ps(acc[i], x, y);
  double s = seconds(t0);
  float lanes[16], sink = 0;
  for (int i = 0; i < 16; ++i) {
    _mm512_storeu_ps(lanes, acc[i]);
    sink += lanes[0];
  }
  if (sink == 12345.0f)
    std::printf(" ");
  return 2.0 * 16 * 16 * double(iters) / s * 1e-9;
#else
  return 0;
#endif
}

/// Floats on 2 MiB-aligned transparent huge pages, as pipec-run's arenas
/// (runtime/src/Executor.cpp): with small pages, cold operands would add
/// TLB misses that a model's step does not have.
class Buffer {
  struct Free {
    void operator()(float *p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> p;

public:
  static constexpr int64_t kHuge = int64_t(2) << 20;
  /// The bytes a buffer of `floats` takes: whole huge pages.
  static int64_t bytesOf(int64_t floats) {
    return (int64_t(sizeof(float)) * floats + kHuge - 1) / kHuge * kHuge;
  }
  explicit Buffer(int64_t floats) {
    const size_t bytes = size_t(bytesOf(floats));
    p.reset(static_cast<float *>(std::aligned_alloc(size_t(kHuge), bytes)));
    if (!p) {
      std::fprintf(stderr, "pipec-gemm-bench: out of memory\n");
      std::exit(1);
    }
#if defined(MADV_HUGEPAGE)
    ::madvise(p.get(), bytes, MADV_HUGEPAGE);
#endif
    std::memset(p.get(), 0, bytes);
  }
  float *data() const { return p.get(); }
};

struct Shape {
  const char *what;
  bool ta, tb;
  int64_t m, n, k;
};

/// GFLOP/s of one GEMM call: `call(set)` runs it on operand set `set` of
/// `sets`. One set: the best of 5 repeats, its operands warm in cache.
/// Several (--cold): the best of 2 passes over every set, each call on the
/// next set, so that it finds its operands in memory, as a model's step
/// does.
template <typename F> double rate(const Shape &s, int64_t sets, F call) {
  for (int64_t i = 0; i < sets; ++i)
    call(i); // warm: packing buffers, pages
  double best = 1e30;
  for (int rep = 0; rep < (sets > 1 ? 2 : 5); ++rep) {
    auto t0 = Clock::now();
    for (int64_t i = 0; i < sets; ++i)
      call(i);
    best = std::min(best, seconds(t0) / double(sets));
  }
  return 2.0 * double(s.m) * double(s.n) * double(s.k) / best * 1e-9;
}

} // namespace

int main(int argc, char **argv) {
  int threads = 2;
  int64_t dModel = 512, tokens = 1024;
  bool cold = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--cold") {
      cold = true;
      continue;
    }
    auto next = [&](const char *flag) -> long {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "pipec-gemm-bench: %s needs a value\n", flag);
        std::exit(2);
      }
      char *end = nullptr;
      long v = std::strtol(argv[++i], &end, 10);
      if (!end || *end || v < 1) {
        std::fprintf(stderr, "pipec-gemm-bench: %s expects a positive integer\n",
                     flag);
        std::exit(2);
      }
      return v;
    };
    if (a == "--threads")
      threads = int(next("--threads"));
    else if (a == "--d-model")
      dModel = next("--d-model");
    else if (a == "--tokens")
      tokens = next("--tokens");
    else {
      std::printf(
          "usage: pipec-gemm-bench [--threads N] [--d-model D] [--tokens T]\n"
          "                        [--cold]\n"
          "GFLOP/s of pipec's GEMM and OpenBLAS on a GPT-2 layer's matmuls\n"
          "(T = batch x sequence rows, model width D, MLP 4D), with one thread\n"
          "and with N (default 2), beside the multiply-add peak of one core.\n"
          "--cold: each call on the next of enough operand sets to fill 1 GiB\n"
          "(more than the last-level cache), so that operands come from\n"
          "memory as in a model's step; by default one set, warm in cache.\n");
      return a == "--help" ? 0 : 2;
    }
  }
  const int64_t D = dModel, T = tokens;
  const Shape shapes[] = {
      {"qkv    x W    ", false, false, T, 3 * D, D},
      {"mlp-up x W    ", false, false, T, 4 * D, D},
      {"mlp-dn x W    ", false, false, T, D, 4 * D},
      {"B: dy W^T     ", false, true, T, D, 4 * D},
      {"W: x^T dy     ", true, false, D, 4 * D, T},
  };
  const double peak = fmaPeak();
  std::printf("pipec-gemm-bench: d_model %lld, %lld rows; OPENBLAS_CORETYPE=%s; "
              "pipec's micro-kernel: %s; operands %s\n",
              (long long)D, (long long)T,
              std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE")
                                               : "(unset)",
              pipert::cpu::gemmUsesAvx512() ? "AVX-512" : "portable",
              cold ? "cold (from memory: --cold)" : "warm (one set, repeated)");
  std::printf("multiply-add peak, one core: %.1f GFLOP/s\n", peak);
  std::printf("%-15s %11s  %10s %10s %6s  %10s %10s %6s\n", "shape (m n k)", "",
              "pipec 1t", "blas 1t", "ratio", "pipec", "blas", "ratio");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  double sumP1 = 0, sumB1 = 0, sumPn = 0, sumBn = 0;
  for (const Shape &s : shapes) {
    // A set's bytes as allocated (each buffer on whole huge pages).
    const int64_t bytes = Buffer::bytesOf(s.m * s.k) +
                          Buffer::bytesOf(s.k * s.n) +
                          Buffer::bytesOf(s.m * s.n);
    const int64_t sets =
        cold ? std::max<int64_t>(2, ((int64_t(1) << 30) + bytes - 1) / bytes)
             : 1;
    std::vector<Buffer> a, b, c;
    for (int64_t i = 0; i < sets; ++i) {
      a.emplace_back(s.m * s.k);
      b.emplace_back(s.k * s.n);
      c.emplace_back(s.m * s.n);
      for (int64_t j = 0; j < s.m * s.k; ++j)
        a[i].data()[j] = d(rng);
      for (int64_t j = 0; j < s.k * s.n; ++j)
        b[i].data()[j] = d(rng);
    }
    const int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    auto ours = [&](int64_t i) {
      pipert::cpu::gemm(s.ta, s.tb, s.m, s.n, s.k, a[i].data(), lda,
                        b[i].data(), ldb, 0.0f, c[i].data(), s.n);
    };
    auto blas = [&](int64_t i) {
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans,
                  s.tb ? CblasTrans : CblasNoTrans, int(s.m), int(s.n),
                  int(s.k), 1.0f, a[i].data(), int(lda), b[i].data(),
                  int(ldb), 0.0f, c[i].data(), int(s.n));
    };
    double r[4];
    int i = 0;
    for (int t : {1, threads}) {
      omp_set_num_threads(t);
      pipert::cpu::setBlasThreadCount(t);
      r[i++] = rate(s, sets, ours);
      r[i++] = rate(s, sets, blas);
    }
    sumP1 += r[0], sumB1 += r[1], sumPn += r[2], sumBn += r[3];
    std::printf("%s %4lld %4lld %4lld  %10.1f %10.1f %5.2fx  %10.1f %10.1f "
                "%5.2fx\n",
                s.what, (long long)s.m, (long long)s.n, (long long)s.k, r[0],
                r[1], r[0] / r[1], r[2], r[3], r[2] / r[3]);
  }
  const double n = double(sizeof shapes / sizeof shapes[0]);
  std::printf("mean (GFLOP/s)                   %10.1f %10.1f %5.2fx  %10.1f "
              "%10.1f %5.2fx   (%d threads)\n",
              sumP1 / n, sumB1 / n, sumP1 / sumB1, sumPn / n, sumBn / n,
              sumPn / sumBn, threads);
  if (peak > 0)
    std::printf("pipec one thread at %.0f%% of the one-core peak\n",
                100.0 * sumP1 / n / peak);
  return 0;
}
