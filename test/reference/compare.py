#!/usr/bin/env python3
"""Compares `pipec reference-train` with two JAX references (the model JSON interpreted, and a hand-written
GPT-2/Llama loading Hugging Face names) from the same initial parameters on the same batches.

Exit status: 0 within tolerance, 1 above tolerance, 2 when the comparison could not run."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pyenv  # noqa: E402

pyenv.use_repo_venv(__file__)
pyenv.require_modules()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

# Tolerances of the issue: float32 loss and gradients 1e-5 normwise, float64 1e-10; loss curves 1e-4 relative
# (float64 curves are held to 1e-8: two float64 implementations agree to ~1e-14 after 20 steps).
TOL = {
    "f32": {"loss": 1e-5, "grad": 1e-5, "grad_norm": 1e-5, "lr": 1e-6, "curve": 1e-4},
    "f64": {"loss": 1e-10, "grad": 1e-10, "grad_norm": 1e-10, "lr": 1e-12, "curve": 1e-8},
}


class CompareError(Exception):
    """The comparison cannot run (missing binary, failed run, bad output); exit status 2."""


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] + " ...")
    ap.add_argument("--model", required=True, help="model description (JSON), e.g. models/gpt-tiny.json")
    ap.add_argument("--steps", type=int, default=20, help="AdamW steps of the loss-curve run (default 20)")
    ap.add_argument("--microbatches", type=int, default=2, help="micro-batches per step (default 2)")
    ap.add_argument("--f64", action="store_true", help="float64 on both sides (jax x64)")
    ap.add_argument("--pipec", default=str(pyenv.REPO / "build" / "bin" / "pipec"),
                    help="the pipec binary (default build/bin/pipec)")
    ap.add_argument("--data", default=str(pyenv.REPO.parent / "shared" / "data" / "tinyshakespeare.txt"),
                    help="training text (default ../shared/data/tinyshakespeare.txt from the repository root)")
    ap.add_argument("--perturb-vjp", metavar="OP",
                    help="passes --debug-perturb-vjp=OP to pipec (its B gradient times 1+1e-3): must then FAIL; "
                         "with --compiled to `pipec compile` only (the plan's curves must then FAIL)")
    ap.add_argument("--keep", metavar="DIR", help="keep pipec's inputs and outputs in DIR")
    ap.add_argument("--compiled", action="store_true",
                    help="take the loss curve from a compiled plan (`pipec compile` + `pipec-run`) instead of "
                         "reference-train; the step-0 gradients still come from reference-train --dump-grads")
    ap.add_argument("--stages", type=int, default=1, help="with --compiled: pipeline ranks (default 1)")
    ap.add_argument("--schedule", default="gpipe", help="with --compiled: schedule kind (default gpipe)")
    ap.add_argument("--pipec-run", help="with --compiled: the pipec-run binary (default: next to --pipec)")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.microbatches < 1:
        ap.error("--steps and --microbatches must be at least 1")
    if args.compiled and args.f64:
        ap.error("--compiled: the cpu target is f32 only")
    if args.compiled and not args.pipec_run:
        args.pipec_run = str(Path(args.pipec).parent / "pipec-run")
    return args


def check_pipec(pipec: str):
    """Fails clearly when the binary or its reference-train subcommand is missing."""
    if not (os.path.isfile(pipec) and os.access(pipec, os.X_OK)):
        raise CompareError(f"pipec not found at '{pipec}': build it (ninja -C build pipec) or pass --pipec PATH")
    try:
        r = subprocess.run([pipec], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CompareError(f"cannot run '{pipec}': {e}") from None
    if "reference-train" not in r.stdout + r.stderr:
        raise CompareError(f"'{pipec}' has no 'reference-train' subcommand (its subcommands: "
                           f"{' '.join(l.split()[0] for l in r.stderr.splitlines()[1:] if l.strip()) or 'none'}); "
                           "the comparison needs `pipec reference-train`")


def run_pipec(args, init_path, steps, log_dir, dump_grads=None):
    cmd = [args.pipec, "reference-train", args.model, "--data", args.data, "--steps", str(steps),
           "--microbatches", str(args.microbatches), "--init", str(init_path), "--log-dir", str(log_dir)]
    if args.f64:
        cmd.append("--f64")
    if dump_grads:
        cmd += ["--dump-grads", str(dump_grads)]
    if args.perturb_vjp and not args.compiled:
        cmd.append(f"--debug-perturb-vjp={args.perturb_vjp}")
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except OSError as e:
        raise CompareError(f"cannot run pipec: {e}") from None
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-20:])
        raise CompareError(f"pipec reference-train exited with status {r.returncode}:\n{tail}")
    print(f"  ({time.time() - t0:.1f} s)", flush=True)
    return read_metrics(Path(log_dir) / "metrics.jsonl", steps)


def run_compiled(args, init_path, steps, work: Path):
    """The loss curve of a compiled plan: `pipec compile` at --stages/--schedule, then `pipec-run --init`."""
    plan = work / f"plan-s{args.stages}-{args.schedule}"
    log_dir = work / "log-compiled"
    cmds = [[args.pipec, "compile", args.model, "--stages", str(args.stages), "--microbatches",
             str(args.microbatches), "--schedule", args.schedule, "--target", "cpu", "-o", str(plan)]
            + ([f"--debug-perturb-vjp={args.perturb_vjp}"] if args.perturb_vjp else []),
            [args.pipec_run, str(plan), "--data", args.data, "--steps", str(steps), "--init", str(init_path),
             "--log-dir", str(log_dir), "--quiet"]]
    for cmd in cmds:
        print("$ " + " ".join(cmd), flush=True)
        t0 = time.time()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        except OSError as e:
            raise CompareError(f"cannot run {cmd[0]}: {e}") from None
        if r.returncode != 0:
            tail = "\n".join((r.stdout + r.stderr).splitlines()[-20:])
            raise CompareError(f"{' '.join(cmd[:2])} exited with status {r.returncode}:\n{tail}")
        print(f"  ({time.time() - t0:.1f} s)", flush=True)
    return read_metrics(log_dir / "metrics.jsonl", steps)


def read_metrics(path: Path, steps: int):
    """The per-step records of metrics.jsonl, in step order; each needs step, loss, lr and grad_norm."""
    if not path.exists():
        raise CompareError(f"pipec wrote no {path}")
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise CompareError(f"{path}:{n}: not JSON: {e.msg}") from None
        if not isinstance(rec, dict):
            raise CompareError(f"{path}:{n}: not a JSON object")
        if "loss" not in rec:  # other records (a header, a summary) may share the file
            continue
        for key in ("step", "loss", "lr", "grad_norm"):
            if key not in rec:
                raise CompareError(f"{path}:{n}: record has no '{key}'")
        records.append(rec)
    records.sort(key=lambda r: r["step"])
    if len(records) != steps:
        raise CompareError(f"{path}: {len(records)} step records, expected {steps}")
    return records


def main(argv):
    args = parse_args(argv)
    import jax
    if args.f64:
        jax.config.update("jax_enable_x64", True)
    import numpy as np

    import data
    import handwritten
    import init
    import model_json
    import safetensors
    from report import Report, relative
    from train import Trainer, global_norm, learning_rate

    precision = "f64" if args.f64 else "f32"
    tol = TOL[precision]
    dtype = np.float64 if args.f64 else np.float32
    model = model_json.load_model(args.model)
    references = [("model_json", model.loss_fn())]
    try:
        fam, hw_loss, note = handwritten.loss_fn_for(model)
        references.append((f"{fam}.py", hw_loss))
        if note:
            print("note: " + note)
    except ValueError as e:
        print(f"note: {e}; comparing with model_json.py only")
    check_pipec(args.pipec)
    if args.compiled and not (os.path.isfile(args.pipec_run) and os.access(args.pipec_run, os.X_OK)):
        raise CompareError(f"pipec-run not found at '{args.pipec_run}': build it or pass --pipec-run PATH")
    if not os.path.exists(args.data):
        raise CompareError(f"training data not found: '{args.data}' (pass --data FILE)")
    tokens = data.load_tokens(args.data)
    batches = data.Batches(tokens, model.batch, model.seq, args.microbatches)
    params0 = init.init_params(model, dtype)
    print(f"compare: {args.model} ({model.name}), {precision}, {len(params0)} parameters, "
          f"{sum(p.size for p in params0.values())} elements, {args.microbatches} micro-batches of "
          f"{model.batch}x{model.seq}, {args.steps} steps; JAX {jax.__version__} on {sys.executable}", flush=True)
    if args.compiled:
        print(f"compare: loss curve from the compiled plan (--stages {args.stages} --schedule {args.schedule})")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pipec-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    init_path = work / "init.safetensors"
    safetensors.save(init_path, params0)
    grads_path = work / "grads.safetensors"
    one = run_pipec(args, init_path, 1, work / "log-1", dump_grads=grads_path)
    if args.compiled:
        curve = run_compiled(args, init_path, args.steps, work)
    else:
        curve = run_pipec(args, init_path, args.steps, work / "log-n")
    if not grads_path.exists():
        raise CompareError(f"pipec wrote no gradients to {grads_path} (--dump-grads)")
    pipec_grads = safetensors.load(grads_path)

    rep = Report()
    jax_steps = {}
    for label, loss_fn in list(references):
        t0 = time.time()
        trainer = Trainer(loss_fn, params0, model.train, batches, dtype)
        try:
            loss, grads = trainer.gradients(0)
        except (TypeError, ValueError) as e:  # what JAX raises for operands of shapes the model does not take
            if label == "model_json":
                raise
            # The hand-written model does not fit this parameter set (shapes its conventions do not have).
            print(f"note: {label} cannot run this model's parameters ({type(e).__name__}: "
                  f"{str(e).splitlines()[0] if str(e) else ''}); comparing with model_json.py only")
            references.remove((label, loss_fn))
            continue
        jax_steps[label] = (loss, grads)
        rep.add("loss (step 0)", label, relative(one[0]["loss"], loss), tol["loss"])
        rep.add_gradients(label, pipec_grads, grads, tol["grad"])
        rep.add("grad_norm (step 0)", label, relative(one[0]["grad_norm"], global_norm(grads, trainer.order)),
                tol["grad_norm"])
        run = Trainer(loss_fn, params0, model.train, batches, dtype).run(args.steps)
        rep.add_series(f"loss curve ({args.steps} steps)", label, [r["loss"] for r in curve],
                       [r["loss"] for r in run], tol["curve"])
        rep.add_series(f"lr ({args.steps} steps)", label, [r["lr"] for r in curve],
                       [learning_rate(model.train, s) for s in range(args.steps)], tol["lr"])
        rep.add_series(f"grad_norm curve ({args.steps} steps)", label, [r["grad_norm"] for r in curve],
                       [r["grad_norm"] for r in run], tol["curve"])
        print(f"  JAX {label}: {time.time() - t0:.1f} s", flush=True)
    if len(jax_steps) == 2:
        (l1, g1), (l2, g2) = jax_steps.values()
        rep.add("loss (step 0), JAX vs JAX", "both", relative(l1, l2), tol["loss"])
        rep.add_gradients("both", g1, g2, tol["grad"])
    print()
    rep.print()
    if args.perturb_vjp:
        print(f"(pipec ran with --debug-perturb-vjp={args.perturb_vjp}: this comparison is expected to FAIL)")
    print("\ncompare: " + ("PASS" if rep.ok else "FAIL: errors above tolerance"))
    if not args.keep:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return 0 if rep.ok else 1


def _fail(message: str) -> int:
    print(f"compare: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    import model_json
    import safetensors
    try:
        sys.exit(main(sys.argv[1:]))
    except (CompareError, model_json.ModelError, safetensors.SafetensorsError, ValueError, OSError) as e:
        # Each of these names its file and place; a traceback would add nothing.
        sys.exit(_fail(str(e)))
    except Exception as e:  # noqa: BLE001: anything else is a comparison that could not run, not a FAIL
        import traceback
        traceback.print_exc()
        sys.exit(_fail(f"could not run: {type(e).__name__}: {e}"))
