//===- StrictFlags.h - numeric flags that refuse what they cannot mean -*- C++ -*-===//
//
// llvm::cl's own integer parser guesses the base ("010" is 8) and its
// double parser takes nan and inf; pipec's numeric flags go through
// pipert's strict parsers instead (ParseNumber.h): decimal only, no
// overflow, in the range the flag states, with a message naming both.
//
//   static StrictInt<int, 1, 4096> stages("stages", 1, cl::desc(...), ...);
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_TOOLS_PIPEC_STRICTFLAGS_H
#define PIPEC_TOOLS_PIPEC_STRICTFLAGS_H

#include "pipert/ParseNumber.h"

#include "llvm/Support/CommandLine.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipec::tool {

/// Messages of the numeric flags that did not parse; pipec's main prints
/// them and exits before any subcommand runs.
std::vector<std::string> &flagErrors();

/// A numeric flag: a cl::opt<std::string> whose text `Parse::parse`
/// reads strictly, used as a T; errors go to flagErrors().
template <typename T, typename Parse> class StrictFlag {
public:
  template <typename... Mods>
  StrictFlag(const char *name, T init, const Mods &...mods)
      : value(init),
        opt(llvm::StringRef(name), llvm::cl::value_desc(Parse::valueName),
            llvm::cl::cb<void, const std::string &>(
                [this, name](const std::string &text) {
                  std::string error;
                  if (!Parse::parse(std::string("--") + name, text, value,
                                    error))
                    flagErrors().push_back(error);
                }),
            mods...) {}
  operator T() const { return value; }
  unsigned getNumOccurrences() const { return opt.getNumOccurrences(); }

private:
  T value;
  llvm::cl::opt<std::string> opt;
};

/// Integers of type T in [Min, Max].
template <typename T, int64_t Min, int64_t Max> struct IntegerIn {
  static constexpr const char *valueName = "N";
  static bool parse(const std::string &flag, const std::string &text, T &out,
                    std::string &error) {
    int64_t v = 0;
    if (!pipert::parseInteger(flag, text, Min, Max, v, error))
      return false;
    out = T(v);
    return true;
  }
};

/// Finite, non-negative decimal numbers (a cost, a time).
struct Cost {
  static constexpr const char *valueName = "X";
  static bool parse(const std::string &flag, const std::string &text,
                    double &out, std::string &error) {
    return pipert::parseFinite(flag, text, 0, 1e30, out, error);
  }
};

/// An integer flag of type T in [Min, Max].
template <typename T, int64_t Min, int64_t Max>
using StrictInt = StrictFlag<T, IntegerIn<T, Min, Max>>;
/// A cost flag.
using StrictCost = StrictFlag<double, Cost>;

/// Largest stage count, micro-batch count and chunks per rank a plan may
/// have (the schedule generator's tables are sized by them).
constexpr int64_t kMaxStages = 4096;
constexpr int64_t kMaxMicrobatches = 1 << 20;
constexpr int64_t kMaxChunksPerRank = 64;
/// Largest data-parallel replica count (--dp).
constexpr int64_t kMaxReplicas = 4096;

} // namespace pipec::tool

#endif // PIPEC_TOOLS_PIPEC_STRICTFLAGS_H
