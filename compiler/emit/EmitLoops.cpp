//===- EmitLoops.cpp - elementwise, shape, embedding and GEMM kernels as loops -===//
//
// The printers of Elementwise.h, Activation.h, Shape.h, Embedding.h and
// Matmul.h of runtime/kernels/cpu, plus the reduction helpers every
// printer shares. Each body below is its kernel's body with the shapes as
// constants; keep them in step with runtime/kernels/cpu (the e2e tests
// compare the bits).
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitLoops.h"
#include "compiler/emit/EmitLoopsSupport.h"

#include <cstdio>
#include <vector>

using namespace pipec::emit::loops;
using llvm::ArrayRef;
using llvm::StringRef;

//===----------------------------------------------------------------------===//
// Code and literals
//===----------------------------------------------------------------------===//

Code &Code::line(StringRef text) {
  // Pragmas are indented like the code; C++ allows it.
  out.append(size_t(2 * depth), ' ');
  out += text.str();
  out += '\n';
  return *this;
}

void Code::open(StringRef text) {
  line(text.empty() ? std::string("{") : text.str() + " {");
  ++depth;
}

void Code::close() {
  --depth;
  line("}");
}

void Code::ompFor(int64_t work, bool simd) {
  if (work >= kParallelWork)
    line(simd ? "#pragma omp parallel for simd schedule(static)"
              : "#pragma omp parallel for schedule(static)");
  else if (simd)
    line("#pragma omp simd");
}

void Code::simd() { line("#pragma omp simd"); }

std::string pipec::emit::loops::floatLiteral(float x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%af", double(x));
  return buf;
}

std::string pipec::emit::loops::failure(StringRef where, StringRef message) {
  return cat("return pipert::cpu::Status::failure(std::string(", where,
             ") + \": \" + ", message, ");");
}

//===----------------------------------------------------------------------===//
// Reductions (runtime/kernels/cpu/Reduce.h)
//===----------------------------------------------------------------------===//

void pipec::emit::loops::reduceFixed(Code &c, StringRef name, int64_t n,
                                     Term term) {
  // acc[l] += f(i + l) for full groups of 8, then the remainder into lanes
  // 0.., then the fixed tree; the lanes start at 0 as in the kernel (0 + x
  // is not x for x = -0).
  c.line(cat("float ", name, ";"));
  c.open("");
  c.line("float l[8] = {};");
  int64_t full = n - n % 8;
  if (full > 0) {
    c.line(cat("for (int64_t ri = 0; ri < ", full, "; ri += 8)"));
    c.line("  for (int rk = 0; rk < 8; ++rk)");
    c.line(cat("    l[rk] += ", term("(ri + rk)"), ";"));
  }
  for (int64_t l = 0; full + l < n; ++l)
    c.line(cat("l[", l, "] += ", term(cat("(", full + l, ")")), ";"));
  c.line(cat(name, " = ((l[0] + l[4]) + (l[2] + l[6])) + "
                   "((l[1] + l[5]) + (l[3] + l[7]));"));
  c.close();
}

void pipec::emit::loops::reduceFixedDynamic(Code &c, StringRef name,
                                            StringRef n, Term term) {
  c.line(cat("float ", name, ";"));
  c.open("");
  c.line("float l[8] = {};");
  c.line("int64_t ri = 0;");
  c.line(cat("for (; ri + 8 <= ", n, "; ri += 8)"));
  c.line("  for (int rk = 0; rk < 8; ++rk)");
  c.line(cat("    l[rk] += ", term("(ri + rk)"), ";"));
  c.line(cat("for (int rk = 0; ri + rk < ", n, "; ++rk)"));
  c.line(cat("  l[rk] += ", term("(ri + rk)"), ";"));
  c.line(cat(name, " = ((l[0] + l[4]) + (l[2] + l[6])) + "
                   "((l[1] + l[5]) + (l[3] + l[7]));"));
  c.close();
}

void pipec::emit::loops::columnSums(Code &c, StringRef out, int64_t rows,
                                    int64_t cols, bool accumulate, Term2 term) {
  auto store = [&](StringRef at, StringRef sum) {
    return accumulate ? cat(out, "[", at, "] = ", out, "[", at, "] + ", sum, ";")
                      : cat(out, "[", at, "] = ", sum, ";");
  };
  if (cols == 0)
    return;
  if (rows == 1) {
    // One row: every column is 0 + term, independent of the others.
    c.ompFor(cols, true);
    c.open(cat("for (int64_t j = 0; j < ", cols, "; ++j)"));
    c.line(cat("float s = 0.0f + ", term("0", "j"), ";"));
    c.line(store("j", "s"));
    c.close();
    return;
  }
  // Blocks of 64 columns; inside a block rows ascending, as the kernel.
  // The block width is a constant unless the last block is partial.
  int64_t blocks = (cols + 63) / 64;
  std::string w = blocks == 1 ? cat(cols) : cols % 64 ? "w" : "64";
  if (blocks > 1) {
    c.ompFor(rows * cols, false);
    c.open(cat("for (int64_t blk = 0; blk < ", blocks, "; ++blk)"));
    if (cols % 64)
      c.line(cat("const int64_t c0 = blk * 64, w = c0 + 64 < ", cols,
                 " ? 64 : ", cols, " - c0;"));
    else
      c.line("const int64_t c0 = blk * 64;");
  } else {
    c.open("");
    c.line("const int64_t c0 = 0;");
  }
  c.line(cat("float acc[", blocks == 1 ? cols : 64, "];"));
  c.line(cat("for (int64_t j = 0; j < ", w, "; ++j)"));
  c.line("  acc[j] = 0.0f;");
  c.open(cat("for (int64_t r = 0; r < ", rows, "; ++r)"));
  c.simd();
  c.line(cat("for (int64_t j = 0; j < ", w, "; ++j)"));
  c.line(cat("  acc[j] += ", term("r", "(c0 + j)"), ";"));
  c.close();
  c.line(cat("for (int64_t j = 0; j < ", w, "; ++j)"));
  c.line(cat("  ", store("c0 + j", "acc[j]")));
  c.close();
}

//===----------------------------------------------------------------------===//
// Elementwise.h
//===----------------------------------------------------------------------===//

/// A loop over the trailing-broadcast layout [n / bn, bn]: one flat loop
/// when bn == n, else rows with the broadcast index j. `body(i, j)` gets
/// the element index and the broadcast index.
static void broadcastLoop(Code &c, int64_t n, int64_t bn,
                          llvm::function_ref<void(StringRef, StringRef)> body) {
  if (bn == 0)
    return;
  if (bn == n) {
    c.ompFor(n, true);
    c.open(cat("for (int64_t i = 0; i < ", n, "; ++i)"));
    body("i", "i");
    c.close();
    return;
  }
  c.ompFor(n, false);
  c.open(cat("for (int64_t r = 0; r < ", n / bn, "; ++r)"));
  c.simd();
  c.open(cat("for (int64_t j = 0; j < ", bn, "; ++j)"));
  body(cat("r * ", bn, " + j"), "j");
  c.close();
  c.close();
}

void pipec::emit::loops::binaryForward(Code &c, char op, StringRef y,
                                       StringRef a, StringRef b, int64_t n,
                                       int64_t bn) {
  c.open("");
  c.line(cat("float *y = ", y, ";"));
  c.line(cat("const float *a = ", a, ", *b = ", b, ";"));
  broadcastLoop(c, n, bn, [&](StringRef i, StringRef j) {
    c.line(cat("y[", i, "] = a[", i, "] ", std::string(1, op), " b[", j,
               "];"));
  });
  c.close();
}

void pipec::emit::loops::mulBackwardLhs(Code &c, StringRef da, StringRef dy,
                                        StringRef b, int64_t n, int64_t bn,
                                        bool accumulate) {
  c.open("");
  c.line(cat("float *da = ", da, ";"));
  c.line(cat("const float *dy = ", dy, ", *b = ", b, ";"));
  broadcastLoop(c, n, bn, [&](StringRef i, StringRef j) {
    c.line(cat("float g = dy[", i, "] * b[", j, "];"));
    c.line(accumulate ? cat("da[", i, "] = da[", i, "] + g;")
                      : cat("da[", i, "] = g;"));
  });
  c.close();
}

void pipec::emit::loops::addBackwardBroadcast(Code &c, StringRef db,
                                              StringRef dy, int64_t n,
                                              int64_t bn, bool accumulate) {
  c.open("");
  c.line(cat("float *db = ", db, ";"));
  c.line(cat("const float *dy = ", dy, ";"));
  if (bn)
    columnSums(c, "db", n / bn, bn, accumulate, [&](StringRef r, StringRef j) {
      return cat("dy[", r, " * ", bn, " + ", j, "]");
    });
  c.close();
}

void pipec::emit::loops::mulBackwardRhs(Code &c, StringRef db, StringRef dy,
                                        StringRef a, int64_t n, int64_t bn,
                                        bool accumulate) {
  c.open("");
  c.line(cat("float *db = ", db, ";"));
  c.line(cat("const float *dy = ", dy, ", *a = ", a, ";"));
  if (bn)
    columnSums(c, "db", n / bn, bn, accumulate, [&](StringRef r, StringRef j) {
      return cat("dy[", r, " * ", bn, " + ", j, "] * a[", r, " * ", bn, " + ",
                 j, "]");
    });
  c.close();
}

void pipec::emit::loops::accumulateInto(Code &c, StringRef y, StringRef x,
                                        int64_t n, bool accumulate) {
  c.open("");
  c.line(cat("float *y = ", y, ";"));
  c.line(cat("const float *x = ", x, ";"));
  c.ompFor(n, true);
  c.line(cat("for (int64_t i = 0; i < ", n, "; ++i)"));
  c.line(accumulate ? "  y[i] = y[i] + x[i];" : "  y[i] = x[i];");
  c.close();
}

void pipec::emit::loops::addInto(Code &c, StringRef y, StringRef a,
                                 StringRef b, int64_t n) {
  c.open("");
  c.line(cat("float *y = ", y, ";"));
  c.line(cat("const float *a = ", a, ", *b = ", b, ";"));
  c.ompFor(n, true);
  c.line(cat("for (int64_t i = 0; i < ", n, "; ++i)"));
  c.line("  y[i] = a[i] + b[i];");
  c.close();
}

//===----------------------------------------------------------------------===//
// Activation.h
//===----------------------------------------------------------------------===//

/// sqrt(2 / pi) and the cubic coefficient, rounded once to float as the
/// kernel's constexpr T(...) does.
static std::string geluScale() { return floatLiteral(float(0.7978845608028654)); }
static std::string geluCubic() { return floatLiteral(float(0.044715)); }

void pipec::emit::loops::geluForward(Code &c, StringRef y, StringRef x,
                                     int64_t n) {
  c.open("");
  c.line(cat("float *y = ", y, ";"));
  c.line(cat("const float *x = ", x, ";"));
  c.ompFor(n * kTranscendentalWork, true);
  c.open(cat("for (int64_t i = 0; i < ", n, "; ++i)"));
  c.line("float v = x[i];");
  c.line(cat("float u = ", geluScale(), " * (v + ", geluCubic(),
             " * v * v * v);"));
  c.line("y[i] = 0.5f * v * (1.0f + pipert::cpu::vecTanh(u));");
  c.close();
  c.close();
}

void pipec::emit::loops::geluBackwardB(Code &c, StringRef dx, StringRef dy,
                                       StringRef x, int64_t n,
                                       bool accumulate) {
  c.open("");
  c.line(cat("float *dx = ", dx, ";"));
  c.line(cat("const float *dy = ", dy, ", *x = ", x, ";"));
  c.ompFor(n * kTranscendentalWork, true);
  c.open(cat("for (int64_t i = 0; i < ", n, "; ++i)"));
  c.line("float v = x[i];");
  c.line(cat("float u = ", geluScale(), " * (v + ", geluCubic(),
             " * v * v * v);"));
  c.line("float th = pipert::cpu::vecTanh(u);");
  c.line(cat("float du = ", geluScale(), " * (1.0f + 3.0f * ", geluCubic(),
             " * v * v);"));
  c.line("float d = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * du;");
  c.line("float g = dy[i] * d;");
  c.line(accumulate ? "dx[i] = dx[i] + g;" : "dx[i] = g;");
  c.close();
  c.close();
}

void pipec::emit::loops::siluForward(Code &c, StringRef y, StringRef x,
                                     int64_t n) {
  c.open("");
  c.line(cat("float *y = ", y, ";"));
  c.line(cat("const float *x = ", x, ";"));
  c.ompFor(n * kTranscendentalWork, true);
  c.line(cat("for (int64_t i = 0; i < ", n, "; ++i)"));
  c.line("  y[i] = x[i] / (1.0f + pipert::cpu::vecExp(-x[i]));");
  c.close();
}

void pipec::emit::loops::siluBackwardB(Code &c, StringRef dx, StringRef dy,
                                       StringRef x, int64_t n,
                                       bool accumulate) {
  c.open("");
  c.line(cat("float *dx = ", dx, ";"));
  c.line(cat("const float *dy = ", dy, ", *x = ", x, ";"));
  c.ompFor(n * kTranscendentalWork, true);
  c.open(cat("for (int64_t i = 0; i < ", n, "; ++i)"));
  c.line("float s = 1.0f / (1.0f + pipert::cpu::vecExp(-x[i]));");
  c.line("float g = dy[i] * (s * (1.0f + x[i] * (1.0f - s)));");
  c.line(accumulate ? "dx[i] = dx[i] + g;" : "dx[i] = g;");
  c.close();
  c.close();
}

//===----------------------------------------------------------------------===//
// Shape.h
//===----------------------------------------------------------------------===//

void pipec::emit::loops::sliceForward(Code &c, StringRef y, StringRef x,
                                      int64_t outer, int64_t dim,
                                      int64_t inner, int64_t offset,
                                      int64_t size) {
  c.open("");
  c.line(cat("float *y = ", y, ";"));
  c.line(cat("const float *x = ", x, ";"));
  c.ompFor(outer * size * inner, false);
  c.line(cat("for (int64_t o = 0; o < ", outer, "; ++o)"));
  c.line(cat("  std::memcpy(y + o * ", size * inner, ", x + o * ", dim * inner,
             " + ", offset * inner, ", ", 4 * size * inner, ");"));
  c.close();
}

void pipec::emit::loops::sliceBackwardB(Code &c, StringRef dx, StringRef dy,
                                        int64_t outer, int64_t dim,
                                        int64_t inner, int64_t offset,
                                        int64_t size, bool accumulate) {
  c.open("");
  c.line(cat("float *dx = ", dx, ";"));
  c.line(cat("const float *dy = ", dy, ";"));
  c.ompFor(outer * dim * inner, false);
  c.open(cat("for (int64_t o = 0; o < ", outer, "; ++o)"));
  c.line(cat("float *row = dx + o * ", dim * inner, ";"));
  c.line(cat("const float *g = dy + o * ", size * inner, ";"));
  if (!accumulate) {
    if (offset > 0)
      c.line(cat("std::memset(row, 0, ", 4 * offset * inner, ");"));
    if (offset + size < dim)
      c.line(cat("std::memset(row + ", (offset + size) * inner, ", 0, ",
                 4 * (dim - offset - size) * inner, ");"));
  }
  c.line(cat("float *win = row + ", offset * inner, ";"));
  c.simd();
  c.line(cat("for (int64_t i = 0; i < ", size * inner, "; ++i)"));
  c.line(accumulate ? "  win[i] = win[i] + g[i];" : "  win[i] = g[i];");
  c.close();
  c.close();
}

void pipec::emit::loops::reshapeForward(Code &c, StringRef y, StringRef x,
                                        int64_t n) {
  c.line(cat("std::memcpy(", y, ", ", x, ", ", 4 * n, ");"));
}

void pipec::emit::loops::transposeForward(Code &c, StringRef y, StringRef x,
                                          ArrayRef<int64_t> xDims,
                                          ArrayRef<int64_t> perm) {
  int rank = int(xDims.size());
  c.open("");
  c.line(cat("float *y = ", y, ";"));
  c.line(cat("const float *x = ", x, ";"));
  if (rank == 0) {
    c.line("y[0] = x[0];");
    c.close();
    return;
  }
  // The kernel's permutation walk with its strides computed here: row r of
  // y (over y's leading dims) starts at source offset base, and y's last
  // dim walks the source with stride s.
  std::vector<int64_t> xStride(xDims.size(), 0), yDims(xDims.size(), 0),
      srcStride(xDims.size(), 0);
  int64_t stride = 1;
  for (int i = rank - 1; i >= 0; --i) {
    xStride[size_t(i)] = stride;
    stride *= xDims[size_t(i)];
  }
  for (int i = 0; i < rank; ++i) {
    yDims[size_t(i)] = xDims[size_t(perm[size_t(i)])];
    srcStride[size_t(i)] = xStride[size_t(perm[size_t(i)])];
  }
  int64_t last = yDims[size_t(rank - 1)];
  int64_t rows = last ? stride / last : 0;
  c.ompFor(stride, false);
  c.open(cat("for (int64_t r = 0; r < ", rows, "; ++r)"));
  c.line("int64_t rem = r, base = 0;");
  for (int i = rank - 2; i >= 0; --i) {
    c.line(cat("base += (rem % ", yDims[size_t(i)], ") * ",
               srcStride[size_t(i)], ";"));
    if (i > 0)
      c.line(cat("rem /= ", yDims[size_t(i)], ";"));
  }
  c.line("(void)rem;");
  c.line(cat("float *yr = y + r * ", last, ";"));
  c.simd();
  c.line(cat("for (int64_t j = 0; j < ", last, "; ++j)"));
  c.line(cat("  yr[j] = x[base + j * ", srcStride[size_t(rank - 1)], "];"));
  c.close();
  c.close();
}

//===----------------------------------------------------------------------===//
// Embedding.h
//===----------------------------------------------------------------------===//

/// The kernel's id check: every id before anything is written, with its
/// message.
static void checkIds(Code &c, StringRef where, StringRef kernel, int64_t tokens,
                     int64_t vocab) {
  c.line(cat("for (int64_t n = 0; n < ", tokens, "; ++n)"));
  c.line(cat("  if (ids[n] < 0 || ids[n] >= ", vocab, ")"));
  c.line(cat("    ",
             failure(where, cat("\"", kernel,
                                ": ids[\" + std::to_string(n) + \"] = \" + "
                                "std::to_string(ids[n]) + \" is outside [0, ",
                                vocab, ")\""))));
}

void pipec::emit::loops::embeddingForward(Code &c, StringRef where,
                                          StringRef out, StringRef table,
                                          StringRef ids, int64_t tokens,
                                          int64_t vocab, int64_t dim) {
  c.open("");
  c.line(cat("float *out = ", out, ";"));
  c.line(cat("const float *table = ", table, ";"));
  c.line(cat("const int32_t *ids = ", ids, ";"));
  checkIds(c, where, "embedding", tokens, vocab);
  c.ompFor(tokens * dim, false);
  c.line(cat("for (int64_t n = 0; n < ", tokens, "; ++n)"));
  c.line(cat("  std::memcpy(out + n * ", dim, ", table + int64_t(ids[n]) * ",
             dim, ", ", 4 * dim, ");"));
  c.close();
}

void pipec::emit::loops::embeddingBackwardW(Code &c, StringRef where,
                                            StringRef dtable, StringRef dout,
                                            StringRef ids, int64_t tokens,
                                            int64_t vocab, int64_t dim) {
  c.open("");
  c.line(cat("float *dtable = ", dtable, ";"));
  c.line(cat("const float *dout = ", dout, ";"));
  c.line(cat("const int32_t *ids = ", ids, ";"));
  checkIds(c, where, "embedding backward", tokens, vocab);
  // Column blocks are independent; inside one, tokens go in ascending order.
  int64_t blocks = (dim + 63) / 64;
  if (blocks > 1)
    c.ompFor(tokens * dim, false);
  c.open(cat("for (int64_t blk = 0; blk < ", blocks, "; ++blk)"));
  c.line(cat("const int64_t d0 = blk * 64, d1 = d0 + 64 < ", dim, " ? d0 + 64 : ",
             dim, ";"));
  c.open(cat("for (int64_t n = 0; n < ", tokens, "; ++n)"));
  c.line(cat("float *row = dtable + int64_t(ids[n]) * ", dim, ";"));
  c.line(cat("const float *g = dout + n * ", dim, ";"));
  c.simd();
  c.line("for (int64_t d = d0; d < d1; ++d)");
  c.line("  row[d] += g[d];");
  c.close();
  c.close();
  c.close();
}

void pipec::emit::loops::positionEmbeddingForward(Code &c, StringRef out,
                                                  StringRef table,
                                                  int64_t length, int64_t dim) {
  c.line(cat("std::memcpy(", out, ", ", table, ", ", 4 * length * dim, ");"));
}

void pipec::emit::loops::positionEmbeddingBackwardW(Code &c, StringRef dtable,
                                                    StringRef dout,
                                                    int64_t length,
                                                    int64_t dim) {
  c.open("");
  c.line(cat("float *dtable = ", dtable, ";"));
  c.line(cat("const float *dout = ", dout, ";"));
  c.ompFor(length * dim, true);
  c.line(cat("for (int64_t i = 0; i < ", length * dim, "; ++i)"));
  c.line("  dtable[i] += dout[i];");
  c.close();
}

//===----------------------------------------------------------------------===//
// Matmul.h
//===----------------------------------------------------------------------===//

/// The kernel's gemm(): row-major C[m, n] = op(A) op(B) + beta C, leading
/// dimensions at least 1.
static void gemm(Code &c, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                 StringRef a, int64_t lda, StringRef b, int64_t ldb,
                 bool betaOne, StringRef out, int64_t ldc) {
  auto trans = [](bool t) { return t ? "CblasTrans" : "CblasNoTrans"; };
  auto ld = [](int64_t x) { return x < 1 ? int64_t(1) : x; };
  c.line(cat("cblas_sgemm(CblasRowMajor, ", trans(ta), ", ", trans(tb), ", ",
             m, ", ", n, ", ", k, ", 1.0f, ", a, ", ", ld(lda), ", ", b, ", ",
             ld(ldb), ", ", betaOne ? "1.0f" : "0.0f", ", ", out, ", ",
             ld(ldc), ");"));
}

void pipec::emit::loops::matmulForward(Code &c, StringRef y, StringRef x,
                                       StringRef w, StringRef bias, int64_t m,
                                       int64_t k, int64_t n,
                                       bool transposeRhs) {
  if (m == 0 || n == 0)
    return;
  gemm(c, false, transposeRhs, m, n, k, x, k, w, transposeRhs ? k : n, false,
       y, n);
  if (bias.empty())
    return;
  c.open("");
  c.line(cat("float *y = ", y, ";"));
  c.line(cat("const float *bias = ", bias, ";"));
  c.ompFor(m * n, false);
  c.open(cat("for (int64_t r = 0; r < ", m, "; ++r)"));
  c.simd();
  c.line(cat("for (int64_t j = 0; j < ", n, "; ++j)"));
  c.line(cat("  y[r * ", n, " + j] = y[r * ", n, " + j] + bias[j];"));
  c.close();
  c.close();
}

void pipec::emit::loops::matmulBackwardB(Code &c, StringRef dx, StringRef dy,
                                         StringRef w, int64_t m, int64_t k,
                                         int64_t n, bool transposeRhs,
                                         bool accumulate) {
  if (m == 0 || k == 0)
    return;
  // w [K, N]: dx = dy w^T; w [N, K]: dx = dy w.
  gemm(c, false, !transposeRhs, m, k, n, dy, n, w, transposeRhs ? k : n,
       accumulate, dx, k);
}

void pipec::emit::loops::matmulBackwardW(Code &c, StringRef dw,
                                         StringRef dbias, StringRef x,
                                         StringRef dy, int64_t m, int64_t k,
                                         int64_t n, bool transposeRhs) {
  if (k != 0 && n != 0) {
    if (transposeRhs)
      gemm(c, true, false, n, k, m, dy, n, x, k, true, dw, k);
    else
      gemm(c, true, false, k, n, m, x, k, dy, n, true, dw, n);
  }
  if (dbias.empty())
    return;
  c.open("");
  c.line(cat("float *db = ", dbias, ";"));
  c.line(cat("const float *dy = ", dy, ";"));
  columnSums(c, "db", m, n, /*accumulate=*/true,
             [&](StringRef r, StringRef j) {
               return cat("dy[", r, " * ", n, " + ", j, "]");
             });
  c.close();
}
