"""One jitted JAX training step of a pipec model description: M micro-batches of gradient accumulation, global
norm, clipping and AdamW (docs/TRAINING.md), the whole step in one XLA program, timed per step."""

import time

import jax
import jax.numpy as jnp
import numpy as np


def make_train_step(loss_fn, train: dict, microbatches: int, devices=None):
    """jit(step)(params, m, v, t, lr, xs, ys) -> (params, m, v, loss, grad_norm), xs/ys int32 [M, B, T].

    What a JAX user writes for pipec's step: the micro-batches are a lax.scan whose backward starts from
    d(step loss)/d(micro-batch loss) = 1/M and accumulates in ascending order; norm, clip and AdamW as
    docs/TRAINING.md (the norm in float32 here, not double: a speed benchmark, not the numerics reference).
    The learning rate comes from the host (train.learning_rate), so one compilation serves every step.

    With `devices` (a list of D > 1 devices), data parallelism: each device scans M/D of the micro-batches
    (xs, ys sharded on axis 0), the gradients and losses are summed across devices (psum) and every device
    runs the same AdamW update on its replica of the parameters.
    """
    b1, b2 = float(train["beta1"]), float(train["beta2"])
    eps, wd, clip = float(train["eps"]), float(train["weight_decay"]), float(train["grad_clip"])
    inv_m = 1.0 / microbatches
    dp = devices is not None and len(devices) > 1

    def scaled_loss(p, x, y):
        loss = loss_fn(p, x, y)
        return loss * jnp.asarray(inv_m, loss.dtype), loss

    grad_fn = jax.grad(scaled_loss, has_aux=True)

    def step(params, m, v, t, lr, xs, ys):
        def one(acc, xy):
            g, loss = grad_fn(params, xy[0], xy[1])
            return jax.tree_util.tree_map(jnp.add, acc, g), loss

        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        grads, losses = jax.lax.scan(one, zeros, (xs, ys))
        loss = jnp.sum(losses)
        if dp:
            grads, loss = jax.lax.psum((grads, loss), "d")
        loss = loss / microbatches
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grads)))
        scale = jnp.where((clip > 0) & (norm > clip), clip / norm, 1.0)
        c1, c2 = 1.0 - b1 ** t, 1.0 - b2 ** t
        new_p, new_m, new_v = {}, {}, {}
        for k, p in params.items():
            g = grads[k] * scale
            new_m[k] = b1 * m[k] + (1.0 - b1) * g
            new_v[k] = b2 * v[k] + (1.0 - b2) * g * g
            decay = wd if p.ndim >= 2 else 0.0  # biases and norm gains are not decayed
            new_p[k] = p - lr * ((new_m[k] / c1) / (jnp.sqrt(new_v[k] / c2) + eps) + decay * p)
        return new_p, new_m, new_v, loss, norm

    if dp:
        from jax.sharding import Mesh, PartitionSpec as P
        rep = P()
        step = jax.shard_map(step, mesh=Mesh(np.array(devices), ("d",)),
                             in_specs=(rep, rep, rep, rep, rep, P("d"), P("d")), out_specs=rep)
    # Donating the state lets XLA update parameters and moments in place, as pipec's arena does.
    return jax.jit(step, donate_argnums=(0, 1, 2))


_COMPILED = {}  # (model, M, D) -> the compiled step: repeats of the benchmark compile once


def time_jax(model, batches, steps: int, warmup: int, lr_of, devices: int = 1):
    """Trains `model` (a test/reference model_json.Model) for warmup + steps steps from pipec's initialiser.

    With devices = D > 1, data parallelism over the first D of jax.devices() (make_train_step).
    Returns {compile_s (about 0 when an earlier call compiled the step), step_s: [seconds of each timed
    step], losses: [loss of every step]}. Compilation is done ahead of time and excluded; each timed step
    includes building its [M, B, T] batch on the host (microseconds) and waits for the step's results.
    """
    import init  # test/reference

    M = batches.M
    devs = jax.devices()[:devices]
    if len(devs) != devices or M % devices:
        raise ValueError(f"data parallelism over {devices} devices needs that many (JAX has {len(jax.devices())}) "
                         f"and M = {M} divisible by it")
    params = {k: jnp.asarray(v) for k, v in init.init_params(model, np.float32).items()}
    m = {k: jnp.zeros_like(v) for k, v in params.items()}
    v = {k: jnp.zeros_like(p) for k, p in params.items()}
    if devices > 1:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        replicated = NamedSharding(Mesh(np.array(devs), ("d",)), P())
        params, m, v = (jax.device_put(t, replicated) for t in (params, m, v))

    def batch(s):
        xy = [batches.micro_batch(s, j) for j in range(M)]
        return np.stack([x for x, _ in xy]), np.stack([y for _, y in xy])

    xs, ys = batch(0)
    t0 = time.perf_counter()
    key = (id(model), M, devices)
    if key not in _COMPILED:
        step = make_train_step(model.loss_fn(), model.train, M, devs)
        _COMPILED[key] = step.lower(params, m, v, np.float32(1), np.float32(lr_of(0)), xs, ys).compile()
    compiled = _COMPILED[key]
    compile_s = time.perf_counter() - t0
    losses, step_s = [], []
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        xs, ys = batch(s)
        params, m, v, loss, _ = compiled(params, m, v, np.float32(s + 1), np.float32(lr_of(s)), xs, ys)
        loss = float(loss)  # waits for the step
        dt = time.perf_counter() - t0
        losses.append(loss)
        if s >= warmup:
            step_s.append(dt)
    return {"compile_s": compile_s, "step_s": step_s, "losses": losses}
