#!/usr/bin/env python3
"""pipec-sim against measured runs: calibrated on one plan, predicting others.

Compiles and runs each plan of a model (pipec-run --trace-kernels, so every
run is also a calibration), then asks pipec-sim for each plan's step time
from a calibration run's kernel times (and, in the "+ link" column, the
link pipec-sim --link-from fits to the calibration run's trace), and prints
the signed errors against the measured step and the Spearman correlation of
the predicted and measured throughputs (docs/SIMULATION.md keeps the table).
Every plan runs --repeat times, the plans interleaved; each plan's median
run (by its mean warm step) is the one measured and the one calibrated on,
so that one slow spell of a shared machine does not decide a figure.

  python3 bench/sim_validation.py [--model models/gpt-tiny.json]
      [--steps 12] [--repeat 5] [--data FILE] [--bin build/bin] [--keep DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

# (stages, micro-batches, schedule, data-parallel replicas, transport);
# ranks <= the two cores first, then plans whose ranks share them. MPI runs
# (one process a rank) are predicted from the local runs' kernel times;
# pipec-run times kernels on the local transport only.
PLANS = [(2, 4, "1f1b", 1, "local"), (2, 4, "zb-h1", 1, "local"),
         (2, 8, "gpipe", 1, "local"), (2, 8, "1f1b", 1, "local"),
         (2, 8, "zb-h1", 1, "local"), (1, 4, "gpipe", 1, "local"),
         (1, 8, "gpipe", 1, "local"), (1, 4, "gpipe", 2, "local"),
         (2, 4, "1f1b", 1, "mpi"),
         (2, 8, "zb-h1", 1, "mpi")]
SHARED = [(4, 8, "zb-v", 1, "local"), (4, 8, "1f1b", 1, "local"),
          (4, 4, "gpipe", 1, "local"), (2, 4, "1f1b", 2, "local")]
CALIBRATIONS = [(2, 4, "1f1b", 1, "local"), (1, 4, "gpipe", 1, "local")]
# The plan whose run on each transport the "+ link" column fits the link to.
LINK_PLAN = (2, 4, "1f1b", 1)
CORES = 2


def name(p):
    s, m, k, d, t = p
    return (f"S={s} M={m} {k}" + (f" D={d}" if d > 1 else "")
            + (f" ({t})" if t != "local" else ""))


def ranks(p):
    return p[0] * p[3]


def folder(p):
    """One plan folder per compiled plan: the transports share it."""
    s, m, k, d, _ = p
    return f"S{s}_M{m}_{k}_D{d}"


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"sim_validation: {' '.join(cmd)} failed:\n{r.stderr}{r.stdout}")
    return r.stdout


def spearman(xs, ys):
    def ranks_of(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        for pos, i in enumerate(order):
            r[i] = float(pos)
        return r
    rx, ry = ranks_of(xs), ranks_of(ys)
    n = len(xs)
    d2 = sum((a - b) ** 2 for a, b in zip(rx, ry))
    return 1 - 6 * d2 / (n * (n * n - 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--model", default=os.path.join(root, "models/gpt-tiny.json"))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data", default=os.path.join(
        root, "..", "shared", "data", "tinyshakespeare.txt"))
    ap.add_argument("--bin", default=os.path.join(root, "build", "bin"))
    ap.add_argument("--keep", help="keep the plans and logs in this folder")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="sim-validation-")
    os.makedirs(work, exist_ok=True)
    pipec, pipec_run, pipec_sim = (os.path.join(a.bin, b) for b in
                                   ("pipec", "pipec-run", "pipec-sim"))
    env = dict(os.environ)
    env.setdefault("OPENBLAS_CORETYPE", "Haswell")
    folders = {}
    for p in PLANS + SHARED:
        s, m, k, d, _ = p
        out = os.path.join(work, folder(p))
        folders[p] = out
        if os.path.exists(out + "/manifest.json"):
            continue
        print(f"sim_validation: {name(p)}: compile", flush=True)
        run([pipec, "compile", a.model, "--stages", str(s), "--microbatches",
             str(m), "--schedule", k, "--dp", str(d), "-o", out], env=env)
    logs = {p: [] for p in folders}
    for rep in range(a.repeat):
        print(f"sim_validation: run {rep + 1}/{a.repeat} of every plan, "
              f"{a.steps} steps each", flush=True)
        for p, out in folders.items():
            # One thread per rank in every run: S = 1 on one core, so that
            # it can calibrate the others (kernel times hold for their team
            # size).
            cores = 1 if ranks(p) == 1 else CORES
            log = f"{out}/log-{p[4]}{rep}"
            cmd = [pipec_run, out, "--data", a.data, "--steps", str(a.steps),
                   "--cores", str(cores), "--log-dir", log, "--trace-steps",
                   str(a.steps), "--quiet"]
            if p[4] == "mpi":
                cmd += ["--transport", "mpi"]
            else:
                cmd += ["--trace-kernels"]
            run(cmd, env=env)
            # The run's mean warm step, as pipec-sim measures it.
            j = json.loads(run([pipec_sim, out, "--trace",
                                log + "/trace.json", "--json"], env=env))
            logs[p].append((j["measured_step_time_s"], log))
    median = {p: sorted(v)[len(v) // 2][1] for p, v in logs.items()}

    def predict(p, cal, link):
        cmd = [pipec_sim, folders[p], "--calibrate",
               median[cal] + "/kernel_times.json", "--trace",
               median[p] + "/trace.json", "--json"]
        if link:
            cmd += ["--link-from", median[LINK_PLAN + (p[4],)] + "/trace.json"]
        if ranks(p) > CORES:
            cmd += ["--cores", str(CORES)]
        return json.loads(run(cmd, env=env))

    print()
    cols = [(cal, link) for cal in CALIBRATIONS for link in (False, True)]
    head = " | ".join(f"cal. {name(c)}{' + link' if l else ''}"
                      for c, l in cols)
    print(f"| plan | measured step | {head} |")
    print("| --- | ---: |" + " ---: |" * len(cols))
    measured, predicted = {}, {c: {} for c in cols}
    for p in PLANS + SHARED:
        cells = []
        for c in cols:
            j = predict(p, *c)
            measured[p] = j["measured_step_time_s"]
            predicted[c][p] = j["step_time_s"]
            cells.append(f"{100 * j['error']:+.1f}%")
        print(f"| {name(p)} | {1e3 * measured[p]:.1f} ms | "
              + " | ".join(cells) + " |")
    print()
    tokens = {p: p[1] * p[3] for p in PLANS}  # micro-batches per step
    print(f"(+ link: the link pipec-sim --link-from fits to the median run of "
          f"{name(LINK_PLAN + ('local',))} on the plan's transport)")
    for c in cols:
        within = [p for p in PLANS if abs(predicted[c][p] / measured[p] - 1) <= 0.10]
        shared = [p for p in SHARED if abs(predicted[c][p] / measured[p] - 1) <= 0.20]
        rho = spearman([tokens[p] / predicted[c][p] for p in PLANS],
                       [tokens[p] / measured[p] for p in PLANS])
        print(f"calibrated on {name(c[0])}{' + link' if c[1] else ''}: "
              f"{len(within)}/{len(PLANS)} within 10% (ranks <= cores), "
              f"{len(shared)}/{len(SHARED)} within 20% (shared cores), "
              f"throughput ranking Spearman {rho:.2f} over the {len(PLANS)} "
              f"plans of ranks <= cores")
    print(f"(plans and logs in {work})")


if __name__ == "__main__":
    main()
