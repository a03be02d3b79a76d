#!/usr/bin/env python3
"""The 220,032-GPU replay: how long pipec-sim takes, and how much memory.

Compiles GPT-3 175B at 96 stages (1F1B, 192 micro-batches of one 2,048-token
sequence) for a GB300 NVL72 cluster, then replays 2,292 replicas of it
(220,032 ranks) on clusters/gb300-nvl72.json twice: by symmetry (two
replicas stand for all) and in full, every replica with jitter and
stragglers (replica by replica until their data-parallel collectives
settle: docs/SIMULATION.md), and in full with one rank failing a third
into the step as well (--fail: who stops, and when every rank has exited
under a 20 s watchdog). Prints each replay's step, the instructions
executed, wall seconds and the largest resident memory, measured here.

  python3 bench/sim_scale.py [--bin build/bin] [--replicas 2292]
      [--jitter 0.05] [--stragglers 20,1.3] [--fail-rank 110000]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd):
    """Runs cmd; its stdout, wall seconds and its own max RSS (KiB)."""
    with tempfile.TemporaryFile(mode="w+") as out:
        start = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                             text=True)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - start
        out.seek(0)
        text = out.read()
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{text}")
    return text, wall, usage.ru_maxrss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--cluster",
                    default=os.path.join(ROOT, "clusters", "gb300-nvl72.json"))
    ap.add_argument("--replicas", type=int, default=2292)
    ap.add_argument("--jitter", default="0.05")
    ap.add_argument("--stragglers", default="20,1.3")
    ap.add_argument("--fail-rank", type=int, default=110000)
    a = ap.parse_args()
    with open(a.cluster) as f:
        cap = str(int(json.load(f)["gpu"]["memory_gib"] * (1 << 30)))
    work = tempfile.mkdtemp(prefix="pipec-scale-")
    plan = os.path.join(work, "plan")
    _, wall, _ = timed([os.path.join(a.bin, "pipec"), "compile",
                        os.path.join(ROOT, "models", "gpt3-175b.json"),
                        "--target", "cuda", "--stages", "96",
                        "--microbatches", "192", "--schedule", "1f1b",
                        "--memory-cap", cap, "--emit-only", "-o", plan])
    print(f"compiled GPT-3 175B, 96 stages x 192 micro-batches: {wall:.1f} s")
    sim = [os.path.join(a.bin, "pipec-sim"), plan, "--cluster", a.cluster,
           "--replicas", str(a.replicas), "--json"]
    out, wall, rss = timed(sim)
    j = json.loads(out)
    ranks = 96 * a.replicas
    print(f"symmetric: {ranks} ranks, step {j['step_time_s']:.4f} s, MFU "
          f"{100 * j['mfu']:.1f}%: {wall:.2f} s, {rss / 1024:.0f} MiB")
    out, wall, rss = timed(sim + ["--jitter", a.jitter, "--stragglers",
                                  a.stragglers])
    v = json.loads(out)["varied"]
    print(f"full: {ranks} ranks, jitter {a.jitter}, stragglers "
          f"{a.stragglers}: step {v['step_time_s']:.4f} s "
          f"({100 * (v['step_time_s'] / j['step_time_s'] - 1):+.1f}%), "
          f"{v['rounds']} passes, {v['instructions']:.3g} instructions: "
          f"{wall:.1f} s ({v['wall_s']:.1f} s of replay), "
          f"{rss / 1024:.0f} MiB")
    at = j['step_time_s'] / 3
    out, wall, rss = timed(sim + ["--jitter", a.jitter, "--stragglers",
                                  a.stragglers, "--fail",
                                  f"{a.fail_rank}@{at:.6g}"])
    f = json.loads(out)["failure"]
    v = json.loads(out)["varied"]
    print(f"failure: rank {a.fail_rank} of {ranks} fails {at:.4f} s into "
          f"the step: {f['stopped_ranks']} ranks stop, the first at "
          f"{f['first_stop_s']:.4f} s, the last at {f['last_stop_s']:.4f} s"
          + (f", the others finish by {f['last_finish_s']:.4f} s"
             if f['last_finish_s'] > 0 else "")
          + f"; all exited by {f['all_exited_s']:.2f} s with a "
          f"{f['watchdog_s']:.0f} s watchdog; {v['rounds']} passes, "
          f"{v['instructions']:.3g} instructions: {wall:.1f} s, "
          f"{rss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
