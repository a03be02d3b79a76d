//===- Init.h - the seeded parameter initialiser of docs/TRAINING.md -*- C++
//-*-===//
//
// Every element is a function of (seed, parameter name, element index)
// through a counter-based generator (splitmix64 over a per-name FNV-1a key),
// so every layout and every target starts from identical weights whatever
// order or shard it initialises in. Normal values use Box-Muller in double,
// rounded once to the element type.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_INIT_H
#define PIPERT_INIT_H

#include <cstdint>
#include <string>

namespace pipert {

/// FNV-1a, 64 bits, of `bytes`.
uint64_t fnv1a64(const std::string &bytes);

/// The splitmix64 finaliser.
uint64_t splitmix64(uint64_t z);

/// Element `index` of a normal(0, std) parameter called `name`, in double.
double normalInitValue(uint64_t seed, const std::string &name, uint64_t index,
                       double std);

/// Fills `count` elements of parameter `name` starting at element `first`
/// (a shard may start anywhere). `init` is "normal", "zeros" or "ones";
/// returns false for any other kind.
template <typename T>
bool initParameter(T *out, int64_t first, int64_t count, uint64_t seed,
                   const std::string &name, const std::string &init,
                   double std);

} // namespace pipert

#endif // PIPERT_INIT_H
