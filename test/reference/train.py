"""The training step of docs/TRAINING.md in JAX and numpy: micro-batch accumulation, global norm, clipping,
learning-rate schedule and AdamW, in float32 or float64 (jax x64)."""

import math

import jax
import numpy as np

TRAIN_KEYS = ("seed", "lr", "warmup_steps", "decay", "decay_steps", "min_lr",
              "beta1", "beta2", "eps", "weight_decay", "grad_clip")


def learning_rate(train: dict, s: int) -> float:
    """lr of step s (0-based): linear warm-up, then constant or cosine decay to min_lr at decay_steps."""
    lr, warmup = float(train["lr"]), int(train["warmup_steps"])
    if s < warmup:
        return lr * (s + 1) / warmup
    if train["decay"] == "constant":
        return lr
    if train["decay"] != "cosine":
        raise ValueError(f"train.decay: unknown schedule '{train['decay']}' (cosine or constant)")
    min_lr = float(train["min_lr"])
    p = min(1.0, (s - warmup) / max(1, int(train["decay_steps"]) - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * p))


def global_norm(grads: dict, order) -> float:
    """sqrt of the sum over parameters (in `order`) of each tensor's sum of squares, in double."""
    total = 0.0
    for name in order:
        g = np.asarray(grads[name], dtype=np.float64).ravel()
        total += float(np.dot(g, g))
    return math.sqrt(total)


_COMPILED = {}  # (loss function, M) -> jitted gradient; Trainers of the same model share one compilation


def micro_batch_grad(loss_fn, M: int):
    """jit(grad) of one micro-batch: (params, tokens, targets) -> (gradient of loss/M, loss)."""
    key = (id(loss_fn), M)
    if key not in _COMPILED:
        inv_m = 1.0 / M

        def scaled(p, x, y):
            loss = loss_fn(p, x, y)
            # The backward of each micro-batch starts from d(step loss)/d(mb loss) = 1/M.
            return loss * jax.numpy.asarray(inv_m, loss.dtype), loss

        _COMPILED[key] = (loss_fn, jax.jit(jax.grad(scaled, has_aux=True)))
    return _COMPILED[key][1]


class Trainer:
    """Trains `params` (name -> numpy array, declaration order) with `loss_fn(params, tokens, targets)`."""

    def __init__(self, loss_fn, params: dict, train: dict, batches, dtype=np.float32):
        missing = [k for k in TRAIN_KEYS if k not in train]
        if missing:
            raise ValueError(f"train section lacks {missing}")
        self.train = train
        self.batches = batches
        self.dtype = np.dtype(dtype)
        self.order = list(params)
        self.params = {k: np.asarray(v, dtype=self.dtype) for k, v in params.items()}
        self.m = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._grad = micro_batch_grad(loss_fn, batches.M)

    def gradients(self, s: int):
        """(loss of step s, gradient of that loss per parameter), accumulated over micro-batches in order."""
        M = self.batches.M
        acc, losses = None, []
        for j in range(M):
            x, y = self.batches.micro_batch(s, j)
            g, loss = self._grad(self.params, x, y)
            g = {k: np.asarray(v) for k, v in g.items()}
            acc = g if acc is None else {k: acc[k] + g[k] for k in self.order}
            losses.append(float(loss))
        # docs/TRAINING.md: the exact sum rounded once (math.fsum), as pipec's.
        return math.fsum(losses) / M, acc

    def step(self, s: int):
        """Runs step s; returns its metrics {step, loss, lr, grad_norm} (grad_norm before clipping)."""
        t = self.train
        loss, grads = self.gradients(s)
        norm = global_norm(grads, self.order)
        clip = float(t["grad_clip"])
        if clip > 0 and norm > clip:
            scale = clip / norm
            grads = {k: (g * scale).astype(self.dtype) for k, g in grads.items()}
        lr = learning_rate(t, s)
        b1, b2, eps, wd = float(t["beta1"]), float(t["beta2"]), float(t["eps"]), float(t["weight_decay"])
        c1, c2 = 1.0 - b1 ** (s + 1), 1.0 - b2 ** (s + 1)
        for k in self.order:
            g, p = grads[k], self.params[k]
            self.m[k] = b1 * self.m[k] + (1.0 - b1) * g
            self.v[k] = b2 * self.v[k] + (1.0 - b2) * g * g
            m_hat, v_hat = self.m[k] / c1, self.v[k] / c2
            decay = wd if p.ndim >= 2 else 0.0  # biases and norm gains are not decayed
            self.params[k] = (p - lr * (m_hat / (np.sqrt(v_hat) + eps) + decay * p)).astype(self.dtype)
        return {"step": s, "loss": loss, "lr": lr, "grad_norm": norm}

    def run(self, steps: int):
        return [self.step(s) for s in range(steps)]
