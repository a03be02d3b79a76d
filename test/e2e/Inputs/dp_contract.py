#!/usr/bin/env python3
"""Checks data parallelism against one replica with the same global batch.

A is a run of D = 1 with D x M micro-batches, B one of D replicas with M
each (the same tokens per step, docs/TRAINING.md). The contract
(docs/NUMERICS.md): the step-0 loss is bitwise equal (per-micro-batch
losses summed exactly, whatever the order), the step-0 gradient norm within
--norm-rtol, every step's loss within --loss-rtol. Prints the measured
differences; exits 1 naming the first step and field out of bounds.
"""
import argparse
import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("one", help="metrics.jsonl of D = 1")
    p.add_argument("replicated", help="metrics.jsonl of D replicas")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--norm-rtol", type=float, default=1e-6)
    p.add_argument("--loss-rtol", type=float, default=1e-5)
    args = p.parse_args()
    a, b = load(args.one), load(args.replicated)
    if len(a) != args.steps or len(b) != args.steps:
        sys.exit(f"dp_contract: {len(a)} and {len(b)} steps, expected {args.steps}")
    if a[0]["loss"] != b[0]["loss"]:
        sys.exit(f"dp_contract: step 0: loss {a[0]['loss']!r} != {b[0]['loss']!r} (must be bitwise equal)")
    norm = rel(a[0]["grad_norm"], b[0]["grad_norm"])
    if norm > args.norm_rtol:
        sys.exit(f"dp_contract: step 0: grad_norm {a[0]['grad_norm']!r} vs {b[0]['grad_norm']!r}: "
                 f"relative difference {norm:.3g} > {args.norm_rtol:g}")
    worst = 0.0
    for ra, rb in zip(a, b):
        d = rel(ra["loss"], rb["loss"])
        worst = max(worst, d)
        if d > args.loss_rtol:
            sys.exit(f"dp_contract: step {ra['step']}: loss {ra['loss']!r} vs {rb['loss']!r}: "
                     f"relative difference {d:.3g} > {args.loss_rtol:g}")
    print(f"dp contract: step-0 loss bitwise equal; step-0 grad_norm relative difference {norm:.3g}; "
          f"largest loss relative difference over {args.steps} steps {worst:.3g}")


if __name__ == "__main__":
    main()
