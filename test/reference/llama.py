"""A hand-written Llama in JAX, written as Hugging Face's modeling_llama.py (RMSNorm, rotate-half RoPE, GQA,
SwiGLU); it loads parameters by their HF names and knows nothing of pipec's JSON."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class LlamaConfig:
    """What a Llama checkpoint's shapes do not say."""
    num_attention_heads: int
    num_key_value_heads: int
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    # Hugging Face stores nn.Linear weights [out, in]; True reads them [in, out] instead (a model file that
    # keeps HF names with GPT-2's Conv1D layout; square matrices make the two indistinguishable by shape).
    weights_in_out: bool = False


def _prefix(params) -> str:
    """'model.' for LlamaForCausalLM names, '' for LlamaModel names."""
    for prefix in ("model.", ""):
        if prefix + "embed_tokens.weight" in params:
            return prefix
    raise KeyError("no 'model.embed_tokens.weight' (nor 'embed_tokens.weight'): not a Llama parameter set")


def num_layers(params) -> int:
    prefix = _prefix(params)
    n = 0
    while f"{prefix}layers.{n}.input_layernorm.weight" in params:
        n += 1
    return n


def _rms_norm(x, weight, eps):
    variance = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
    return weight * (x * jax.lax.rsqrt(variance + eps))


def _linear(x, p, name, cfg):
    """nn.Linear: weight is [out, in] (or [in, out], see LlamaConfig); a bias is used when there is one."""
    w = p[name + ".weight"]
    y = x @ (w if cfg.weights_in_out else w.T)
    return y + p[name + ".bias"] if name + ".bias" in p else y


def _rotary(T, head_dim, theta, dtype):
    """LlamaRotaryEmbedding: cos and sin [T, head_dim] for positions 0..T-1."""
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    freqs = np.outer(np.arange(T, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return jnp.asarray(np.cos(emb), dtype), jnp.asarray(np.sin(emb), dtype)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def _repeat_kv(x, n_rep):
    """[B, Hkv, T, Dh] -> [B, Hkv*n_rep, T, Dh], kv head j serving query heads j*n_rep .. j*n_rep+n_rep-1."""
    B, Hkv, T, Dh = x.shape
    return jnp.broadcast_to(x[:, :, None], (B, Hkv, n_rep, T, Dh)).reshape(B, Hkv * n_rep, T, Dh)


def _self_attn(x, p, pre, cfg: LlamaConfig):
    B, T, _ = x.shape
    Hq, Hkv = cfg.num_attention_heads, cfg.num_key_value_heads
    q = _linear(x, p, pre + "q_proj", cfg)
    Dh = q.shape[-1] // Hq
    q = q.reshape(B, T, Hq, Dh).transpose(0, 2, 1, 3)
    k = _linear(x, p, pre + "k_proj", cfg).reshape(B, T, Hkv, Dh).transpose(0, 2, 1, 3)
    v = _linear(x, p, pre + "v_proj", cfg).reshape(B, T, Hkv, Dh).transpose(0, 2, 1, 3)
    cos, sin = _rotary(T, Dh, cfg.rope_theta, x.dtype)
    q = q * cos + _rotate_half(q) * sin
    k = k * cos + _rotate_half(k) * sin
    k, v = _repeat_kv(k, Hq // Hkv), _repeat_kv(v, Hq // Hkv)
    w = (q @ k.transpose(0, 1, 3, 2)) * jnp.asarray(Dh ** -0.5, x.dtype)
    causal = np.triu(np.full((T, T), -np.inf), k=1)
    w = jax.nn.softmax(w + jnp.asarray(causal, x.dtype), axis=-1)
    a = (w @ v).transpose(0, 2, 1, 3).reshape(B, T, Hq * Dh)
    return _linear(a, p, pre + "o_proj", cfg)


def _mlp(x, p, pre, cfg):
    gated = jax.nn.silu(_linear(x, p, pre + "gate_proj", cfg)) * _linear(x, p, pre + "up_proj", cfg)
    return _linear(gated, p, pre + "down_proj", cfg)


def logits(params, tokens, cfg: LlamaConfig):
    """LlamaForCausalLM's logits [B, T, V]; without `lm_head.weight` the head is tied to the embedding."""
    prefix = _prefix(params)
    eps = cfg.rms_norm_eps
    x = params[prefix + "embed_tokens.weight"][tokens]
    for i in range(num_layers(params)):
        pre = f"{prefix}layers.{i}."
        x = x + _self_attn(_rms_norm(x, params[pre + "input_layernorm.weight"], eps), params, pre + "self_attn.", cfg)
        x = x + _mlp(_rms_norm(x, params[pre + "post_attention_layernorm.weight"], eps), params, pre + "mlp.", cfg)
    x = _rms_norm(x, params[prefix + "norm.weight"], eps)
    if "lm_head.weight" in params:
        return _linear(x, params, "lm_head", cfg)
    return x @ params[prefix + "embed_tokens.weight"].T


def loss(params, tokens, targets, cfg: LlamaConfig):
    """Mean next-token cross-entropy over all B*T positions."""
    logp = jax.nn.log_softmax(logits(params, tokens, cfg), axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1))


def make_loss(cfg: LlamaConfig):
    return lambda params, tokens, targets: loss(params, tokens, targets, cfg)
