#!/usr/bin/env python3
"""The AdamW moment bytes per rank of a plan without ZeRO and of the same
plan with --zero 1, from their manifests, the split rule written out again
here (pipert/ZeroShard.h) as an independent check; fails unless ZeRO-1
keeps at most (1/D + 1/4) of the moments on every rank.

usage: zero_memory.py PLAIN/manifest.json ZERO/manifest.json
"""
import json
import sys

NORM_CHUNK = 16384


def shard(elements, key, replica, replicas):
    chunks = (elements + NORM_CHUNK - 1) // NORM_CHUNK
    run = (replica - key) % replicas
    lo, hi = chunks * run // replicas, chunks * (run + 1) // replicas
    return min(elements, hi * NORM_CHUNK) - min(elements, lo * NORM_CHUNK)


def moments_per_rank(m):
    replicas = m.get("replicas", 1)
    stages = m["ranks"] // replicas
    out = []
    for q in range(m["ranks"]):
        total = 0
        for p in m["parameters"]:
            if p["rank"] != q % stages:
                continue
            if m.get("zero", 0):
                total += 2 * 4 * shard(p["bytes"] // 4, p["zero_key"],
                                       q // stages, replicas)
            else:
                total += 2 * p["bytes"]
        out.append(total)
    return out


def main():
    plain, zero = (json.load(open(f)) for f in sys.argv[1:3])
    if not zero.get("zero"):
        sys.exit("zero_memory: %s is not a ZeRO-1 plan" % sys.argv[2])
    a, b = moments_per_rank(plain), moments_per_rank(zero)
    ratio = max(b) / max(a)
    bound = 1 / zero["replicas"] + 0.25
    arena = lambda m: max(r["arena_bytes"] for r in m["rank_info"])
    print("zero memory: AdamW moments per rank %d -> %d bytes (ratio %.3f); "
          "arena %d -> %d bytes" % (max(a), max(b), ratio, arena(plain),
                                    arena(zero)))
    if ratio > bound or arena(zero) >= arena(plain):
        sys.exit("zero_memory: ZeRO-1 keeps %.3f of the moments (bound "
                 "%.3f) or does not shrink the arena" % (ratio, bound))


if __name__ == "__main__":
    main()
