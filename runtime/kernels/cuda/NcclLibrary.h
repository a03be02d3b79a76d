//===- NcclLibrary.h - NCCL, loaded when a run asks for it ------*- C++ -*-===//
//
// A cuda plan does not link NCCL: most runs (one process, the cuda-local
// transport) never need it, and a machine may have the CUDA toolkit
// without NCCL on the loader's path (NCCL often comes as a Python wheel,
// site-packages/nvidia/nccl/lib). `--transport nccl` loads it here:
// $PIPEC_NCCL_LIBRARY when set, else libnccl.so.2 from the loader's path;
// the failure says which paths were tried and how to name one. The types
// come from the toolkit's nccl.h at build time; the functions used are
// looked up once and checked against the version the plan was built with
// (NCCL keeps its ABI within a major version).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_NCCLLIBRARY_H
#define PIPERT_KERNELS_CUDA_NCCLLIBRARY_H

#include <nccl.h>

#include <string>

namespace pipert::cuda {

/// The NCCL functions the nccl transport calls.
struct NcclLibrary {
  ncclResult_t (*getVersion)(int *);
  ncclResult_t (*getUniqueId)(ncclUniqueId *);
  ncclResult_t (*commInitRank)(ncclComm_t *, int, ncclUniqueId, int);
  ncclResult_t (*commSplit)(ncclComm_t, int, int, ncclComm_t *,
                            ncclConfig_t *);
  ncclResult_t (*commDestroy)(ncclComm_t);
  ncclResult_t (*commAbort)(ncclComm_t);
  ncclResult_t (*commGetAsyncError)(ncclComm_t, ncclResult_t *);
  const char *(*getErrorString)(ncclResult_t);
  ncclResult_t (*send)(const void *, size_t, ncclDataType_t, int, ncclComm_t,
                       cudaStream_t);
  ncclResult_t (*recv)(void *, size_t, ncclDataType_t, int, ncclComm_t,
                       cudaStream_t);
  ncclResult_t (*allGather)(const void *, void *, size_t, ncclDataType_t,
                            ncclComm_t, cudaStream_t);
  ncclResult_t (*allReduce)(const void *, void *, size_t, ncclDataType_t,
                            ncclRedOp_t, ncclComm_t, cudaStream_t);
  ncclResult_t (*groupStart)();
  ncclResult_t (*groupEnd)();
  /// NCCL's own words on the thread's last error (2.13 and later; null
  /// where the library lacks it): what getErrorString's category leaves
  /// out, such as which ranks share a GPU.
  const char *(*getLastError)(ncclComm_t) = nullptr;
  /// The loaded library's version (e.g. 23007) and path.
  int version = 0;
  std::string path;
};

/// Loads NCCL once per process; null with why in `error`.
const NcclLibrary *loadNccl(std::string &error);

/// What a failed NCCL call says: the result's category, NCCL's own last
/// error message where it has one, and for two ranks on one GPU (which
/// NCCL refuses) what to do about it.
std::string ncclFailure(const NcclLibrary &lib, ncclResult_t r);

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_NCCLLIBRARY_H
