#!/usr/bin/env python3
"""Self-test of the JAX reference, without pipec: safetensors, the initialiser, the batching, the schedule and
AdamW, and the JSON-built models against the hand-written GPT-2 and Llama (float64, ~1e-12). Exits non-zero on
any failure; this is what CI runs until `pipec reference-train` exists."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pyenv  # noqa: E402

pyenv.use_repo_venv(__file__)
pyenv.require_modules()

import math  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

# The self-test compiles a dozen small graphs: XLA's backend optimisation buys nothing there but compile time.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import data  # noqa: E402
import handwritten  # noqa: E402
import json  # noqa: E402
import init  # noqa: E402
import model_json  # noqa: E402
import safetensors  # noqa: E402
import train  # noqa: E402
from report import Report, normwise  # noqa: E402

HERE = Path(__file__).resolve().parent
FIXTURES = [HERE / "testdata" / "gpt-micro.json", HERE / "testdata" / "llama-micro.json"]
# The repository's own tiny models are checked too once they exist.
REPO_MODELS = [pyenv.REPO / "models" / "gpt-tiny.json", pyenv.REPO / "models" / "llama-tiny.json"]

failures = []


def check(cond, what):
    print(f"  {'ok  ' if cond else 'FAIL'} {what}")
    if not cond:
        failures.append(what)


def expect_error(fn, exc, fragment, what):
    try:
        fn()
    except exc as e:
        check(fragment in str(e), f"{what}: {e}")
        return
    check(False, f"{what}: no error raised")


def test_safetensors(tmp):
    print("safetensors")
    rng = np.random.default_rng(1)
    tensors = {"z.weight": rng.standard_normal((3, 5)).astype(np.float32),
               "a.bias": rng.standard_normal(7),
               "ids": rng.integers(-5, 5, (2, 3)).astype(np.int32),
               "bytes": rng.integers(0, 255, 9).astype(np.uint8),
               "scalar": np.array(2.5, dtype=np.float32),
               "empty": np.zeros((0, 4), dtype=np.float32)}
    for sort_keys in (False, True):
        path = tmp / f"t{int(sort_keys)}.safetensors"
        safetensors.save(path, tensors, metadata={"format": "np"}, sort_keys=sort_keys)
        back, meta = safetensors.load(path, with_metadata=True)
        order = sorted(tensors) if sort_keys else list(tensors)
        check(list(back) == order, f"header order kept ({'alphabetical' if sort_keys else 'insertion'})")
        check(all(back[k].dtype == v.dtype and back[k].shape == v.shape and np.array_equal(back[k], v)
                  for k, v in tensors.items()), "every tensor round-trips bit for bit, dtype and shape")
        check(meta == {"format": "np"}, "metadata round-trips")
        n = int.from_bytes(path.read_bytes()[:8], "little")
        check((8 + n) % 8 == 0, "data starts 8-byte aligned")
    raw = (tmp / "t0.safetensors").read_bytes()
    (tmp / "cut.safetensors").write_bytes(raw[:-3])
    expect_error(lambda: safetensors.load(tmp / "cut.safetensors"), safetensors.SafetensorsError,
                 "data_offsets", "a truncated file is rejected")
    (tmp / "short.safetensors").write_bytes(raw[:5])
    expect_error(lambda: safetensors.load(tmp / "short.safetensors"), safetensors.SafetensorsError,
                 "too short", "a 5-byte file is rejected")


def test_init(tmp):
    print("init")
    check(init.fnv1a64(b"") == 0xCBF29CE484222325 and init.fnv1a64(b"a") == 0xAF63DC4C8601EC8C,
          "fnv1a64 test vectors")
    check(init.splitmix64_int(0) == 0xE220A8397B1DCDAF and int(init.splitmix64(np.uint64(0))) == 0xE220A8397B1DCDAF,
          "splitmix64 test vector (first output of seed 0)")
    seed, name = 1337, "h.3.attn.c_attn.weight"
    vec = init.normal_values(seed, name, 5000, 0.02)
    idx = [0, 1, 2, 777, 4999]
    # numpy's vectorised log/cos may differ from libm's by an ulp; the integer part must agree exactly.
    oracle = [init.normal_value_scalar(seed, name, i, 0.02) for i in idx]
    check(all(abs(vec[i] - o) <= 4 * np.spacing(abs(o)) for i, o in zip(idx, oracle)),
          "numpy uint64 arithmetic matches the Python-int oracle")
    big = (1 << 40) + 12345
    with np.errstate(over="ignore"):
        x = np.uint64(seed ^ init.fnv1a64(name.encode())) ^ (np.uint64(2 * big) * np.uint64(init.GOLDEN))
    oracle = init.splitmix64_int((seed ^ init.fnv1a64(name.encode())) ^ ((2 * big * init.GOLDEN) & init.MASK64))
    check(int(init.splitmix64(x)) == oracle, "wrapping products of large element indices match the oracle")
    again = init.normal_values(seed, name, 5000, 0.02)
    check(np.array_equal(vec, again), "deterministic: the same (seed, name) gives the same bits")
    check(not np.array_equal(vec, init.normal_values(seed, name + "x", 5000, 0.02)), "another name, other values")
    check(not np.array_equal(vec, init.normal_values(seed + 1, name, 5000, 0.02)), "another seed, other values")
    many = init.normal_values(7, "w", 200000, 1.0)
    check(abs(many.mean()) < 0.01 and abs(many.std() - 1.0) < 0.01, f"normal(0,1): mean {many.mean():.4f}, "
          f"std {many.std():.4f}")
    sc = init.init_param(7, "w", (400, 500), "scaled_normal", 0.02, n_layer=8)
    check(abs(sc.std() / (0.02 / 4.0) - 1) < 0.01 and sc.dtype == np.float32, "scaled_normal: std/sqrt(2 n_layer)")
    check(np.array_equal(init.init_param(1, "b", (3,), "zeros"), np.zeros(3)) and
          np.array_equal(init.init_param(1, "g", (3,), "ones"), np.ones(3)), "zeros and ones")
    model = model_json.load_model(FIXTURES[0])
    p32 = init.init_params(model, np.float32)
    check(list(p32) == list(model.params), "parameters come in declaration order")
    safetensors.save(tmp / "init.safetensors", p32)
    loaded = init.load_params(tmp / "init.safetensors", model, np.float32)
    check(all(np.array_equal(loaded[k], p32[k]) for k in p32), "initial parameters load back from safetensors")
    p64 = init.init_params(model, np.float64)
    check(all(np.array_equal(p64[k].astype(np.float32), p32[k]) for k in p32), "float32 is float64 rounded once")


def test_data(tmp):
    print("data")
    tokens = (np.arange(1000) * 7 % 256).astype(np.int32)
    b = data.Batches(tokens, batch=3, seq=8, microbatches=2)
    check(b.per_epoch == 999 // 24, "per_epoch = (N - 1) / (B*T)")
    x, y = b.micro_batch(2, 1)
    start = (5 % b.per_epoch) * 24
    check(np.array_equal(x, tokens[start:start + 24].reshape(3, 8)) and
          np.array_equal(y, tokens[start + 1:start + 25].reshape(3, 8)), "micro-batch j of step s is g = s*M + j")
    x0, _ = b.global_batch(0)
    xw, _ = b.global_batch(b.per_epoch)
    check(np.array_equal(x0, xw), "batches wrap around at the end of the file")
    (tmp / "text.txt").write_bytes(bytes(range(256)) * 2)
    check(np.array_equal(data.load_tokens(tmp / "text.txt")[:256], np.arange(256)), "a text file's tokens are bytes")
    header = np.zeros(256, dtype="<i4")
    header[:3] = [data.LLMC_MAGIC, 1, 5]
    (tmp / "shard.bin").write_bytes(header.tobytes() + np.array([1, 60000, 3, 4, 5], "<u2").tobytes())
    check(list(data.load_tokens(tmp / "shard.bin")) == [1, 60000, 3, 4, 5], "an llm.c shard's tokens are uint16")


def test_schedule_and_adamw():
    print("schedule, global norm, clipping, AdamW")
    t = {"seed": 0, "lr": 1e-3, "warmup_steps": 4, "decay": "cosine", "decay_steps": 14, "min_lr": 1e-4,
         "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "grad_clip": 1.0}
    lr = [train.learning_rate(t, s) for s in range(20)]
    check(lr[0] == 1e-3 / 4 and lr[3] == 1e-3, "linear warm-up reaches lr at step warmup-1")
    check(abs(lr[4] - 1e-3) < 1e-18 and abs(lr[9] - 5.5e-4) < 1e-15 and lr[14] == lr[19] == 1e-4,
          "cosine: lr at warm-up end, the mean half way, min_lr at and after decay_steps")
    check(train.learning_rate({**t, "decay": "constant"}, 10) == 1e-3, "constant decay keeps lr")

    # One step on a problem small enough to write out by hand: loss = sum(c * p) per parameter.
    rng = np.random.default_rng(3)
    w0, b0 = rng.standard_normal((2, 3)), rng.standard_normal(3)
    cw, cb = rng.standard_normal((2, 3)), rng.standard_normal(3)

    class One:
        M = 1

        @staticmethod
        def micro_batch(s, j):
            return np.zeros((1, 1), np.int32), np.zeros((1, 1), np.int32)

    def loss_fn(p, x, y):
        return jnp.sum(cw * p["w"]) + jnp.sum(cb * p["b"])

    tr = train.Trainer(loss_fn, {"w": w0, "b": b0}, t, One(), np.float64)
    m = tr.step(0)
    norm = math.sqrt(float(np.sum(cw * cw) + np.sum(cb * cb)))
    check(abs(m["grad_norm"] - norm) < 1e-14 and m["lr"] == 2.5e-4, "grad_norm before clipping; lr of step 0")
    scale = 1.0 / norm if norm > 1.0 else 1.0
    expect = {}
    for k, p0, g, wd in (("w", w0, cw * scale, 0.1), ("b", b0, cb * scale, 0.0)):
        mm, vv = 0.1 * g, 0.05 * g * g
        mh, vh = mm / 0.1, vv / (1 - 0.95)
        expect[k] = p0 - 2.5e-4 * (mh / (np.sqrt(vh) + 1e-8) + wd * p0)
    check(norm > 1.0 and all(np.allclose(tr.params[k], expect[k], rtol=0, atol=1e-15) for k in expect),
          "clipped AdamW step matches the hand computation (decay on 2-D weights only)")


def perturbed_params(model, dtype, seed=0):
    """Initial parameters plus random noise, so biases and gains are non-zero and non-one."""
    rng = np.random.default_rng(seed)
    return {k: (v + 0.05 * rng.standard_normal(v.shape)).astype(dtype)
            for k, v in init.init_params(model, np.float64).items()}


def random_batch(model, seed=1):
    rng = np.random.default_rng(seed)
    vocab = model.config.get("vocab", 256)
    shape = (model.batch, model.seq)
    return rng.integers(0, vocab, shape).astype(np.int32), rng.integers(0, vocab, shape).astype(np.int32)


def test_models(path, full=True):
    """The two JAX models agree; with `full`, also in float32, when perturbed, over training steps."""
    print(f"JSON-built vs hand-written: {path.relative_to(pyenv.REPO)}")
    model = model_json.load_model(path)
    fam, hw, note = handwritten.loss_fn_for(model)
    if note:
        print("  note: " + note)
    x, y = random_batch(model)
    p64 = perturbed_params(model, np.float64)
    json_loss = model.loss_fn()
    hw_vg = jax.jit(jax.value_and_grad(hw))
    lj, gj = jax.jit(jax.value_and_grad(json_loss))(p64, x, y)
    lh, gh = hw_vg(p64, x, y)
    gnorm = min(float(jnp.linalg.norm(g)) for g in gh.values())
    check(math.isfinite(float(lj)) and gnorm > 0, f"loss {float(lj):.6f} finite, every gradient non-zero")
    rep = Report()
    rep.add("loss", fam, abs(float(lj) - float(lh)) / abs(float(lh)), 1e-12)
    rep.add_gradients(fam, gj, gh, 1e-12)
    rep.print()
    check(rep.ok, f"float64: model_json and {fam}.py agree on loss and every gradient to 1e-12")
    if not full:
        return

    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    l32, g32 = jax.jit(jax.value_and_grad(json_loss))(p32, x, y)
    check(l32.dtype == jnp.float32 and all(g.dtype == jnp.float32 for g in g32.values()),
          "float32 parameters give a float32 loss and gradients (no silent promotion)")
    err = max(normwise(g32[k], gh[k]) for k in gh)
    check(abs(float(l32) - float(lh)) / float(lh) < 1e-5 and err < 1e-4,
          f"float32 within float32 accuracy of float64 (gradients {err:.1e})")

    op = "gelu" if fam == "gpt2" else "rope"
    lp, gp = jax.jit(jax.value_and_grad(model.loss_fn(perturb_vjp=op)))(p64, x, y)
    bad = Report()
    bad.add_gradients(fam, gp, gh, 1e-10)
    check(not bad.ok and bad.rows[0][2] > 1e-5, f"a 1e-3 perturbation of {op}'s VJP is caught "
          f"(largest gradient error {bad.rows[0][2]:.1e})")
    check(float(lp) == float(lj), "the perturbation leaves the forward alone")

    # Training: the same three steps, two micro-batches, from the two models.
    toks = np.random.default_rng(5).integers(0, 256, 4000).astype(np.int32)
    batches = data.Batches(toks, model.batch, model.seq, 2)
    runs = [train.Trainer(fn, p64, model.train, batches, np.float64).run(3) for fn in (json_loss, hw)]
    curve = max(abs(a["loss"] - b["loss"]) / b["loss"] for a, b in zip(*runs))
    check(curve < 1e-12, f"3 AdamW steps with 2 micro-batches: loss curves agree ({curve:.1e})")

    # Accumulation: the step's gradient is the mean of the micro-batch gradients (the gradient of the mean loss
    # over the global batch), here from the hand-written model's plain value_and_grad.
    tr = train.Trainer(json_loss, p64, model.train, batches, np.float64)
    loss, acc = tr.gradients(0)
    (l0, g0), (l1, g1) = (hw_vg(p64, *batches.micro_batch(0, j)) for j in range(2))
    lb = (float(l0) + float(l1)) / 2
    gb = {k: (np.asarray(g0[k]) + np.asarray(g1[k])) / 2 for k in g0}
    err = max(normwise(acc[k], gb[k]) for k in gb)
    check(abs(loss - float(lb)) < 1e-12 and err < 1e-12, f"micro-batch accumulation scales by 1/M ({err:.1e})")

    # The hand-written model also reads the other Hugging Face spellings of the same names.
    if fam == "llama":
        renamed = {k[len("model."):] if k.startswith("model.") else k: v for k, v in p64.items()}
    else:
        renamed = {("transformer." + k): v for k, v in p64.items()}
    check(abs(float(jax.jit(hw)(renamed, x, y)) - float(lh)) < 1e-13, f"{fam}.py reads the other HF prefix too")


def test_other_ops():
    print("ops outside gpt-tiny/llama-tiny: reshape, transpose, softmax, slice, errors")
    spec = {"name": "ops", "config": {"batch": 2, "seq": 3, "v": 6}, "train": {},
            "inputs": {"tokens": {"shape": ["batch", "seq"], "dtype": "i32"},
                       "targets": {"shape": ["batch", "seq"], "dtype": "i32"}},
            "params": {"w": {"shape": ["v", "v"], "init": "normal", "std": 1.0},
                       "w4": {"shape": [4, "v"], "init": "normal", "std": 1.0}},
            "graph": [{"op": "embedding", "inputs": ["w", "tokens"], "output": "e"},
                      {"op": "reshape", "inputs": ["e"], "shape": ["batch", "seq", 2, 3], "output": "r"},
                      {"op": "transpose", "inputs": ["r"], "perm": [1, 2, 0, 3], "output": "t"},
                      {"op": "reshape", "inputs": ["t"], "shape": ["batch", "seq", "v"], "output": "f"},
                      {"op": "softmax", "inputs": ["f"], "output": "s"},
                      {"op": "slice", "inputs": ["s"], "axis": -1, "offset": 1, "size": 4, "output": "c"},
                      {"op": "matmul", "inputs": ["c", "w4"], "output": "pre"},
                      {"op": "add", "inputs": ["pre", "f"], "output": "logits"},
                      {"op": "cross_entropy", "inputs": ["logits", "targets"], "output": "loss"}],
            "loss": "loss"}
    model = model_json.Model(spec, "ops.json")
    rng = np.random.default_rng(9)
    p = {"w": rng.standard_normal((6, 6)), "w4": rng.standard_normal((4, 6))}
    x = rng.integers(0, 6, (2, 3)).astype(np.int32)
    y = rng.integers(0, 6, (2, 3)).astype(np.int32)

    def by_hand(p):
        e = p["w"][x]
        f = jnp.transpose(e.reshape(2, 3, 2, 3), (1, 2, 0, 3)).reshape(2, 3, 6)  # not an involution
        s = jnp.exp(f) / jnp.sum(jnp.exp(f), -1, keepdims=True)
        logits = s[..., 1:5] @ p["w4"] + f
        lse = jnp.log(jnp.sum(jnp.exp(logits), -1))
        return jnp.mean(lse - jnp.take_along_axis(logits, y[..., None], -1)[..., 0])

    la, ga = jax.value_and_grad(model.loss_fn())(p, x, y)
    lb, gb = jax.value_and_grad(by_hand)(p)
    check(abs(float(la - lb)) < 1e-13 and all(normwise(ga[k], gb[k]) < 1e-13 for k in p),
          "reshape, transpose, softmax, slice (negative axis) match a direct formula")

    def broken(**change):
        s = {**spec, "graph": [dict(n) for n in spec["graph"]]}
        s["graph"][1].update(change)
        return lambda: model_json.Model(s, "ops.json").loss_fn()(p, x, y)

    expect_error(broken(op="conv2d"), model_json.ModelError, "graph[1].op: unknown op 'conv2d'", "unknown op")
    expect_error(broken(inputs=["nope"]), model_json.ModelError, "graph[1].inputs[0]: 'nope'", "undefined name")
    expect_error(broken(colour=1), model_json.ModelError, "graph[1]: extra field 'colour'", "extra field")
    expect_error(broken(shape=["batch", "seq", "dmodel"]), model_json.ModelError, "'dmodel' is not a config entry",
                 "unknown config name")

    # GPT-2's parameter names on another architecture: no hand-written model is claimed for it.
    gpt = json.loads((pyenv.REPO / "models" / "gpt-tiny.json").read_text())

    def swap(graph):
        for n in graph:
            if "repeat" in n:
                swap(n["ops"])
            elif n.get("op") == "gelu":
                n["op"] = "silu"
    swap(gpt["graph"])
    expect_error(lambda: handwritten.loss_fn_for(model_json.Model(gpt, "silu-gpt.json")), ValueError,
                 "has gpt2's parameter names but not the architecture of gpt2.py (uses silu; lacks gelu)",
                 "a GPT-2-named model with silu")


def main():
    t0 = time.time()
    print(f"selftest: JAX {jax.__version__}, numpy {np.__version__}, {sys.executable}")
    with tempfile.TemporaryDirectory(prefix="pipec-ref-selftest-") as d:
        tmp = Path(d)
        test_safetensors(tmp)
        test_init(tmp)
        test_data(tmp)
    test_schedule_and_adamw()
    test_other_ops()
    print(f"({time.time() - t0:.1f} s)")
    for path in FIXTURES:
        test_models(path, full=True)
        print(f"({time.time() - t0:.1f} s)")
    for path in [m for m in REPO_MODELS if m.exists()]:
        test_models(path, full=False)
        print(f"({time.time() - t0:.1f} s)")
    missing = [str(m.relative_to(pyenv.REPO)) for m in REPO_MODELS if not m.exists()]
    if missing:
        print(f"(not there yet, not checked: {', '.join(missing)})")
    print(f"\nselftest: {'PASS' if not failures else f'FAIL ({len(failures)})'} in {time.time() - t0:.1f} s")
    for f in failures:
        print(f"  failed: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
