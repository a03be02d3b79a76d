//===- Partition.cpp - contiguous chunks balanced per rank ----------------===//
//
// With one chunk per rank the per-rank optimum is the per-chunk optimum: a
// binary search over the bound with a greedy check (each chunk takes pieces
// while it stays within the bound) is exact. The V and looped placements
// with two chunks per rank have exact feasibility tests (ExactFeasibility.h)
// under the same binary search. Other placements start from the per-chunk
// optimum and descend: each cut moves to the position that minimises the
// larger of the two ranks it separates (binary search on prefix sums), and
// chains of cuts shift by one piece; each accepted move lowers the largest
// rank time or, at equal largest, the sum of squares, so the descent ends.
//
//===----------------------------------------------------------------------===//

#include "compiler/plan/Partition.h"

#include "compiler/plan/ExactFeasibility.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>

namespace pipec::plan {

namespace {

/// Prefix sums: prefix[i] = time of pieces [0, i).
std::vector<double> prefixOf(const std::vector<double> &t) {
  std::vector<double> p(t.size() + 1, 0.0);
  for (size_t i = 0; i < t.size(); ++i)
    p[i + 1] = p[i] + t[i];
  return p;
}

/// Greedy check: can `chunks` contiguous chunks each of at most `bound`
/// cover all pieces? Fills `cuts` when it can. Every chunk keeps at least
/// one piece, so the last chunks are never starved.
bool greedyFits(const std::vector<double> &prefix, int32_t chunks,
                double bound, Cuts &out) {
  int32_t n = int32_t(prefix.size()) - 1;
  out.cuts.assign(chunks + 1, 0);
  int32_t start = 0;
  for (int32_t c = 0; c < chunks; ++c) {
    int32_t left = chunks - c - 1; // chunks after this one
    int32_t maxEnd = n - left;     // leave a piece for each of them
    // The largest end with prefix[end] - prefix[start] <= bound.
    auto it = std::upper_bound(prefix.begin() + start + 1,
                               prefix.begin() + maxEnd + 1,
                               prefix[start] + bound);
    int32_t end = int32_t(it - prefix.begin()) - 1;
    if (end <= start)
      return false; // a single piece exceeds the bound
    if (c == chunks - 1 && end != n)
      return false;
    out.cuts[c + 1] = end;
    start = end;
  }
  return true;
}

/// The exact min-max partition into contiguous chunks (per chunk).
Cuts minMaxChunks(const std::vector<double> &prefix, int32_t chunks) {
  double lo = 0, hi = prefix.back();
  for (size_t i = 0; i + 1 < prefix.size(); ++i)
    lo = std::max(lo, prefix[i + 1] - prefix[i]);
  Cuts best;
  if (greedyFits(prefix, chunks, lo, best))
    return best;
  // The optimum is one of the O(n^2) chunk sums; 100 halvings of a double
  // interval reach it to rounding, and the greedy at `hi` always fits.
  greedyFits(prefix, chunks, hi, best);
  for (int iter = 0; iter < 100 && hi - lo > 1e-12 * hi; ++iter) {
    double mid = 0.5 * (lo + hi);
    Cuts trial;
    if (greedyFits(prefix, chunks, mid, trial)) {
      hi = mid;
      best = std::move(trial);
    } else {
      lo = mid;
    }
  }
  return best;
}

double maxOf(const std::vector<double> &v) {
  return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
}

/// Moves every cut between two different ranks to its best position until
/// no move lowers the larger of the two ranks it separates.
void descend(const std::vector<double> &prefix,
             const std::vector<int32_t> &rankOf, std::vector<double> &load,
             Cuts &cuts) {
  int32_t chunks = cuts.chunks();
  const double eps = 1e-12 * prefix.back();
  for (bool moved = true; moved;) {
    moved = false;
    for (int32_t k = 1; k < chunks; ++k) {
      int32_t a = rankOf[k - 1], b = rankOf[k];
      if (a == b)
        continue;
      int32_t lo = cuts.cuts[k - 1] + 1, hi = cuts.cuts[k + 1] - 1;
      if (lo > hi)
        continue;
      // With the cut at p: a holds baseA + prefix[p], b holds
      // baseB - prefix[p]; a's grows and b's shrinks with p.
      double baseA = load[a] - (prefix[cuts.cuts[k]] - prefix[cuts.cuts[k - 1]]) -
                     prefix[cuts.cuts[k - 1]];
      double baseB = load[b] - (prefix[cuts.cuts[k + 1]] - prefix[cuts.cuts[k]]) +
                     prefix[cuts.cuts[k + 1]];
      auto worst = [&](int32_t p) {
        return std::max(baseA + prefix[p], baseB - prefix[p]);
      };
      // The first p where a's time reaches b's: the optimum is p or p - 1.
      int32_t l = lo, h = hi;
      while (l < h) {
        int32_t m = l + (h - l) / 2;
        if (baseA + prefix[m] >= baseB - prefix[m])
          h = m;
        else
          l = m + 1;
      }
      int32_t bestP = l;
      if (l - 1 >= lo && worst(l - 1) < worst(bestP))
        bestP = l - 1;
      if (worst(bestP) < worst(cuts.cuts[k]) - eps) {
        cuts.cuts[k] = bestP;
        load[a] = baseA + prefix[bestP];
        load[b] = baseB - prefix[bestP];
        moved = true;
      }
    }
  }
}

/// The descent's objective: the largest rank time first, then the sum of
/// squares (which rewards moving time from heavy to light ranks even while
/// the largest stays, so plateaus are crossed).
struct Score {
  double max = 0, sumSq = 0;
  bool betterThan(const Score &o, double eps) const {
    if (max < o.max - eps)
      return true;
    return max <= o.max + eps && sumSq < o.sumSq - eps * eps;
  }
};
Score scoreOf(const std::vector<double> &load) {
  Score s;
  for (double l : load) {
    s.max = std::max(s.max, l);
    s.sumSq += l * l;
  }
  return s;
}

/// Chain shifts: cuts i+1..j all move one piece left (chunk i gives its
/// last piece to i+1, which passes its own last on, ..., to j) or right.
/// This moves time between ranks that no single cut separates. Stops after
/// `budget` evaluated chunk updates so large models stay fast.
void chainDescend(const std::vector<double> &t,
                  const std::vector<int32_t> &rankOf,
                  std::vector<double> &load, Cuts &cuts, int64_t budget) {
  int32_t chunks = cuts.chunks();
  double total = 0;
  for (double x : t)
    total += x;
  const double eps = 1e-12 * total;
  Score cur = scoreOf(load);
  std::vector<double> trial;
  for (bool moved = true; moved && budget > 0;) {
    moved = false;
    for (int32_t i = 0; i < chunks && budget > 0; ++i)
      for (int32_t j = i + 1; j < chunks && budget > 0; ++j)
        for (int dir : {-1, +1}) {
          // dir -1: chunk i loses a piece to the right; +1: gains one.
          int32_t shrink = dir < 0 ? i : j;
          if (cuts.cuts[shrink + 1] - cuts.cuts[shrink] < 2)
            continue;
          trial = load;
          budget -= j - i + 1;
          for (int32_t k = i + 1; k <= j; ++k) {
            // Cut k moves by dir: the piece crossing it changes chunks.
            int32_t piece = dir < 0 ? cuts.cuts[k] - 1 : cuts.cuts[k];
            double x = t[piece];
            trial[rankOf[k - 1]] += dir < 0 ? -x : x;
            trial[rankOf[k]] += dir < 0 ? x : -x;
          }
          Score s = scoreOf(trial);
          if (s.betterThan(cur, eps)) {
            for (int32_t k = i + 1; k <= j; ++k)
              cuts.cuts[k] += dir;
            load = trial;
            cur = s;
            moved = true;
          }
        }
  }
}

/// Both descents, alternated until neither moves.
void refine(const std::vector<double> &t, const std::vector<double> &prefix,
            const std::vector<int32_t> &rankOf, std::vector<double> &load,
            Cuts &cuts) {
  descend(prefix, rankOf, load, cuts);
  for (int round = 0; round < 8; ++round) {
    Cuts before = cuts;
    chainDescend(t, rankOf, load, cuts, int64_t(2e6));
    descend(prefix, rankOf, load, cuts);
    if (before.cuts == cuts.cuts)
      break;
  }
}

/// Binary search on the bound with an exact feasibility test.
template <typename Fits>
bool searchBound(const std::vector<double> &prefix, double lo, Fits fits,
                 Cuts &best, double hi = -1) {
  if (hi < 0)
    hi = prefix.back();
  if (!fits(hi, best))
    return false;
  if (fits(lo, best))
    return true;
  for (int iter = 0; iter < 60 && hi - lo > 1e-9 * hi; ++iter) {
    double mid = 0.5 * (lo + hi);
    Cuts trial;
    if (fits(mid, trial)) {
      hi = mid;
      best = std::move(trial);
    } else {
      lo = mid;
    }
  }
  return true;
}

} // namespace

std::vector<double> rankTimes(const std::vector<double> &pieceTime,
                              const std::vector<int32_t> &rankOf,
                              int32_t ranks, const Cuts &cuts) {
  std::vector<double> load(ranks, 0.0);
  for (int32_t c = 0; c < cuts.chunks(); ++c)
    for (int32_t i = cuts.cuts[c]; i < cuts.cuts[c + 1]; ++i)
      load[rankOf[c]] += pieceTime[i];
  return load;
}

double balanceBound(const std::vector<double> &pieceTime, int32_t ranks) {
  double total = 0, largest = 0;
  for (double t : pieceTime) {
    total += t;
    largest = std::max(largest, t);
  }
  return std::max(total / ranks, largest);
}

Cuts partitionPieces(const std::vector<double> &pieceTime,
                     const std::vector<int32_t> &rankOf, int32_t ranks) {
  int32_t chunks = int32_t(rankOf.size());
  assert(int32_t(pieceTime.size()) >= chunks && chunks >= 1);
  std::vector<double> prefix = prefixOf(pieceTime);
  Cuts cuts = minMaxChunks(prefix, chunks);
  if (chunks == ranks)
    return cuts; // one chunk per rank: the per-chunk optimum is exact
  // The two placements with an exact test, when the DP stays small.
  Shape shape = shapeOf(rankOf, ranks, int32_t(pieceTime.size()));
  Cuts exact;
  if (shape != Shape::Other &&
      searchBound(prefix, balanceBound(pieceTime, ranks),
                  [&](double b, Cuts &o) {
                    return exactFits(prefix, ranks, shape, b, kNoBound, o);
                  },
                  exact)) {
    // The exact test gives the optimal largest rank time; the descent then
    // evens out the other ranks without raising it.
    std::vector<double> l = rankTimes(pieceTime, rankOf, ranks, exact);
    refine(pieceTime, prefix, rankOf, l, exact);
    return exact;
  }

  std::vector<double> load = rankTimes(pieceTime, rankOf, ranks, cuts);
  refine(pieceTime, prefix, rankOf, load, cuts);
  // A second start: chunks sized for the per-rank mean (the bound split
  // evenly over a rank's chunks), which suits placements whose heavy pieces
  // sit at the ends; keep whichever descent ends lower.
  Cuts alt;
  double perChunk = balanceBound(pieceTime, ranks) * ranks / chunks;
  for (double f = 1.0; f < 4.0; f *= 1.05)
    if (greedyFits(prefix, chunks, perChunk * f, alt))
      break;
  if (alt.chunks() == chunks && alt.cuts.back() == int32_t(pieceTime.size())) {
    std::vector<double> altLoad = rankTimes(pieceTime, rankOf, ranks, alt);
    refine(pieceTime, prefix, rankOf, altLoad, alt);
    if (maxOf(altLoad) < maxOf(load)) {
      cuts = alt;
      load = altLoad;
    }
  }
  // Small models are coarse, and a descent can stop at a local optimum:
  // restart from random cuts (a fixed seed keeps plans reproducible).
  if (pieceTime.size() <= 64) {
    std::mt19937 rng(12345);
    std::vector<int32_t> positions(pieceTime.size() - 1);
    for (size_t i = 0; i < positions.size(); ++i)
      positions[i] = int32_t(i) + 1;
    for (int restart = 0; restart < 64; ++restart) {
      std::shuffle(positions.begin(), positions.end(), rng);
      Cuts r;
      r.cuts.assign(positions.begin(), positions.begin() + chunks - 1);
      r.cuts.push_back(0);
      r.cuts.push_back(int32_t(pieceTime.size()));
      std::sort(r.cuts.begin(), r.cuts.end());
      std::vector<double> rLoad = rankTimes(pieceTime, rankOf, ranks, r);
      refine(pieceTime, prefix, rankOf, rLoad, r);
      if (maxOf(rLoad) < maxOf(load)) {
        cuts = r;
        load = rLoad;
      }
    }
  }
  return cuts;
}

std::vector<Cuts> partitionCandidates(const std::vector<double> &pieceTime,
                                      const std::vector<int32_t> &rankOf,
                                      int32_t ranks) {
  std::vector<Cuts> out = {partitionPieces(pieceTime, rankOf, ranks)};
  int32_t chunks = int32_t(rankOf.size());
  if (chunks == ranks)
    return out;
  std::vector<double> prefix = prefixOf(pieceTime);
  double best = maxOf(rankTimes(pieceTime, rankOf, ranks, out.front()));
  auto add = [&](Cuts cuts, double slack) {
    if (maxOf(rankTimes(pieceTime, rankOf, ranks, cuts)) > best * slack)
      return;
    for (const Cuts &o : out)
      if (o.cuts == cuts.cuts)
        return;
    out.push_back(std::move(cuts));
  };
  // Chunks as even as possible while no rank exceeds the best by 2%: the
  // exact test with a bound on every chunk, searched on that bound.
  Shape shape = shapeOf(rankOf, ranks, int32_t(pieceTime.size()));
  if (shape != Shape::Other) {
    double rankBound = best * 1.02, lo = 0;
    for (double t : pieceTime)
      lo = std::max(lo, t);
    lo = std::max(lo, prefix.back() / chunks);
    Cuts even;
    if (searchBound(prefix, lo,
                    [&](double cb, Cuts &o) {
                      return cb <= rankBound * (1 + 1e-12) &&
                             exactFits(prefix, ranks, shape, rankBound,
                                       std::min(cb, rankBound), o);
                    },
                    even, rankBound))
      add(std::move(even), 1.02 + 1e-9);
  }
  // The per-chunk optimum, when its largest rank stays within 5%.
  add(minMaxChunks(prefix, chunks), 1.05);
  return out;
}

Cuts bruteForcePartition(const std::vector<double> &pieceTime,
                         const std::vector<int32_t> &rankOf, int32_t ranks) {
  int32_t n = int32_t(pieceTime.size()), chunks = int32_t(rankOf.size());
  std::vector<double> prefix = prefixOf(pieceTime);
  Cuts cur, best;
  cur.cuts.assign(chunks + 1, 0);
  cur.cuts[chunks] = n;
  double bestMax = -1;
  std::vector<double> load(ranks);
  std::function<void(int32_t)> rec = [&](int32_t c) {
    if (c == chunks) {
      std::fill(load.begin(), load.end(), 0.0);
      for (int32_t k = 0; k < chunks; ++k)
        load[rankOf[k]] += prefix[cur.cuts[k + 1]] - prefix[cur.cuts[k]];
      double m = maxOf(load);
      if (bestMax < 0 || m < bestMax) {
        bestMax = m;
        best = cur;
      }
      return;
    }
    // Cut c (the start of chunk c) leaves a piece for every later chunk.
    for (int32_t p = cur.cuts[c - 1] + 1; p <= n - (chunks - c); ++p) {
      cur.cuts[c] = p;
      rec(c + 1);
    }
  };
  if (chunks == 1)
    return cur;
  rec(1);
  return best;
}

} // namespace pipec::plan
