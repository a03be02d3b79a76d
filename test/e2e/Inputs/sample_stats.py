#!/usr/bin/env python3
"""Compares the text pipec-run --sample printed before and after training.

Usage: sample_stats.py UNTRAINED.txt TRAINED.txt [--min-gain G]

Each file is pipec-run's stdout; the sample is everything after the line
starting with "sample:", with the escapes (\\xNN, \\\\) decoded back into
bytes. The measure is the share of bytes that are lowercase ASCII letters
or spaces: about 27/256 for the near-uniform bytes of an untrained byte
model, well over half for English. Prints both shares and "more English
after training" when the trained share beats the untrained one by at least
G (default 0.3); exits 1 otherwise.
"""
import re
import sys


def sample_bytes(path):
    text = open(path, encoding="latin-1").read()
    head = text.find("sample:")
    if head < 0:
        sys.exit(f"{path}: no 'sample:' line")
    body = text[text.index("\n", head) + 1:]
    if body.endswith("\n"):
        body = body[:-1]
    out = bytearray()
    for m in re.finditer(r"\\x([0-9a-f]{2})|\\\\|(.)", body, re.S):
        if m.group(1):
            out.append(int(m.group(1), 16))
        elif m.group(2) is not None:
            out.append(ord(m.group(2)))
        else:
            out.append(ord("\\"))
    return bytes(out)


def english_share(data):
    return sum(1 for b in data if 97 <= b <= 122 or b == 32) / max(1, len(data))


def main():
    args = sys.argv[1:]
    gain = 0.3
    if "--min-gain" in args:
        i = args.index("--min-gain")
        gain = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    before, after = (sample_bytes(p) for p in args)
    a, b = english_share(before), english_share(after)
    print(f"untrained {len(before)} bytes, share {a:.3f}; "
          f"trained {len(after)} bytes, share {b:.3f}")
    if b - a < gain:
        print(f"trained share does not beat the untrained one by {gain}")
        return 1
    print("more English after training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
