#!/usr/bin/env python3
"""Writes damaged copies of a safetensors file: `nan` puts one NaN into the
first tensor, `huge` scales every tensor by 1e19 (the loss of the first step
is then not finite).

  bad_weights.py IN.safetensors nan|huge OUT.safetensors
"""
import json
import struct
import sys

import numpy as np


def main():
    src, mode, dst = sys.argv[1:4]
    data = bytearray(open(src, "rb").read())
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    names = [k for k in header if k != "__metadata__"]
    for i, name in enumerate(names):
        begin, end = header[name]["data_offsets"]
        x = np.frombuffer(bytes(data[base + begin:base + end]), dtype="<f4").copy()
        if mode == "nan" and i == 0:
            x[len(x) // 2] = np.nan
        elif mode == "huge":
            x *= np.float32(1e19)
        data[base + begin:base + end] = x.astype("<f4").tobytes()
    open(dst, "wb").write(data)


if __name__ == "__main__":
    main()
