#!/usr/bin/env python3
"""Holds pipec to transformers: small random GPT2LMHeadModel and LlamaForCausalLM models, built and
saved by transformers, are imported with `pipec import-hf`; one batch's loss and every parameter's
gradient from `pipec reference-train --init model.safetensors --dump-grads` must agree with
transformers' own (torch autograd on the same batch, docs/TRAINING.md's batching) within 1e-5
normwise in float32 and 1e-10 in float64.

--perturb OP runs pipec with the hidden --debug-perturb-vjp=OP (every B gradient of nn.OP scaled by
1 + 1e-3): the comparison must then fail, which shows that it can.

Exit status: 0 within tolerance, 1 above it, 2 when the comparison could not run."""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TOL = {"f32": 1e-5, "f64": 1e-10}

# Odd sizes on purpose: head dims 16 and 10/12, a vocabulary that is no power of two, GQA, an
# intermediate size that is no multiple of anything, biases where Llama usually has none.
CONFIGS = {
    "gpt2": dict(family="gpt2", vocab_size=300, n_positions=64, n_embd=48, n_layer=2, n_head=3,
                 n_inner=100, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                 layer_norm_epsilon=1e-5),
    "llama-gqa": dict(family="llama", vocab_size=261, hidden_size=40, intermediate_size=72,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False),
    "llama-bias-tied": dict(family="llama", vocab_size=259, hidden_size=40, intermediate_size=56,
                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                            head_dim=12, max_position_embeddings=64, rms_norm_eps=1e-5,
                            attention_bias=True, mlp_bias=True, tie_word_embeddings=True,
                            rope_theta=500.0),
}


class CannotRun(Exception):
    pass


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise CannotRun(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r


def build_hf(name, out_dir, seed):
    """Builds a random model with transformers and saves it (config.json + model.safetensors)."""
    import torch
    import transformers

    spec = dict(CONFIGS[name])
    family = spec.pop("family")
    if family == "gpt2":
        config = transformers.GPT2Config(**spec)
        cls = transformers.GPT2LMHeadModel
    else:
        theta = spec.pop("rope_theta", 10000.0)
        config = transformers.LlamaConfig(**spec)
        # transformers 5 keeps rotary settings in rope_parameters, 4 in rope_theta.
        if getattr(config, "rope_parameters", None) is not None:
            config.rope_parameters["rope_theta"] = theta
        else:
            config.rope_theta = theta
        cls = transformers.LlamaForCausalLM
    torch.manual_seed(seed)
    model = cls(config).float()
    # Random (not zero, not one) norms and biases, so that their gradients are tested too.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.randn_like(p) * 0.1 + (1.0 if "norm" in pname or "ln_" in pname else 0.0))
    model.save_pretrained(out_dir, safe_serialization=True)
    return cls


def batch(data, b, t):
    """Global micro-batch 0 of docs/TRAINING.md."""
    tokens = [[data[r * t + i] for i in range(t)] for r in range(b)]
    targets = [[data[r * t + i + 1] for i in range(t)] for r in range(b)]
    return tokens, targets


def hf_loss_and_grads(cls, model_dir, tokens, targets, f64):
    import torch

    model = cls.from_pretrained(model_dir, dtype=torch.float64 if f64 else torch.float32)
    model.train()
    rotary = getattr(getattr(model, "model", None), "rotary_emb", None)
    if f64 and rotary is not None:
        # transformers computes the rotary angles in float32 whatever the model's dtype (a 1e-7
        # error pipec's float64 does not make: it computes them in double); in float64 they are
        # computed in double here too, so that the comparison sees everything else.
        dim = model.config.head_dim if getattr(model.config, "head_dim", None) else (
            model.config.hidden_size // model.config.num_attention_heads)
        params = getattr(model.config, "rope_parameters", None) or {}
        theta = params.get("rope_theta", getattr(model.config, "rope_theta", 10000.0))

        def rotary_f64(x, position_ids):
            inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
            freqs = position_ids.to(torch.float64)[..., None] * inv
            emb = torch.cat((freqs, freqs), dim=-1)
            return emb.cos().to(x.dtype), emb.sin().to(x.dtype)

        rotary.forward = rotary_f64
        # Its RMSNorm upcasts to float32 as well, which in float64 is a downcast.
        for module in model.modules():
            if type(module).__name__ == "LlamaRMSNorm":
                def rms_f64(x, m=module):
                    var = x.pow(2).mean(-1, keepdim=True)
                    return m.weight * (x * torch.rsqrt(var + m.variance_epsilon))
                module.forward = rms_f64
    ids = torch.tensor(tokens, dtype=torch.long)
    tgt = torch.tensor(targets, dtype=torch.long)
    logits = model(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
    loss.backward()
    grads = {n: p.grad.detach().double().numpy() for n, p in model.named_parameters()}
    return float(loss.detach()), grads


def read_safetensors(path):
    import numpy as np

    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": np.float32, "F64": np.float64}[info["dtype"]]
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype=dt).reshape(info["shape"]).astype(np.float64)
    return out


def compare(name, args, work):
    import numpy as np

    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    cls = build_hf(name, d / "hf", args.seed)
    b, t = 2, 32
    run([args.pipec, "import-hf", d / "hf" / "config.json", "-o", d / "model.json",
         "--batch", str(b), "--seq", str(t)])
    data = Path(args.data).read_bytes()
    cmd = [args.pipec, "reference-train", d / "model.json", "--init", d / "hf" / "model.safetensors",
           "--data", args.data, "--steps", "1", "--microbatches", "1",
           "--dump-grads", d / "grads.safetensors", "--log-dir", d / "log"]
    if args.f64:
        cmd.append("--f64")
    if args.perturb:
        cmd.append(f"--debug-perturb-vjp={args.perturb}")
    run(cmd)
    pipec_loss = json.loads((d / "log" / "metrics.jsonl").read_text().splitlines()[0])["loss"]
    pipec_grads = read_safetensors(d / "grads.safetensors")
    tokens, targets = batch(data, b, t)
    hf_loss, hf_grads = hf_loss_and_grads(cls, d / "hf", tokens, targets, args.f64)

    tol = TOL["f64" if args.f64 else "f32"]
    worst = abs(pipec_loss - hf_loss) / abs(hf_loss)
    rows = [("loss", worst)]
    # transformers names the tied head lm_head.weight too; its gradient is the embedding's.
    for pname, g in sorted(hf_grads.items()):
        if pname == "lm_head.weight" and pname not in pipec_grads:
            continue
        if pname not in pipec_grads:
            raise CannotRun(f"{name}: pipec has no gradient for {pname}")
        p = pipec_grads[pname]
        if p.shape != g.shape:
            raise CannotRun(f"{name}: {pname}: pipec shape {p.shape}, transformers {g.shape}")
        err = float(np.linalg.norm(p - g) / max(np.linalg.norm(g), 1e-300))
        rows.append((pname, err))
    missing = sorted(set(pipec_grads) - set(hf_grads))
    if missing:
        raise CannotRun(f"{name}: pipec gradients transformers does not have: {missing}")
    worst = max(e for _, e in rows)
    ok = worst <= tol and all(math.isfinite(e) for _, e in rows)
    grad_worst = max(e for n, e in rows if n != "loss")
    print(f"{name}: {'f64' if args.f64 else 'f32'}: loss pipec {pipec_loss:.9g} transformers {hf_loss:.9g} "
          f"(relative {rows[0][1]:.2e}); {len(rows) - 1} gradients, worst normwise {grad_worst:.2e} "
          f"({max(rows[1:], key=lambda r: r[1])[0]}); tolerance {tol:g}: {'agree' if ok else 'DIFFER'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipec", required=True, help="the pipec binary")
    ap.add_argument("--data", required=True, help="a text file (bytes are the tokens)")
    ap.add_argument("--models", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    ap.add_argument("--f64", action="store_true", help="float64 on both sides (tolerance 1e-10)")
    ap.add_argument("--perturb", default="", metavar="OP", help="perturb pipec's VJP of nn.OP: must DIFFER")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", default="", help="keep the files here (default: a temporary folder)")
    args = ap.parse_args()
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        print(f"agreement: cannot run: {e} (scripts/setup.sh installs torch and transformers)")
        return 2
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(args.work) if args.work else Path(tmp)
            results = [compare(m, args, work) for m in args.models.split(",")]
    except CannotRun as e:
        print(f"agreement: cannot run: {e}")
        return 2
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
