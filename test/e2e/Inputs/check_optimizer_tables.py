"""Checks the roles of the pointers in a cuda plan's optimizer tables.

Usage: check_optimizer_tables.py PLAN_DIR

plan.cu's batched optimizer calls (compiler/emit/EmitCudaOps.cpp) print
tables of arena offsets; a swapped column would still compile. Per rank:
each AdamW entry's master and working copy must be the pair that rank's
Begin rounds (round_copy(copy, master, n)); its gradient must be the one
that rank's sum_uses entry writes and its sum_squares entry reads (where
the rank computes that parameter's squares), with the same element count;
its moments must be two more areas, distinct from every other pointer of
the table.
"""
import re
import sys
from pathlib import Path

text = (Path(sys.argv[1]) / "plan.cu").read_text()
parts = re.split(r"static pipert::cpu::Status rank(\d+)(Prepare|Opt|Begin)\(", text)
ranks = {}
for i in range(1, len(parts) - 2, 3):
    ranks.setdefault(parts[i], {})[parts[i + 1]] = parts[i + 2]
num = r"\(\(\w+ \*\)\(A \+ (\d+)\)\)"
bad, tensors = [], 0
for r, fns in sorted(ranks.items()):
    copies = {(int(c), int(m)): int(n) for c, m, n in re.findall(
        r"round_copy\(C, P\{A \+ (\d+)\}, P\{A \+ (\d+)\}, (\d+)\)", fns.get("Begin", ""))}
    uses = {int(g): int(n) for g, n in re.findall(
        r"\{\(float \*\)\(" + num + r"\), accs \+ \d+, \d+, (\d+)\}", fns.get("Prepare", ""))}
    squares = {int(x): int(n) for x, n in re.findall(
        r"\{\(const float \*\)\(" + num + r"\), (\d+), \(double \*\)", fns.get("Prepare", ""))}
    seen = set()
    for p, c, g, m, v, n in re.findall(
            r"\{\(float \*\)\(" + num + r"\), \(__nv_bfloat16 \*\)\(" + num +
            r"\), \(const float \*\)\(" + num + r"\), \(float \*\)\(" + num +
            r"\), \(float \*\)\(" + num + r"\), (\d+),", fns.get("Opt", "")):
        p, c, g, m, v, n = map(int, (p, c, g, m, v, n))
        tensors += 1
        where = f"rank {r}, the AdamW entry at master {p}"
        if copies.get((c, p)) != n:
            bad.append(f"{where}: Begin rounds no master {p} into copy {c} of {n}")
        if uses.get(g) != n:
            bad.append(f"{where}: no sum_uses entry writes gradient {g} of {n}")
        if g in squares and squares[g] != n:
            bad.append(f"{where}: its sum_squares entry reads {squares[g]} elements")
        if len({p, c, g, m, v}) != 5 or seen & {p, c, g, m, v}:
            bad.append(f"{where}: pointers shared within the table")
        seen |= {p, c, g, m, v}
    if not squares or not set(squares) <= set(uses):
        bad.append(f"rank {r}: a sum_squares entry reads no gradient sum_uses writes")
if not tensors:
    bad.append("no AdamW table in plan.cu")
print("\n".join(bad) if bad else
      f"{tensors} AdamW entries over {len(ranks)} ranks: master, copy, gradient and moments in their places")
sys.exit(1 if bad else 0)
