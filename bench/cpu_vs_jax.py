#!/usr/bin/env python3
"""Benchmark: training tokens/s of pipec's compiled CPU plans against one jitted JAX step on the same CPU.

Trains each model (default models/gpt-tiny.json, dispatch-bound, and models/gpt-512.json, GEMM-bound) from the
same initial parameters on the same batches:
JAX (XLA CPU, float32, the whole step with M micro-batches of gradient accumulation and AdamW in one jit; once
on one device, once data-parallel over one host device per core) and `pipec compile` + `pipec-run` for each
stage count and schedule given. Prints tokens/s (median over steps after
warm-up, then median over repeats), model FLOP/s, the share of a FLOP/s ceiling, pipec/JAX ratios, and where
each pipec rank spends a step (trace.json) with the idle share beside the schedule's modelled bubble. The
ceilings are measured in the same run (tools/pipec-gemm-bench on the model's own GEMM shapes: the multiply-add
peak, OpenBLAS as configured, pipec's GEMM). It measures; it asserts nothing about speed.

    python3 bench/cpu_vs_jax.py [--bin build/bin] [--repeat 3] [--threads 2] [--json results.json]
"""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "test" / "reference")]
import pyenv  # noqa: E402  (test/reference: re-executes with the repository's .venv when there is one)

pyenv.use_repo_venv(__file__)

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import jax_worker  # noqa: E402
import pipec_runs  # noqa: E402
from pipec_runs import BenchError  # noqa: E402


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=",".join(str(REPO / "models" / m) for m in ("gpt-tiny.json", "gpt-512.json")),
                    help="model descriptions (JSON), comma separated; each is benchmarked in turn (default "
                         "models/gpt-tiny.json,models/gpt-512.json)")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "tinyshakespeare.txt"),
                    help="training text or llm.c shard (default ../shared/data/tinyshakespeare.txt)")
    ap.add_argument("--bin", default=str(REPO / "build" / "bin"), help="directory of pipec and pipec-run")
    ap.add_argument("--microbatches", type=int, default=8, help="M, micro-batches per step (default 8)")
    ap.add_argument("--configs", default="1:gpipe,2:1f1b,2:zb-h1,2:zb-v,4:zb-v",
                    help="pipec plans as STAGES:SCHEDULE[:CORES],... (default 1:gpipe,2:1f1b,2:zb-h1,2:zb-v,4:zb-v); "
                         "CORES overrides pipec-run --cores for that plan (default --threads)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="cores for both sides (default: all this process may use): the process is pinned to "
                         "that many CPUs, XLA's Eigen pool and pipec-run --cores get the same number")
    ap.add_argument("--steps", type=int, default=10, help="timed pipec steps per run (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="pipec steps before the timed ones (default 2)")
    ap.add_argument("--jax-steps", type=int, default=20, help="timed JAX steps per run (default 20)")
    ap.add_argument("--jax-warmup", type=int, default=3, help="JAX steps after compilation, untimed (default 3)")
    ap.add_argument("--jax-dp", type=int,
                    help="also time JAX data-parallel over this many host devices (M/D micro-batches each, "
                         "gradients psum'd), in a process of its own; default: --threads when above 1; 0: no")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of every side, interleaved; the table gives the median run (default 3)")
    ap.add_argument("--peak-gflops", type=float,
                    help="FLOP/s ceiling for the share column, GFLOP/s (default: pipec's own GEMM on the model's "
                         "shapes with --threads threads, measured by pipec-gemm-bench in the same run)")
    ap.add_argument("--work", help="keep plans and logs in this directory (default: a temporary one)")
    ap.add_argument("--json", metavar="FILE", help="also write every measurement as JSON (one file per model, "
                                                   "FILE-MODEL.json, when there are several)")
    args = ap.parse_args(argv)
    for name in ("microbatches", "threads", "steps", "jax_steps", "repeat"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.jax_warmup < 0:
        ap.error("--warmup and --jax-warmup must not be negative")
    if args.jax_dp is None:
        args.jax_dp = args.threads if args.threads > 1 and args.microbatches % args.threads == 0 else 0
    if args.jax_dp == 1 or args.jax_dp < 0 or (args.jax_dp and args.microbatches % args.jax_dp):
        ap.error(f"--jax-dp {args.jax_dp}: 0, or a device count above 1 that divides M = {args.microbatches}")
    args.plans = []
    for item in args.configs.split(","):
        parts = item.split(":")
        if len(parts) not in (2, 3) or not all(p.isdigit() and int(p) > 0 for p in parts[::2]) or not parts[1]:
            ap.error(f"--configs: '{item}' is not STAGES:SCHEDULE[:CORES] (e.g. 2:1f1b or 1:gpipe:1)")
        cores = int(parts[2]) if len(parts) == 3 else None
        if cores is not None and cores > args.threads:
            ap.error(f"--configs: '{item}' asks for {cores} cores, more than --threads {args.threads}")
        args.plans.append((int(parts[0]), parts[1], cores))
    return args


def plan_key(stages: int, kind: str, cores) -> str:
    return f"S={stages} {kind}" + (f" c{cores}" if cores else "")


def set_threads(n: int) -> str:
    """Pins this process (and so pipec-run, its child) to n CPUs and sizes XLA's CPU thread pool; must run
    before jax is imported. Returns what was set, for the report."""
    cpus = sorted(os.sched_getaffinity(0))
    if n > len(cpus):
        raise BenchError(f"--threads {n}: this process may use only {len(cpus)} CPUs ({cpus})")
    os.sched_setaffinity(0, cpus[:n])
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + jax_worker.xla_flags(n)).strip()
    os.environ["JAX_PLATFORMS"] = "cpu"
    return (f"pinned to CPUs {cpus[:n]}; JAX: XLA_FLAGS='{os.environ['XLA_FLAGS']}'; pipec: pipec-run --cores {n} "
            f"(each rank's OpenMP team is {n}/ranks threads, at least 1; OpenBLAS 1 thread, fixed by the runtime)")


def median_range(values):
    return statistics.median(values), min(values), max(values)


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def main(argv) -> int:
    args = parse_args(argv)
    models, user_peak, user_json = args.model.split(","), args.peak_gflops, args.json
    status = 0
    for path in models:
        args.peak_gflops = user_peak
        if user_json and len(models) > 1:  # one file per model: NAME-MODEL.json
            stem, dot, ext = user_json.rpartition(".")
            args.json = f"{stem or ext}-{Path(path).stem}{dot + ext if stem else ''}"
        status |= bench_model(args, path)
        print(flush=True)
    return status


def measure_ceilings(args, model) -> dict:
    """pipec-gemm-bench on the model's GEMM shapes (rows = batch x seq, width d_model): the one-core
    multiply-add peak, and the mean GFLOP/s of OpenBLAS and of pipec's GEMM with --threads threads."""
    tool = Path(args.bin) / "pipec-gemm-bench"
    d_model = model.config.get("d_model")
    if not d_model or not tool.is_file():
        return {}
    out = pipec_runs.run([str(tool), "--threads", str(args.threads), "--d-model", str(d_model), "--tokens",
                          str(model.batch * model.seq)], "pipec-gemm-bench")
    got = {}
    for line in out.splitlines():
        if line.startswith("multiply-add peak, one core:"):
            got["fma_peak_core"] = float(line.split(":")[1].split()[0])
        elif line.startswith("mean (GFLOP/s)"):
            nums = line.split()
            # mean (GFLOP/s)  pipec1 blas1 ratio  pipecN blasN ratio
            got["pipec_gemm"], got["blas_gemm"] = float(nums[5]), float(nums[6].rstrip("x"))
    return got


def bench_model(args, model_path: str) -> int:
    args.model = model_path
    pipec, pipec_run = Path(args.bin) / "pipec", Path(args.bin) / "pipec-run"
    for tool in (pipec, pipec_run):
        if not (tool.is_file() and os.access(tool, os.X_OK)):
            raise BenchError(f"{tool} not found: build it (ninja -C build pipec pipec-run) or pass --bin DIR")
    if not os.path.exists(args.data):
        raise BenchError(f"training data not found: '{args.data}' (pass --data FILE)")
    threads_note = set_threads(args.threads)
    pyenv.require_modules()
    import jax  # after set_threads: XLA reads XLA_FLAGS once, when its CPU client starts

    import data
    import jax_step
    import model_json
    from train import learning_rate

    devices = jax.devices()
    if any(d.platform != "cpu" for d in devices):
        raise BenchError(f"JAX runs on {devices}, not the CPU: this benchmark compares CPU against CPU")
    try:
        model = model_json.load_model(args.model)
    except model_json.ModelError as e:
        raise BenchError(str(e)) from None
    M = args.microbatches
    batches = data.Batches(data.load_tokens(args.data), model.batch, model.seq, M)
    tokens_per_step = M * model.batch * model.seq
    flops = pipec_runs.model_flops(pipec, args.model)
    cfg = model.config
    n_layer, d_model = cfg.get("n_layer"), cfg.get("d_model")
    kaplan = (6 * flops["parameters"] + 12 * n_layer * model.seq * d_model) if n_layer and d_model else None
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True)
    source = (rev.stdout.strip() or "?") + (" + uncommitted changes" if dirty.stdout.strip() else "")
    built = datetime.datetime.fromtimestamp(pipec.stat().st_mtime, datetime.timezone.utc)

    print(f"bench: {model.name} ({args.model}): B x T = {model.batch} x {model.seq}, M = {M} micro-batches, "
          f"{tokens_per_step} tokens per step; {flops['parameters']:,} parameters")
    print(f"bench: {cpu_name()}, {os.cpu_count()} CPUs; JAX {jax.__version__} on {devices}; "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"bench: pipec from {args.bin} (built {built:%Y-%m-%d %H:%M} UTC; the checkout is at {source}: the "
          "plans are what that binary emits, whatever the checkout holds)")
    print(f"bench: threads: {threads_note}")
    if args.jax_dp:
        dp_flags = jax_worker.xla_flags(args.threads, args.jax_dp)
        print(f"bench: JAX data-parallel: bench/jax_worker.py, XLA_FLAGS='{dp_flags}'")
    print(f"bench: FLOPs per token: {flops['train']:,} (pipec stats: forward {flops['forward']:,} x 3; causal "
          "attention counts the kept half)" + (f"; 6N + 12*L*T*d would give {kaplan:,}" if kaplan else ""))
    ceilings = measure_ceilings(args, model)
    if ceilings:
        print(f"bench: ceilings measured now (pipec-gemm-bench on this model's GEMM shapes, {args.threads} "
              f"thread(s)): multiply-add peak {ceilings['fma_peak_core']:.1f} GFLOP/s per core "
              f"({ceilings['fma_peak_core'] * args.threads:.1f} on {args.threads}), OpenBLAS "
              f"{ceilings['blas_gemm']:.1f}, pipec's GEMM {ceilings['pipec_gemm']:.1f} GFLOP/s "
              f"(OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')})")
    if args.peak_gflops is None:
        args.peak_gflops = ceilings.get("pipec_gemm", 0) or 200.0

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="pipec-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    plans = {}
    for stages, kind, _ in args.plans:
        if (stages, kind) in plans:
            continue
        out = work / f"plan-s{stages}-{kind}"
        secs = pipec_runs.compile_plan(pipec, args.model, stages, M, kind, out)
        plans[(stages, kind)] = out
        print(f"bench: pipec compile --stages {stages} --schedule {kind} --microbatches {M}: {secs:.1f} s", flush=True)

    lr_of = lambda s: learning_rate(model.train, s)  # noqa: E731
    dp_key = f"jax dp{args.jax_dp}"
    results = {"jax": [], **({dp_key: []} if args.jax_dp else {}), **{plan_key(*p): [] for p in args.plans}}
    losses, phases, loads = {}, {}, []
    for rep in range(args.repeat):
        loads.append(os.getloadavg()[0])
        j = jax_step.time_jax(model, batches, args.jax_steps, args.jax_warmup, lr_of)
        if rep == 0:
            print(f"bench: JAX compilation {j['compile_s']:.1f} s (not timed)")
        med = statistics.median(j["step_s"])
        results["jax"].append(tokens_per_step / med)
        losses["jax"] = j["losses"]
        line = [f"run {rep + 1}/{args.repeat} (load {loads[-1]:.2f}): JAX {tokens_per_step / med:,.0f}"]
        if args.jax_dp:
            d = run_jax_dp(args)
            results[dp_key].append(tokens_per_step / statistics.median(d["step_s"]))
            losses[dp_key] = d["losses"]
            line.append(f"JAX dp{args.jax_dp} {results[dp_key][-1]:,.0f}")
        for stages, kind, cores in args.plans:
            key = plan_key(stages, kind, cores)
            log = work / f"log-s{stages}-{kind}-c{cores or args.threads}-{rep}"
            recs = pipec_runs.train_plan(pipec_run, plans[(stages, kind)], args.data, args.warmup + args.steps,
                                         cores or args.threads, log)
            tps = statistics.median(r["tokens_per_s"] for r in recs[args.warmup:])
            results[key].append(tps)
            losses[key] = [r["loss"] for r in recs]
            phases[key] = pipec_runs.trace_phases(log / "trace.json", recs)
            phases[key]["modelled_bubble"] = json.loads(
                (plans[(stages, kind)] / "manifest.json").read_text())["schedule"].get("bubble", -1)
            line.append(f"{key} {tps:,.0f}")
        loads.append(os.getloadavg()[0])
        print("bench: " + ", ".join(line) + " tokens/s", flush=True)

    print_table(args, results, flops, kaplan, tokens_per_step, loads)
    print_losses(losses)
    print_phases(phases, flops, tokens_per_step, M)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "model": args.model, "tokens_per_step": tokens_per_step, "microbatches": M, "threads": args.threads,
            "threads_note": threads_note, "flops_per_token": flops["train"], "flops_6n": kaplan,
            "peak_gflops": args.peak_gflops, "ceilings_gflops": ceilings, "jax_dp": args.jax_dp, "tokens_per_s": results, "load_avg_1min": loads,
            "phases_ms_per_step": {k: {**v, "ranks": {str(r): p for r, p in v["ranks"].items()}}
                                   for k, v in phases.items()},
            "cpu": cpu_name(), "checkout": source, "pipec_built": f"{built:%Y-%m-%d %H:%M}",
            "jax": jax.__version__}, indent=1) + "\n")
        print(f"bench: wrote {args.json}")
    if not args.work:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run_jax_dp(args) -> dict:
    """bench/jax_worker.py --devices D: JAX data-parallel over D host devices, which needs XLA flags that
    would slow the single-device program if they were set in this process."""
    cmd = [sys.executable, str(BENCH / "jax_worker.py"), "--model", args.model, "--data", args.data,
           "--microbatches", str(args.microbatches), "--steps", str(args.jax_steps), "--warmup",
           str(args.jax_warmup), "--devices", str(args.jax_dp), "--threads", str(args.threads)]
    env = dict(os.environ, XLA_FLAGS="")  # the worker sets its own
    out = pipec_runs.run(cmd, "JAX data-parallel worker", env=env)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        raise BenchError(f"JAX data-parallel worker: unexpected output ({e}): {out[-300:]}") from None


def print_table(args, results, flops, kaplan, tokens_per_step, loads):
    jax_tps = statistics.median(results["jax"])
    best = max(statistics.median(v) for k, v in results.items() if k.startswith("jax"))
    print(f"\ntokens/s: median over steps after warm-up, then the median of {args.repeat} run(s) [min-max of the "
          f"runs]; load average (1 min) {min(loads):.2f}-{max(loads):.2f} during the runs; noisy on a shared machine")
    print(f"GFLOP/s = tokens/s x {flops['train']:,} FLOPs per token (pipec stats); ceiling {args.peak_gflops:.1f} "
          "GFLOP/s (pipec's GEMM on these shapes, measured above, unless --peak-gflops)")
    head = f"{'run':<25} {'tokens/s':>9} {'[min-max]':>15} {'ms/step':>8} {'GFLOP/s':>8} {'of ceiling':>10} " \
           f"{'/JAX':>6} {'/best JAX':>9}"
    print(head)
    print("-" * len(head))
    for key, runs in results.items():
        tps, lo, hi = median_range(runs)
        gflops = tps * flops["train"] / 1e9
        name = {"jax": "JAX jit (XLA CPU)", f"jax dp{args.jax_dp}": f"JAX jit, {args.jax_dp} devices (DP)"}.get(
            key, f"pipec {key}")
        print(f"{name:<25} {tps:>9,.0f} {f'[{lo:,.0f}-{hi:,.0f}]':>15} {tokens_per_step / tps * 1e3:>8.1f} "
              f"{gflops:>8.2f} {100 * gflops / args.peak_gflops:>9.1f}% {tps / jax_tps:>6.2f} {tps / best:>9.2f}")
    print("(/JAX: against the single-device JAX step; /best JAX: against the faster of the JAX rows)")
    if kaplan:
        print(f"(with 6N + 12*L*T*d = {kaplan:,} FLOPs per token instead, every GFLOP/s is x "
              f"{kaplan / flops['train']:.3f})")


def print_losses(losses):
    """Same model, same data, same start: the losses of the steps both ran should agree to float32 rounding."""
    ref = losses["jax"]
    parts = []
    for key, ls in losses.items():
        if key != "jax":
            n = min(len(ls), len(ref))
            parts.append(f"{key} {max(rel(ls[s], ref[s]) for s in range(n)):.1e} over {n} steps")
    print("\nsame model check: largest relative loss difference from JAX: " + ", ".join(parts))


def print_phases(phases, flops, tokens_per_step, M):
    """Per rank, ms per step in each phase (trace.json, steps after 0 of the traced ones), and model GFLOP/s of
    F and of B+W over the time summed over ranks (how fast the kernels are, whatever the pipeline does)."""
    print("\nwhere a pipec step goes (trace.json, last run; ms per step per rank; wait = blocked on a message, "
          "post = posting sends/recvs; bubble = the schedule's modelled idle share, beside the measured idle)")
    cols = pipec_runs.PHASES
    head = f"{'plan':<17} {'rank':>4} " + " ".join(f"{c:>7}" for c in cols) + f" {'idle':>6} {'step':>7}" \
        + f" {'bubble':>7}"
    print(head)
    print("-" * len(head))
    for key, ph in phases.items():
        f_total = bw_total = 0.0
        for rank, per in ph["ranks"].items():
            busy = per["F"] + per["B"] + per["W"] + per["OPT"]
            idle = 1 - busy / ph["wall_ms"] if ph["wall_ms"] > 0 else float("nan")
            f_total += per["F"]
            bw_total += per["B"] + per["W"]
            print(f"{key:<17} {rank:>4} " + " ".join(f"{per[c]:>7.1f}" for c in cols)
                  + f" {idle:>6.2f} {ph['wall_ms']:>7.1f} {ph.get('modelled_bubble', -1):>7.2f}")
        fwd = flops["forward"] * tokens_per_step
        if f_total > 0 and bw_total > 0:
            print(f"{'':<17} kernels: F {fwd / (f_total * 1e6):.2f} GFLOP/s, "
                  f"B+W {2 * fwd / (bw_total * 1e6):.2f} GFLOP/s (model FLOPs over the time summed over ranks)")


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (BenchError, OSError, ValueError) as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(2)
