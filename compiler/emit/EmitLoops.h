//===- EmitLoops.h - the CPU kernels printed as loops with constant shapes -*- C++ -*-===//
//
// One printer per kernel of runtime/kernels/cpu, with the kernel's name and
// parameters, printing the kernel's body as C++ loops with the shapes baked
// in as constants. Each printer copies its kernel's expressions and
// operation order (docs/NUMERICS.md): the same formula written the same way,
// row reductions in the 8-lane order of runtime/kernels/cpu/Reduce.h, sums
// over rows in ascending row order, threads only over independent elements,
// rows or column blocks. Compiled with the kernels' flags (-O3 -march=native
// -ffp-contract=off), a printed kernel gives the library kernel's bits for
// any thread count; the e2e tests compare compiled plans with
// `pipec reference-train`, which calls the library, bit for bit.
//
// Pointers are C++ expressions the caller supplies; integers are constants.
// A printer writes its statements into a `Code`, loops in a braced block
// that binds the pointers to the kernel's parameter names. A change to a
// kernel of runtime/kernels/cpu must be made to its printer too.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_EMIT_EMITLOOPS_H
#define PIPEC_COMPILER_EMIT_EMITLOOPS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <map>
#include <string>

namespace pipec::emit::loops {

/// Appends indented lines of generated C++ to a string.
class Code {
public:
  /// `globals` collects file-scope definitions by name (constant tables
  /// several ops share).
  Code(std::string &out, std::map<std::string, std::string> &globals,
       int depth = 1)
      : out(out), globals(globals), depth(depth) {}
  /// One line at the current depth.
  Code &line(llvm::StringRef text);
  /// `text {` and one level deeper.
  void open(llvm::StringRef text);
  /// One level up and `}`.
  void close();
  /// A pragma line for an OpenMP loop of `work` element operations: the
  /// loop is threaded only when that is worth a parallel region (the
  /// results never depend on it). `simd` adds `simd` (the loop's
  /// iterations are independent and contain no reduction).
  void ompFor(int64_t work, bool simd);
  /// `#pragma omp simd` for an inner loop of independent iterations.
  void simd();
  /// Defines `name` at file scope by `text` (once per name).
  void global(const std::string &name, const std::string &text) {
    globals.emplace(name, text);
  }

private:
  std::string &out;
  std::map<std::string, std::string> &globals;
  int depth;
};

/// A float as a C++ literal with the same bits (`0x1.8p+1f`).
std::string floatLiteral(float x);

/// Builds the term of a reduction from the index expression.
using Term = llvm::function_ref<std::string(llvm::StringRef i)>;
/// Builds the term of a column sum from the row and column expressions.
using Term2 =
    llvm::function_ref<std::string(llvm::StringRef r, llvm::StringRef c)>;

/// Declares `float name` = the sum of term(i), i in [0, n), in the fixed
/// 8-lane order of detail::reduceFixed (lane i % 8, lanes combined by the
/// fixed tree).
void reduceFixed(Code &c, llvm::StringRef name, int64_t n, Term term);

/// The same with a length known at run time only (`n` a C++ expression).
void reduceFixedDynamic(Code &c, llvm::StringRef name, llvm::StringRef n,
                        Term term);

/// out[c] (+)= sum over rows r ascending of term(r, c), as
/// detail::columnSums: each column starts from 0 and adds its rows in
/// order; threads split blocks of 64 columns.
void columnSums(Code &c, llvm::StringRef out, int64_t rows, int64_t cols,
                bool accumulate, Term2 term);

/// A `return pipert::cpu::Status::failure(...)` statement whose message is
/// `where` (a C++ string literal), ": ", then `message` (a std::string
/// expression).
std::string failure(llvm::StringRef where, llvm::StringRef message);

// Elementwise.h
/// y = a OP b with b broadcast over a's leading dimensions (n elements of
/// a, bn of b); OP is '+' (nn.add) or '*' (nn.mul).
void binaryForward(Code &c, char op, llvm::StringRef y, llvm::StringRef a,
                   llvm::StringRef b, int64_t n, int64_t bn);
void addBackwardBroadcast(Code &c, llvm::StringRef db, llvm::StringRef dy,
                          int64_t n, int64_t bn, bool accumulate);
void mulBackwardLhs(Code &c, llvm::StringRef da, llvm::StringRef dy,
                    llvm::StringRef b, int64_t n, int64_t bn, bool accumulate);
void mulBackwardRhs(Code &c, llvm::StringRef db, llvm::StringRef dy,
                    llvm::StringRef a, int64_t n, int64_t bn, bool accumulate);
void accumulateInto(Code &c, llvm::StringRef y, llvm::StringRef x, int64_t n,
                    bool accumulate);
/// accumulateInto(y, a, n, false) then accumulateInto(y, b, n, true), in
/// one loop (`y = a` then `y = y + b` is `y = a + b`).
void addInto(Code &c, llvm::StringRef y, llvm::StringRef a, llvm::StringRef b,
             int64_t n);

// Activation.h
void geluForward(Code &c, llvm::StringRef y, llvm::StringRef x, int64_t n);
void geluBackwardB(Code &c, llvm::StringRef dx, llvm::StringRef dy,
                   llvm::StringRef x, int64_t n, bool accumulate);
void siluForward(Code &c, llvm::StringRef y, llvm::StringRef x, int64_t n);
void siluBackwardB(Code &c, llvm::StringRef dx, llvm::StringRef dy,
                   llvm::StringRef x, int64_t n, bool accumulate);

// Shape.h
void sliceForward(Code &c, llvm::StringRef y, llvm::StringRef x, int64_t outer,
                  int64_t dim, int64_t inner, int64_t offset, int64_t size);
void sliceBackwardB(Code &c, llvm::StringRef dx, llvm::StringRef dy,
                    int64_t outer, int64_t dim, int64_t inner, int64_t offset,
                    int64_t size, bool accumulate);
void reshapeForward(Code &c, llvm::StringRef y, llvm::StringRef x, int64_t n);
/// transposeForward: y = x (dims xDims) permuted by perm.
void transposeForward(Code &c, llvm::StringRef y, llvm::StringRef x,
                      llvm::ArrayRef<int64_t> xDims,
                      llvm::ArrayRef<int64_t> perm);

// Embedding.h (`where` names the op in the error of a bad id)
void embeddingForward(Code &c, llvm::StringRef where, llvm::StringRef out,
                      llvm::StringRef table, llvm::StringRef ids,
                      int64_t tokens, int64_t vocab, int64_t dim);
void embeddingBackwardW(Code &c, llvm::StringRef where, llvm::StringRef dtable,
                        llvm::StringRef dout, llvm::StringRef ids,
                        int64_t tokens, int64_t vocab, int64_t dim);
void positionEmbeddingForward(Code &c, llvm::StringRef out,
                              llvm::StringRef table, int64_t length,
                              int64_t dim);
void positionEmbeddingBackwardW(Code &c, llvm::StringRef dtable,
                                llvm::StringRef dout, int64_t length,
                                int64_t dim);

// Matmul.h: cblas_sgemm calls with the library's arguments.
void matmulForward(Code &c, llvm::StringRef y, llvm::StringRef x,
                   llvm::StringRef w, llvm::StringRef bias, int64_t m,
                   int64_t k, int64_t n, bool transposeRhs);
void matmulBackwardB(Code &c, llvm::StringRef dx, llvm::StringRef dy,
                     llvm::StringRef w, int64_t m, int64_t k, int64_t n,
                     bool transposeRhs, bool accumulate);
/// `dbias` may be empty (no bias).
void matmulBackwardW(Code &c, llvm::StringRef dw, llvm::StringRef dbias,
                     llvm::StringRef x, llvm::StringRef dy, int64_t m,
                     int64_t k, int64_t n, bool transposeRhs);

// Norm.h
void layernormForward(Code &c, llvm::StringRef y, llvm::StringRef mean,
                      llvm::StringRef rstd, llvm::StringRef x,
                      llvm::StringRef gamma, llvm::StringRef beta,
                      int64_t rows, int64_t dim, double eps);
void layernormBackwardB(Code &c, llvm::StringRef dx, llvm::StringRef dy,
                        llvm::StringRef x, llvm::StringRef mean,
                        llvm::StringRef rstd, llvm::StringRef gamma,
                        int64_t rows, int64_t dim, bool accumulate);
void layernormBackwardW(Code &c, llvm::StringRef dgamma, llvm::StringRef dbeta,
                        llvm::StringRef dy, llvm::StringRef x,
                        llvm::StringRef mean, llvm::StringRef rstd,
                        int64_t rows, int64_t dim);
void rmsnormForward(Code &c, llvm::StringRef y, llvm::StringRef rstd,
                    llvm::StringRef x, llvm::StringRef gamma, int64_t rows,
                    int64_t dim, double eps);
void rmsnormBackwardB(Code &c, llvm::StringRef dx, llvm::StringRef dy,
                      llvm::StringRef x, llvm::StringRef rstd,
                      llvm::StringRef gamma, int64_t rows, int64_t dim,
                      bool accumulate);
void rmsnormBackwardW(Code &c, llvm::StringRef dgamma, llvm::StringRef dy,
                      llvm::StringRef x, llvm::StringRef rstd, int64_t rows,
                      int64_t dim);

// Softmax.h
void softmaxForward(Code &c, llvm::StringRef y, llvm::StringRef x,
                    int64_t rows, int64_t dim);
void softmaxBackwardB(Code &c, llvm::StringRef dx, llvm::StringRef dy,
                      llvm::StringRef y, int64_t rows, int64_t dim,
                      bool accumulate);

// CrossEntropy.h: crossEntropyForward (without per-row losses) and
// crossEntropyBackward of one fused op in one pass over each row. The
// forward's sum of exp(x - max) in the fixed order and the backward's
// fixed-order sum of the same exponentials stored in dlogits are the same
// bits (the kernels say so), so each exponential is computed once.
// `where` names the op in the error of a bad target; `scale` is a double
// expression.
void crossEntropyFused(Code &c, llvm::StringRef where, llvm::StringRef loss,
                       llvm::StringRef dlogits, llvm::StringRef logits,
                       llvm::StringRef targets, int64_t rows, int64_t vocab,
                       llvm::StringRef scale);

// Rope.h: the angle tables are computed here, as the kernel computes them
// (double, rounded once to float), and printed as constants.
void ropeForward(Code &c, llvm::StringRef y, llvm::StringRef x, int64_t batch,
                 int64_t seq, int64_t heads, int64_t headDim, double theta);
void ropeBackwardB(Code &c, llvm::StringRef dx, llvm::StringRef dy,
                   int64_t batch, int64_t seq, int64_t heads, int64_t headDim,
                   double theta, bool accumulate);

// Attention.h
struct AttentionShape {
  int64_t batch, seqQ, seqKV, heads, kvHeads, headDim;
  bool causal;
  double scale;
};
void attentionForward(Code &c, llvm::StringRef out, llvm::StringRef lse,
                      llvm::StringRef q, llvm::StringRef k, llvm::StringRef v,
                      const AttentionShape &s);
void attentionBackwardB(Code &c, llvm::StringRef dq, llvm::StringRef dk,
                        llvm::StringRef dv, llvm::StringRef dout,
                        llvm::StringRef q, llvm::StringRef k,
                        llvm::StringRef v, llvm::StringRef out,
                        llvm::StringRef lse, const AttentionShape &s);

} // namespace pipec::emit::loops

#endif // PIPEC_COMPILER_EMIT_EMITLOOPS_H
