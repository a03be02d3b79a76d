"""Runs pipec's compiled CPU plans for the benchmark: `pipec compile`, `pipec-run`, and what metrics.jsonl and
trace.json say about speed (tokens/s per step; per rank, the time of each instruction kind)."""

import json
import re
import subprocess
import time
from pathlib import Path


class BenchError(Exception):
    """A run that could not be made or read; the message names the command or file."""


def run(cmd, what: str, timeout: int = 1800, env=None) -> str:
    """Runs `cmd`; returns its stdout, or raises BenchError with the tail of its output."""
    try:
        r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BenchError(f"{what}: cannot run {cmd[0]}: {e}") from None
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-15:])
        raise BenchError(f"{what}: `{' '.join(map(str, cmd))}` exited with status {r.returncode}:\n{tail}")
    return r.stdout


def model_flops(pipec: Path, model: str) -> dict:
    """`pipec stats MODEL --json`: parameters and FLOPs per token (forward; training step = 3x forward)."""
    out = run([pipec, "stats", model, "--json"], "pipec stats")
    try:
        s = json.loads(out)
        return {"parameters": int(s["parameters"]), "forward": int(s["forward_flops_per_token"]),
                "train": int(s["train_step_flops_per_token"]),
                "forward_per_microbatch": int(s["forward_flops_per_microbatch"])}
    except (ValueError, KeyError) as e:
        raise BenchError(f"pipec stats {model} --json: unexpected output ({e}): {out[:200]}") from None


def compile_plan(pipec: Path, model: str, stages: int, microbatches: int, schedule: str, out: Path) -> float:
    """`pipec compile` into `out`; returns the seconds it took (kernels already in pipec's cache compile faster)."""
    t0 = time.perf_counter()
    run([pipec, "compile", model, "--stages", stages, "--microbatches", microbatches, "--schedule", schedule,
         "--target", "cpu", "-o", out], f"pipec compile (S={stages}, {schedule})")
    return time.perf_counter() - t0


def train_plan(pipec_run: Path, plan: Path, data: str, steps: int, cores: int, log_dir: Path) -> list:
    """`pipec-run PLAN --steps N --cores C --log-dir LOG --quiet`; returns metrics.jsonl's records in step order."""
    run([pipec_run, plan, "--data", data, "--steps", steps, "--cores", cores, "--log-dir", log_dir, "--quiet"],
        f"pipec-run {plan.name}")
    path = log_dir / "metrics.jsonl"
    try:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise BenchError(f"{path}: cannot read: {e}") from None
    if len(records) != steps or any("tokens_per_s" not in r or "step_time_s" not in r for r in records):
        raise BenchError(f"{path}: expected {steps} records with tokens_per_s and step_time_s, got {len(records)}")
    return sorted(records, key=lambda r: r["step"])


PHASES = ("F", "B", "W", "OPT", "AR", "wait", "post")


def phase(name: str) -> str:
    """The phase of a trace slice named like `pipec schedule`'s tokens: F1.3, B0.2, W0.1, OPT, AR0.0, ~<A0:0.3
    (a wait: the rank idles until the message is there) or >A1:0.0 / <G1:1.0 (posting a send or a recv)."""
    if name.startswith("~"):
        return "wait"
    head = re.match(r"[A-Z]+", name)
    head = head.group(0) if head else ""
    if head in ("F", "B", "W", "OPT", "AR"):
        return head
    return "post"


def trace_phases(trace_path: Path, records: list) -> dict:
    """Per rank, milliseconds per step of each phase over the traced steps after step 0 (step 0 warms caches).

    Returns {steps: [...], wall_ms: mean step time of those steps from metrics.jsonl, ranks: {rank: {phase: ms}}}.
    The runtime traces the first few steps only (RunOptions::traceSteps, 3 by default).
    """
    try:
        events = json.loads(trace_path.read_text())["traceEvents"]
    except (OSError, ValueError, KeyError) as e:
        raise BenchError(f"{trace_path}: cannot read the trace: {e}") from None
    slices = [e for e in events if e.get("ph") == "X" and "step" in e.get("args", {})]
    traced = sorted({e["args"]["step"] for e in slices})
    use = [s for s in traced if s > 0] or traced
    ranks = {}
    for e in slices:
        if e["args"]["step"] in use:
            per = ranks.setdefault(e["tid"], dict.fromkeys(PHASES, 0.0))
            per[phase(e["name"])] += e["dur"] / 1e3 / len(use)  # trace durations are microseconds
    by_step = {r["step"]: r for r in records}
    wall = [by_step[s]["step_time_s"] * 1e3 for s in use if s in by_step]
    return {"steps": use, "wall_ms": sum(wall) / len(wall) if wall else float("nan"),
            "ranks": dict(sorted(ranks.items()))}
