//===- EpilogueBench.cu - cuBLASLt epilogues against separate kernels ------===//
//
// Issue 19 asks for cuBLASLt's epilogues where they measurably pay: the
// bias always, GELU only if it beats the separate kernel on the card. This
// measures both at GPT-2 124M's forward shapes (T = 1024, B micro-batch
// rows of 1024 tokens; the fused qkv, the MLP's up and down projections),
// with CUDA events, the median of 20 samples of 5 runs after 3 warm-ups:
//
//   gemm            Y = X W alone (the floor of the rest)
//   bias_epilogue   Y = X W + b in the GEMM (what matmul_bias_forward does)
//   bias_kernel     Y = X W, then addForward's broadcast add
//   gelu_kernel     the bias epilogue, then geluForward (what
//                   matmul_bias_gelu_forward does: pre-activation and
//                   output both written)
//   gelu_epilogue   CUBLASLT_EPILOGUE_GELU_AUX_BIAS: the output and the
//                   pre-activation (aux) from the GEMM
//
// and how far the GELU epilogue's output is from the kernel's (bf16 ulps;
// cuBLASLt's GELU is its own, so the bits differ: the plan would then be
// held to the emulated reference by its tolerance, not bit for bit).
// Prints one JSON object per shape; asserts nothing about speed (docs/
// PERFORMANCE.md). Exit 0 measured, 1 a call failed, 3 no GPU.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include "kernels/cuda/Gemm.h"
#include "kernels/cuda/Kernels.h"

#include <cublasLt.h>

#include <memory>
#include <utility>

namespace {

using harness::bf16;
using harness::fail;

#define LT(x)                                                                  \
  do {                                                                         \
    cublasStatus_t s_ = (x);                                                   \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                         \
      std::printf("{\"error\": \"%s: %s\"}\n", #x,                             \
                  cublasLtGetStatusString(s_));                                \
      std::exit(1);                                                            \
    }                                                                          \
  } while (0)

/// The median time in milliseconds of `run` on the default stream: 20
/// samples of 5 runs back to back (the launch latency hidden behind the
/// runs before), after 3 warm-ups (cuBLASLt plans a shape on first use).
template <typename F> double medianMs(F run) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i)
    run();
  std::vector<float> ms;
  for (int i = 0; i < 20; ++i) {
    CHECK(cudaEventRecord(a));
    for (int r = 0; r < 5; ++r)
      run();
    CHECK(cudaEventRecord(b));
    CHECK(cudaEventSynchronize(b));
    float t = 0;
    CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t / 5);
  }
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  std::sort(ms.begin(), ms.end());
  return double(ms[ms.size() / 2]);
}

/// Y [m, n] = gelu(X W + b) with the pre-activation in `pre`, through
/// cuBLASLt's GELU_AUX_BIAS epilogue, under the library's deterministic
/// preferences (Gemm.h), as the column-major problem Gemm::forward asks.
struct GeluEpilogue {
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  void *workspace;
  size_t workspaceBytes;

  GeluEpilogue(int64_t m, int64_t k, int64_t n, void *ws, size_t wsBytes)
      : workspace(ws), workspaceBytes(wsBytes) {
    LT(cublasLtCreate(&handle));
    LT(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t op = CUBLAS_OP_N;
    LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op,
                                      sizeof op));
    LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op,
                                      sizeof op));
    cublasLtEpilogue_t e = CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
    LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e,
                                      sizeof e));
    cudaDataType_t t = CUDA_R_16BF;
    LT(cublasLtMatmulDescSetAttribute(
        desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &t, sizeof t));
    LT(cublasLtMatmulDescSetAttribute(
        desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE, &t, sizeof t));
    int64_t ld = n;
    LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD,
                                      &ld, sizeof ld));
    // Column-major: C^T [n, m] = W^T [n, k] X^T [k, m].
    LT(cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, uint64_t(n), uint64_t(k), n));
    LT(cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, uint64_t(k), uint64_t(m), k));
    LT(cublasLtMatrixLayoutCreate(&c, CUDA_R_16BF, uint64_t(n), uint64_t(m), n));
    cublasLtMatmulPreference_t pref = nullptr;
    LT(cublasLtMatmulPreferenceCreate(&pref));
    uint32_t none = CUBLASLT_REDUCTION_SCHEME_NONE;
    uint32_t align = uint32_t(pipert::cuda::kGemmAlignment);
    LT(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspaceBytes,
        sizeof workspaceBytes));
    LT(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &none, sizeof none));
    for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      LT(cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof align));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    LT(cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, c, c, pref, 1,
                                      &result, &found));
    cublasLtMatmulPreferenceDestroy(pref);
    if (found == 0)
      LT(CUBLAS_STATUS_NOT_SUPPORTED);
    algo = result.algo;
  }
  ~GeluEpilogue() {
    cublasLtMatmulDescDestroy(desc);
    for (auto *l : {a, b, c})
      cublasLtMatrixLayoutDestroy(l);
    cublasLtDestroy(handle);
  }
  void run(bf16 *y, bf16 *pre, const bf16 *x, const bf16 *w,
           const bf16 *bias) {
    LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                      &bias, sizeof bias));
    LT(cublasLtMatmulDescSetAttribute(
        desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &pre, sizeof pre));
    const float one = 1.0f, zero = 0.0f;
    LT(cublasLtMatmul(handle, desc, &one, w, a, x, b, &zero, y, c, y, c,
                      &algo, workspace, workspaceBytes, nullptr));
  }
};

/// Random bf16 values in [-scale, scale] (Harness.h: the bits of each
/// rounded float, not its integer value).
std::vector<bf16> randomBf16(size_t n, float scale, uint64_t seed) {
  std::mt19937_64 rng(seed);
  return harness::randomBf16(rng, n, scale);
}

void measure(const char *name, int64_t m, int64_t k, int64_t n,
             pipert::cuda::Gemm &gemm, void *ws, size_t wsBytes) {
  const auto mk = static_cast<size_t>(m * k), kn = static_cast<size_t>(k * n),
             mn = static_cast<size_t>(m * n);
  harness::Device<bf16> x(mk), w(kn), bias(static_cast<size_t>(n));
  harness::Device<bf16> y(mn), pre(mn), y2(mn), pre2(mn);
  x.put(randomBf16(mk, 1.0f, 1));
  w.put(randomBf16(kn, 0.05f, 2));
  bias.put(randomBf16(static_cast<size_t>(n), 0.5f, 3));
  auto ok = [](cublasStatus_t s) {
    if (s != CUBLAS_STATUS_SUCCESS)
      LT(s);
  };
  auto ok2 = [](cudaError_t e) { CHECK(e); };
  const double gemmMs = medianMs([&] {
    ok(gemm.forward(y.p, x.p, w.p, nullptr, m, k, n, false, nullptr));
  });
  const double biasEpi = medianMs([&] {
    ok(gemm.forward(y.p, x.p, w.p, bias.p, m, k, n, false, nullptr));
  });
  const double biasKernel = medianMs([&] {
    ok(gemm.forward(y.p, x.p, w.p, nullptr, m, k, n, false, nullptr));
    ok2(pipert::cuda::addForward(y.p, y.p, bias.p, m * n, n, nullptr));
  });
  const double geluKernel = medianMs([&] {
    ok(gemm.forward(pre.p, x.p, w.p, bias.p, m, k, n, false, nullptr));
    ok2(pipert::cuda::geluForward(y.p, pre.p, m * n, nullptr));
  });
  GeluEpilogue epi(m, k, n, ws, wsBytes);
  const double geluEpi =
      medianMs([&] { epi.run(y2.p, pre2.p, x.p, w.p, bias.p); });
  CHECK(cudaDeviceSynchronize());
  // How far the epilogue's output and pre-activation are from the kernels'.
  auto ulps = [](const std::vector<bf16> &a, const std::vector<bf16> &b) {
    int64_t most = 0, differing = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      uint16_t p, q;
      std::memcpy(&p, &a[i], 2);
      std::memcpy(&q, &b[i], 2);
      // Ordered integers of the bf16 bit patterns.
      auto ord = [](uint16_t v) {
        return v & 0x8000 ? -int64_t(v & 0x7fff) : int64_t(v);
      };
      const int64_t d = std::llabs(ord(p) - ord(q));
      most = std::max(most, d);
      differing += d != 0;
    }
    return std::make_pair(most, differing);
  };
  auto [outUlps, outDiffering] = ulps(y.get(), y2.get());
  auto [preUlps, preDiffering] = ulps(pre.get(), pre2.get());
  const double flops = 2.0 * double(m) * double(k) * double(n);
  std::printf(
      "{\"shape\": \"%s\", \"m\": %lld, \"k\": %lld, \"n\": %lld, "
      "\"gemm_ms\": %.4f, \"gemm_tflops\": %.1f, \"bias_epilogue_ms\": %.4f, "
      "\"bias_kernel_ms\": %.4f, \"gelu_kernel_ms\": %.4f, "
      "\"gelu_epilogue_ms\": %.4f, \"bias_epilogue_saves_ms\": %.4f, "
      "\"gelu_epilogue_saves_ms\": %.4f, \"gelu_out_max_ulps\": %lld, "
      "\"gelu_out_differing\": %lld, \"pre_max_ulps\": %lld, "
      "\"pre_differing\": %lld}\n",
      name, (long long)m, (long long)k, (long long)n, gemmMs,
      flops / (gemmMs * 1e-3) / 1e12, biasEpi, biasKernel, geluKernel, geluEpi,
      biasKernel - biasEpi, geluKernel - geluEpi, (long long)outUlps,
      (long long)outDiffering, (long long)preUlps, (long long)preDiffering);
  std::fflush(stdout);
}

} // namespace

int main(int argc, char **argv) {
  int64_t batch = 64;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::printf(
          "pipec-epilogue-bench [--batch B]: cuBLASLt's bias and GELU "
          "epilogues against the separate kernels at GPT-2 124M's forward "
          "GEMMs (B x 1024 rows, default B = 64), a JSON line per shape; "
          "exit 0 measured, 1 a call failed, 2 bad usage, 3 no GPU\n");
      return 0;
    }
    if (a == "--batch" && i + 1 < argc) {
      batch = std::atoll(argv[++i]);
      if (batch >= 1 && batch <= 256)
        continue;
    }
    std::fprintf(stderr, "pipec-epilogue-bench: --batch B (1 to 256), not '%s'\n",
                 argv[i]);
    return 2;
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("{\"gpu\": null, \"error\": \"no GPU\"}\n");
    return 3;
  }
  const size_t wsBytes = size_t(32) << 20;
  void *ws = nullptr;
  CHECK(cudaMalloc(&ws, wsBytes));
  std::string error;
  std::unique_ptr<pipert::cuda::Gemm> gemm =
      pipert::cuda::Gemm::create(ws, wsBytes, error);
  if (!gemm) {
    std::printf("{\"error\": \"%s\"}\n", error.c_str());
    return 1;
  }
  const int64_t m = batch * 1024;
  measure("qkv", m, 768, 2304, *gemm, ws, wsBytes);
  measure("mlp_up", m, 768, 3072, *gemm, ws, wsBytes);
  measure("mlp_down", m, 3072, 768, *gemm, ws, wsBytes);
  CHECK(cudaFree(ws));
  return 0;
}
