"""Times --pipe-schedule on the issue's budget case: 96 stages, 512 micro-batches, 1F1B.

Usage: pipe-schedule-scale.py PIPEC_OPT WORKDIR
Writes a module with 96 chunks, runs the pass (generation, lowering,
validation, deadlock proof, replay, and writing the programs), checks the
figures against the closed form and the 10 s budget, and prints the time.
"""
import os
import re
import subprocess
import sys
import time

STAGES, MICROBATCHES, BUDGET_S = 96, 512, 10.0


def main():
    pipec_opt, workdir = sys.argv[1], sys.argv[2]
    os.makedirs(workdir, exist_ok=True)
    src = os.path.join(workdir, "scale.mlir")
    out = os.path.join(workdir, "scale.out.mlir")
    with open(src, "w") as f:
        for i in range(STAGES):
            f.write(f"pipe.chunk @c{i} rank = {i} costs = [1.0, 2.0, 1.0]\n")
    start = time.perf_counter()
    subprocess.run([pipec_opt, src, "-o", out,
                    f"--pipe-schedule=kind=1f1b microbatches={MICROBATCHES}"],
                   check=True)
    seconds = time.perf_counter() - start
    text = open(out).read()
    programs = len(re.findall(r"^  pipe\.program rank = ", text, re.M))
    instrs = sum(1 for line in text.splitlines() if line.startswith("    "))
    m = re.search(r"bubble = (\S+) step_time = (\S+)", text)
    bubble, step = float(m.group(1)), float(m.group(2))
    p, mb = STAGES, MICROBATCHES
    expected_bubble = (p - 1) / (mb + p - 1)
    expected_step = (mb + p - 1) * (1.0 + 2.0 + 1.0)
    if programs != p or abs(bubble - expected_bubble) > 1e-12 or step != expected_step:
        sys.exit(f"wrong result: {programs} programs, bubble {bubble} "
                 f"(expected {expected_bubble}), step {step} (expected {expected_step})")
    print(f"{p} x {mb} 1f1b: {programs} programs, {instrs} instructions, "
          f"bubble {bubble:.6f}, step time {step:g}")
    print(f"pipec-opt --pipe-schedule took {seconds:.2f} s")
    if seconds >= BUDGET_S:
        sys.exit(f"over the budget of {BUDGET_S} s")


if __name__ == "__main__":
    main()
