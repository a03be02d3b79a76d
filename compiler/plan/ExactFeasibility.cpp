//===- ExactFeasibility.cpp - bound tests for V and looped placements -----===//

#include "compiler/plan/ExactFeasibility.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace pipec::plan {

namespace {

constexpr int32_t kNone = -1;

/// Where the innermost V rank splits its middle [x, y) into chunks S-1 and
/// S: as evenly as possible (the rank's time is the same either way);
/// -1 if no split keeps both halves within `chunkBound`.
int32_t middleSplit(const std::vector<double> &prefix, int32_t x, int32_t y,
                    double chunkBound) {
  const double eps = 1e-12 * prefix.back();
  int32_t mid = -1;
  double best = 0;
  for (int32_t m = x + 1; m < y; ++m) {
    double a = prefix[m] - prefix[x], b = prefix[y] - prefix[m];
    if (a > chunkBound + eps || b > chunkBound + eps)
      continue;
    if (mid < 0 || std::abs(a - b) < best) {
      mid = m;
      best = std::abs(a - b);
    }
  }
  return mid;
}

/// V shape (rank r holds chunks r and 2S-1-r): rank 0 takes pieces from
/// both ends of the sequence, rank 1 from both ends of what is left, and so
/// on; rank S-1 takes the middle (chunks S-1 and S). State after r ranks:
/// the middle [x, y) still to cover. For one x the smallest y dominates
/// (the right end consumed most; a continuation of a larger y is one of the
/// smaller y with no more time), so a level is an array minY[x]. Fills
/// `cuts` when the bound fits.
bool vShapeFits(const std::vector<double> &prefix, int32_t ranks, double bound,
                double chunkBound, Cuts &out) {
  const int32_t n = int32_t(prefix.size()) - 1, s = ranks;
  const double eps = 1e-12 * prefix.back();
  // minY[r][x]; parent[r][x] = x of level r - 1.
  std::vector<std::vector<int32_t>> minY(s, std::vector<int32_t>(n + 1, kNone));
  std::vector<std::vector<int32_t>> parent = minY;
  minY[0][0] = n;
  for (int32_t r = 0; r + 1 < s; ++r) {
    int32_t keep = 2 * (s - 1 - r); // pieces the later ranks need
    for (int32_t x = 0; x <= n; ++x) {
      int32_t y = minY[r][x];
      if (y == kNone)
        continue;
      // y2 below only grows with x2 (the left piece grows, so the rest
      // shrinks, and so does the range's start): one binary search, then
      // a pointer that only moves right (linear in the window, not a
      // search per x2: deep models have thousands of pieces).
      int32_t y2 = -1;
      for (int32_t x2 = x + 1; x2 + keep <= y - 1; ++x2) {
        double left = prefix[x2] - prefix[x];
        if (left > std::min(bound, chunkBound) + eps)
          break;
        double rest = std::min(bound - left, chunkBound);
        // Smallest y2 in [x2 + keep, y - 1] with prefix[y] - prefix[y2] <= rest.
        const double target = prefix[y] - rest - eps;
        if (y2 < 0) {
          y2 = int32_t(std::lower_bound(prefix.begin() + x2 + keep,
                                        prefix.begin() + y, target) -
                       prefix.begin());
        } else {
          y2 = std::max(y2, x2 + keep);
          while (y2 < y && prefix[y2] < target)
            ++y2;
        }
        if (y2 > y - 1)
          break; // and for every larger x2
        int32_t &best = minY[r + 1][x2];
        if (best == kNone || y2 < best) {
          best = y2;
          parent[r + 1][x2] = x;
        }
      }
    }
  }
  // The innermost rank takes the whole middle, split anywhere inside.
  for (int32_t x = 0; x <= n; ++x) {
    int32_t y = minY[s - 1][x];
    if (y == kNone || y - x < 2 || prefix[y] - prefix[x] > bound + eps ||
        middleSplit(prefix, x, y, chunkBound) < 0)
      continue;
    out.cuts.assign(2 * s + 1, 0);
    out.cuts[2 * s] = n;
    int32_t cx = x;
    for (int32_t r = s - 1; r >= 0; --r) {
      out.cuts[r] = cx;
      out.cuts[2 * s - r] = minY[r][cx];
      cx = parent[r][cx];
    }
    out.cuts[s] = middleSplit(prefix, x, y, chunkBound);
    return true;
  }
  return false;
}

/// Looped with two chunks per rank (rank r holds chunks r and S+r): for a
/// midpoint m, rank r takes [a_r, a_r+1) from the first pass and
/// [b_r, b_r+1) from the second; for one a the largest b dominates. Tries
/// every midpoint.
bool looped2Fits(const std::vector<double> &prefix, int32_t ranks,
                 double bound, double chunkBound, Cuts &out) {
  const int32_t n = int32_t(prefix.size()) - 1, s = ranks;
  const double eps = 1e-12 * prefix.back();
  std::vector<std::vector<int32_t>> maxB(s + 1), parent(s + 1);
  for (int32_t m = s; m + s <= n; ++m) {
    if (prefix[m] > s * bound + eps)
      break;
    if (prefix[n] - prefix[m] > s * bound + eps)
      continue;
    for (int32_t r = 0; r <= s; ++r) {
      maxB[r].assign(m + 1, kNone);
      parent[r].assign(m + 1, kNone);
    }
    maxB[0][0] = m;
    for (int32_t r = 0; r < s; ++r) {
      int32_t later = s - 1 - r; // ranks after r, one piece each per pass
      for (int32_t a = 0; a <= m; ++a) {
        int32_t b = maxB[r][a];
        if (b == kNone)
          continue;
        int32_t aLo = later == 0 ? m : a + 1, aHi = m - later;
        for (int32_t a2 = aLo; a2 <= aHi; ++a2) {
          double first = prefix[a2] - prefix[a];
          if (first > std::min(bound, chunkBound) + eps)
            break;
          double rest = std::min(bound - first, chunkBound);
          int32_t b2;
          if (later == 0) {
            if (prefix[n] - prefix[b] > rest + eps || n - b < 1)
              continue;
            b2 = n;
          } else {
            // Largest b2 in [b + 1, n - later] with prefix[b2] - prefix[b] <= rest.
            auto it = std::upper_bound(prefix.begin() + b + 1,
                                       prefix.begin() + n - later + 1,
                                       prefix[b] + rest + eps);
            b2 = int32_t(it - prefix.begin()) - 1;
            if (b2 < b + 1)
              continue;
          }
          int32_t &best = maxB[r + 1][a2];
          if (best == kNone || b2 > best) {
            best = b2;
            parent[r + 1][a2] = a;
          }
        }
      }
    }
    if (maxB[s][m] != n)
      continue;
    out.cuts.assign(2 * s + 1, 0);
    int32_t a = m;
    for (int32_t r = s; r >= 0; --r) {
      out.cuts[r] = a;
      out.cuts[s + r] = maxB[r][a];
      if (r > 0)
        a = parent[r][a];
    }
    out.cuts[s] = m;
    out.cuts[2 * s] = n;
    return true;
  }
  return false;
}

/// The same two tests without the dominance shortcut: every reachable
/// state (x, y) is kept, as a bit per pair. The shortcut can miss a plan
/// when a rank must take at least one piece from an end it would rather
/// leave; this version cannot, and costs n^3 per rank, so it serves models
/// of up to a few hundred ops.
bool vShapeFitsFull(const std::vector<double> &prefix, int32_t ranks,
                    double bound, double chunkBound, Cuts &out) {
  const int32_t n = int32_t(prefix.size()) - 1, s = ranks, w = n + 1;
  const double eps = 1e-12 * prefix.back();
  // reach[r][x * w + y]: ranks 0..r-1 can leave exactly the middle [x, y).
  std::vector<std::vector<uint8_t>> reach(s, std::vector<uint8_t>(w * w, 0));
  reach[0][0 * w + n] = 1;
  auto step = [&](int32_t x, int32_t y, int32_t x2, int32_t y2) {
    return prefix[x2] - prefix[x] + prefix[y] - prefix[y2] <= bound + eps &&
           prefix[x2] - prefix[x] <= chunkBound + eps &&
           prefix[y] - prefix[y2] <= chunkBound + eps;
  };
  for (int32_t r = 0; r + 1 < s; ++r) {
    int32_t keep = 2 * (s - 1 - r);
    std::vector<int32_t> diff(w * (w + 1), 0);
    for (int32_t x = 0; x <= n; ++x)
      for (int32_t y = x; y <= n; ++y) {
        if (!reach[r][x * w + y])
          continue;
        for (int32_t x2 = x + 1; x2 + keep <= y - 1; ++x2) {
          double left = prefix[x2] - prefix[x];
          if (left > std::min(bound, chunkBound) + eps)
            break;
          auto it = std::lower_bound(
              prefix.begin() + x2 + keep, prefix.begin() + y,
              prefix[y] - std::min(bound - left, chunkBound) - eps);
          int32_t y2 = int32_t(it - prefix.begin());
          if (y2 > y - 1)
            continue;
          ++diff[x2 * (w + 1) + y2];
          --diff[x2 * (w + 1) + y];
        }
      }
    for (int32_t x = 0; x <= n; ++x) {
      int32_t run = 0;
      for (int32_t y = 0; y <= n; ++y) {
        run += diff[x * (w + 1) + y];
        reach[r + 1][x * w + y] = run > 0;
      }
    }
  }
  for (int32_t x = 0; x <= n; ++x)
    for (int32_t y = x + 2; y <= n; ++y) {
      if (!reach[s - 1][x * w + y] || prefix[y] - prefix[x] > bound + eps ||
          middleSplit(prefix, x, y, chunkBound) < 0)
        continue;
      out.cuts.assign(2 * s + 1, 0);
      out.cuts[2 * s] = n;
      int32_t cx = x, cy = y;
      for (int32_t r = s - 1; r >= 0; --r) {
        out.cuts[r] = cx;
        out.cuts[2 * s - r] = cy;
        if (r == 0)
          break;
        bool found = false;
        for (int32_t px = 0; px < cx && !found; ++px)
          for (int32_t py = cy + 1; py <= n && !found; ++py)
            if (reach[r - 1][px * w + py] && step(px, py, cx, cy)) {
              cx = px, cy = py;
              found = true;
            }
        assert(found && "a reachable state has a predecessor");
      }
      out.cuts[s] = middleSplit(prefix, x, y, chunkBound);
      return true;
    }
  return false;
}

bool looped2FitsFull(const std::vector<double> &prefix, int32_t ranks,
                     double bound, double chunkBound, Cuts &out) {
  const int32_t n = int32_t(prefix.size()) - 1, s = ranks, w = n + 1;
  const double eps = 1e-12 * prefix.back();
  auto fitsStep = [&](int32_t a, int32_t b, int32_t a2, int32_t b2) {
    return prefix[a2] - prefix[a] + prefix[b2] - prefix[b] <= bound + eps &&
           prefix[a2] - prefix[a] <= chunkBound + eps &&
           prefix[b2] - prefix[b] <= chunkBound + eps;
  };
  for (int32_t m = s; m + s <= n; ++m) {
    // reach[r][a * w + b]: ranks 0..r-1 covered [0, a) and [m, b).
    std::vector<std::vector<uint8_t>> reach(s + 1,
                                            std::vector<uint8_t>(w * w, 0));
    reach[0][0 * w + m] = 1;
    for (int32_t r = 0; r < s; ++r) {
      int32_t later = s - 1 - r;
      for (int32_t a = 0; a <= m; ++a)
        for (int32_t b = m; b <= n; ++b) {
          if (!reach[r][a * w + b])
            continue;
          int32_t aLo = later == 0 ? m : a + 1, aHi = m - later;
          int32_t bLo = later == 0 ? n : b + 1, bHi = n - later;
          for (int32_t a2 = aLo; a2 <= aHi; ++a2)
            for (int32_t b2 = bLo; b2 <= bHi; ++b2) {
              if (!fitsStep(a, b, a2, b2))
                break;
              reach[r + 1][a2 * w + b2] = 1;
            }
        }
    }
    if (!reach[s][m * w + n])
      continue;
    out.cuts.assign(2 * s + 1, 0);
    int32_t a = m, b = n;
    for (int32_t r = s; r >= 0; --r) {
      out.cuts[r] = a;
      out.cuts[s + r] = b;
      if (r == 0)
        break;
      bool found = false;
      for (int32_t pa = 0; pa < a && !found; ++pa)
        for (int32_t pb = m; pb < b && !found; ++pb)
          if (reach[r - 1][pa * w + pb] && fitsStep(pa, pb, a, b)) {
            a = pa, b = pb;
            found = true;
          }
      assert(found && "a reachable state has a predecessor");
    }
    return true;
  }
  return false;
}

} // namespace

Shape shapeOf(const std::vector<int32_t> &rankOf, int32_t ranks, int32_t pieces) {
  int32_t chunks = int32_t(rankOf.size());
  bool vShape = chunks == 2 * ranks, looped = chunks == 2 * ranks;
  for (int32_t c = 0; c < chunks; ++c) {
    vShape = vShape && rankOf[c] == (c < ranks ? c : 2 * ranks - 1 - c);
    looped = looped && rankOf[c] == c % ranks;
  }
  // The full tests keep n^2 bits per rank. The V's dominance version keeps
  // n integers per rank and visits only states within the bound, fast at
  // any size (GPT-3 175B, 96 x 2 chunks: about a second); the looped one
  // also tries every midpoint, so it is bounded by n^3 S (GPT-3 would take
  // a minute) and larger models use the descent.
  double n = pieces;
  if (vShape)
    return n * n * n * ranks <= 3e7 ? Shape::VShape : Shape::VShapeLarge;
  if (looped)
    return n * n * n * n * ranks <= 3e7 ? Shape::Looped2
           : n * n * n * ranks <= 5e7   ? Shape::Looped2Large
                                        : Shape::Other;
  return Shape::Other;
}

bool exactFits(const std::vector<double> &prefix, int32_t ranks, Shape shape,
               double bound, double chunkBound, Cuts &out) {
  switch (shape) {
  case Shape::VShape:
    return vShapeFitsFull(prefix, ranks, bound, chunkBound, out);
  case Shape::VShapeLarge:
    return vShapeFits(prefix, ranks, bound, chunkBound, out);
  case Shape::Looped2:
    return looped2FitsFull(prefix, ranks, bound, chunkBound, out);
  case Shape::Looped2Large:
    return looped2Fits(prefix, ranks, bound, chunkBound, out);
  case Shape::Other:
    break;
  }
  return false;
}

} // namespace pipec::plan
