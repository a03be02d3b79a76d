#!/usr/bin/env python3
"""Trains a compiled plan on the first 90% of a corpus and checks its held-out loss against the unigram entropy.

The corpus is split at --holdout from the end into train.txt and heldout.txt
(in --work). The plan (`pipec compile`, `pipec-run --save`) trains on
train.txt; the saved parameters are then evaluated with the JAX model of
test/reference (model_json.py, which the reference comparison checks against
pipec) on --eval-batches micro-batches spread evenly over heldout.txt. The
bar is the cross-entropy of the held-out bytes under the unigram distribution
of the training bytes (add-one smoothed over the 256 byte values, so a byte
unseen in training costs ln(N + 256) rather than infinity): a model that
learned nothing beyond byte frequencies cannot go below it. The same
evaluation of the initial parameters (about ln 256) is printed as the
control that shows the check can fail. Exits 1 when the held-out loss is not
below the entropy.
"""
import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
sys.path.insert(0, str(REFERENCE))
import pyenv  # noqa: E402

pyenv.use_repo_venv(__file__)
pyenv.require_modules()


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipec", required=True)
    p.add_argument("--pipec-run", default="pipec-run")
    p.add_argument("--model", required=True)
    p.add_argument("--corpus", required=True, help="a text file, e.g. tinyshakespeare.txt")
    p.add_argument("--work", required=True)
    p.add_argument("--cache", help="PIPEC_CACHE_DIR of the compile")
    p.add_argument("--stages", type=int, default=2)
    p.add_argument("--schedule", default="zb-h1")
    p.add_argument("--microbatches", type=int, default=4)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--holdout", type=float, default=0.1, help="the share of the corpus held out, from its end")
    p.add_argument("--eval-batches", type=int, default=64)
    return p.parse_args()


def run(cmd, env=None):
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"heldout: {' '.join(cmd[:2])} exited with status {r.returncode}:\n"
                 + "\n".join((r.stdout + r.stderr).splitlines()[-20:]))
    print(f"  ({time.time() - t0:.1f} s)", flush=True)
    return r.stdout


def unigram_cross_entropy(train: bytes, held: bytes) -> float:
    """Mean -ln p(byte) over `held`, p estimated on `train` with add-one smoothing, in nats."""
    counts = [1] * 256
    for b in train:
        counts[b] += 1
    total = sum(counts)
    held_counts = [0] * 256
    for b in held:
        held_counts[b] += 1
    return -sum(c * math.log(counts[b] / total) for b, c in enumerate(held_counts) if c) / len(held)


def main():
    args = parse_args()
    import jax
    import numpy as np

    import data
    import init
    import model_json

    corpus = open(args.corpus, "rb").read()
    cut = len(corpus) - int(len(corpus) * args.holdout)
    train, held = corpus[:cut], corpus[cut:]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "train.txt").write_bytes(train)
    (work / "heldout.txt").write_bytes(held)

    env = dict(os.environ)
    if args.cache:
        env["PIPEC_CACHE_DIR"] = args.cache
    plan = work / "plan"
    saved = work / "trained.safetensors"
    run([args.pipec, "compile", args.model, "--stages", str(args.stages), "--microbatches",
         str(args.microbatches), "--schedule", args.schedule, "--target", "cpu", "-o", str(plan)], env)
    run([args.pipec_run, str(plan), "--data", str(work / "train.txt"), "--steps", str(args.steps),
         "--log-dir", str(work / "log"), "--save", str(saved), "--quiet"])

    model = model_json.load_model(args.model)
    loss_fn = jax.jit(model.loss_fn())
    batches = data.Batches(data.load_tokens(work / "heldout.txt"), model.batch, model.seq, 1)
    n = min(args.eval_batches, batches.per_epoch)
    picks = [g * batches.per_epoch // n for g in range(n)]

    def held_out_loss(params):
        # Each micro-batch's loss is the mean over its B x T tokens; all have
        # the same count, so the mean of the means is the per-token mean.
        return float(np.mean([float(loss_fn(params, *batches.global_batch(g))) for g in picks]))

    trained = held_out_loss(init.load_params(saved, model))
    untrained = held_out_loss(init.init_params(model))
    entropy = unigram_cross_entropy(train, held)
    last = [l for l in (work / "log" / "metrics.jsonl").read_text().splitlines() if l.strip()][-1]
    print(f"corpus {args.corpus}: {len(train)} training bytes, {len(held)} held out")
    print(f"last training step: {last}")
    print(f"held-out loss over {n} micro-batches of {model.batch}x{model.seq}: "
          f"{trained:.4f} nats after {args.steps} steps, {untrained:.4f} at initialisation")
    print(f"unigram entropy of the held-out bytes (training distribution): {entropy:.4f} nats")
    if not trained < entropy:
        print(f"heldout: FAIL: held-out loss {trained:.4f} is not below the unigram entropy {entropy:.4f}")
        return 1
    print(f"heldout: PASS: held-out loss {trained:.4f} < unigram entropy {entropy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
