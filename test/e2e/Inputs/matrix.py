#!/usr/bin/env python3
"""Trains one model compiled for every (stages, schedule kind) and checks it bitwise against S = 1.

For each S in --stages and each kind in --kinds at M = --microbatches, `pipec
compile` builds the plan (sharing one object cache, so plans of one
partition compile their chunks once) and `pipec-run --shadow` trains it for
--steps steps (the shadow memory checks every access of every stream), saving
the final parameters. Each run must match the first plan (S = 1, gpipe) bit
for bit: loss, lr and grad_norm of every step (metrics.jsonl prints 17
significant digits, which round-trips a double) and every byte of the saved
safetensors. A plan the compiler refuses must be refused with the message
--refuse names for it; a known failure named by --xfail is reported with its
reason and does not fail the run (but a known failure that passes does, so the
mark gets removed). Prints a table; exits 1 on any other difference.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipec", required=True)
    p.add_argument("--pipec-run", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--work", required=True, help="directory for plans and logs")
    p.add_argument("--cache", required=True, help="PIPEC_CACHE_DIR shared by every compile")
    p.add_argument("--stages", default="1,2,4")
    p.add_argument("--kinds", default="gpipe,1f1b,interleaved-1f1b,zb-h1,zb-v,dualpipe-v")
    p.add_argument("--microbatches", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (each with --cores 1)")
    p.add_argument("--refuse", action="append", default=[], metavar="S:KIND:TEXT",
                   help="the compiler must refuse (S, KIND) with a message containing TEXT")
    p.add_argument("--xfail", action="append", default=[], metavar="S:KIND:REASON",
                   help="a known failure: reported with REASON, does not fail the run")
    p.add_argument("--compile-flag", action="append", default=[], metavar="FLAG",
                   help="one more flag for every pipec compile (e.g. --no-fuse)")
    p.add_argument("--run-flag", action="append", default=[], metavar="FLAG",
                   help="one more flag for every pipec-run (e.g. --transport, mpi)")
    p.add_argument("--control", metavar="S:KIND",
                   help="negative control: (S, KIND) compiled with --debug-one-slot (a wrong layout), run "
                        "without --shadow, must differ from the base")
    return p.parse_args()


def split_mark(text, what):
    parts = text.split(":", 2)
    if len(parts) != 3 or not parts[0].isdigit():
        sys.exit(f"matrix: {what} '{text}': expected S:KIND:TEXT")
    return (int(parts[0]), parts[1]), parts[2]


def tail(text, lines=6):
    return "\n".join(text.strip().splitlines()[-lines:])


class Plan:
    def __init__(self, args, stages, kind, control=False):
        self.stages, self.kind = stages, kind
        self.name = f"s{stages}-{kind}" + ("-one-slot" if control else "")
        self.dir = os.path.join(args.work, "plans", self.name)
        self.log = os.path.join(args.work, "logs", self.name)
        self.params = os.path.join(args.work, "params", self.name + ".safetensors")
        self.compile_cmd = [args.pipec, "compile", args.model, "--stages", str(stages),
                            "--microbatches", str(args.microbatches), "--schedule", kind,
                            "--target", "cpu", "-o", self.dir] + list(args.compile_flag)
        self.run_cmd = [args.pipec_run, self.dir, "--data", args.data, "--steps", str(args.steps),
                        "--log-dir", self.log, "--save", self.params, "--shadow",
                        "--cores", "1", "--quiet"] + list(args.run_flag)
        if control:
            self.compile_cmd.append("--debug-one-slot")
            self.run_cmd.remove("--shadow")
        self.status = None   # "refused", "compile failed", "run failed", or None once run
        self.detail = ""
        self.seconds = 0.0


def compile_plan(plan, env):
    t0 = time.time()
    r = subprocess.run(plan.compile_cmd, capture_output=True, text=True, env=env)
    plan.seconds += time.time() - t0
    if r.returncode != 0:
        plan.status = "refused"
        plan.detail = (r.stdout + r.stderr).strip()


def run_plan(plan):
    t0 = time.time()
    os.makedirs(os.path.dirname(plan.params), exist_ok=True)
    r = subprocess.run(plan.run_cmd, capture_output=True, text=True)
    plan.seconds += time.time() - t0
    if r.returncode != 0:
        plan.status = "run failed"
        plan.detail = tail(r.stdout + r.stderr)


def metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def safetensors_tensors(data):
    """name -> (dtype, shape, bytes) of a safetensors file's contents."""
    n = struct.unpack_from("<Q", data, 0)[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], data[8 + n + a:8 + n + b])
    return out


def first_tensor_difference(a, b):
    """Names the first tensor and element where two safetensors files differ."""
    try:
        ta, tb = safetensors_tensors(a), safetensors_tensors(b)
    except (ValueError, KeyError, struct.error) as e:
        return f"unreadable safetensors: {e}"
    if list(ta) != list(tb):
        return f"tensor names or order differ: {list(ta)[:4]}... vs {list(tb)[:4]}..."
    for name in ta:
        if ta[name][:2] != tb[name][:2]:
            return f"{name}: {ta[name][:2]} vs {tb[name][:2]}"
        xa, xb = ta[name][2], tb[name][2]
        if xa != xb:
            fmt = {"F32": "f", "F64": "d"}.get(ta[name][0])
            size = struct.calcsize(fmt) if fmt else 1
            i = next(k for k in range(len(xa)) if xa[k] != xb[k]) // size
            if fmt:
                va = struct.unpack_from("<" + fmt, xa, i * size)[0]
                vb = struct.unpack_from("<" + fmt, xb, i * size)[0]
                return f"{name}[{i}]: {va!r} vs {vb!r}"
            return f"{name}: byte {i}"
    return "the header bytes differ"


def compare(plan, base, steps):
    """None when plan matches base bit for bit, else the first difference."""
    try:
        ma = metrics(os.path.join(plan.log, "metrics.jsonl"))
        mb = metrics(os.path.join(base.log, "metrics.jsonl"))
    except (OSError, ValueError) as e:
        return f"metrics: {e}"
    if len(ma) != steps or len(mb) != steps:
        return f"metrics: {len(ma)} and {len(mb)} steps, expected {steps}"
    for ra, rb in zip(ma, mb):
        for key in ("loss", "lr", "grad_norm"):
            if ra[key] != rb[key]:
                return f"step {ra['step']}: {key} {ra[key]!r} != {rb[key]!r}"
    with open(plan.params, "rb") as f:
        pa = f.read()
    with open(base.params, "rb") as f:
        pb = f.read()
    if pa != pb:
        return "final parameters: " + first_tensor_difference(pa, pb)
    return None


def main():
    args = parse_args()
    stages = [int(s) for s in args.stages.split(",")]
    kinds = args.kinds.split(",")
    refuse = dict(split_mark(t, "--refuse") for t in args.refuse)
    xfail = dict(split_mark(t, "--xfail") for t in args.xfail)
    plans = [Plan(args, s, k) for s in stages for k in kinds]
    base = plans[0]
    control = None
    if args.control:
        (cs, ck), _ = split_mark(args.control + ":", "--control")
        control = Plan(args, cs, ck, control=True)
    env = dict(os.environ, PIPEC_CACHE_DIR=args.cache)
    t0 = time.time()
    # Compiles one after another (each compiles its objects on every core);
    # then the runs, --jobs at a time with one core each.
    for plan in plans + ([control] if control else []):
        compile_plan(plan, env)
    t_compile = time.time() - t0
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(run_plan, [p for p in plans + ([control] if control else []) if p.status is None]))
    t_run = time.time() - t0 - t_compile

    failures = []
    rows = {}
    if base.status is not None:
        failures.append(f"the base plan {base.name} did not run: {base.detail}")
    for plan in plans:
        key = (plan.stages, plan.kind)
        if plan.status == "refused":
            want = refuse.get(key)
            lines = plan.detail.splitlines()
            first = "\n  ".join([l for l in lines if "error" in l][:3] or lines[-3:])
            if want is not None and want in plan.detail:
                rows[key] = "refused"
            else:
                rows[key] = "REFUSED"
                failures.append(f"{plan.name}: compile refused unexpectedly"
                                + (f" (expected '{want}')" if want else "")
                                + f"\n  $ {' '.join(plan.compile_cmd)}\n  {first}")
            continue
        if key in refuse:
            rows[key] = "ACCEPTED"
            failures.append(f"{plan.name}: compiled, but should be refused with '{refuse[key]}'")
            continue
        if plan.status == "run failed":
            diff = "the run failed:\n  " + plan.detail.replace("\n", "\n  ")
        elif plan is base:
            diff = None
        elif base.status is not None:
            diff = "no base run to compare with"
        else:
            diff = compare(plan, base, args.steps)
        if key in xfail:
            if diff is None:
                rows[key] = "XPASS"
                failures.append(f"{plan.name}: marked as a known failure ({xfail[key]}) but is now "
                                "bitwise equal: remove the mark")
            else:
                rows[key] = "xfail"
                print(f"known failure {plan.name}: {xfail[key]}\n  {diff}")
            continue
        if diff is None:
            rows[key] = "equal" if plan is not base else "base"
        else:
            rows[key] = "DIFFERS"
            failures.append(f"{plan.name}: {diff}\n  $ {' '.join(plan.compile_cmd)}"
                            f"\n  $ {' '.join(plan.run_cmd)}")

    if control:
        if control.status is not None:
            failures.append(f"control {control.name} did not run: {control.detail}")
        else:
            diff = compare(control, base, args.steps)
            if diff is None:
                failures.append(f"control {control.name}: a wrong layout trained to the same bits; "
                                "the comparison cannot fail")
            else:
                print(f"control {control.name} (no --shadow) differs as it must: {diff}")

    model = os.path.basename(args.model)
    print(f"{model}: M = {args.microbatches}, {args.steps} steps with --shadow, against S = 1 gpipe "
          f"(loss, lr, grad_norm per step; saved parameters byte for byte)")
    width = max(8, max(len(k) for k in kinds)) + 2
    print("S".ljust(4) + "".join(k.ljust(width) for k in kinds))
    for s in stages:
        print(str(s).ljust(4) + "".join(rows.get((s, k), "?").ljust(width) for k in kinds))
    print(f"time: compile {t_compile:.0f} s, runs {t_run:.0f} s")
    for f in failures:
        print("FAIL " + f)
    equal = sum(1 for v in rows.values() if v in ("equal", "base"))
    print(f"matrix: {equal} of {len(plans)} plans bitwise equal, "
          f"{sum(1 for v in rows.values() if v == 'refused')} refused as expected, "
          f"{sum(1 for v in rows.values() if v == 'xfail')} known failures, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
