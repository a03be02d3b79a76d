#!/usr/bin/env python3
"""pipec-sim --cluster against published training throughputs.

The Zero Bubble paper (Qi, Wan, Huang, Lin, ICLR 2024, Tables 3 and 4)
measured pipeline-only training of four GPT models on up to 32 A100 80GB
(8 a node, RoCE between nodes) under 1F1B, interleaved 1F1B and ZB-1p, in
samples per GPU per second. This script compiles pipec's plan of each
configuration for the cuda target (`pipec compile --target cuda
--emit-only`: the same models in GPT-2's architecture, the same stages,
micro-batch size and counts; ZB-1p as pipec's zb-h1, which the paper's
Table 5 gives the same bubble; 1F1B-I as interleaved-1f1b with two chunks
a rank, where the paper put one layer in each chunk), prices each on
clusters/a100-roce.json with pipec-sim, and calibrates the one number the
cluster file cannot know, the share of the A100's peak its GEMMs reach
(attention in the same proportion), on half of the models; then prints
the signed error of every configuration, the held-out half separately, and
the predicted against the published speed-up of each schedule over 1F1B,
which no calibration touches. Then, at that scale, the tensor-parallel
points of Megatron-LM (Narayanan et al. 2021, Table 1) through pipec-sim's
model of tensor parallelism (--tp), all held out and outside the pass
criteria. Last, Hopper: Llama 3 405B on 8,192 and 16,384 H100 (the Llama 3
paper, Table 4) on clusters/h100-ib.json, at its priors, then with its
GEMM and attention efficiencies calibrated on the 8,192-GPU point and the
16,384-GPU point held out (also a model: --tp; outside the pass criteria).

  python3 bench/sim_published.py [--bin build/bin] [--calibrate 1.5b,14.6b]
      [--keep DIR] [--json FILE]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Table 3: layers, hidden, heads, pipeline stages (GPUs), micro-batch size.
MODELS = {
    "1.5b": (22, 2304, 24, 8, 6),
    "6.2b": (30, 4096, 32, 8, 3),
    "14.6b": (46, 5120, 40, 16, 1),
    "28.3b": (62, 6144, 48, 32, 1),
}
# Table 4: samples per GPU per second, per micro-batch count:
# (ZB-1p, 1F1B, 1F1B-I).
PUBLISHED = {
    "1.5b": {24: (12.9, 11.8, 13.1), 32: (13.4, 12.5, 13.4),
             64: (14.2, 13.6, 13.9)},
    "6.2b": {24: (3.88, 3.50, 4.01), 32: (4.00, 3.70, 4.08),
             64: (4.20, 4.03, 4.19)},
    "14.6b": {48: (1.61, 1.40, 1.54), 64: (1.67, 1.49, 1.59),
              128: (1.76, 1.64, 1.66)},
    "28.3b": {96: (0.87, 0.76, 0.82), 128: (0.90, 0.80, 0.85),
              256: (0.96, 0.88, 0.90)},
}
SCHEDULES = [("zb-h1", "ZB-1p"), ("1f1b", "1F1B"),
             ("interleaved-1f1b", "1F1B-I")]

# Tensor-parallel points (a model of tensor parallelism: pipec-sim --tp),
# on the same A100 cluster at the efficiency scale the Zero Bubble points
# set, so every one is held out. Narayanan et al. 2021, Table 1 (Selene,
# A100 80GB, eight 200G HDR NICs a node; vocabulary 51,200, sequence
# 2,048, full activation recomputation, interleaved schedule): layers,
# hidden, heads, TP, PP, GPUs, global batch, TFLOP/s per GPU counted as
# 96 B s l h^2 (1 + s / 6h + V / 16 l h) per step. Micro-batch 1 assumed
# (not in the table).
MEGATRON = [
    ("1.7B", 24, 2304, 24, 1, 1, 32, 512, 137),
    ("3.6B", 30, 3072, 32, 2, 1, 64, 512, 138),
    ("7.5B", 36, 4096, 32, 4, 1, 128, 512, 142),
    ("18.4B", 40, 6144, 48, 8, 1, 256, 1024, 135),
    ("39.1B", 48, 8192, 64, 8, 2, 512, 1536, 138),
    ("76.1B", 60, 10240, 80, 8, 4, 1024, 1792, 140),
    ("145.6B", 80, 12288, 96, 8, 8, 1536, 2304, 148),
    ("310.1B", 96, 16384, 128, 8, 16, 1920, 2160, 155),
    ("529.6B", 105, 20480, 128, 8, 35, 2520, 2520, 163),
    ("1008B", 128, 25600, 160, 8, 64, 3072, 3072, 163),
]
# Korthikanti et al. 2022, Tables 3 and 5 (the same cluster; sequence
# parallelism and selective recomputation, "present work"; no data
# parallelism): layers, hidden, heads, TP, PP, GPUs, global batch,
# micro-batch, seconds an iteration.
KORTHIKANTI = [
    ("22B", 48, 6144, 64, 8, 1, 8, 4, 4, 1.10),
    ("175B", 96, 12288, 96, 8, 8, 64, 64, 1, 13.75),
    ("530B", 105, 20480, 128, 8, 35, 280, 280, 1, 37.83),
    ("1T", 128, 25600, 160, 8, 64, 512, 512, 1, 71.49),
]


# Llama Team, "The Llama 3 Herd of Models" (2024), Table 4: Llama 3 405B
# (126 layers, hidden 16,384, 128 heads, 8 KV heads, FFN 53,248,
# vocabulary 128,256) on H100 80GB, TP 8, CP 1, PP 16, sequence 8,192,
# 16M tokens a step: GPUs, DP, micro-batches (of one sequence) a replica,
# TFLOP/s a GPU. The paper's schedule is interleaved with its own
# micro-batch tuning; pipec's plan is interleaved-1f1b with two chunks a
# rank and full recomputation (what fits a stage without ZeRO-1).
LLAMA3 = [(8192, 64, 32, 430), (16384, 128, 16, 400)]


def llama_file(out_dir):
    """Llama 3 405B's shape in models/llama-tiny.json's architecture."""
    with open(os.path.join(ROOT, "models", "llama-tiny.json")) as f:
        m = json.load(f)
    m["name"] = "llama3_405b"
    m["description"] = ("Llama 3 405B's shape: 126 layers, hidden 16384, "
                        "128 heads, 8 KV heads, FFN 53248, vocabulary "
                        "128256, sequence 8192, micro-batch 1.")
    m["config"].update({"batch": 1, "seq": 8192, "vocab": 128256,
                        "n_layer": 126, "n_head": 128, "n_kv_head": 8,
                        "d_model": 16384, "d_kv": 1024, "d_ff": 53248})
    path = os.path.join(out_dir, "llama3-405b.json")
    with open(path, "w") as f:
        json.dump(m, f)
    return path


def gpt_file(name, layers, hidden, heads, mbs, seq, vocab, out_dir):
    """A GPT-2-architecture model of the given shape."""
    with open(os.path.join(ROOT, "models", "gpt2-124m.json")) as f:
        m = json.load(f)
    m["name"] = "m_" + name.replace(".", "_")
    m["description"] = (f"{name}: {layers} layers, hidden {hidden}, {heads} "
                        f"heads, sequence {seq}, vocabulary {vocab}, "
                        f"micro-batch {mbs}; GPT-2's architecture.")
    m["config"].update({"batch": mbs, "seq": seq, "n_ctx": seq,
                        "vocab": vocab, "n_layer": layers, "n_head": heads,
                        "d_model": hidden, "d_qkv": 3 * hidden,
                        "d_ff": 4 * hidden})
    for op in m["graph"]:
        for inner in op.get("ops", []):
            if inner.get("output") == "v":
                inner["offset"] = 2 * hidden
    path = os.path.join(out_dir, f"{name}.json")
    with open(path, "w") as f:
        json.dump(m, f)
    return path


def model_file(name, out_dir):
    """The Zero Bubble paper's model in GPT-2's architecture."""
    layers, hidden, heads, _, mbs = MODELS[name]
    return gpt_file("zb-" + name, layers, hidden, heads, mbs, 1024, 50257,
                    out_dir)


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stdout}{p.stderr}")
    return p.stdout


def scaled_cluster(base, scale, out_dir):
    """The cluster with its GEMM and attention efficiencies times scale."""
    c = json.loads(json.dumps(base))
    e = c["gpu"]["efficiency"]
    e["gemm"] = min(1.0, e["gemm"] * scale)
    e["attention"] = min(1.0, e["attention"] * scale)
    path = os.path.join(out_dir, f"cluster-{scale:.6f}.json")
    with open(path, "w") as f:
        json.dump(c, f)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--cluster",
                    default=os.path.join(ROOT, "clusters", "a100-roce.json"))
    ap.add_argument("--calibrate", default="1.5b,14.6b",
                    help="models whose points set the efficiency scale")
    ap.add_argument("--keep", help="keep the plans in this folder")
    ap.add_argument("--json", help="write every point to this file")
    a = ap.parse_args()
    calib = set(a.calibrate.split(","))
    if not calib <= set(MODELS) or calib == set(MODELS):
        sys.exit(f"--calibrate: some, not all, of {', '.join(MODELS)}")
    work = a.keep or tempfile.mkdtemp(prefix="pipec-published-")
    os.makedirs(work, exist_ok=True)
    with open(a.cluster) as f:
        base = json.load(f)
    pipec = os.path.join(a.bin, "pipec")
    sim = os.path.join(a.bin, "pipec-sim")

    # Compile every configuration once (cuda target: bf16 storage; the
    # memory planned for the A100's 80 GB).
    cap = str(int(base["gpu"]["memory_gib"] * (1 << 30)))
    points = []
    for name, (_, _, _, stages, mbs) in MODELS.items():
        model = model_file(name, work)
        for mb, published in PUBLISHED[name].items():
            for (kind, label), value in zip(SCHEDULES, published):
                out = os.path.join(work, f"{name}-{mb}-{kind}")
                if not os.path.exists(os.path.join(out, "work.json")):
                    cmd = [pipec, "compile", model, "--target", "cuda",
                           "--stages", str(stages), "--microbatches",
                           str(mb), "--schedule", kind, "--memory-cap", cap,
                           "--emit-only", "-o", out]
                    if kind == "interleaved-1f1b":
                        cmd += ["--chunks-per-rank", "2"]
                    run(cmd)
                points.append({"model": name, "microbatches": mb,
                               "schedule": label, "kind": kind,
                               "stages": stages, "mbs": mbs,
                               "published": value, "plan": out})
        print(f"compiled {name}", file=sys.stderr)

    def predict(scale):
        cluster = scaled_cluster(base, scale, work)
        for p in points:
            r = json.loads(run([sim, p["plan"], "--cluster", cluster,
                                "--json"]))
            p["step_s"] = r["step_time_s"]
            p["predicted"] = p["microbatches"] * p["mbs"] / (
                r["step_time_s"] * p["stages"])
            p["mfu"] = r["mfu"]

    def loss(scale):
        predict(scale)
        return sum(math.log(p["predicted"] / p["published"]) ** 2
                   for p in points if p["model"] in calib)

    # Golden-section search of the scale on the calibration models.
    lo, hi = 0.3, 1.3
    g = (math.sqrt(5) - 1) / 2
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = loss(x1), loss(x2)
    for _ in range(24):
        if f1 < f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = loss(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = loss(x2)
    scale = (lo + hi) / 2
    predict(scale)
    e = base["gpu"]["efficiency"]
    print(f"calibrated on {', '.join(sorted(calib))}: efficiency scale "
          f"{scale:.3f} (GEMMs {100 * min(1, e['gemm'] * scale):.1f}% of "
          f"the peak, attention {100 * min(1, e['attention'] * scale):.1f}%)")
    print("| model | GPUs | M | schedule | published | predicted | error | "
          "MFU | set |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for p in points:
        p["error"] = (p["predicted"] - p["published"]) / p["published"]
        print(f"| {p['model']} | {p['stages']} | {p['microbatches']} | "
              f"{p['schedule']} | {p['published']:.3g} | "
              f"{p['predicted']:.3g} | {100 * p['error']:+.1f}% | "
              f"{100 * p['mfu']:.1f}% | "
              f"{'calibration' if p['model'] in calib else 'held out'} |")
    for subset, label in [(lambda p: p["model"] in calib, "calibration"),
                          (lambda p: p["model"] not in calib, "held out")]:
        errs = [abs(p["error"]) for p in points if subset(p)]
        print(f"{label}: {len(errs)} points, mean |error| "
              f"{100 * sum(errs) / len(errs):.1f}%, largest "
              f"{100 * max(errs):.1f}%")
    # Schedule speed-ups over 1F1B: no calibration in them.
    print("speed-up over 1F1B, published -> predicted:")
    for name in MODELS:
        for mb in PUBLISHED[name]:
            row = {p["schedule"]: p for p in points
                   if p["model"] == name and p["microbatches"] == mb}
            base1 = row["1F1B"]
            parts = []
            for label in ("ZB-1p", "1F1B-I"):
                pub = row[label]["published"] / base1["published"]
                pre = row[label]["predicted"] / base1["predicted"]
                parts.append(f"{label} {pub:.3f} -> {pre:.3f}")
            print(f"  {name} M={mb}: " + ", ".join(parts))
    # Tensor-parallel points at the calibrated scale.
    cluster = scaled_cluster(base, scale, work)
    tp_points = []

    def tp_plan(out, model, layers, pp, mb, tp, extra):
        """The plan of a tensor-parallel point, compiled once: interleaved
        where the micro-batches and layers allow, its stage over tp GPUs'
        memory."""
        kind = "gpipe" if pp == 1 else (
            "interleaved-1f1b" if mb % pp == 0 and layers >= 2 * pp
            else "1f1b")
        if not os.path.exists(os.path.join(out, "work.json")):
            run([pipec, "compile", model, "--target", "cuda", "--stages",
                 str(pp), "--microbatches", str(mb), "--schedule", kind,
                 "--memory-cap", str(int(cap) * tp), "--emit-only", "-o",
                 out] + extra)
        return kind

    print("tensor-parallel points (pipec-sim --tp, a model; held out):")
    print("| model | TP x PP x DP | M | published TFLOP/s a GPU | predicted "
          "| error |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for (name, layers, hidden, heads, tp, pp, gpus, batch,
         published) in MEGATRON:
        dp = gpus // (tp * pp)
        mb = batch // dp
        model = gpt_file(name, layers, hidden, heads, 1, 2048, 51200, work)
        out = os.path.join(work, f"megatron-{name}")
        kind = tp_plan(out, model, layers, pp, mb, tp,
                       ["--recompute", "full"])
        r = json.loads(run([sim, out, "--cluster", cluster, "--replicas",
                            str(dp), "--tp", str(tp), "--json"]))
        s, h, l, v = 2048, hidden, layers, 51200
        flops = 96 * batch * s * l * h * h * (1 + s / (6 * h) +
                                              v / (16 * l * h))
        predicted = flops / (r["step_time_s"] * gpus) / 1e12
        err = (predicted - published) / published
        tp_points.append({"model": name, "tp": tp, "pp": pp, "dp": dp,
                          "microbatches": mb, "schedule": kind,
                          "published": published, "predicted": predicted,
                          "error": err})
        print(f"| {name} | {tp} x {pp} x {dp} | {mb} | {published} | "
              f"{predicted:.0f} | {100 * err:+.1f}% |")
    print("| model | TP x PP | M | published s an iteration | predicted | "
          "error |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for (name, layers, hidden, heads, tp, pp, gpus, batch, mbs,
         published) in KORTHIKANTI:
        mb = batch // mbs
        model = gpt_file("k" + name, layers, hidden, heads, mbs, 2048, 51200,
                         work)
        out = os.path.join(work, f"korthikanti-{name}")
        kind = tp_plan(out, model, layers, pp, mb, tp, [])
        r = json.loads(run([sim, out, "--cluster", cluster, "--tp", str(tp),
                            "--json"]))
        err = (r["step_time_s"] - published) / published
        tp_points.append({"model": name, "tp": tp, "pp": pp, "dp": 1,
                          "microbatches": mb, "schedule": kind,
                          "published_s": published,
                          "predicted_s": r["step_time_s"],
                          "error": published / r["step_time_s"] - 1})
        print(f"| {name} | {tp} x {pp} | {mb} | {published} | "
              f"{r['step_time_s']:.2f} | {100 * err:+.1f}% |")
    errs = [abs(p["error"]) for p in tp_points]
    print(f"tensor-parallel: {len(errs)} points, mean |error| "
          f"{100 * sum(errs) / len(errs):.1f}%, largest {100 * max(errs):.1f}%"
          " (as throughput: published time over predicted, less 1)")
    # Hopper: Llama 3 405B, priors first, then calibrated on 8,192 GPUs.
    h100_path = os.path.join(ROOT, "clusters", "h100-ib.json")
    with open(h100_path) as f:
        h100 = json.load(f)
    # The stage's memory: 8 x 80 GiB, not the 78 GiB a process allocates:
    # Llama 3 shards its optimizer state over the replicas (ZeRO-1), which
    # pipec's cuda target does not do yet, so its stage holds every AdamW
    # moment; with 78 GiB even full recomputation does not fit. The step's
    # time is what is compared.
    h100_cap = 80 << 30
    llama = llama_file(work)
    llama_plans = []
    for gpus, dp, mb, published in LLAMA3:
        out = os.path.join(work, f"llama3-{gpus}")
        if not os.path.exists(os.path.join(out, "work.json")):
            run([pipec, "compile", llama, "--target", "cuda", "--stages",
                 "16", "--microbatches", str(mb), "--schedule",
                 "interleaved-1f1b", "--chunks-per-rank", "2", "--recompute",
                 "full", "--memory-cap", str(h100_cap * 8), "--emit-only",
                 "-o", out])
        llama_plans.append((gpus, dp, mb, published, out))

    def llama_tflops(cluster_path, gpus, dp, out):
        r = json.loads(run([sim, out, "--cluster", cluster_path,
                            "--replicas", str(dp), "--tp", "8", "--json"]))
        return r["model_flops_per_s"] / gpus / 1e12, r

    h100_scaled = lambda k: scaled_cluster(h100, k, work)
    # The scale that gives the 8,192-GPU point its published rate
    # (bisection: the rate grows with the scale).
    gpus0, dp0, _, pub0, out0 = llama_plans[0]
    lo, hi = 0.3, 1.6
    for _ in range(30):
        mid = (lo + hi) / 2
        if llama_tflops(h100_scaled(mid), gpus0, dp0, out0)[0] < pub0:
            lo = mid
        else:
            hi = mid
    h_scale = (lo + hi) / 2
    e = h100["gpu"]["efficiency"]
    print(f"Hopper (h100-ib, Llama 3 405B, TP 8 x PP 16, --tp a model): "
          f"GEMM and attention efficiencies x {h_scale:.3f} from the "
          f"8,192-GPU point (GEMM {e['gemm']:.2f} -> "
          f"{min(1.0, e['gemm'] * h_scale):.2f})")
    print("| GPUs | TP x PP x DP | M | published TFLOP/s a GPU | priors | "
          "error | calibrated | error |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    llama_points = []
    for gpus, dp, mb, published, out in llama_plans:
        prior, r0 = llama_tflops(h100_path, gpus, dp, out)
        cal, r1 = llama_tflops(h100_scaled(h_scale), gpus, dp, out)
        role = "calibration" if gpus == gpus0 else "held out"
        llama_points.append({"gpus": gpus, "dp": dp, "microbatches": mb,
                             "published": published, "prior": prior,
                             "calibrated": cal, "role": role,
                             "bubble": r1["bubble"],
                             "step_s": r1["step_time_s"]})
        print(f"| {gpus} | 8 x 16 x {dp} | {mb} | {published} | "
              f"{prior:.0f} | {100 * (prior / published - 1):+.1f}% | "
              f"{cal:.0f} | {100 * (cal / published - 1):+.1f}% ({role}) |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"scale": scale, "points": points,
                       "tensor_parallel": tp_points,
                       "hopper_scale": h_scale,
                       "llama3": llama_points}, f, indent=1)


if __name__ == "__main__":
    main()
