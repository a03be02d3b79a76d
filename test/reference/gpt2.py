"""A hand-written GPT-2 in JAX, written as Hugging Face's modeling_gpt2.py; it loads parameters by their HF names
and knows nothing of pipec's JSON, so it checks model_json.py's interpreter as well as pipec."""

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class GPT2Config:
    """What a GPT-2 checkpoint's shapes do not say."""
    n_head: int
    layer_norm_epsilon: float = 1e-5


def _prefix(params) -> str:
    """'' for GPT2Model names (wte.weight), 'transformer.' for GPT2LMHeadModel names."""
    for prefix in ("", "transformer."):
        if prefix + "wte.weight" in params:
            return prefix
    raise KeyError("no 'wte.weight' (nor 'transformer.wte.weight'): not a GPT-2 parameter set")


def num_layers(params) -> int:
    prefix = _prefix(params)
    n = 0
    while f"{prefix}h.{n}.ln_1.weight" in params:
        n += 1
    return n


def _layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)  # torch.nn.LayerNorm: biased variance
    return (x - mean) * jax.lax.rsqrt(var + eps) * weight + bias


def _conv1d(x, weight, bias):
    """HF's Conv1D: weight is [in, out]."""
    return x @ weight + bias


def _gelu_new(x):
    return 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * jnp.power(x, 3))))


def _attn(x, p, pre, n_head):
    B, T, D = x.shape
    qkv = _conv1d(x, p[pre + "attn.c_attn.weight"], p[pre + "attn.c_attn.bias"])
    q, k, v = jnp.split(qkv, 3, axis=2)

    def heads(t):  # [B, T, D] -> [B, H, T, Dh]
        return t.reshape(B, T, n_head, D // n_head).transpose(0, 2, 1, 3)

    q, k, v = heads(q), heads(k), heads(v)
    w = (q @ k.transpose(0, 1, 3, 2)) / jnp.asarray(math.sqrt(D // n_head), x.dtype)
    causal = np.tril(np.ones((T, T), dtype=bool))
    w = jnp.where(causal, w, jnp.finfo(x.dtype).min)
    w = jax.nn.softmax(w, axis=-1)
    a = (w @ v).transpose(0, 2, 1, 3).reshape(B, T, D)
    return _conv1d(a, p[pre + "attn.c_proj.weight"], p[pre + "attn.c_proj.bias"])


def _mlp(x, p, pre):
    h = _gelu_new(_conv1d(x, p[pre + "mlp.c_fc.weight"], p[pre + "mlp.c_fc.bias"]))
    return _conv1d(h, p[pre + "mlp.c_proj.weight"], p[pre + "mlp.c_proj.bias"])


def logits(params, tokens, cfg: GPT2Config):
    """GPT2LMHeadModel's logits [B, T, V]; the LM head is `lm_head.weight` if present, else tied to wte."""
    prefix = _prefix(params)
    eps = cfg.layer_norm_epsilon
    T = tokens.shape[1]
    x = params[prefix + "wte.weight"][tokens] + params[prefix + "wpe.weight"][jnp.arange(T)]
    for i in range(num_layers(params)):
        pre = f"{prefix}h.{i}."
        x = x + _attn(_layer_norm(x, params[pre + "ln_1.weight"], params[pre + "ln_1.bias"], eps), params, pre, cfg.n_head)
        x = x + _mlp(_layer_norm(x, params[pre + "ln_2.weight"], params[pre + "ln_2.bias"], eps), params, pre)
    x = _layer_norm(x, params[prefix + "ln_f.weight"], params[prefix + "ln_f.bias"], eps)
    head = params.get("lm_head.weight", params[prefix + "wte.weight"])
    return x @ head.T


def loss(params, tokens, targets, cfg: GPT2Config):
    """Mean next-token cross-entropy over all B*T positions."""
    logp = jax.nn.log_softmax(logits(params, tokens, cfg), axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1))


def make_loss(cfg: GPT2Config):
    return lambda params, tokens, targets: loss(params, tokens, targets, cfg)
