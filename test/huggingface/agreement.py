#!/usr/bin/env python3
"""Holds pipec to transformers: small random GPT2LMHeadModel and LlamaForCausalLM models, built and
saved by transformers, are imported with `pipec import-hf`; one batch's loss and every parameter's
gradient from `pipec reference-train --init model.safetensors --dump-grads` must agree with
transformers' own (torch autograd on the same batch, docs/TRAINING.md's batching) within 1e-5
normwise in float32 and 1e-10 in float64.

Then (--train-steps N, default 20; 0 skips it) a plan compiled from the same description on two
stages trains N steps from those weights and writes them with `pipec-run --save-hf DIR`: transformers
must load DIR with no missing, unexpected or mismatched key, give the loss pipec computes for a
batch with them within the tolerance, and greedily generate the same 20 tokens pipec-run --sample
generates from the trained plan.

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


def load_tokens(path):
    """The data's tokens as pipec reads them (test/reference/data.py: bytes, or an llm.c shard)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "pipec_reference_data", Path(__file__).resolve().parent.parent / "reference" / "data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [int(x) for x in module.load_tokens(path)]


def batch(data, b, t):
    """Global micro-batch 0 of docs/TRAINING.md."""
    tokens = [[data[r * t + i] for i in range(t)] for r in range(b)]
    targets = [[data[r * t + i + 1] for i in range(t)] for r in range(b)]
    return tokens, targets


def patch_llama(model, f64):
    """Gives transformers' Llama pipec's rotary tables: angles and cos/sin in double, rounded once
    to the model's dtype. transformers computes position x inv_freq in float32 whatever the dtype,
    about 2e-6 off at position 31 with theta 500, which moves float32 gradients by up to 1e-5;
    pipec's are the correctly rounded ones. In float64 its RMSNorm is computed in float64 too (it
    upcasts to float32, which there is a downcast), so that the comparison sees everything else."""
    import torch

    rotary = getattr(getattr(model, "model", None), "rotary_emb", None)
    if rotary is None:
        return
    cfg = model.config
    dim = cfg.head_dim if getattr(cfg, "head_dim", None) else cfg.hidden_size // cfg.num_attention_heads
    params = getattr(cfg, "rope_parameters", None) or {}
    theta = params.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))

    def rotary_exact(x, position_ids):
        inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
        freqs = position_ids.to(torch.float64)[..., None] * inv
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)

    rotary.forward = rotary_exact
    if not f64:
        return
    for module in model.modules():
        if type(module).__name__ == "LlamaRMSNorm":
            def rms_f64(x, m=module):
                var = x.pow(2).mean(-1, keepdim=True)
                return m.weight * (x * torch.rsqrt(var + m.variance_epsilon))
            module.forward = rms_f64


def hf_loss_and_grads(cls, model_dir, tokens, targets, f64):
    import torch

    model = cls.from_pretrained(model_dir, dtype=torch.float64 if f64 else torch.float32)
    model.train()
    patch_llama(model, f64)
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
    data = load_tokens(args.data)
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
    # Normwise per tensor, against the larger of its own norm and 1% of the whole gradient's: a
    # gradient that is nearly zero by cancellation (a k bias: softmax ignores a shift common to
    # every key, and RoPE breaks that only slightly) carries float32's rounding of the terms that
    # cancel, ~1e-5 of itself; its floor keeps it held to 1e-7 of the whole gradient.
    total = math.sqrt(sum(float(np.sum(g * g)) for g in hf_grads.values()))
    # transformers names the tied head lm_head.weight too; its gradient is the embedding's.
    for pname, g in sorted(hf_grads.items()):
        if pname == "lm_head.weight" and pname not in pipec_grads:
            continue
        if pname not in pipec_grads:
            raise CannotRun(f"{name}: pipec has no gradient for {pname}")
        p = pipec_grads[pname]
        if p.shape != g.shape:
            raise CannotRun(f"{name}: {pname}: pipec shape {p.shape}, transformers {g.shape}")
        err = float(np.linalg.norm(p - g) / max(np.linalg.norm(g), 1e-2 * total, 1e-300))
        rows.append((pname, err))
    missing = sorted(set(pipec_grads) - set(hf_grads))
    if missing:
        raise CannotRun(f"{name}: pipec gradients transformers does not have: {missing}")
    worst = max(e for _, e in rows)
    ok = worst <= tol and all(math.isfinite(e) for _, e in rows)
    if args.train_steps > 0 and not args.perturb:
        ok = trained(name, args, d, cls, tokens, targets, data, tol) and ok
    grad_worst = max(e for n, e in rows if n != "loss")
    print(f"{name}: {'f64' if args.f64 else 'f32'}: loss pipec {pipec_loss:.9g} transformers {hf_loss:.9g} "
          f"(relative {rows[0][1]:.2e}); {len(rows) - 1} gradients, worst normwise {grad_worst:.2e} "
          f"({max(rows[1:], key=lambda r: r[1])[0]}); tolerance {tol:g}: {'agree' if ok else 'DIFFER'}")
    return ok


PROMPT = "Hello"


def trained(name, args, d, cls, tokens, targets, data, tol):
    """Trains with a compiled plan, exports with --save-hf, and checks transformers against it."""
    import torch

    run([args.pipec, "compile", d / "model.json", "--stages", "2", "--microbatches", "2",
         "-o", d / "plan"], env=dict(os.environ, PIPEC_CACHE_DIR=str(d / "cache")))
    out = d / "exported"
    r = run([Path(args.pipec).parent / "pipec-run", d / "plan", "--data", args.data,
             "--steps", str(args.train_steps), "--init", d / "hf" / "model.safetensors",
             "--save-hf", out, "--sample", "20", "--temperature", "0", "--prompt", PROMPT,
             "--quiet", "--cores", "1"]
            # One model exported in shards (and its index), as transformers shards large ones.
            + (["--save-hf-shard-size", "20000"] if name == "llama-gqa" else []))
    lines = r.stdout.strip().splitlines()
    pipec_ids = [int(x) for x in lines[lines.index(next(x for x in lines if x.startswith("sample:"))) + 1].split()]

    model, info = cls.from_pretrained(out, output_loading_info=True,
                                      dtype=torch.float64 if args.f64 else torch.float32)
    patch_llama(model, args.f64)
    bad = {k: v for k, v in info.items() if v and k != "error_msgs"} or (
        {"error_msgs": info["error_msgs"]} if info.get("error_msgs") else {})
    # Loss of batch 0 with the exported weights: pipec's reference executor on the saved file
    # against transformers on the loaded model.
    cmd = [args.pipec, "reference-train", d / "model.json", "--init", out,
           "--data", args.data, "--steps", "1", "--microbatches", "1", "--log-dir", d / "log-exported"]
    if args.f64:
        cmd.append("--f64")
    run(cmd)
    pipec_loss = json.loads((d / "log-exported" / "metrics.jsonl").read_text().splitlines()[0])["loss"]
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(tokens)).logits
        hf_loss = float(torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), torch.tensor(targets).reshape(-1)))
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = 0
        prompt = torch.tensor([list(PROMPT.encode())])
        hf_ids = model.generate(input_ids=prompt, max_new_tokens=20, do_sample=False,
                                attention_mask=torch.ones_like(prompt))[0, prompt.shape[1]:].tolist()
    loss_err = abs(pipec_loss - hf_loss) / abs(hf_loss)
    ok = not bad and loss_err <= tol and hf_ids == pipec_ids
    print(f"{name}: after {args.train_steps} steps, --save-hf loads into transformers "
          f"{'cleanly' if not bad else 'WITH ' + str(bad)}; loss pipec {pipec_loss:.9g} transformers "
          f"{hf_loss:.9g} (relative {loss_err:.2e}); greedy 20 tokens "
          f"{'the same (' + ' '.join(map(str, hf_ids)) + ')' if hf_ids == pipec_ids else 'DIFFER: pipec ' + str(pipec_ids) + ' transformers ' + str(hf_ids)}"
          f": {'agree' if ok else 'DIFFER'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipec", required=True, help="the pipec binary")
    ap.add_argument("--data", required=True, help="a text file (bytes are the tokens)")
    ap.add_argument("--models", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    ap.add_argument("--f64", action="store_true", help="float64 on both sides (tolerance 1e-10)")
    ap.add_argument("--perturb", default="", metavar="OP", help="perturb pipec's VJP of nn.OP: must DIFFER")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--train-steps", type=int, default=20,
                    help="steps of the compiled plan before --save-hf (default 20; 0: skip)")
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
