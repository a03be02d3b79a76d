//===- Ceilings.cpp - the machine's measured ceilings (--profile) ---------===//

#include "kernels/cpu/Ceilings.h"

#include "kernels/cpu/Gemm.h"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace pipert::cpu {

namespace {

/// Memory as a plan's arena is (runtime/src: 2 MiB aligned, huge pages
/// asked for), so the GEMM reads its operands as the kernels do.
struct HugeBuffer {
  static constexpr size_t kHuge = size_t(2) << 20;
  char *p = nullptr;
  explicit HugeBuffer(size_t bytes) {
    bytes = (bytes + kHuge - 1) / kHuge * kHuge;
    p = static_cast<char *>(std::aligned_alloc(kHuge, bytes));
    if (!p)
      return;
#if defined(MADV_HUGEPAGE)
    ::madvise(p, bytes, MADV_HUGEPAGE);
#endif
    std::memset(p, 0, bytes);
  }
  ~HugeBuffer() { std::free(p); }
  HugeBuffer(const HugeBuffer &) = delete;
  HugeBuffer &operator=(const HugeBuffer &) = delete;
  float *floats() const { return reinterpret_cast<float *>(p); }
};

/// The fastest of at least `reps` runs and of as many as fit in a quarter
/// of a second: a ceiling is the best the machine does, and a short window
/// can fall on a moment when another process holds a core.
template <typename F> double bestSeconds(int reps, F &&run) {
  double best = 1e30, spent = 0;
  for (int r = 0; r < reps || (spent < 0.25 && r < 1000); ++r) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    const double s = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - t0)
                         .count();
    best = std::min(best, s);
    spent += s;
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
  const size_t elements = size_t(n * n);
  HugeBuffer ab(elements * 4), bb(elements * 4), cb(elements * 4);
  if (!ab.p || !bb.p || !cb.p) {
    if (error && errorBytes > 0)
      std::snprintf(error, size_t(errorBytes),
                    "measuring the ceilings: out of memory");
    return false;
  }
  float *a = ab.floats(), *b = bb.floats(), *c = cb.floats();
  for (size_t i = 0; i < elements; ++i) {
    a[i] = float((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    b[i] = float((i * 40503u) % 1000) * 1e-3f - 0.5f;
  }
  auto gemmOnce = [&] {
    gemm(false, false, n, n, n, a, n, b, n, 0.0f, c, n);
  };
  gemmOnce();
  const double gemmS = bestSeconds(5, gemmOnce);
  *flopsPerSecond = 2.0 * double(n) * double(n) * double(n) / gemmS;
  // The copy: 256 MiB, cut among the threads as the kernels cut rows.
  const size_t bytes = size_t(256) << 20;
  HugeBuffer srcb(bytes), dstb(bytes);
  if (!srcb.p || !dstb.p) {
    if (error && errorBytes > 0)
      std::snprintf(error, size_t(errorBytes),
                    "measuring the ceilings: out of memory");
    return false;
  }
  std::memset(srcb.p, 1, bytes);
  char *src = srcb.p, *dst = dstb.p;
  auto copyOnce = [&] {
#pragma omp parallel
    {
      const size_t t = size_t(omp_get_thread_num()),
                   T = size_t(omp_get_num_threads());
      const size_t lo = bytes * t / T, hi = bytes * (t + 1) / T;
      std::memcpy(dst + lo, src + lo, hi - lo);
    }
  };
  copyOnce();
  const double copyS = bestSeconds(3, copyOnce);
  *bytesPerSecond = 2.0 * double(bytes) / copyS;
  // The results are read, so that neither loop can be dropped.
  volatile float sinkC = c[elements - 1];
  volatile char sinkD = dst[bytes - 1];
  (void)sinkC;
  (void)sinkD;
  return true;
}

} // namespace pipert::cpu
