//===- Init.cpp - the seeded parameter initialiser ------------------------===//

#include "pipert/Init.h"

#include <cmath>

namespace pipert {

static constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

uint64_t fnv1a64(const std::string &bytes) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : bytes)
    h = (h ^ c) * 0x100000001B3ull;
  return h;
}

uint64_t splitmix64(uint64_t z) {
  z += kGolden;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// The generator of one element, with the name's key already computed.
static double normalFromKey(uint64_t base, uint64_t index, double std) {
  uint64_t x1 = splitmix64(base ^ (2 * index) * kGolden);
  uint64_t x2 = splitmix64(base ^ (2 * index + 1) * kGolden);
  double u1 = static_cast<double>((x1 >> 11) + 1) * 0x1p-53;
  double u2 = static_cast<double>(x2 >> 11) * 0x1p-53;
  return std * std::sqrt(-2.0 * std::log(u1)) *
         std::cos(2.0 * 3.14159265358979323846 * u2);
}

double normalInitValue(uint64_t seed, const std::string &name, uint64_t index,
                       double std) {
  return normalFromKey(seed ^ fnv1a64(name), index, std);
}

template <typename T>
bool initParameter(T *out, int64_t first, int64_t count, uint64_t seed,
                   const std::string &name, const std::string &init,
                   double std) {
  if (init == "zeros" || init == "ones") {
    T v = init == "ones" ? T(1) : T(0);
    for (int64_t i = 0; i < count; ++i)
      out[i] = v;
    return true;
  }
  if (init != "normal")
    return false;
  uint64_t base = seed ^ fnv1a64(name);
  for (int64_t i = 0; i < count; ++i)
    out[i] = static_cast<T>(normalFromKey(base, uint64_t(first + i), std));
  return true;
}

template bool initParameter<float>(float *, int64_t, int64_t, uint64_t,
                                   const std::string &, const std::string &,
                                   double);
template bool initParameter<double>(double *, int64_t, int64_t, uint64_t,
                                    const std::string &, const std::string &,
                                    double);

} // namespace pipert
