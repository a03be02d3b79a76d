#!/usr/bin/env python3
"""Checks that every arena offset a plan names is a multiple of ALIGN: the
manifest's buffers and parameters, and every `(A + N)` / `(R[k] + N)`
pointer of the generated sources (cuda: 256, the alignment cuBLASLt's
heuristic is told every GEMM operand has; cpu: 64, a cache line). Scalar
slots (a `double *` or `int64_t *`: the per-parameter squares, the
optimizer's step, clip scale and learning rate) need their own 8 only.

  check_alignment.py PLAN_DIR ALIGN
Prints how many offsets it checked; exits 1 naming the first misaligned one.
"""
import glob
import json
import re
import sys


def main():
    plan, align = sys.argv[1], int(sys.argv[2])
    manifest = json.load(open(plan + "/manifest.json"))
    offsets = [(f"manifest buffer {b['name']}", b["offset"]) for b in manifest["buffers"]]
    offsets += [(f"manifest parameter {p['name']}", p["offset"])
                for p in manifest["parameters"]]
    offsets = [(what, off, align) for what, off in offsets]
    pointer = re.compile(r"\(\((\w+) \*\)\((A|R\[\d\]) \+ (\d+)\)\)")
    for src in sorted(glob.glob(plan + "/chunk*.c*") + glob.glob(plan + "/plan.c*")):
        for n, line in enumerate(open(src), 1):
            for ctype, base, off in pointer.findall(line):
                need = 8 if ctype in ("double", "int64_t") else align
                offsets.append((f"{src.split('/')[-1]}:{n} ({ctype} *)({base} + {off})",
                                int(off), need))
    for what, off, need in offsets:
        if off % need:
            print(f"{what}: offset {off} is not a multiple of {need}")
            return 1
    tensors = sum(1 for _, _, need in offsets if need == align)
    print(f"{tensors} tensor offsets, every one a multiple of {align}; "
          f"{len(offsets) - tensors} scalar slots of 8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
