//===- NcclLibrary.cpp - dlopen of NCCL and its functions -----------------===//

#include "kernels/cuda/NcclLibrary.h"

#include <cstdlib>
#include <dlfcn.h>
#include <mutex>

namespace pipert::cuda {
namespace {

template <typename F> bool lookUp(void *handle, const char *name, F &out) {
  out = reinterpret_cast<F>(dlsym(handle, name));
  return out != nullptr;
}

} // namespace

const NcclLibrary *loadNccl(std::string &error) {
  static std::once_flag once;
  static NcclLibrary library;
  static std::string why;
  static bool loaded = false;
  std::call_once(once, [] {
    const char *named = std::getenv("PIPEC_NCCL_LIBRARY");
    std::string path = named && *named ? named : "libnccl.so.2";
    void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char *e = dlerror();
      why = "cannot load NCCL (" + path + "): " + (e ? e : "unknown error") +
            "; set PIPEC_NCCL_LIBRARY to libnccl.so.2's path (a pip install "
            "of nvidia-nccl-cu13 puts it in site-packages/nvidia/nccl/lib) "
            "or add its folder to LD_LIBRARY_PATH";
      return;
    }
    NcclLibrary &l = library;
    const char *missing = nullptr;
    auto need = [&](const char *name, auto &fn) {
      if (!missing && !lookUp(h, name, fn))
        missing = name;
    };
    need("ncclGetVersion", l.getVersion);
    need("ncclGetUniqueId", l.getUniqueId);
    need("ncclCommInitRank", l.commInitRank);
    need("ncclCommSplit", l.commSplit);
    need("ncclCommDestroy", l.commDestroy);
    need("ncclCommAbort", l.commAbort);
    need("ncclCommGetAsyncError", l.commGetAsyncError);
    need("ncclGetErrorString", l.getErrorString);
    need("ncclSend", l.send);
    need("ncclRecv", l.recv);
    need("ncclAllGather", l.allGather);
    need("ncclAllReduce", l.allReduce);
    need("ncclGroupStart", l.groupStart);
    need("ncclGroupEnd", l.groupEnd);
    lookUp(h, "ncclGetLastError", l.getLastError); // optional
    if (missing) {
      why = path + " has no " + missing + " (NCCL 2.18 or later is needed)";
      dlclose(h);
      return;
    }
    l.getVersion(&l.version);
    // The major version fixes the ABI of the types compiled in here.
    if (l.version / 10000 != NCCL_MAJOR) {
      why = path + " is NCCL " + std::to_string(l.version) +
            ", but this plan was built with NCCL " +
            std::to_string(NCCL_VERSION_CODE) + " (another major version)";
      dlclose(h);
      return;
    }
    l.path = path;
    loaded = true;
  });
  if (!loaded) {
    error = why;
    return nullptr;
  }
  return &library;
}

std::string ncclFailure(const NcclLibrary &lib, ncclResult_t r) {
  std::string out = lib.getErrorString(r);
  const char *last = lib.getLastError ? lib.getLastError(nullptr) : nullptr;
  if (last && *last) {
    std::string words = last;
    while (!words.empty() && (words.back() == '\n' || words.back() == ' '))
      words.pop_back();
    out += " (" + words + ")";
    if (words.find("Duplicate GPU") != std::string::npos)
      out += "; NCCL needs a GPU per rank: start at most as many ranks on a "
             "machine as it has GPUs";
  }
  return out;
}

} // namespace pipert::cuda
