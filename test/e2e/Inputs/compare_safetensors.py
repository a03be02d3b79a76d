#!/usr/bin/env python3
"""Compares two safetensors files tensor by tensor, bit for bit.

Used by scripts/gpu-check.sh: one checkpoint, saved from a plan's device
arenas, loaded into the S = 1 and the S = 4 plans, trained one step by
each and saved again, must give the same names, shapes, dtypes and bytes.
Standard library only (the GPU machine's Python may lack numpy). Exits 1
naming the first tensor that differs, or a file it cannot read.
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n:]
    return {name: (t["dtype"], t["shape"], body[t["data_offsets"][0]:t["data_offsets"][1]])
            for name, t in header.items()}


def main():
    if len(sys.argv) != 3:
        print("usage: compare_safetensors.py A B", file=sys.stderr)
        return 2
    try:
        a, b = read(sys.argv[1]), read(sys.argv[2])
    except (OSError, ValueError, KeyError, struct.error) as e:
        print(f"cannot read the checkpoints: {e}")
        return 1
    if sorted(a) != sorted(b):
        print(f"the tensors differ: {sorted(set(a) ^ set(b))[:5]}")
        return 1
    for name in sorted(a):
        if a[name][:2] != b[name][:2]:
            print(f"{name}: {a[name][:2]} vs {b[name][:2]}")
            return 1
        if a[name][2] != b[name][2]:
            print(f"{name}: the bytes differ")
            return 1
    print(f"{len(a)} tensors equal bit for bit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
