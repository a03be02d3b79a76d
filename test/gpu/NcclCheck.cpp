//===- NcclCheck.cpp - the nccl transport's device half, on one GPU -------===//
//
// What scripts/gpu-check.sh runs of the nccl transport where there is one
// GPU (NCCL refuses two ranks of a communicator on one device, so the
// pairs and groups of a multi-rank plan need as many GPUs):
//
//   ordered_sum  the exact collectives' summing kernel (OrderedSum.cu)
//                against the host's sum in member order, bit for bit, f32
//                and f64, 2, 3 and 5 members, this member first, inside
//                and last, lengths that do not fill a block;
//   nccl_self    NCCL loaded as the transport loads it, a one-rank world
//                communicator, a communicator split from it as the
//                transport splits them, and on each a grouped send to
//                itself and recv of random bytes, equal after.
//
// One JSON line per check and a summary; exit 0 all passed, 1 one failed,
// 3 no GPU.
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/NcclLibrary.h"
#include "kernels/cuda/OrderedSum.h"

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

int failures = 0;

void report(const std::string &name, bool ok, const std::string &detail) {
  failures += !ok;
  std::printf("{\"check\": \"%s\", \"ok\": %s, \"detail\": \"%s\"}\n",
              name.c_str(), ok ? "true" : "false", detail.c_str());
  std::fflush(stdout);
}

template <typename T>
bool orderedSumCase(pipert::DType dtype, int32_t members, int32_t me,
                    int64_t n, std::string &detail) {
  std::mt19937 rng(uint32_t(members * 1000 + me * 10 + n));
  std::uniform_real_distribution<double> u(-1, 1);
  // Member m's copy; values over 13 decades, so the order shows.
  std::vector<std::vector<T>> copy(static_cast<size_t>(members));
  for (auto &c : copy) {
    c.resize(static_cast<size_t>(n));
    for (T &v : c)
      v = T(u(rng) * std::pow(10.0, double(int(rng() % 13) - 6)));
  }
  std::vector<T> want(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    T s = copy[0][size_t(i)];
    for (int32_t m = 1; m < members; ++m)
      s += copy[size_t(m)][size_t(i)];
    want[size_t(i)] = s;
  }
  const size_t bytes = size_t(n) * sizeof(T);
  void *operand = nullptr, *staging = nullptr;
  cudaError_t e = cudaMalloc(&operand, bytes);
  if (e == cudaSuccess)
    e = cudaMalloc(&staging, bytes * size_t(members));
  if (e == cudaSuccess)
    e = cudaMemcpy(operand, copy[size_t(me)].data(), bytes,
                   cudaMemcpyHostToDevice);
  for (int32_t m = 0; m < members && e == cudaSuccess; ++m)
    if (m != me)
      e = cudaMemcpy(static_cast<uint8_t *>(staging) + size_t(m) * bytes,
                     copy[size_t(m)].data(), bytes, cudaMemcpyHostToDevice);
  pipert::OrderedSum sum{0, int64_t(bytes), 0};
  if (e == cudaSuccess)
    e = pipert::cuda::launchOrderedSum(nullptr, dtype, operand, staging, sum,
                                       members, me);
  std::vector<T> got(static_cast<size_t>(n));
  if (e == cudaSuccess)
    e = cudaMemcpy(got.data(), operand, bytes, cudaMemcpyDeviceToHost);
  cudaFree(operand);
  cudaFree(staging);
  if (e != cudaSuccess) {
    detail = cudaGetErrorString(e);
    return false;
  }
  for (int64_t i = 0; i < n; ++i)
    if (std::memcmp(&got[size_t(i)], &want[size_t(i)], sizeof(T)) != 0) {
      detail = "element " + std::to_string(i) + " of " + std::to_string(n) +
               ", members " + std::to_string(members) + ", this one " +
               std::to_string(me);
      return false;
    }
  return true;
}

void checkOrderedSum() {
  int cases = 0;
  std::string detail;
  bool ok = true;
  for (int32_t members : {2, 3, 5})
    for (int32_t me : {0, 1, members - 1})
      for (int64_t n : {int64_t(1), int64_t(1000), int64_t(100003)}) {
        ok = ok && orderedSumCase<float>(pipert::DType::F32, members, me, n,
                                         detail);
        ok = ok && orderedSumCase<double>(pipert::DType::F64, members, me, n,
                                          detail);
        cases += 2;
      }
  report("ordered_sum", ok,
         ok ? std::to_string(cases) + " cases bit for bit" : detail);
}

/// A grouped send to itself and recv on `comm`, `n` random bytes.
bool selfExchange(const pipert::cuda::NcclLibrary &lib, ncclComm_t comm,
                  cudaStream_t s, size_t n, std::string &detail) {
  std::vector<uint8_t> host(n), back(n);
  std::mt19937 rng(static_cast<uint32_t>(n));
  for (uint8_t &b : host)
    b = uint8_t(rng());
  void *a = nullptr, *b = nullptr;
  cudaError_t e = cudaMalloc(&a, n);
  if (e == cudaSuccess)
    e = cudaMalloc(&b, n);
  if (e == cudaSuccess)
    e = cudaMemcpy(a, host.data(), n, cudaMemcpyHostToDevice);
  if (e == cudaSuccess)
    e = cudaMemset(b, 0, n);
  ncclResult_t r = e == cudaSuccess ? lib.groupStart() : ncclSuccess;
  if (e == cudaSuccess && r == ncclSuccess)
    r = lib.send(a, n, ncclUint8, 0, comm, s);
  if (e == cudaSuccess && r == ncclSuccess)
    r = lib.recv(b, n, ncclUint8, 0, comm, s);
  if (e == cudaSuccess) {
    ncclResult_t ended = lib.groupEnd();
    if (r == ncclSuccess)
      r = ended;
  }
  if (e == cudaSuccess && r == ncclSuccess)
    e = cudaStreamSynchronize(s);
  if (e == cudaSuccess)
    e = cudaMemcpy(back.data(), b, n, cudaMemcpyDeviceToHost);
  cudaFree(a);
  cudaFree(b);
  if (e != cudaSuccess || r != ncclSuccess) {
    detail = e != cudaSuccess ? cudaGetErrorString(e) : lib.getErrorString(r);
    return false;
  }
  if (back != host) {
    detail = std::to_string(n) + " bytes came back changed";
    return false;
  }
  return true;
}

void checkNcclSelf() {
  std::string error;
  const pipert::cuda::NcclLibrary *lib = pipert::cuda::loadNccl(error);
  if (!lib) {
    report("nccl_self", false, error);
    return;
  }
  ncclUniqueId id{};
  ncclComm_t world = nullptr, split = nullptr;
  cudaStream_t s = nullptr;
  std::string detail;
  bool ok = lib->getUniqueId(&id) == ncclSuccess &&
            lib->commInitRank(&world, 1, id, 0) == ncclSuccess &&
            lib->commSplit(world, 0, 0, &split, nullptr) == ncclSuccess &&
            cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess;
  if (!ok)
    detail = "making the communicators failed";
  for (size_t n : {size_t(1), size_t(4096), size_t(3) << 20})
    ok = ok && selfExchange(*lib, world, s, n, detail) &&
         selfExchange(*lib, split, s, n, detail);
  ncclResult_t async = ncclSuccess;
  if (ok && lib->commGetAsyncError(world, &async) == ncclSuccess &&
      async != ncclSuccess) {
    ok = false;
    detail = std::string("asynchronous error: ") + lib->getErrorString(async);
  }
  if (split)
    lib->commDestroy(split);
  if (world)
    lib->commDestroy(world);
  if (s)
    cudaStreamDestroy(s);
  report("nccl_self", ok,
         ok ? lib->path + " NCCL " + std::to_string(lib->version) +
                  ": world and split communicators, 3 sizes"
            : detail);
}

} // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("{\"summary\": {\"gpu\": false}}\n");
    return 3;
  }
  checkOrderedSum();
  checkNcclSelf();
  std::printf("{\"summary\": {\"gpu\": true, \"devices\": %d, \"failed\": %d}}\n",
              devices, failures);
  return failures ? 1 : 0;
}
