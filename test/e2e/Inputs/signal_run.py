#!/usr/bin/env python3
"""Runs a training command, sends it a signal once it has printed a few
progress lines, and reports how it ended: the exit code, the last line of
its stderr, and whether the metrics (and trace) it left are complete JSON.

  signal_run.py --signal INT|TERM [--twice] [--after N] [--log-dir D] -- CMD...

Prints "rc=N", "stderr: LINE", "metrics: K complete lines" and, when
D/trace.json exists, "trace: valid"; every wait has a timeout, so a run
that ignores the signal fails the test instead of hanging it.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--signal", choices=["INT", "TERM"], required=True)
    ap.add_argument("--twice", action="store_true")
    ap.add_argument("--after", type=int, default=3,
                    help="progress lines to wait for before signalling")
    ap.add_argument("--log-dir")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 120
    seen = 0
    while seen < a.after and time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith("step"):
            seen += 1
    if seen < a.after:
        p.kill()
        print("the run printed %d progress lines, not %d" % (seen, a.after))
        return 1
    sig = signal.SIGINT if a.signal == "INT" else signal.SIGTERM
    p.send_signal(sig)
    if a.twice:
        p.send_signal(sig)
    try:
        _, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        print("the run did not stop within 60 s of the signal")
        return 1
    print("rc=%d" % p.returncode)
    lines = [l for l in err.splitlines() if l.strip()]
    print("stderr: " + (lines[0] if lines else "(empty)"))
    if a.log_dir:
        metrics = os.path.join(a.log_dir, "metrics.jsonl")
        with open(metrics) as f:
            rows = [json.loads(l) for l in f]
        steps = [r["step"] for r in rows]
        ok = steps == list(range(steps[0], steps[0] + len(steps))) if steps else True
        print("metrics: %d complete lines%s" % (len(rows), "" if ok else " (steps out of order)"))
        trace = os.path.join(a.log_dir, "trace.json")
        if os.path.exists(trace):
            with open(trace) as f:
                json.load(f)
            print("trace: valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
