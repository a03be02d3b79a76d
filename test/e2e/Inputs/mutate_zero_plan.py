"""One wrong column in a ZeRO-1 cuda plan's plan.cu: check_zero_tables.py's
negative controls (test/e2e/cuda-zero.test). Each mutation still
compiles; the checker must name it.

Usage: mutate_zero_plan.py KIND PLAN.cu
  moments    two parameters' moment offsets of replica 1 swapped
  replica    one part taken for (ctx->rank / 1) instead of the stage count
  gathered   the working copy's part addressed as 4-byte elements
  total      a parameter's total written where another's is
  order      grad_norm adding two totals in the other order
  twice      one AdamW entry repeated
  slot       a parameter's norm chunks squared past the operand
"""
import re
import sys

kind, path = sys.argv[1], sys.argv[2]
text = open(path).read()


def once(old, new, start=0):
    at = text.find(old, start)
    if at < 0:
        sys.exit(f"mutate_zero_plan: no '{old[:60]}' in {path}")
    return text[:at] + new + text[at + len(old):]


if kind == "moments":
    m = re.search(r"kZeroMoment\[\d+\]\[\d+\] = \{\{[\d, ]+\}, \{([\d, ]+)\}", text)
    row = m.group(1).split(", ")
    k = next(i for i in range(len(row) - 1) if row[i] != row[i + 1])
    row[k], row[k + 1] = row[k + 1], row[k]
    text = text[:m.start(1)] + ", ".join(row) + text[m.end(1):]
elif kind == "replica":
    m = re.search(r"pipert::zeroShard\((\d+), (\d+), \(ctx->rank / \d+\)", text)
    text = text[:m.start()] + f"pipert::zeroShard({m.group(1)}, {m.group(2)}, (ctx->rank / 1)" + text[m.end():]
elif kind == "gathered":
    text = once("P{A + kCopy[i] + 2 * s.first}", "P{A + kCopy[i] + 4 * s.first}")
elif kind == "total":
    text = once("pipert::cuda::call::norm_total(C, 1)}", "pipert::cuda::call::norm_total(C, 0)}")
elif kind == "order":
    text = once("(const double *)(pipert::cuda::call::norm_total(C, 0)), "
                "(const double *)(pipert::cuda::call::norm_total(C, 1))",
                "(const double *)(pipert::cuda::call::norm_total(C, 1)), "
                "(const double *)(pipert::cuda::call::norm_total(C, 0))")
elif kind == "twice":
    m = re.search(r"      // nn\.adamw [^\n]*: this replica's part \(ZeRO-1\)\n      \{[^\n]*\},\n", text)
    text = text[:m.end()] + m.group(0) + text[m.end():]
elif kind == "slot":
    m = re.search(r"zeroPart\[0\]\.count, \(double \*\)\(data \+ (\d+)\)\}", text)
    text = text[:m.start(1)] + str(1 << 30) + text[m.end(1):]
else:
    sys.exit(f"mutate_zero_plan: no mutation '{kind}'")
open(path, "w").write(text)
