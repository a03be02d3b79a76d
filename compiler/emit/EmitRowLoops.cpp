//===- EmitRowLoops.cpp - norm, softmax, cross-entropy and rope kernels as loops -===//
//
// The printers of Norm.h, Softmax.h, CrossEntropy.h and Rope.h of
// runtime/kernels/cpu: one thread per row, row reductions in the fixed
// 8-lane order, the kernels' expressions copied term for term (keep them in
// step; the e2e tests compare the bits).
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitLoops.h"
#include "compiler/emit/EmitLoopsSupport.h"

#include "llvm/ADT/StringExtras.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

using namespace pipec::emit::loops;
using llvm::StringRef;

/// `T(dim)` of the kernels, as a float expression.
static std::string asFloat(int64_t n) { return cat("float(", n, ")"); }

//===----------------------------------------------------------------------===//
// Norm.h
//===----------------------------------------------------------------------===//

void pipec::emit::loops::layernormForward(Code &c, StringRef y, StringRef mean,
                                          StringRef rstd, StringRef x,
                                          StringRef gamma, StringRef beta,
                                          int64_t rows, int64_t dim,
                                          double eps) {
  c.open("");
  c.line(cat("float *y = ", y, ", *mean = ", mean, ", *rstd = ", rstd, ";"));
  c.line(cat("const float *x = ", x, ", *gamma = ", gamma, ", *beta = ", beta,
             ";"));
  c.ompFor(rows * dim * 4, false);
  c.open(cat("for (int64_t r = 0; r < ", rows, "; ++r)"));
  c.line(cat("const float *xr = x + r * ", dim, ";"));
  reduceFixed(c, "sum", dim, [](StringRef i) { return cat("xr[", i, "]"); });
  c.line(cat("float mu = sum / ", asFloat(dim), ";"));
  reduceFixed(c, "sq", dim, [](StringRef i) {
    return cat("(xr[", i, "] - mu) * (xr[", i, "] - mu)");
  });
  c.line(cat("float var = sq / ", asFloat(dim), ";"));
  c.line(cat("float rs = 1.0f / std::sqrt(var + ", floatLiteral(float(eps)),
             ");"));
  c.line(cat("float *yr = y + r * ", dim, ";"));
  c.simd();
  c.line(cat("for (int64_t i = 0; i < ", dim, "; ++i)"));
  c.line("  yr[i] = (xr[i] - mu) * rs * gamma[i] + beta[i];");
  c.line("mean[r] = mu;");
  c.line("rstd[r] = rs;");
  c.close();
  c.close();
}

void pipec::emit::loops::layernormBackwardB(Code &c, StringRef dx,
                                            StringRef dy, StringRef x,
                                            StringRef mean, StringRef rstd,
                                            StringRef gamma, int64_t rows,
                                            int64_t dim, bool accumulate) {
  c.open("");
  c.line(cat("float *dx = ", dx, ";"));
  c.line(cat("const float *dy = ", dy, ", *x = ", x, ", *mean = ", mean,
             ", *rstd = ", rstd, ", *gamma = ", gamma, ";"));
  c.ompFor(rows * dim * 6, false);
  c.open(cat("for (int64_t r = 0; r < ", rows, "; ++r)"));
  c.line(cat("const float *xr = x + r * ", dim, ", *gr = dy + r * ", dim, ";"));
  c.line("float mu = mean[r], rs = rstd[r];");
  reduceFixed(c, "sg", dim,
              [](StringRef i) { return cat("gr[", i, "] * gamma[", i, "]"); });
  c.line(cat("float meanG = sg / ", asFloat(dim), ";"));
  reduceFixed(c, "sgx", dim, [](StringRef i) {
    return cat("gr[", i, "] * gamma[", i, "] * ((xr[", i, "] - mu) * rs)");
  });
  c.line(cat("float meanGX = sgx / ", asFloat(dim), ";"));
  c.line(cat("float *dxr = dx + r * ", dim, ";"));
  c.simd();
  c.open(cat("for (int64_t i = 0; i < ", dim, "; ++i)"));
  c.line("float xhat = (xr[i] - mu) * rs;");
  c.line("float g = (gr[i] * gamma[i] - meanG - xhat * meanGX) * rs;");
  c.line(accumulate ? "dxr[i] = dxr[i] + g;" : "dxr[i] = g;");
  c.close();
  c.close();
  c.close();
}

void pipec::emit::loops::layernormBackwardW(Code &c, StringRef dgamma,
                                            StringRef dbeta, StringRef dy,
                                            StringRef x, StringRef mean,
                                            StringRef rstd, int64_t rows,
                                            int64_t dim) {
  c.open("");
  c.line(cat("float *dgamma = ", dgamma, ", *dbeta = ", dbeta, ";"));
  c.line(cat("const float *dy = ", dy, ", *x = ", x, ", *mean = ", mean,
             ", *rstd = ", rstd, ";"));
  columnSums(c, "dgamma", rows, dim, true, [&](StringRef r, StringRef j) {
    return cat("dy[", r, " * ", dim, " + ", j, "] * ((x[", r, " * ", dim,
               " + ", j, "] - mean[", r, "]) * rstd[", r, "])");
  });
  columnSums(c, "dbeta", rows, dim, true, [&](StringRef r, StringRef j) {
    return cat("dy[", r, " * ", dim, " + ", j, "]");
  });
  c.close();
}

void pipec::emit::loops::rmsnormForward(Code &c, StringRef y, StringRef rstd,
                                        StringRef x, StringRef gamma,
                                        int64_t rows, int64_t dim,
                                        double eps) {
  c.open("");
  c.line(cat("float *y = ", y, ", *rstd = ", rstd, ";"));
  c.line(cat("const float *x = ", x, ", *gamma = ", gamma, ";"));
  c.ompFor(rows * dim * 3, false);
  c.open(cat("for (int64_t r = 0; r < ", rows, "; ++r)"));
  c.line(cat("const float *xr = x + r * ", dim, ";"));
  reduceFixed(c, "sq", dim,
              [](StringRef i) { return cat("xr[", i, "] * xr[", i, "]"); });
  c.line(cat("float ms = sq / ", asFloat(dim), ";"));
  c.line(cat("float rs = 1.0f / std::sqrt(ms + ", floatLiteral(float(eps)),
             ");"));
  c.line(cat("float *yr = y + r * ", dim, ";"));
  c.simd();
  c.line(cat("for (int64_t i = 0; i < ", dim, "; ++i)"));
  c.line("  yr[i] = xr[i] * rs * gamma[i];");
  c.line("rstd[r] = rs;");
  c.close();
  c.close();
}

void pipec::emit::loops::rmsnormBackwardB(Code &c, StringRef dx, StringRef dy,
                                          StringRef x, StringRef rstd,
                                          StringRef gamma, int64_t rows,
                                          int64_t dim, bool accumulate) {
  c.open("");
  c.line(cat("float *dx = ", dx, ";"));
  c.line(cat("const float *dy = ", dy, ", *x = ", x, ", *rstd = ", rstd,
             ", *gamma = ", gamma, ";"));
  c.ompFor(rows * dim * 5, false);
  c.open(cat("for (int64_t r = 0; r < ", rows, "; ++r)"));
  c.line(cat("const float *xr = x + r * ", dim, ", *gr = dy + r * ", dim, ";"));
  c.line("float rs = rstd[r];");
  reduceFixed(c, "sgx", dim, [](StringRef i) {
    return cat("gr[", i, "] * gamma[", i, "] * (xr[", i, "] * rs)");
  });
  c.line(cat("float meanGX = sgx / ", asFloat(dim), ";"));
  c.line(cat("float *dxr = dx + r * ", dim, ";"));
  c.simd();
  c.open(cat("for (int64_t i = 0; i < ", dim, "; ++i)"));
  c.line("float g = (gr[i] * gamma[i] - (xr[i] * rs) * meanGX) * rs;");
  c.line(accumulate ? "dxr[i] = dxr[i] + g;" : "dxr[i] = g;");
  c.close();
  c.close();
  c.close();
}

void pipec::emit::loops::rmsnormBackwardW(Code &c, StringRef dgamma,
                                          StringRef dy, StringRef x,
                                          StringRef rstd, int64_t rows,
                                          int64_t dim) {
  c.open("");
  c.line(cat("float *dgamma = ", dgamma, ";"));
  c.line(cat("const float *dy = ", dy, ", *x = ", x, ", *rstd = ", rstd, ";"));
  columnSums(c, "dgamma", rows, dim, true, [&](StringRef r, StringRef j) {
    return cat("dy[", r, " * ", dim, " + ", j, "] * (x[", r, " * ", dim, " + ",
               j, "] * rstd[", r, "])");
  });
  c.close();
}

//===----------------------------------------------------------------------===//
// Softmax.h
//===----------------------------------------------------------------------===//

/// `float mx` = the maximum of term(i), i in [0, n), in the kernels' order
/// (`x > mx ? x : mx` from -inf).
static void rowMax(Code &c, int64_t n, StringRef row) {
  c.line("float mx = -INFINITY;");
  c.line(cat("for (int64_t i = 0; i < ", n, "; ++i)"));
  c.line(cat("  mx = ", row, "[i] > mx ? ", row, "[i] : mx;"));
}

void pipec::emit::loops::softmaxForward(Code &c, StringRef y, StringRef x,
                                        int64_t rows, int64_t dim) {
  c.open("");
  c.line(cat("float *y = ", y, ";"));
  c.line(cat("const float *x = ", x, ";"));
  c.ompFor(rows * dim * kTranscendentalWork, false);
  c.open(cat("for (int64_t r = 0; r < ", rows, "; ++r)"));
  c.line(cat("const float *xr = x + r * ", dim, ";"));
  c.line(cat("float *yr = y + r * ", dim, ";"));
  rowMax(c, dim, "xr");
  c.simd(); // vecExp vectorizes (VecMath.h)
  c.line(cat("for (int64_t i = 0; i < ", dim, "; ++i)"));
  c.line("  yr[i] = pipert::cpu::vecExp(xr[i] - mx);");
  reduceFixed(c, "sum", dim, [](StringRef i) { return cat("yr[", i, "]"); });
  c.simd();
  c.line(cat("for (int64_t i = 0; i < ", dim, "; ++i)"));
  c.line("  yr[i] = yr[i] / sum;");
  c.close();
  c.close();
}

void pipec::emit::loops::softmaxBackwardB(Code &c, StringRef dx, StringRef dy,
                                          StringRef y, int64_t rows,
                                          int64_t dim, bool accumulate) {
  c.open("");
  c.line(cat("float *dx = ", dx, ";"));
  c.line(cat("const float *dy = ", dy, ", *y = ", y, ";"));
  c.ompFor(rows * dim * 3, false);
  c.open(cat("for (int64_t r = 0; r < ", rows, "; ++r)"));
  c.line(cat("const float *yr = y + r * ", dim, ", *gr = dy + r * ", dim, ";"));
  reduceFixed(c, "proj", dim,
              [](StringRef i) { return cat("gr[", i, "] * yr[", i, "]"); });
  c.line(cat("float *dxr = dx + r * ", dim, ";"));
  c.simd();
  c.open(cat("for (int64_t i = 0; i < ", dim, "; ++i)"));
  c.line("float g = yr[i] * (gr[i] - proj);");
  c.line(accumulate ? "dxr[i] = dxr[i] + g;" : "dxr[i] = g;");
  c.close();
  c.close();
  c.close();
}

//===----------------------------------------------------------------------===//
// CrossEntropy.h
//===----------------------------------------------------------------------===//

/// The kernel's target check: every target before anything is written.
static void checkTargets(Code &c, StringRef where, StringRef kernel,
                         int64_t rows, int64_t vocab) {
  c.line(cat("for (int64_t r = 0; r < ", rows, "; ++r)"));
  c.line(cat("  if (tgt[r] < 0 || tgt[r] >= ", vocab, ")"));
  c.line(cat("    ", failure(where,
                             cat("\"", kernel,
                                 ": targets[\" + std::to_string(r) + \"] = \" "
                                 "+ std::to_string(tgt[r]) + \" is outside [0, ",
                                 vocab, ")\""))));
}

void pipec::emit::loops::crossEntropyFused(Code &c, StringRef where,
                                           StringRef loss, StringRef dlogits,
                                           StringRef logits, StringRef targets,
                                           int64_t rows, int64_t vocab,
                                           StringRef scale) {
  c.open("");
  c.line(cat("float *loss = ", loss, ", *dlogits = ", dlogits, ";"));
  c.line(cat("const float *logits = ", logits, ";"));
  c.line(cat("const int32_t *tgt = ", targets, ";"));
  // crossEntropyBackward checks the same targets again; after this check
  // it cannot fail.
  checkTargets(c, where, "cross_entropy", rows, vocab);
  c.line(cat("const float sc = float(", scale, ");"));
  c.line(cat("std::vector<float> per(", rows, ");"));
  c.ompFor(rows * vocab * kTranscendentalWork, false);
  c.open(cat("for (int64_t r = 0; r < ", rows, "; ++r)"));
  c.line(cat("const float *x = logits + r * ", vocab, ";"));
  c.line(cat("float *g = dlogits + r * ", vocab, ";"));
  rowMax(c, vocab, "x");
  // Read before g is written (the backward kernel allows g to alias x).
  c.line("const float xt = x[tgt[r]];");
  c.simd(); // vecExp vectorizes (VecMath.h); g[i] reads only x[i]
  c.line(cat("for (int64_t i = 0; i < ", vocab, "; ++i)"));
  c.line("  g[i] = pipert::cpu::vecExp(x[i] - mx);");
  reduceFixed(c, "sum", vocab, [](StringRef i) { return cat("g[", i, "]"); });
  c.line("per[size_t(r)] = (mx + std::log(sum)) - xt;");
  c.simd();
  c.open(cat("for (int64_t i = 0; i < ", vocab, "; ++i)"));
  c.line("float p = g[i] / sum;");
  c.line("g[i] = (i == tgt[r] ? p - 1.0f : p) * sc;");
  c.close();
  c.close();
  // The mean over rows in double, rows ascending.
  c.line("double total = 0;");
  c.line(cat("for (int64_t r = 0; r < ", rows, "; ++r)"));
  c.line("  total += double(per[size_t(r)]);");
  c.line(rows ? cat("*loss = float(total / double(", rows, "));")
              : std::string("*loss = float(0.0);"));
  c.close();
}

//===----------------------------------------------------------------------===//
// Rope.h
//===----------------------------------------------------------------------===//

/// The kernel's angle tables for (seq, headDim, theta), defined once per
/// chunk file; returns their names (cos, sin).
static std::pair<std::string, std::string>
angleTables(Code &c, int64_t seq, int64_t headDim, double theta) {
  uint64_t bits;
  std::memcpy(&bits, &theta, sizeof bits);
  std::string suffix = cat(seq, "x", headDim, "_", llvm::utohexstr(bits));
  std::string cosName = "kRopeCos" + suffix, sinName = "kRopeSin" + suffix;
  // As angleTables() in Rope.cpp: double angles rounded once to float, the
  // same libm at pipec's run time as at the kernel's.
  int64_t half = headDim / 2;
  std::vector<float> cosT(size_t(seq * half)), sinT(size_t(seq * half));
  for (int64_t i = 0; i < half; ++i) {
    double invFreq = 1.0 / std::pow(theta, double(2 * i) / double(headDim));
    for (int64_t t = 0; t < seq; ++t) {
      double angle = double(t) * invFreq;
      cosT[size_t(t * half + i)] = float(std::cos(angle));
      sinT[size_t(t * half + i)] = float(std::sin(angle));
    }
  }
  char thetaText[32];
  std::snprintf(thetaText, sizeof thetaText, "%g", theta);
  auto table = [&](const std::string &name, const std::vector<float> &v) {
    std::string s = cat("// rope ", name == cosName ? "cos" : "sin",
                        " table [", seq, ", ", half, "], theta ", thetaText,
                        "\nstatic const float ", name, "[",
                        v.empty() ? 1 : v.size(), "] = {");
    for (size_t i = 0; i < v.size(); ++i)
      s += (i % 6 ? " " : "\n    ") + floatLiteral(v[i]) + ",";
    return s + "};\n";
  };
  c.global(cosName, table(cosName, cosT));
  c.global(sinName, table(sinName, sinT));
  return {cosName, sinName};
}

/// Rotates every head of every token by +angle or -angle (the transpose),
/// writing or adding into y: Rope.cpp's rotate().
static void rotate(Code &c, StringRef y, StringRef x, int64_t batch,
                   int64_t seq, int64_t heads, int64_t headDim, double theta,
                   bool transpose, bool accumulate) {
  auto [cosName, sinName] = angleTables(c, seq, headDim, theta);
  int64_t half = headDim / 2, rows = batch * seq;
  c.open("");
  c.line(cat("float *y = ", y, ";"));
  c.line(cat("const float *x = ", x, ";"));
  c.ompFor(rows * heads * headDim, false);
  c.open(cat("for (int64_t r = 0; r < ", rows, "; ++r)"));
  c.line(cat("const int64_t t = r % ", seq, ";"));
  c.line(cat("const float *cs = ", cosName, " + t * ", half, ", *sn = ",
             sinName, " + t * ", half, ";"));
  c.open(cat("for (int64_t h = 0; h < ", heads, "; ++h)"));
  c.line(cat("const float *xh = x + (r * ", heads, " + h) * ", headDim, ";"));
  c.line(cat("float *yh = y + (r * ", heads, " + h) * ", headDim, ";"));
  c.simd();
  c.open(cat("for (int64_t i = 0; i < ", half, "; ++i)"));
  c.line(cat("float a = xh[i], b = xh[i + ", half, "];"));
  c.line(transpose ? "float lo = a * cs[i] + b * sn[i];"
                   : "float lo = a * cs[i] - b * sn[i];");
  c.line(transpose ? "float hi = b * cs[i] - a * sn[i];"
                   : "float hi = b * cs[i] + a * sn[i];");
  c.line(accumulate ? "yh[i] = yh[i] + lo;" : "yh[i] = lo;");
  c.line(accumulate ? cat("yh[i + ", half, "] = yh[i + ", half, "] + hi;")
                    : cat("yh[i + ", half, "] = hi;"));
  c.close();
  c.close();
  c.close();
  c.close();
}

void pipec::emit::loops::ropeForward(Code &c, StringRef y, StringRef x,
                                     int64_t batch, int64_t seq, int64_t heads,
                                     int64_t headDim, double theta) {
  rotate(c, y, x, batch, seq, heads, headDim, theta, false, false);
}

void pipec::emit::loops::ropeBackwardB(Code &c, StringRef dx, StringRef dy,
                                       int64_t batch, int64_t seq,
                                       int64_t heads, int64_t headDim,
                                       double theta, bool accumulate) {
  rotate(c, dx, dy, batch, seq, heads, headDim, theta, true, accumulate);
}
