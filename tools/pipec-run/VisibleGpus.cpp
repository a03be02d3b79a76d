//===- VisibleGpus.cpp - how many GPUs this machine shows its processes ---===//

#include "tools/pipec-run/VisibleGpus.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace pipecrun {
namespace {

/// An entry of CUDA_VISIBLE_DEVICES that names a device: an index, or a
/// GPU or MIG UUID (a prefix of one is enough for CUDA).
bool namesDevice(const std::string &entry) {
  if (entry.empty())
    return false;
  if (entry.rfind("GPU-", 0) == 0 || entry.rfind("MIG-", 0) == 0)
    return true;
  for (char c : entry)
    if (!std::isdigit(static_cast<unsigned char>(c)))
      return false;
  return true;
}

} // namespace

int visibleGpus(std::string &from) {
  if (const char *v = std::getenv("CUDA_VISIBLE_DEVICES")) {
    from = std::string("CUDA_VISIBLE_DEVICES=") + v;
    std::istringstream in(v);
    std::string entry;
    int n = 0;
    while (std::getline(in, entry, ',')) {
      // CUDA ignores the entries after the first that names no device.
      size_t a = entry.find_first_not_of(' '), b = entry.find_last_not_of(' ');
      if (a == std::string::npos || !namesDevice(entry.substr(a, b - a + 1)))
        break;
      ++n;
    }
    return n;
  }
  namespace fs = std::filesystem;
  const fs::path gpus = "/proc/driver/nvidia/gpus";
  std::error_code ec;
  if (!fs::is_directory(gpus, ec))
    return -1;
  int n = 0;
  for (const fs::directory_entry &e : fs::directory_iterator(gpus, ec))
    n += e.is_directory(ec) ? 1 : 0;
  from = gpus.string();
  return ec ? -1 : n;
}

} // namespace pipecrun
