//===- ParseNumber.cpp - strict numbers for command-line flags ------------===//

#include "pipert/ParseNumber.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace pipert {

static bool digitsOnly(const std::string &t, size_t from) {
  if (from >= t.size())
    return false;
  for (size_t i = from; i < t.size(); ++i)
    if (t[i] < '0' || t[i] > '9')
      return false;
  return true;
}

bool parseInteger(const std::string &flag, const std::string &text,
                  int64_t min, int64_t max, int64_t &out, std::string &error) {
  bool ok = digitsOnly(text, text.size() && text[0] == '-' ? 1 : 0);
  long long v = 0;
  if (ok) {
    errno = 0;
    v = std::strtoll(text.c_str(), nullptr, 10);
    ok = errno == 0 && v >= min && v <= max;
  }
  if (!ok) {
    error = flag + " must be an integer from " + std::to_string(min) +
            " to " + std::to_string(max) + ", not '" + text + "'";
    return false;
  }
  out = v;
  return true;
}

bool parseUnsigned(const std::string &flag, const std::string &text,
                   uint64_t &out, std::string &error) {
  bool ok = digitsOnly(text, 0);
  unsigned long long v = 0;
  if (ok) {
    errno = 0;
    v = std::strtoull(text.c_str(), nullptr, 10);
    ok = errno == 0;
  }
  if (!ok) {
    error = flag + " must be an integer from 0 to 18446744073709551615, not '" +
            text + "'";
    return false;
  }
  out = v;
  return true;
}

bool parseFinite(const std::string &flag, const std::string &text, double min,
                 double max, double &out, std::string &error) {
  // Decimal notation only: digits, one point, an exponent.
  bool ok = !text.empty();
  for (char c : text)
    ok = ok && ((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' ||
                c == '-' || c == '+');
  double v = 0;
  if (ok) {
    char *end = nullptr;
    errno = 0;
    v = std::strtod(text.c_str(), &end);
    ok = *end == 0 && errno == 0 && std::isfinite(v) && v >= min && v <= max;
  }
  if (!ok) {
    char range[96];
    std::snprintf(range, sizeof range, "a number from %g to %g", min, max);
    error = flag + " must be " + range + ", not '" + text + "'";
    return false;
  }
  out = v;
  return true;
}

} // namespace pipert
