#!/usr/bin/env python3
"""Compares two metrics.jsonl files step by step (loss, lr, grad_norm).

Used by the e2e tests: a compiled plan against `pipec reference-train`, and
plans of different schedules against each other. Exact by default (the same
kernel calls in the same order give the same bits); --rtol allows a relative
difference; --fields picks the fields compared (the cuda target is held to
the bf16-emulated reference on the loss alone). Exits 1 naming the first
step and field that differ.
"""
import argparse
import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--rtol", type=float, default=0.0)
    p.add_argument("--fields", default="loss,lr,grad_norm",
                   help="comma-separated fields to compare")
    p.add_argument("--steps", type=int, default=0,
                   help="the number of steps both must hold")
    args = p.parse_args()
    a, b = load(args.a), load(args.b)
    if args.steps and (len(a) != args.steps or len(b) != args.steps):
        print(f"expected {args.steps} steps, got {len(a)} and {len(b)}")
        return 1
    if len(a) != len(b) or not a:
        print(f"{args.a} has {len(a)} steps, {args.b} has {len(b)}")
        return 1
    worst = 0.0
    for ra, rb in zip(a, b):
        for key in args.fields.split(","):
            x, y = ra[key], rb[key]
            rel = abs(x - y) / max(abs(y), 1e-300)
            worst = max(worst, rel)
            if rel > args.rtol:
                print(f"step {ra['step']}: {key} {x!r} != {y!r} "
                      f"(relative difference {rel:.3g} > {args.rtol})")
                return 1
    print(f"{len(a)} steps equal (largest relative difference {worst:.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
