"""The parameter initialiser of docs/TRAINING.md in numpy, and loading initial parameters from safetensors."""

import numpy as np

import safetensors

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def fnv1a64(data: bytes) -> int:
    """FNV-1a, 64 bits, of `data`: the per-parameter key."""
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & MASK64
    return h


def splitmix64(z):
    """The splitmix64 finaliser on a uint64 numpy array (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def splitmix64_int(z: int) -> int:
    """The same finaliser on a Python int, written independently of numpy (the self-test's oracle)."""
    z = (z + GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def normal_values(seed: int, name: str, count: int, std: float) -> np.ndarray:
    """The `count` float64 values of a normal(0, std) parameter called `name`."""
    base = np.uint64((seed & MASK64) ^ fnv1a64(name.encode("utf-8")))
    i = np.arange(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        # `^` binds looser than `*`: seed ^ key ^ ((2i) * GOLDEN).
        x1 = splitmix64(base ^ ((np.uint64(2) * i) * np.uint64(GOLDEN)))
        x2 = splitmix64(base ^ ((np.uint64(2) * i + np.uint64(1)) * np.uint64(GOLDEN)))
    u1 = ((x1 >> np.uint64(11)) + np.uint64(1)).astype(np.float64) * 2.0 ** -53
    u2 = (x2 >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    return std * np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def normal_value_scalar(seed: int, name: str, i: int, std: float) -> float:
    """Element `i` of the same parameter, in plain Python integers and `math` (the oracle)."""
    import math
    base = (seed & MASK64) ^ fnv1a64(name.encode("utf-8"))
    x1 = splitmix64_int(base ^ ((2 * i * GOLDEN) & MASK64))
    x2 = splitmix64_int(base ^ (((2 * i + 1) * GOLDEN) & MASK64))
    u1 = ((x1 >> 11) + 1) * 2.0 ** -53
    u2 = (x2 >> 11) * 2.0 ** -53
    return std * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def init_param(seed: int, name: str, shape, init: str, std: float = None, n_layer: int = None,
               dtype=np.float32) -> np.ndarray:
    """One parameter as docs/TRAINING.md and docs/MODEL_FORMAT.md define it.

    `scaled_normal` uses std / sqrt(2 * n_layer) (GPT-2's residual projections).
    The double values are rounded once to `dtype`.
    """
    shape = tuple(int(d) for d in shape)
    count = int(np.prod(shape, dtype=np.int64))
    if init == "zeros":
        return np.zeros(shape, dtype=dtype)
    if init == "ones":
        return np.ones(shape, dtype=dtype)
    if init == "normal":
        sigma = float(std)
    elif init == "scaled_normal":
        if not n_layer:
            raise ValueError(f"parameter '{name}': scaled_normal needs config.n_layer")
        sigma = float(std) / np.sqrt(2.0 * n_layer)
    else:
        raise ValueError(f"parameter '{name}': unknown init '{init}'")
    return normal_values(seed, name, count, sigma).astype(dtype).reshape(shape)


def init_params(model, dtype=np.float32) -> dict:
    """Every parameter of a model_json.Model, in declaration order."""
    seed = int(model.train["seed"])
    n_layer = model.config.get("n_layer")
    return {name: init_param(seed, name, p.shape, p.init, p.std, n_layer, dtype)
            for name, p in model.params.items()}


def load_params(path, model, dtype=np.float32) -> dict:
    """Initial parameters from a safetensors file, checked against the model's names and shapes."""
    tensors = safetensors.load(path)
    missing = [n for n in model.params if n not in tensors]
    extra = [n for n in tensors if n not in model.params]
    if missing or extra:
        raise ValueError(f"{path}: parameters do not match the model: missing {missing[:5]}, extra {extra[:5]}")
    out = {}
    for name, p in model.params.items():
        t = tensors[name]
        if tuple(t.shape) != tuple(p.shape):
            raise ValueError(f"{path}: '{name}' has shape {list(t.shape)}, the model declares {list(p.shape)}")
        out[name] = t.astype(dtype)
    return out
