#!/usr/bin/env python3
"""Times the JAX step of bench/jax_step.py in a process of its own, so that it can have XLA flags of its own
(data parallelism over D host devices slows single-device programs in the same process); prints one JSON line.

    python3 bench/jax_worker.py --model M --data F --microbatches 8 --steps 20 --warmup 3 --devices 2 --threads 2
"""

import argparse
import json
import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "test" / "reference")]


def xla_flags(threads: int, devices: int = 1) -> str:
    """XLA_FLAGS for `threads` intra-op threads and `devices` host devices.

    XLA's CPU thread pool is as large as the CPUs the process may use (cpu_vs_jax.py pins it); multi-threaded
    Eigen off makes each op single-threaded. `intra_op_parallelism_threads=N`, the commonly quoted setting, is
    not a `--` flag: XLA reads no flag after it (a device count placed after it was ignored), so it goes last.
    """
    flags = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}"
    if devices > 1:
        flags += f" --xla_force_host_platform_device_count={devices}"
    return flags + f" intra_op_parallelism_threads={threads}"


def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--microbatches", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--warmup", type=int, required=True)
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--threads", type=int, required=True)
    args = ap.parse_args(argv)
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + xla_flags(args.threads, args.devices)).strip()
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax

    import data
    import jax_step
    import model_json
    from train import learning_rate

    if any(d.platform != "cpu" for d in jax.devices()):
        print(f"jax_worker: JAX runs on {jax.devices()}, not the CPU", file=sys.stderr)
        return 2
    try:
        model = model_json.load_model(args.model)
        batches = data.Batches(data.load_tokens(args.data), model.batch, model.seq, args.microbatches)
        r = jax_step.time_jax(model, batches, args.steps, args.warmup, lambda s: learning_rate(model.train, s),
                              args.devices)
    except (model_json.ModelError, ValueError, OSError) as e:
        print(f"jax_worker: {e}", file=sys.stderr)
        return 2
    print(json.dumps({**r, "xla_flags": os.environ["XLA_FLAGS"], "devices": [str(d) for d in jax.devices()]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
