//===- ParseNumber.h - strict numbers for command-line flags ----*- C++ -*-===//
//
// One parser for every numeric flag of pipec-plan and pipec's own checks:
// decimal digits only (no leading space, sign where none is allowed, octal
// or hex guess, exponent or fraction for a count), overflow detected, and a
// range the caller states, so that "--steps 1e3", "--cores 4294967296" or
// "--timeout-ms 10000000000000" are errors naming the flag and the range
// rather than values quietly truncated or wrapped.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_PARSENUMBER_H
#define PIPERT_PARSENUMBER_H

#include <cstdint>
#include <string>

namespace pipert {

/// Parses a decimal integer in [min, max]; false with `error` =
/// "FLAG must be an integer from MIN to MAX, not 'TEXT'".
bool parseInteger(const std::string &flag, const std::string &text,
                  int64_t min, int64_t max, int64_t &out, std::string &error);

/// Parses a decimal unsigned integer (any uint64_t).
bool parseUnsigned(const std::string &flag, const std::string &text,
                   uint64_t &out, std::string &error);

/// Parses a finite decimal number in [min, max] (no nan, no inf, no hex).
bool parseFinite(const std::string &flag, const std::string &text, double min,
                 double max, double &out, std::string &error);

} // namespace pipert

#endif // PIPERT_PARSENUMBER_H
