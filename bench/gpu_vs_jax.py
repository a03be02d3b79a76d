#!/usr/bin/env python3
"""GPT-2 124M on one GPU: pipec's cuda plan beside JAX and llm.c, measured.

Usage: gpu_vs_jax.py OUT --batch B --microbatches M [--seq T]

Reads what bench/gpu_gpt2.sh --run left in OUT on the GPU machine (the
runs themselves are its job: pipec's plan, 3 steps under --profile,
llm.c's train_gpt2cu and bench/jax_gpt2_gpu.py at the same B, T and M, one
call, one card) and writes OUT/gpu-gpt2.json (one JSON object) and a table:

  pipec   OUT/g124/metrics.jsonl: the median step after the first two
  graph   OUT/g124-graph/metrics.jsonl: the same plan with --step-graph,
          the median of the replayed steps (after the first four: the
          first three are traced, the fourth is captured); listed only
          when gpu_gpt2.sh ran it
  profile OUT/g124-profile/kernel_profile.json: the card's ceilings (the
          bf16 GEMM rate of this library's cuBLASLt GEMM at 8192^3,
          measured in the same call) and the top kernels
  llm.c   OUT/llmc.log: the median of its "step ... | N ms |" lines after
          the first two
  jax     OUT/jax.json: bench/jax_gpt2_gpu.py's own summary

Tokens a step are B x T x M. MFU by llm.c's formula, the same for all
three: 6 N + 6 L C T FLOPs a token, N = 124,439,808 (every parameter of
models/gpt2-124m.json: the position embedding included, the vocabulary
unpadded), against 989e12 (H100 SXM's dense bf16 peak; an H200 has the
same compute) and against the GEMM rate measured on the card. A side that
did not run carries its error instead of figures; nothing is asserted
about speed (docs/PERFORMANCE.md).
"""
import argparse
import json
import re
import statistics
import sys
from pathlib import Path

N, L, C = 124439808, 12, 768
PEAK = 989e12


def median_after_warmup(times):
    """The median of the times after the first two (all, if no more)."""
    return statistics.median(times[2:] or times)


def pipec_run(folder, tokens, skip):
    """A pipec run's figures from FOLDER/metrics.jsonl, the median step
    after the first `skip`, or its error."""
    try:
        steps = [json.loads(l) for l in
                 (folder / "metrics.jsonl").read_text().splitlines() if l.strip()]
        times = [s["step_time_s"] for s in steps]
        t = statistics.median(times[skip:] or times)
        return {"step_s": t, "tokens_per_s": tokens / t,
                "first_loss": steps[0]["loss"], "last_loss": steps[-1]["loss"],
                "steps": len(steps)}
    except (OSError, KeyError, ValueError, IndexError, statistics.StatisticsError) as e:
        return {"error": str(e) or type(e).__name__}


def summarize(out, batch, microbatches, seq):
    tokens = batch * seq * microbatches
    per_token = 6 * N + 6 * L * C * seq
    row = {"model": "gpt2-124m", "batch": batch, "seq": seq,
           "microbatches": microbatches}
    row["pipec"] = pipec_run(out / "g124", tokens, 2)
    if (out / "g124-graph").exists() or (out / "g124-graph.log").exists():
        row["graph"] = pipec_run(out / "g124-graph", tokens, 4)
    try:
        prof = json.loads((out / "g124-profile" / "kernel_profile.json").read_text())
        row["pipec_profile"] = {
            "ceilings": prof["ceilings"], "kernel_s_per_step": prof["kernel_s_per_step"],
            "top": [{k: r[k] for k in ("kernel", "calls", "seconds", "floor_s")}
                    for r in prof["kernels"][:12]]}
    except (OSError, KeyError, ValueError):
        pass
    try:
        # "step    N/M | loss ... | 123.45 ms | ..% bf16 MFU | ... tok/s"
        ms = [float(m.group(1)) for m in
              re.finditer(r"^step\s+\d+/\d+ \|.*\| ([0-9.]+) ms \|",
                          (out / "llmc.log").read_text(), re.M)]
        if ms:
            t = median_after_warmup(ms) / 1e3
            row["llmc"] = {"step_s": t, "tokens_per_s": tokens / t, "steps": len(ms)}
    except OSError:
        pass
    try:
        row["jax"] = json.loads((out / "jax.json").read_text())
    except (OSError, ValueError) as e:
        row["jax"] = {"error": str(e)}
    gemm = row.get("pipec_profile", {}).get("ceilings", {}).get("gemm_flops_per_s")
    row["mfu_formula"] = {"flops_per_token": per_token, "N": N, "peak_flops": PEAK,
                          "measured_gemm_flops": gemm}
    rates = {side: row.get(side, {}).get("tokens_per_s")
             for side in ("pipec", "graph", "jax", "llmc")}
    for side, tps in rates.items():
        if tps:
            row[side]["mfu_llmc"] = tps * per_token / PEAK
            if gemm:
                row[side]["mfu_of_measured_gemm"] = tps * per_token / gemm
    if rates["pipec"] and rates["jax"]:
        row["pipec_over_jax"] = rates["pipec"] / rates["jax"]
    if rates["pipec"] and rates["llmc"]:
        row["pipec_over_llmc"] = rates["pipec"] / rates["llmc"]
    if rates["graph"] and rates["pipec"]:
        row["graph_over_pipec"] = rates["graph"] / rates["pipec"]
    if rates["graph"] and rates["jax"]:
        row["graph_over_jax"] = rates["graph"] / rates["jax"]
    return row


def table(row):
    lines = [f"GPT-2 124M, B = {row['batch']}, T = {row['seq']}, M = {row['microbatches']}"
             f" ({row['batch'] * row['seq'] * row['microbatches']} tokens a step)"]
    gemm = row["mfu_formula"]["measured_gemm_flops"]
    lines.append(f"{'':8} {'step ms':>9} {'tokens/s':>11} {'MFU (989T)':>11} "
                 f"{'of GEMM':>8}   (GEMM measured: "
                 f"{f'{gemm / 1e12:.0f} TFLOP/s' if gemm else 'no profile'})")
    for side in ("pipec", "graph", "llmc", "jax"):
        r = row.get(side)
        if r is None:
            continue
        if "tokens_per_s" not in r:
            lines.append(f"{side:8} did not run: {str(r.get('error', r))[:100]}")
            continue
        of = r.get("mfu_of_measured_gemm")
        lines.append(f"{side:8} {r['step_s'] * 1e3:9.1f} {r['tokens_per_s']:11.0f} "
                     f"{100 * r['mfu_llmc']:10.1f}% {f'{100 * of:7.1f}%' if of else '      -'}")
    for key, name in (("pipec_over_jax", "pipec / JAX"), ("pipec_over_llmc", "pipec / llm.c"),
                      ("graph_over_pipec", "graph / pipec"),
                      ("graph_over_jax", "graph / JAX")):
        if key in row:
            lines.append(f"{name}: {row[key]:.3f}x tokens/s")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="the folder bench/gpu_gpt2.sh --run wrote")
    ap.add_argument("--batch", type=int, required=True, help="the micro-batch B")
    ap.add_argument("--microbatches", type=int, required=True, help="micro-batches a step M")
    ap.add_argument("--seq", type=int, default=1024, help="tokens a sequence T (1024)")
    a = ap.parse_args()
    if a.batch < 1 or a.microbatches < 1 or a.seq < 1:
        ap.error("--batch, --microbatches and --seq must be positive")
    if not a.out.is_dir():
        ap.error(f"{a.out}: no such folder")
    row = summarize(a.out, a.batch, a.microbatches, a.seq)
    (a.out / "gpu-gpt2.json").write_text(json.dumps(row) + "\n")
    print(table(row))
    print(json.dumps(row))


if __name__ == "__main__":
    sys.exit(main())
