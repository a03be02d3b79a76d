"""Builds a JAX loss function params -> loss from a pipec model description (docs/MODEL_FORMAT.md)."""

import functools
import json
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class ModelError(Exception):
    """A model file this interpreter cannot run; the message names the file and the JSON path."""


class ParamSpec(NamedTuple):
    shape: tuple
    init: str
    std: float


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def scale_grad(x, factor):
    """Identity forward; multiplies the cotangent by `factor` (the --perturb-vjp debug aid)."""
    return x


def _scale_grad_fwd(x, factor):
    return x, None


def _scale_grad_bwd(factor, _, g):
    return (g * jnp.asarray(factor, g.dtype),)


scale_grad.defvjp(_scale_grad_fwd, _scale_grad_bwd)

PERTURB_FACTOR = 1.0 + 1e-3  # what pipec's --debug-perturb-vjp multiplies an op's B gradient by


# --- the ops: each takes (inputs, resolved attributes) and returns the result --------------------

def _embedding(xs, a):
    table, ids = xs
    return jnp.take(table, ids, axis=0)


def _position_embedding(xs, a):
    (table,) = xs
    return table[: a["length"]]


def _matmul(xs, a):
    x, w = xs[0], xs[1]
    y = jnp.matmul(x, w.T if a["transpose_rhs"] else w)
    return y + xs[2] if len(xs) == 3 else y


def _layernorm(xs, a):
    x, gamma, beta = xs
    mean = jnp.mean(x, axis=-1, keepdims=True)
    xc = x - mean
    var = jnp.mean(xc * xc, axis=-1, keepdims=True)  # biased, as PyTorch
    return xc / jnp.sqrt(var + a["eps"]) * gamma + beta


def _rmsnorm(xs, a):
    x, gamma = xs
    return x / jnp.sqrt(jnp.mean(x * x, axis=-1, keepdims=True) + a["eps"]) * gamma


def _gelu(xs, a):
    (x,) = xs
    return 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def _silu(xs, a):
    (x,) = xs
    return x * jax.nn.sigmoid(x)


def _softmax(xs, a):
    (x,) = xs
    e = jnp.exp(x - jax.lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True)))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _slice(xs, a):
    (x,) = xs
    axis = a["axis"] % x.ndim
    return jax.lax.slice_in_dim(x, a["offset"], a["offset"] + a["size"], axis=axis)


def _reshape(xs, a):
    return jnp.reshape(xs[0], a["shape"])


def _transpose(xs, a):
    return jnp.transpose(xs[0], a["perm"])


def rope_tables(T: int, Dh: int, theta: float, dtype):
    """cos and sin [T, Dh/2] of the angles t * theta^(-2i/Dh), computed in double and rounded once."""
    i = np.arange(Dh // 2, dtype=np.float64)
    t = np.arange(T, dtype=np.float64)
    ang = t[:, None] * theta ** (-2.0 * i / Dh)[None, :]
    return jnp.asarray(np.cos(ang), dtype), jnp.asarray(np.sin(ang), dtype)


def _rope(xs, a):
    (x,) = xs
    B, T, HD = x.shape
    H = a["heads"]
    Dh = HD // H
    cos, sin = rope_tables(T, Dh, a["theta"], x.dtype)
    xh = x.reshape(B, T, H, Dh)
    x1, x2 = xh[..., : Dh // 2], xh[..., Dh // 2:]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    y = jnp.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)
    return y.reshape(B, T, HD)


def _attention(xs, a):
    q, k, v = xs
    B, T, HqD = q.shape
    S = k.shape[1]
    Hq, Hkv = a["heads"], a["kv_heads"]
    Dh = HqD // Hq
    scale = a["scale"] if a["scale"] is not None else 1.0 / math.sqrt(Dh)
    qh = q.reshape(B, T, Hq, Dh)
    # Query head h reads key/value head h // (Hq / Hkv): repeat each kv head Hq/Hkv times in place.
    kh = jnp.repeat(k.reshape(B, S, Hkv, Dh), Hq // Hkv, axis=2)
    vh = jnp.repeat(v.reshape(B, S, Hkv, Dh), Hq // Hkv, axis=2)
    scores = jnp.einsum("bthd,bshd->bhts", qh, kh) * scale
    if a["causal"]:
        mask = np.tril(np.ones((T, S), dtype=bool))
        scores = jnp.where(mask, scores, -jnp.inf)
    p = jax.nn.softmax(scores, axis=-1)
    o = jnp.einsum("bhts,bshd->bthd", p, vh)
    return o.reshape(B, T, HqD)


def _cross_entropy(xs, a):
    logits, targets = xs
    lse = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return jnp.mean(lse - picked)


class _Op(NamedTuple):
    fn: object
    min_inputs: int
    max_inputs: int
    attrs: dict  # name -> (kind, default); kind: int, float, bool, ints; default REQUIRED if none


REQUIRED = object()
OPS = {
    "embedding": _Op(_embedding, 2, 2, {}),
    "position_embedding": _Op(_position_embedding, 1, 1, {"length": ("int", REQUIRED)}),
    "matmul": _Op(_matmul, 2, 3, {"transpose_rhs": ("bool", False)}),
    "add": _Op(lambda xs, a: xs[0] + xs[1], 2, 2, {}),
    "mul": _Op(lambda xs, a: xs[0] * xs[1], 2, 2, {}),
    "layernorm": _Op(_layernorm, 3, 3, {"eps": ("float", 1e-5)}),
    "rmsnorm": _Op(_rmsnorm, 2, 2, {"eps": ("float", 1e-5)}),
    "gelu": _Op(_gelu, 1, 1, {}),
    "silu": _Op(_silu, 1, 1, {}),
    "softmax": _Op(_softmax, 1, 1, {}),
    "slice": _Op(_slice, 1, 1, {"axis": ("int", REQUIRED), "offset": ("int", REQUIRED), "size": ("int", REQUIRED)}),
    "reshape": _Op(_reshape, 1, 1, {"shape": ("ints", REQUIRED)}),
    "transpose": _Op(_transpose, 1, 1, {"perm": ("ints", REQUIRED)}),
    "rope": _Op(_rope, 1, 1, {"heads": ("int", REQUIRED), "theta": ("float", 10000.0)}),
    "attention": _Op(_attention, 3, 3, {"heads": ("int", REQUIRED), "kv_heads": ("int", None),
                                        "causal": ("bool", True), "scale": ("float", None)}),
    "cross_entropy": _Op(_cross_entropy, 2, 2, {}),
}
_NODE_KEYS = {"op", "inputs", "output"}
_REPEAT_KEYS = {"repeat", "index", "carry", "params", "ops", "yield"}


def _subst(text: str, indices: dict) -> str:
    for var, value in indices.items():
        text = text.replace("{" + var + "}", str(value))
    return text


class Model:
    """A parsed model description: config, train section, parameters in declaration order, and the graph."""

    def __init__(self, spec: dict, source: str = "<model>"):
        self.source = source
        self.spec = spec
        for key in ("name", "config", "train", "inputs", "params", "graph", "loss"):
            if key not in spec:
                raise ModelError(f"{source}: missing top-level key '{key}'")
        self.name = spec["name"]
        self.config = dict(spec["config"])
        for k, v in self.config.items():
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ModelError(f"{source}: config.{k} must be a positive integer, got {v!r}")
        self.train = dict(spec["train"])
        self.inputs = spec["inputs"]
        for needed in ("tokens", "targets"):
            if needed not in self.inputs:
                raise ModelError(f"{source}: inputs has no '{needed}' (docs/TRAINING.md feeds tokens and targets)")
        self.batch, self.seq = (self.resolve_int(d, f"inputs.tokens.shape[{i}]")
                                for i, d in enumerate(self.inputs["tokens"]["shape"]))
        self.loss_name = spec["loss"]
        self.params = {}
        self._declare(spec["params"], {}, "params")
        self._collect(spec["graph"], {}, "graph")

    # -- parsing --------------------------------------------------------------------------------

    def resolve_int(self, v, path):
        """A number, or the name of a config entry."""
        if isinstance(v, str):
            if v not in self.config:
                raise ModelError(f"{self.source}: {path}: '{v}' is not a config entry")
            return self.config[v]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ModelError(f"{self.source}: {path}: expected an integer or a config name, got {v!r}")
        return v

    def _declare(self, params: dict, indices: dict, path: str):
        for raw_name, p in params.items():
            name = _subst(raw_name, indices)
            where = f"{path}.{raw_name}"
            if name in self.params:
                raise ModelError(f"{self.source}: {where}: parameter '{name}' declared twice")
            shape = tuple(self.resolve_int(d, f"{where}.shape[{i}]") for i, d in enumerate(p["shape"]))
            init = p.get("init")
            if init not in ("normal", "scaled_normal", "zeros", "ones"):
                raise ModelError(f"{self.source}: {where}.init: unknown init {init!r}")
            if init in ("normal", "scaled_normal") and "std" not in p:
                raise ModelError(f"{self.source}: {where}: init '{init}' needs 'std'")
            self.params[name] = ParamSpec(shape, init, p.get("std"))

    def _collect(self, ops: list, indices: dict, path: str):
        """Declares the parameters of repeat blocks, once per iteration, in program order."""
        for k, node in enumerate(ops):
            if "repeat" in node:
                var = node.get("index", "i")
                for it in range(self.resolve_int(node["repeat"], f"{path}[{k}].repeat")):
                    inner = {**indices, var: it}
                    self._declare(node.get("params", {}), inner, f"{path}[{k}].params")
                    self._collect(node["ops"], inner, f"{path}[{k}].ops")

    # -- the loss function ----------------------------------------------------------------------

    def loss_fn(self, perturb_vjp=None):
        """Returns f(params: dict name -> array, tokens [B,T] i32, targets [B,T] i32) -> scalar loss.

        `perturb_vjp` names an op whose gradient with respect to its activation
        inputs (the B gradient) is multiplied by 1 + 1e-3, as pipec's
        --debug-perturb-vjp does: the comparison must then fail.
        """
        if perturb_vjp is not None and perturb_vjp not in OPS:
            raise ModelError(f"--perturb-vjp: unknown op '{perturb_vjp}'")

        def loss(params, tokens, targets):
            env = {"tokens": tokens, "targets": targets}
            for name in self.inputs:
                if name not in env:
                    raise ModelError(f"{self.source}: input '{name}' is neither tokens nor targets")
            self._run(self.spec["graph"], env, params, {}, "graph", perturb_vjp)
            if self.loss_name not in env:
                raise ModelError(f"{self.source}: loss: '{self.loss_name}' is not defined by the graph")
            out = env[self.loss_name]
            if out.shape != ():
                raise ModelError(f"{self.source}: loss: '{self.loss_name}' has shape {out.shape}, not a scalar")
            return out

        return loss

    def _run(self, ops, env, params, indices, path, perturb):
        for k, node in enumerate(ops):
            where = f"{path}[{k}]"
            if "repeat" in node:
                self._run_repeat(node, env, params, indices, where, perturb)
            else:
                self._run_op(node, env, params, indices, where, perturb)

    def _run_repeat(self, node, env, params, indices, where, perturb):
        extra = set(node) - _REPEAT_KEYS
        if extra:
            raise ModelError(f"{self.source}: {where}: extra field '{sorted(extra)[0]}'")
        carry = node["carry"]
        if carry not in env:
            raise ModelError(f"{self.source}: {where}.carry: '{carry}' is not defined before the block")
        var = node.get("index", "i")
        value = env[carry]
        for it in range(self.resolve_int(node["repeat"], f"{where}.repeat")):
            inner = {**indices, var: it}
            local = dict(env)  # names defined inside an iteration stay local to it
            local[carry] = value
            self._run(node["ops"], local, params, inner, f"{where}.ops", perturb)
            out = _subst(node["yield"], inner)
            if out not in local:
                raise ModelError(f"{self.source}: {where}.yield: '{out}' is not defined in iteration {it}")
            value = local[out]
        env[carry] = value

    def _run_op(self, node, env, params, indices, where, perturb):
        name = node.get("op")
        op = OPS.get(name)
        if op is None:
            raise ModelError(f"{self.source}: {where}.op: unknown op {name!r}")
        extra = set(node) - _NODE_KEYS - set(op.attrs)
        if extra:
            raise ModelError(f"{self.source}: {where}: extra field '{sorted(extra)[0]}' for op '{name}'")
        inputs = node.get("inputs", [])
        if not op.min_inputs <= len(inputs) <= op.max_inputs:
            raise ModelError(f"{self.source}: {where}.inputs: '{name}' takes {op.min_inputs}"
                             f"{'' if op.min_inputs == op.max_inputs else '..' + str(op.max_inputs)} inputs, "
                             f"got {len(inputs)}")
        xs = []
        for n, raw in enumerate(inputs):
            ref = _subst(raw, indices)
            if ref in env:
                x = env[ref]
                if perturb == name and jnp.issubdtype(x.dtype, jnp.floating):
                    x = scale_grad(x, PERTURB_FACTOR)
            elif ref in params:
                x = params[ref]
            else:
                raise ModelError(f"{self.source}: {where}.inputs[{n}]: '{ref}' is neither a value nor a parameter")
            xs.append(x)
        attrs = {}
        for key, (kind, default) in op.attrs.items():
            if key not in node:
                if default is REQUIRED:
                    raise ModelError(f"{self.source}: {where}: op '{name}' needs attribute '{key}'")
                attrs[key] = default
            elif kind == "int":
                attrs[key] = self.resolve_int(node[key], f"{where}.{key}")
            elif kind == "ints":
                attrs[key] = tuple(self.resolve_int(d, f"{where}.{key}[{i}]") for i, d in enumerate(node[key]))
            elif kind == "float":
                v = node[key]
                if isinstance(v, str):
                    attrs[key] = float(self.resolve_int(v, f"{where}.{key}"))
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    attrs[key] = float(v)
                else:
                    raise ModelError(f"{self.source}: {where}.{key}: expected a number, got {v!r}")
            else:
                attrs[key] = bool(node[key])
        if name == "attention" and attrs["kv_heads"] is None:
            attrs["kv_heads"] = attrs["heads"]
        if name in ("add", "mul") and tuple(xs[1].shape) != tuple(xs[0].shape)[xs[0].ndim - xs[1].ndim:]:
            raise ModelError(f"{self.source}: {where}: '{name}' of {list(xs[0].shape)} and {list(xs[1].shape)}: "
                             "the right shape must be a suffix of the left")
        out = _subst(node["output"], indices)
        env[out] = op.fn(xs, attrs)

    def first_attrs(self, op_name):
        """The resolved attributes of the first `op_name` node (hyperparameters for the hand-written models)."""
        def walk(ops, path):
            for k, node in enumerate(ops):
                if "repeat" in node:
                    found = walk(node["ops"], f"{path}[{k}].ops")
                    if found is not None:
                        return found
                elif node.get("op") == op_name:
                    out = {}
                    for key, (kind, default) in OPS[op_name].attrs.items():
                        v = node.get(key, None if default is REQUIRED else default)
                        if kind == "int" and v is not None:
                            v = self.resolve_int(v, f"{path}[{k}].{key}")
                        elif kind == "float" and v is not None:
                            v = float(self.resolve_int(v, f"{path}[{k}].{key}")) if isinstance(v, str) else float(v)
                        out[key] = v
                    return out
            return None
        return walk(self.spec["graph"], "graph")


def load_model(path) -> Model:
    """Reads and parses a model file."""
    try:
        with open(path) as f:
            spec = json.load(f)
    except OSError as e:
        raise ModelError(f"{path}: cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}:{e.lineno}:{e.colno}: not JSON: {e.msg}") from None
    return Model(spec, str(path))
