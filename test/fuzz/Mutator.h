//===- Mutator.h - seeded mutations of JSON model files ---------*- C++ -*-===//
//
// The importer fuzzer's mutation engine. It knows the model format only as far
// as that helps a mutant get past the first check: it mutates the parsed tree
// (delete, retype, rename, duplicate, reorder, splice, absurd numbers, new op
// nodes) and the serialised text (truncation, garbage bytes, deep nesting).
// Mutant `index` of run `seed` is a pure function of the two numbers and the
// seed files, so a failure found in a run is reproduced by its index alone.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_TEST_FUZZ_MUTATOR_H
#define PIPEC_TEST_FUZZ_MUTATOR_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pipec::fuzz {

/// One generated input: the text handed to the importer and how it was made.
struct Mutant {
  std::string text;
  /// The seed file it came from.
  std::string seedName;
  /// The mutations applied, in order, with the JSON paths they touched.
  std::string recipe;
};

/// Holds the seed models and makes mutants of them.
class Mutator {
public:
  Mutator();
  ~Mutator();

  /// Adds one seed model. Returns false and sets `error` when `text` is not
  /// JSON: the seeds are the project's own model files and must parse.
  bool addSeed(const std::string &name, const std::string &text,
               std::string &error);

  /// The number of seeds added.
  size_t numSeeds() const;

  /// Mutant number `index` of the run with seed `seed`.
  Mutant make(uint64_t seed, uint64_t index) const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl;
};

} // namespace pipec::fuzz

#endif // PIPEC_TEST_FUZZ_MUTATOR_H
