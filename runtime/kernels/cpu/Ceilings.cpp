//===- Ceilings.cpp - the machine's measured ceilings (--profile) ---------===//

#include "kernels/cpu/Ceilings.h"

#include "kernels/cpu/Gemm.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

namespace pipert::cpu {

namespace {

template <typename F> double bestSeconds(int reps, F &&run) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - t0)
                              .count());
  }
  return best;
}

} // namespace

bool measureCeilings(int32_t threads, double *flopsPerSecond,
                     double *bytesPerSecond, char *error,
                     int64_t errorBytes) {
  if (threads < 1) {
    if (error && errorBytes > 0)
      std::snprintf(error, size_t(errorBytes),
                    "measuring the ceilings: %d threads", int(threads));
    return false;
  }
  omp_set_num_threads(threads);
  // The GEMM: random-looking non-zero operands, one warm-up run.
  const int64_t n = 1024;
  std::vector<float> a(size_t(n * n)), b(size_t(n * n)), c(size_t(n * n));
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = float((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    b[i] = float((i * 40503u) % 1000) * 1e-3f - 0.5f;
  }
  auto gemmOnce = [&] {
    gemm(false, false, n, n, n, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  };
  gemmOnce();
  const double gemmS = bestSeconds(3, gemmOnce);
  *flopsPerSecond = 2.0 * double(n) * double(n) * double(n) / gemmS;
  // The copy: 256 MiB, cut among the threads as the kernels cut rows.
  const size_t bytes = size_t(256) << 20;
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  auto copyOnce = [&] {
#pragma omp parallel
    {
      const size_t t = size_t(omp_get_thread_num()),
                   T = size_t(omp_get_num_threads());
      const size_t lo = bytes * t / T, hi = bytes * (t + 1) / T;
      std::memcpy(dst.data() + lo, src.data() + lo, hi - lo);
    }
  };
  copyOnce();
  const double copyS = bestSeconds(3, copyOnce);
  *bytesPerSecond = 2.0 * double(bytes) / copyS;
  // The results are read, so that neither loop can be dropped.
  volatile float sinkC = c[size_t(n * n - 1)];
  volatile char sinkD = dst[bytes - 1];
  (void)sinkC;
  (void)sinkD;
  return true;
}

} // namespace pipert::cpu
