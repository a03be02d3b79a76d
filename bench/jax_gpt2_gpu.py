#!/usr/bin/env python3
"""Baseline to beat on a GPU: tokens/s and MFU of one jitted JAX training step of GPT-2 124M in bf16.

GPT-2 as models/gpt2-124m.json describes it (pre-LayerNorm blocks, tanh GELU, causal attention, LM head tied
to wte), with float32 master parameters and AdamW state, the forward and backward computed in bfloat16 (the
loss's log-softmax in float32), M micro-batches of gradient accumulation, global-norm clipping and AdamW as
docs/TRAINING.md, the whole step in one jit. Tokens are random (fixed seed): speed does not depend on them.

    python3 bench/jax_gpt2_gpu.py                       # on a machine with a GPU and jax[cuda]
    python3 bench/jax_gpt2_gpu.py --smoke               # tiny config on whatever JAX has (CPU here), ~10 s

MFU = tokens/s x FLOPs per token / --peak-tflops (default 989: H100 SXM dense bf16). FLOPs per token:
6*N + 12*L*T*d (N = parameters without the position embedding, which is a lookup; attention's score and
value products counted over the full T x T, as PaLM's and nanoGPT's MFU do). It measures; it asserts nothing
about speed. --smoke also checks the model: its loss (in float32) on perturbed parameters against the independent
GPT-2 of test/reference/gpt2.py. Exit status 0; 1 when a loss is not finite or that check fails; 2 when it cannot
run (no GPU without --smoke or --allow-cpu, a bad model file).
"""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "test" / "reference")]
import pyenv  # noqa: E402  (test/reference: re-executes with the repository's .venv when there is one)

pyenv.use_repo_venv(__file__)

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

SMOKE = {"n_layer": 2, "n_head": 2, "d_model": 64, "vocab": 256, "n_ctx": 64, "seq": 64, "batch": 2}
TRAIN_KEYS = ("lr", "beta1", "beta2", "eps", "weight_decay", "grad_clip")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(REPO / "models" / "gpt2-124m.json"),
                    help="GPT-2 model description whose config and train section are used (default gpt2-124m)")
    ap.add_argument("--batch", type=int, default=16, help="B, rows per micro-batch (default 16)")
    ap.add_argument("--seq", type=int, help="T (default: the model's n_ctx, 1024)")
    ap.add_argument("--microbatches", type=int, default=1, help="M, micro-batches per step (default 1)")
    ap.add_argument("--vocab-pad", type=int, default=0,
                    help="pad the vocabulary to this size (50304 is nanoGPT's; default: no padding, 50257)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="steps after compilation, untimed (default 3)")
    ap.add_argument("--attention", choices=("auto", "xla", "cudnn"), default="auto",
                    help="jax.nn.dot_product_attention implementation (auto: JAX picks; cudnn is flash attention)")
    ap.add_argument("--peak-tflops", type=float, default=989.0,
                    help="the card's dense bf16 peak, TFLOP/s (default 989: H100 SXM; H100 PCIe 756, H200 989)")
    ap.add_argument("--smoke", action="store_true",
                    help=f"tiny config {SMOKE}, 3 steps, any device: checks that the script runs")
    ap.add_argument("--allow-cpu", action="store_true", help="run the full config on a CPU (slow; for testing)")
    ap.add_argument("--json", metavar="FILE", help="also write the measurements as JSON")
    args = ap.parse_args(argv)
    if args.smoke:
        args.batch, args.seq, args.steps, args.warmup = SMOKE["batch"], SMOKE["seq"], 3, 1
    for name in ("batch", "microbatches", "steps"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1")
    if args.warmup < 0 or args.vocab_pad < 0 or args.peak_tflops <= 0:
        ap.error("--warmup and --vocab-pad must not be negative, --peak-tflops must be positive")
    return args


class Gpt2:
    """GPT-2's shapes and parameters (Hugging Face names and [in, out] Conv1D layout, as the model JSON)."""

    def __init__(self, cfg: dict, seq: int, vocab_pad: int):
        self.L, self.H, self.d = cfg["n_layer"], cfg["n_head"], cfg["d_model"]
        self.vocab = max(cfg["vocab"], vocab_pad)
        self.n_ctx, self.T = cfg["n_ctx"], seq
        if self.T > self.n_ctx:
            raise ValueError(f"--seq {self.T} is longer than the model's n_ctx {self.n_ctx}")
        if self.d % self.H:
            raise ValueError(f"d_model {self.d} is not a multiple of n_head {self.H}")

    def shapes(self):
        d, s = self.d, {"wte.weight": (self.vocab, self.d), "wpe.weight": (self.n_ctx, self.d)}
        for i in range(self.L):
            p = f"h.{i}."
            s.update({p + "ln_1.weight": (d,), p + "ln_1.bias": (d,),
                      p + "attn.c_attn.weight": (d, 3 * d), p + "attn.c_attn.bias": (3 * d,),
                      p + "attn.c_proj.weight": (d, d), p + "attn.c_proj.bias": (d,),
                      p + "ln_2.weight": (d,), p + "ln_2.bias": (d,),
                      p + "mlp.c_fc.weight": (d, 4 * d), p + "mlp.c_fc.bias": (4 * d,),
                      p + "mlp.c_proj.weight": (4 * d, d), p + "mlp.c_proj.bias": (d,)})
        s.update({"ln_f.weight": (d,), "ln_f.bias": (d,)})
        return s

    def init(self, jax, seed=1337):
        """float32 parameters: N(0, 0.02) weights (c_proj scaled by 1/sqrt(2L), wpe 0.01), LayerNorm 1 and 0."""
        import jax.numpy as jnp
        key, out = jax.random.PRNGKey(seed), {}
        for name, shape in self.shapes().items():
            key, sub = jax.random.split(key)
            if name.endswith("bias"):
                out[name] = jnp.zeros(shape, jnp.float32)
            elif len(shape) == 1:
                out[name] = jnp.ones(shape, jnp.float32)
            else:
                std = 0.01 if name == "wpe.weight" else 0.02
                std = std / math.sqrt(2 * self.L) if name.endswith("c_proj.weight") else std
                out[name] = std * jax.random.normal(sub, shape, jnp.float32)
        return out

    def flops_per_token(self, params) -> int:
        n = sum(int(math.prod(p.shape)) for k, p in params.items() if k != "wpe.weight")
        return 6 * n + 12 * self.L * self.T * self.d

    def loss_fn(self, attention: str, compute_dtype=None):
        """The loss with float32 parameters and the forward (so the backward) in compute_dtype (bfloat16)."""
        import jax
        import jax.numpy as jnp
        impl = None if attention == "auto" else attention
        bf = compute_dtype or jnp.bfloat16

        def layer_norm(x, w, b):
            x32 = x.astype(jnp.float32)  # statistics in float32, as mixed-precision training does
            mu = jnp.mean(x32, -1, keepdims=True)
            var = jnp.mean(jnp.square(x32 - mu), -1, keepdims=True)
            return ((x32 - mu) * jax.lax.rsqrt(var + 1e-5) * w + b).astype(bf)

        def loss(params, tokens, targets):
            p = {k: v.astype(bf) for k, v in params.items()}
            B, T = tokens.shape
            Dh = self.d // self.H
            x = p["wte.weight"][tokens] + p["wpe.weight"][:T]
            for i in range(self.L):
                q = f"h.{i}."
                h = layer_norm(x, params[q + "ln_1.weight"], params[q + "ln_1.bias"])
                qkv = h @ p[q + "attn.c_attn.weight"] + p[q + "attn.c_attn.bias"]
                qh, kh, vh = (t.reshape(B, T, self.H, Dh) for t in jnp.split(qkv, 3, axis=-1))
                a = jax.nn.dot_product_attention(qh, kh, vh, is_causal=True, implementation=impl)
                x = x + a.reshape(B, T, self.d) @ p[q + "attn.c_proj.weight"] + p[q + "attn.c_proj.bias"]
                h = layer_norm(x, params[q + "ln_2.weight"], params[q + "ln_2.bias"])
                h = jax.nn.gelu(h @ p[q + "mlp.c_fc.weight"] + p[q + "mlp.c_fc.bias"], approximate=True)
                x = x + h @ p[q + "mlp.c_proj.weight"] + p[q + "mlp.c_proj.bias"]
            x = layer_norm(x, params["ln_f.weight"], params["ln_f.bias"])
            logits = (x @ p["wte.weight"].T).astype(jnp.float32)
            lse = jax.nn.logsumexp(logits, axis=-1)
            picked = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
            return jnp.mean(lse - picked)

        return loss


SMOKE_TOL = 1e-4  # float32 against float32: ~1e-6; no causal mask is off by 5e-3


def smoke_check(model, params, batch, attention: str):
    """(this model's loss computed in float32, the loss of the independent GPT-2 of test/reference/gpt2.py) on
    parameters perturbed by N(0, 0.2) noise: at initialisation every GPT-2-like model gives about ln(vocab), so
    the check moves away from it to tell a wrong model from a right one. The timed step is the same code in
    bfloat16."""
    import jax
    import numpy as np

    import gpt2
    rng = np.random.default_rng(1)
    noisy = {k: np.asarray(v) + rng.normal(0, 0.2, v.shape).astype(np.float32) for k, v in params.items()}
    x, y = (np.asarray(t)[0] for t in batch)
    ours = float(jax.jit(model.loss_fn(attention, jax.numpy.float32))(noisy, x, y))
    return ours, float(gpt2.loss(noisy, x, y, gpt2.GPT2Config(n_head=model.H)))


def main(argv) -> int:
    args = parse_args(argv)
    pyenv.require_modules()
    import jax
    import numpy as np

    import jax_step
    from train import learning_rate

    devices = jax.devices()
    platform = devices[0].platform
    if platform != "gpu" and not (args.smoke or args.allow_cpu):
        print(f"jax_gpt2_gpu: JAX sees {devices}, no GPU (install jax[cuda12] or jax[cuda13] on the GPU machine; "
              "--smoke or --allow-cpu run on the CPU)", file=sys.stderr)
        return 2
    try:
        spec = json.loads(Path(args.model).read_text())
        cfg, train = dict(spec["config"]), dict(spec["train"])
        missing = [k for k in ("n_layer", "n_head", "d_model", "vocab", "n_ctx") if k not in cfg] + \
                  [k for k in TRAIN_KEYS if k not in train]
        if missing:
            raise KeyError(", ".join(missing))
    except (OSError, ValueError, KeyError) as e:
        print(f"jax_gpt2_gpu: {args.model}: cannot use it as a GPT-2 description: {e}", file=sys.stderr)
        return 2
    if args.smoke:
        cfg.update(SMOKE)
    try:
        model = Gpt2(cfg, args.seq or cfg["n_ctx"], args.vocab_pad)
    except ValueError as e:
        print(f"jax_gpt2_gpu: {e}", file=sys.stderr)
        return 2
    params = model.init(jax)
    m = {k: jax.numpy.zeros_like(v) for k, v in params.items()}
    v = {k: jax.numpy.zeros_like(p) for k, p in params.items()}
    M, B, T = args.microbatches, args.batch, model.T
    tokens_per_step = M * B * T
    fpt = model.flops_per_token(params)
    n_params = sum(int(math.prod(p.shape)) for p in params.values())
    print(f"jax_gpt2_gpu: {'SMOKE ' if args.smoke else ''}GPT-2 L={model.L} d={model.d} heads={model.H} "
          f"vocab={model.vocab}: {n_params:,} parameters; B x T = {B} x {T}, M = {M}: {tokens_per_step:,} tokens "
          f"per step; bf16 compute, float32 master weights and AdamW; attention {args.attention}")
    print(f"jax_gpt2_gpu: JAX {jax.__version__} on {devices} ({getattr(devices[0], 'device_kind', platform)}); "
          f"{fpt:,} FLOPs per token (6N + 12*L*T*d); peak {args.peak_tflops:g} TFLOP/s")

    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, cfg["vocab"], (M, B, T), dtype=np.int32),
                rng.integers(0, cfg["vocab"], (M, B, T), dtype=np.int32)) for _ in range(4)]
    batches = [(jax.device_put(x), jax.device_put(y)) for x, y in batches]  # on the device: time the step only
    lr_of = lambda s: learning_rate({**train, "warmup_steps": 0, "decay": "constant"}, s)  # noqa: E731
    check = smoke_check(model, params, batches[0], args.attention) if args.smoke else None
    step = jax_step.make_train_step(model.loss_fn(args.attention), train, M)
    t0 = time.perf_counter()
    xs, ys = batches[0]
    compiled = step.lower(params, m, v, np.float32(1), np.float32(lr_of(0)), xs, ys).compile()
    print(f"jax_gpt2_gpu: compilation {time.perf_counter() - t0:.1f} s (not timed)", flush=True)

    times, losses = [], []
    for s in range(args.warmup + args.steps):
        xs, ys = batches[s % len(batches)]
        t0 = time.perf_counter()
        params, m, v, loss, norm = compiled(params, m, v, np.float32(s + 1), np.float32(lr_of(s)), xs, ys)
        loss = float(loss)  # waits for the step
        dt = time.perf_counter() - t0
        losses.append(loss)
        if s >= args.warmup:
            times.append(dt)
    med = statistics.median(times)
    tps = tokens_per_step / med
    tflops = tps * fpt / 1e12
    mfu = tflops / args.peak_tflops
    print(f"step time median {med * 1e3:.2f} ms [{min(times) * 1e3:.2f}-{max(times) * 1e3:.2f}] over "
          f"{len(times)} steps after {args.warmup} warm-up; loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    print(f"tokens/s {tps:,.0f}   model TFLOP/s {tflops:.3f}   MFU {100 * mfu:.2f}% of {args.peak_tflops:g} "
          "TFLOP/s" + ("   (smoke: a tiny model; MFU is meaningless)" if args.smoke else ""))
    stats = devices[0].memory_stats() if hasattr(devices[0], "memory_stats") else None
    peak_bytes = (stats or {}).get("peak_bytes_in_use")
    if peak_bytes:
        print(f"device memory peak {peak_bytes / 2**30:.2f} GiB")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "device": str(devices[0]), "device_kind": getattr(devices[0], "device_kind", platform),
            "jax": jax.__version__, "smoke": args.smoke, "n_layer": model.L, "d_model": model.d,
            "n_head": model.H, "vocab": model.vocab, "parameters": n_params, "batch": B, "seq": T,
            "microbatches": M, "attention": args.attention, "flops_per_token": fpt, "step_s": times,
            "tokens_per_s": tps, "tflops": tflops, "peak_bytes": peak_bytes, "peak_tflops": args.peak_tflops,
            "mfu": mfu,
            "losses": losses}, indent=1) + "\n")
    if not all(math.isfinite(x) for x in losses):
        print(f"jax_gpt2_gpu: a loss is not finite: {losses}", file=sys.stderr)
        return 1
    if check is not None:
        err = abs(check[0] - check[1]) / abs(check[1])
        print(f"smoke check: loss on perturbed parameters, this model in float32 {check[0]:.7f} against "
              f"test/reference/gpt2.py {check[1]:.7f}: relative {err:.1e} (tolerance {SMOKE_TOL:g})")
        if err > SMOKE_TOL:
            print("jax_gpt2_gpu: this model does not compute GPT-2's loss (test/reference/gpt2.py)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
