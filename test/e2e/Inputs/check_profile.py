"""Checks pipec-plan --profile's kernel_profile.json against its plan.

Usage: check_profile.py PLAN_DIR LOG_DIR MICROBATCHES

Every kernel instantiation kernel_calls.json lists (each chunk's F, B and
W run once a micro-batch, each rank's optimizer once a step) must appear
with exactly that many calls over the timed steps, a positive time, the
floor the compiler wrote (a matmul's 2 m k n FLOPs, causal attention's 4 d
per pair and head) and the floor time those figures take at the measured
ceilings; kernel_times.json must hold the same calls.
"""
import json
import sys
from collections import Counter
from pathlib import Path

plan, log, mbs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
calls = json.loads((plan / "kernel_calls.json").read_text())
prof = json.loads((log / "kernel_profile.json").read_text())
times = json.loads((log / "kernel_times.json").read_text())
steps = prof["timed_steps"]
expected = Counter()
for c in calls["chunks"]:
    for role in ("F", "B", "W"):
        for name in c[role]:
            expected[name] += mbs * steps
for o in calls["optimizer"]:
    for name in o["prepare"] + o["calls"]:
        expected[name] += steps
rows = {r["name"]: r for r in prof["kernels"]}
bad = []
for name, n in sorted(expected.items()):
    r = rows.get(name)
    if r is None:
        bad.append(f"{name}: not in the profile")
    elif r["calls"] != n:
        bad.append(f"{name}: {r['calls']} calls, kernel_calls.json says {n}")
    elif not r["seconds"] > 0:
        bad.append(f"{name}: no time")
for name in rows:
    if name not in expected:
        bad.append(f"{name}: profiled but never called")
ceil = prof["ceilings"]
for r in prof["kernels"]:
    kernel, _, shape = r["kernel"].partition(" ")
    ints = [int(x) for x in shape.split("x")] if shape else []
    if kernel.startswith("matmul_"):
        want = 2.0 * ints[0] * ints[1] * ints[2]
    elif kernel.removeprefix("flash_") in ("attention_forward", "attention_backward_b"):
        b, tq, tk, h, _, d, causal = ints[:7]
        pairs = sum(min(max(t + 1 + tk - tq, 0), tk) for t in range(tq)) if causal else tq * tk
        want = (4.0 if kernel.endswith("attention_forward") else 10.0) * b * h * d * pairs
    else:
        want = 0.0
    if r["flops_per_call"] != want:
        bad.append(f"{r['kernel']}: {r['flops_per_call']} FLOPs a call, {want} by hand")
    if not r["bytes_per_call"] > 0:
        bad.append(f"{r['kernel']}: no bytes")
    floor = r["calls"] * max(r["flops_per_call"] / ceil["gemm_flops_per_s"],
                             r["bytes_per_call"] / ceil["bytes_per_s"])
    if abs(floor - r["floor_s"]) > 1e-6 * floor:
        bad.append(f"{r['kernel']}: floor {r['floor_s']} s, {floor} s from its figures")
traced = Counter()
for rank in times["ranks"]:
    for k in rank["kernels"]:
        traced[k["name"]] += k["calls"]
if traced != Counter({n: r["calls"] for n, r in rows.items()}):
    bad.append("kernel_times.json and kernel_profile.json count different calls")
if bad:
    print("\n".join(bad))
    sys.exit(1)
print(f"{len(rows)} kernels over {steps} timed steps: calls as kernel_calls.json "
      f"lists them, FLOPs as written by hand, floors at the measured ceilings")
