"""Splits a safetensors file into a Hugging Face sharded checkpoint (hf-checkpoints.test).

reshard.py IN.safetensors OUTDIR --shards N [--dtype f32|bf16|f16]

Writes OUTDIR/model-0000i-of-0000N.safetensors and OUTDIR/model.safetensors.index.json (tensors dealt
round-robin), in --dtype; with a half dtype also OUTDIR/rounded.safetensors: the same rounded values
as F32, which must load to the same bits."""
import argparse
import json
import os

import numpy as np


def read(path):
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype="<f4").reshape(info["shape"])
    return out


def write(path, tensors, dtype):
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (arr, code) in tensors.items():
        data = arr.tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(chunks))


def to_half(arr, dtype):
    """(stored array, its safetensors dtype, the stored values as float32)."""
    if dtype == "f16":
        h = arr.astype("<f2")
        return h, "F16", h.astype(np.float32)
    if dtype == "bf16":
        bits = arr.astype("<f4").view("<u4")
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")  # round to nearest even
        return rounded, "BF16", (rounded.astype("<u4") << 16).view("<f4")
    return arr.astype("<f4"), "F32", arr.astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f16"])
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tensors = read(a.src)
    files = [f"model-{i + 1:05d}-of-{a.shards:05d}.safetensors" for i in range(a.shards)]
    parts, weight_map, rounded = [dict() for _ in files], {}, {}
    for i, (name, arr) in enumerate(sorted(tensors.items())):
        stored, code, as_f32 = to_half(arr, a.dtype)
        parts[i % a.shards][name] = (stored, code)
        weight_map[name] = files[i % a.shards]
        rounded[name] = (as_f32, "F32")
    for f, p in zip(files, parts):
        write(os.path.join(a.out, f), p, a.dtype)
    json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map},
              open(os.path.join(a.out, "model.safetensors.index.json"), "w"), indent=2)
    if a.dtype != "f32":
        write(os.path.join(a.out, "rounded.safetensors"), rounded, "f32")
    print(f"{len(tensors)} tensors in {a.shards} shards ({a.dtype})")


if __name__ == "__main__":
    main()
