//===- EmitAttentionLoops.cpp - causal GQA attention kernels as loops -----===//
//
// The printers of Attention.h of runtime/kernels/cpu. The forward pass gives
// each (batch, head, query) row to one thread and sums over keys in
// ascending order; the backward pass gives each (batch, kv head) pair to one
// thread, which walks its query heads and queries in ascending order, so dk
// and dv add in a fixed order. Expressions are the kernel's, term for term.
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitLoops.h"
#include "compiler/emit/EmitLoopsSupport.h"

using namespace pipec::emit::loops;
using llvm::StringRef;

/// `const int64_t nk` = the number of keys query `t` sees (visibleKeys()).
static void visibleKeys(Code &c, const AttentionShape &s) {
  if (!s.causal) {
    c.line(cat("const int64_t nk = ", s.seqKV, ";"));
    return;
  }
  c.line(cat("const int64_t nv = t + 1 + (", s.seqKV, " - ", s.seqQ, ");"));
  c.line(cat("const int64_t nk = nv < 0 ? 0 : (nv > ", s.seqKV, " ? ", s.seqKV,
             " : nv);"));
}

void pipec::emit::loops::attentionForward(Code &c, StringRef out,
                                          StringRef lse, StringRef q,
                                          StringRef k, StringRef v,
                                          const AttentionShape &s) {
  const int64_t dh = s.headDim, group = s.heads / s.kvHeads;
  const int64_t qStride = s.heads * dh, kvStride = s.kvHeads * dh;
  const int64_t rows = s.batch * s.heads * s.seqQ;
  const std::string scale = floatLiteral(float(s.scale));
  c.open("");
  c.line(cat("float *out = ", out, ", *lse = ", lse, ";"));
  c.line(cat("const float *q = ", q, ", *k = ", k, ", *v = ", v, ";"));
  c.ompFor(rows * s.seqKV * dh * 2, false);
  c.open(cat("for (int64_t row = 0; row < ", rows, "; ++row)"));
  // row enumerates [batch, heads, seqQ], the layout of lse.
  c.line(cat("float p[", s.seqKV > 0 ? s.seqKV : 1, "];"));
  c.line(cat("const int64_t t = row % ", s.seqQ, ", h = (row / ", s.seqQ,
             ") % ", s.heads, ";"));
  c.line(cat("const int64_t b = row / ", s.seqQ * s.heads, ", kvh = h / ",
             group, ";"));
  c.line(cat("const float *qr = q + (b * ", s.seqQ, " + t) * ", qStride,
             " + h * ", dh, ";"));
  c.line(cat("const float *kb = k + b * ", s.seqKV * kvStride, " + kvh * ", dh,
             ";"));
  c.line(cat("const float *vb = v + b * ", s.seqKV * kvStride, " + kvh * ", dh,
             ";"));
  c.line(cat("float *orow = out + (b * ", s.seqQ, " + t) * ", qStride,
             " + h * ", dh, ";"));
  visibleKeys(c, s);
  c.line(cat("for (int64_t d = 0; d < ", dh, "; ++d)"));
  c.line("  orow[d] = 0.0f;");
  c.open("if (nk == 0)");
  c.line("lse[row] = -INFINITY;");
  c.line("continue;");
  c.close();
  c.line("float mx = -INFINITY;");
  c.open("for (int64_t j = 0; j < nk; ++j)");
  c.line(cat("const float *kr = kb + j * ", kvStride, ";"));
  reduceFixed(c, "dot", dh,
              [](StringRef i) { return cat("qr[", i, "] * kr[", i, "]"); });
  c.line(cat("p[j] = dot * ", scale, ";"));
  c.line("mx = p[j] > mx ? p[j] : mx;");
  c.close();
  c.simd(); // vecExp vectorizes (VecMath.h)
  c.line("for (int64_t j = 0; j < nk; ++j)");
  c.line("  p[j] = pipert::cpu::vecExp(p[j] - mx);");
  reduceFixedDynamic(c, "sum", "nk",
                     [](StringRef i) { return cat("p[", i, "]"); });
  c.open("for (int64_t j = 0; j < nk; ++j)");
  c.line(cat("const float *vr = vb + j * ", kvStride, ";"));
  c.simd();
  c.line(cat("for (int64_t d = 0; d < ", dh, "; ++d)"));
  c.line("  orow[d] += p[j] * vr[d];");
  c.close();
  c.simd();
  c.line(cat("for (int64_t d = 0; d < ", dh, "; ++d)"));
  c.line("  orow[d] = orow[d] / sum;");
  c.line("lse[row] = mx + std::log(sum);");
  c.close();
  c.close();
}

void pipec::emit::loops::attentionBackwardB(
    Code &c, StringRef dq, StringRef dk, StringRef dv, StringRef dout,
    StringRef q, StringRef k, StringRef v, StringRef out, StringRef lse,
    const AttentionShape &s) {
  const int64_t dh = s.headDim, group = s.heads / s.kvHeads;
  const int64_t qStride = s.heads * dh, kvStride = s.kvHeads * dh;
  const int64_t units = s.batch * s.kvHeads;
  const std::string scale = floatLiteral(float(s.scale));
  c.open("");
  c.line(cat("float *dq = ", dq, ", *dk = ", dk, ", *dv = ", dv, ";"));
  c.line(cat("const float *dout = ", dout, ", *q = ", q, ", *k = ", k,
             ", *v = ", v, ", *out = ", out, ", *lse = ", lse, ";"));
  if (units > 1)
    c.ompFor(s.batch * s.heads * s.seqQ * s.seqKV * dh * 4, false);
  c.open(cat("for (int64_t unit = 0; unit < ", units, "; ++unit)"));
  c.line(cat("float dqRow[", dh > 0 ? dh : 1, "];"));
  c.line(cat("const int64_t b = unit / ", s.kvHeads, ", kvh = unit % ",
             s.kvHeads, ";"));
  for (const char *name : {"k", "v"})
    c.line(cat("const float *", name, "b = ", name, " + b * ",
               s.seqKV * kvStride, " + kvh * ", dh, ";"));
  for (const char *name : {"dk", "dv"})
    c.line(cat("float *", name, "b = ", name, " + b * ", s.seqKV * kvStride,
               " + kvh * ", dh, ";"));
  c.line(cat("for (int64_t j = 0; j < ", s.seqKV, "; ++j)"));
  c.line(cat("  for (int64_t d = 0; d < ", dh, "; ++d)"));
  c.line(cat("    dkb[j * ", kvStride, " + d] = dvb[j * ", kvStride,
             " + d] = 0.0f;"));
  c.open(cat("for (int64_t h = kvh * ", group, "; h < (kvh + 1) * ", group,
             "; ++h)"));
  c.open(cat("for (int64_t t = 0; t < ", s.seqQ, "; ++t)"));
  c.line(cat("const int64_t off = (b * ", s.seqQ, " + t) * ", qStride,
             " + h * ", dh, ";"));
  c.line("const float *qr = q + off, *gr = dout + off, *orow = out + off;");
  c.line(cat("const float rowLse = lse[(b * ", s.heads, " + h) * ", s.seqQ,
             " + t];"));
  // D = dout . out = sum_j p_j (dout . v_j), the softmax projection.
  reduceFixed(c, "proj", dh,
              [](StringRef i) { return cat("gr[", i, "] * orow[", i, "]"); });
  c.line(cat("for (int64_t d = 0; d < ", dh, "; ++d)"));
  c.line("  dqRow[d] = 0.0f;");
  visibleKeys(c, s);
  c.open("for (int64_t j = 0; j < nk; ++j)");
  c.line(cat("const float *kr = kb + j * ", kvStride, ", *vr = vb + j * ",
             kvStride, ";"));
  reduceFixed(c, "qk", dh,
              [](StringRef i) { return cat("qr[", i, "] * kr[", i, "]"); });
  c.line(cat("float p = pipert::cpu::vecExp(qk * ", scale, " - rowLse);"));
  reduceFixed(c, "gv", dh,
              [](StringRef i) { return cat("gr[", i, "] * vr[", i, "]"); });
  c.line(cat("float ds = p * (gv - proj) * ", scale, ";"));
  c.line(cat("float *dkr = dkb + j * ", kvStride, ", *dvr = dvb + j * ",
             kvStride, ";"));
  c.simd();
  c.open(cat("for (int64_t d = 0; d < ", dh, "; ++d)"));
  c.line("dqRow[d] += ds * kr[d];");
  c.line("dkr[d] += ds * qr[d];");
  c.line("dvr[d] += p * gr[d];");
  c.close();
  c.close();
  c.line(cat("for (int64_t d = 0; d < ", dh, "; ++d)"));
  c.line("  dq[off + d] = dqRow[d];");
  c.close();
  c.close();
  c.close();
  c.close();
}
