"""Checks the KernelClock ids of a cuda plan folder against its tables.

Usage: check_cuda_clocks.py PLAN_DIR

Every kernel call of the generated .cu sources is timed by a
`pipert::cuda::call::KernelClock clock(C, ID)` (pipec-plan --profile); ID
must index plan.cu's pipecKernelNames at an instantiation of the same
kernel, the ids must cover the table, the cost table must hold a (FLOPs,
bytes) pair per name, and kernel_calls.json may name only those.
"""
import json
import re
import sys
from pathlib import Path

plan = Path(sys.argv[1])
text = "".join(p.read_text() for p in sorted(plan.glob("*.cu")))
planText = (plan / "plan.cu").read_text()
names = re.findall(r'^    "(pipec_k_\w+)",$',
                   planText.split("pipecKernelNames[] = {", 1)[1].split("nullptr};", 1)[0], re.M)
costs = planText.split("pipecKernelCosts[] = {", 1)[1].split("};", 1)[0]
costs = [c.strip() for c in costs.replace("\n", " ").split(",") if c.strip()]
clocks = re.findall(r"KernelClock clock\(C, (\d+)\);\n(?:.*\n)?.*?pipert::cuda::call::(\w+)\(C", text)
bad = []
if not clocks:
    bad.append("no KernelClock in the sources")
for ident, kernel in clocks:
    i = int(ident)
    if i >= len(names):
        bad.append(f"clock {i}: past the table's {len(names)} names")
    elif not names[i].startswith(f"pipec_k_{kernel}_"):
        bad.append(f"clock {i} times {kernel}, the table says {names[i]}")
if sorted({int(i) for i, _ in clocks}) != list(range(len(names))):
    bad.append("the clock ids do not cover the table")
if len(costs) != 2 * len(names) + 1:  # a final 0 ends the table
    bad.append(f"{len(costs)} cost entries for {len(names)} names")
calls = json.loads((plan / "kernel_calls.json").read_text())
listed = {n for c in calls["chunks"] for r in ("F", "B", "W") for n in c[r]}
listed |= {n for o in calls["optimizer"] for n in o["prepare"] + o["calls"]}
if not listed or not listed <= set(names):
    bad.append("kernel_calls.json names instantiations outside the table")
print("\n".join(bad) if bad else
      f"{len(clocks)} kernel calls timed by {len(names)} clocks, as the tables name them")
sys.exit(1 if bad else 0)
