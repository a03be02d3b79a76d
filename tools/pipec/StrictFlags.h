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

/// An integer flag of type T in [Min, Max]: a cl::opt<std::string> whose
/// text is parsed strictly, used as a T.
template <typename T, int64_t Min, int64_t Max> class StrictInt {
public:
  template <typename... Mods>
  StrictInt(const char *name, T init, const Mods &...mods)
      : value(init),
        opt(llvm::StringRef(name), llvm::cl::value_desc("N"),
            llvm::cl::cb<void, const std::string &>(
                [this, name](const std::string &text) {
                  int64_t v = 0;
                  std::string error;
                  if (pipert::parseInteger(std::string("--") + name, text,
                                           Min, Max, v, error))
                    value = T(v);
                  else
                    flagErrors().push_back(error);
                }),
            mods...) {}
  operator T() const { return value; }
  unsigned getNumOccurrences() const { return opt.getNumOccurrences(); }

private:
  T value;
  llvm::cl::opt<std::string> opt;
};

/// A finite, non-negative decimal flag (a cost, a time).
class StrictCost {
public:
  template <typename... Mods>
  StrictCost(const char *name, double init, const Mods &...mods)
      : value(init),
        opt(llvm::StringRef(name), llvm::cl::value_desc("X"),
            llvm::cl::cb<void, const std::string &>(
                [this, name](const std::string &text) {
                  std::string error;
                  if (!pipert::parseFinite(std::string("--") + name, text, 0,
                                           1e30, value, error))
                    flagErrors().push_back(error);
                }),
            mods...) {}
  operator double() const { return value; }
  unsigned getNumOccurrences() const { return opt.getNumOccurrences(); }

private:
  double value;
  llvm::cl::opt<std::string> opt;
};

/// Largest stage count, micro-batch count and chunks per rank a plan may
/// have (the schedule generator's tables are sized by them).
constexpr int64_t kMaxStages = 4096;
constexpr int64_t kMaxMicrobatches = 1 << 20;
constexpr int64_t kMaxChunksPerRank = 64;

} // namespace pipec::tool

#endif // PIPEC_TOOLS_PIPEC_STRICTFLAGS_H
