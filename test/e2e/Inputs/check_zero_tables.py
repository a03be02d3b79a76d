"""Checks a ZeRO-1 cuda plan's optimizer tables against its manifest.

Usage: check_zero_tables.py PLAN_DIR

plan.cu's ZeRO-1 code (compiler/emit/EmitCudaZero.cpp) prints tables of
arena offsets and pipert::zeroShard calls; a wrong column would still
compile. This checks them against the manifest the checkpoints and the
streams use, with pipert/ZeroShard.h's rule written again here:

- Opt's AdamW entries: the master, working copy (the pair Begin rounds),
  gradient and each replica's moments (the manifest's offset plus its
  moment shift) of one parameter, its part from zeroShard with the
  manifest's key; each replica's moment parts disjoint;
- Prepare's norm chunks: each parameter's gradient, squared by exactly one
  pipeline rank, into slots that tile the all-reduce operand; Opt's totals
  read every parameter's slots where Prepare wrote them;
- Gathered: every working copy of the rank, from its master, with the
  manifest's key, skipping the rank's own replica;
- the replica is ctx->rank / stages everywhere; no table holds a
  parameter twice; grad_norm adds every parameter's total once, in model
  order.
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path

NORM_CHUNK = 16384  # pipert::kNormChunk


def norm_chunks(n):
    return (n + NORM_CHUNK - 1) // NORM_CHUNK


def zero_shard(n, key, replica, replicas):
    """pipert::zeroShard: (first, count)."""
    if replicas <= 1:
        return 0, n
    chunks = norm_chunks(n)
    run = ((replica - key) % replicas + replicas) % replicas
    lo, hi = chunks * run // replicas, chunks * (run + 1) // replicas
    first, end = min(n, lo * NORM_CHUNK), min(n, hi * NORM_CHUNK)
    return first, end - first


plan = Path(sys.argv[1])
text = (plan / "plan.cu").read_text()
manifest = json.loads((plan / "manifest.json").read_text())
D = manifest["replicas"]
S = manifest["schedule"]["stages"]
REPLICA = re.escape(f"(ctx->rank / {S})")
params = {}
for p in manifest["parameters"]:
    n = 1
    for s in p["shape"]:
        n *= s
    params[(p["rank"], p["offset"])] = dict(p, elements=n)
bad = []
if not manifest.get("zero") or D < 2:
    bad.append("the manifest has no ZeRO-1 replicas")

parts = re.split(r"static pipert::cpu::Status rank(\d+)(Prepare|Opt|Begin|Gathered)\(", text)
ranks = {}
for i in range(1, len(parts) - 2, 3):
    ranks.setdefault(int(parts[i]), {})[parts[i + 1]] = parts[i + 2]
shard_call = r"pipert::zeroShard\((\d+), (\d+), " + REPLICA + r", (\d+)\)"


def zero_parts(body):
    m = re.search(r"const pipert::ShardRange zeroPart\[\] = \{(.*?)\};", body)
    if not m:
        return []
    found = [tuple(map(int, t)) for t in re.findall(shard_call, m.group(1))]
    if len(found) != m.group(1).count("pipert::zeroShard("):
        bad.append("a zeroPart entry is not zeroShard(n, key, (ctx->rank / "
                   f"{S}), {D})")
    return found


squared = {}  # parameter name -> (pipeline rank, first slot, chunks)
entries = 0
for r, fns in sorted(ranks.items()):
    mine = {off: p for (rank, off), p in params.items() if rank == r}
    begin = {(int(c), int(m)): int(n) for c, m, n in re.findall(
        r"round_copy\(C, P\{A \+ (\d+)\}, P\{A \+ (\d+)\}, (\d+)\)", fns.get("Begin", ""))}
    opt = fns.get("Opt", "")
    shards = zero_parts(opt)
    moment = re.search(r"kZeroMoment\[(\d+)\]\[(\d+)\] = \{(.*?)\};\n", opt)
    table = [list(map(int, row.split(", "))) for row in
             re.findall(r"\{([\d, ]+)\}", moment.group(3))] if moment else []
    if len(table) != D:
        bad.append(f"rank {r}: kZeroMoment has {len(table)} replicas, not {D}")
        continue
    seen = Counter()
    spans = [[] for _ in range(D)]
    rows = re.findall(
        r"\{\(float \*\)\(\(\(float \*\)\(A \+ (\d+)\)\)\) \+ zeroPart\[(\d+)\]\.first, "
        r"\(__nv_bfloat16 \*\)\(\(\(uint16_t \*\)\(A \+ (\d+)\)\)\) \+ zeroPart\[(\d+)\]\.first, "
        r"\(const float \*\)\(\(\(float \*\)\(A \+ (\d+)\)\)\) \+ zeroPart\[(\d+)\]\.first, "
        r"\(float \*\)\(A \+ (\d+) \+ kZeroMoment\[" + REPLICA + r"\]\[(\d+)\]\), "
        r"\(float \*\)\(A \+ (\d+) \+ kZeroMoment\[" + REPLICA + r"\]\[(\d+)\]\), "
        r"zeroPart\[(\d+)\]\.count,", opt)
    for row in rows:
        p, i1, c, i2, g, i3, mb, i4, vb, i5, i6 = map(int, row)
        entries += 1
        where = f"rank {r}, the AdamW entry at master {p}"
        if len({i1, i2, i3, i4, i5, i6}) != 1:
            bad.append(f"{where}: its columns name different parts")
            continue
        i = i1
        par = mine.get(p)
        if par is None:
            bad.append(f"{where}: the manifest has no parameter there")
            continue
        seen[p] += 1
        n, key = par["elements"], par["zero_key"]
        if i >= len(shards) or shards[i] != (n, key, D):
            bad.append(f"{where}: zeroPart[{i}] is not {par['name']}'s "
                       f"zeroShard({n}, {key}, replica, {D})")
        if begin.get((c, p)) != n:
            bad.append(f"{where}: Begin rounds no master {p} into copy {c}")
        if g != par["grad_offset"]:
            bad.append(f"{where}: gradient {g}, the manifest's {par['grad_offset']}")
        for q in range(D):
            want = par["moment_shifts"][q]
            if mb + table[q][i] != par["adam_m_offset"] + want or \
                    vb + table[q][i] != par["adam_v_offset"] + want:
                bad.append(f"{where}: replica {q}'s moments are not the manifest's")
            first, count = zero_shard(n, key, q, D)
            if count:
                spans[q].append((mb + table[q][i], mb + table[q][i] + 4 * count, par["name"]))
    if set(seen) != set(mine) or any(k > 1 for k in seen.values()):
        bad.append(f"rank {r}: AdamW entries for {len(seen)} of its {len(mine)} "
                   "parameters, or one twice")
    if len(rows) != opt.count("this replica's part (ZeRO-1)"):
        bad.append(f"rank {r}: an AdamW entry is not of the ZeRO-1 form")
    for q in range(D):
        spans[q].sort()
        for (a0, a1, an), (b0, b1, bn) in zip(spans[q], spans[q][1:]):
            if b0 < a1:
                bad.append(f"rank {r}, replica {q}: the moments of {an} and {bn} overlap")

    # Prepare: each parameter this rank counts, its replica's norm chunks,
    # inside the group-0 operand (zeroed whole first: 8 bytes a slot).
    prep = fns.get("Prepare", "")
    pshards = zero_parts(prep)
    zeroed = re.search(r"if \(group != 0\)\n    return st;\n.*?zeroBytes\(C, data, (\d+)\)", prep, re.S)
    slots_total = int(zeroed.group(1)) // 8 if zeroed else -1
    if slots_total < 0:
        bad.append(f"rank {r}: Prepare does not zero the norm operand first")
    fns["slots"] = slots_total
    for k, (name, g, n, i, j, slot) in enumerate(re.findall(
            r"// (\S+)\n\s+\{\(const float \*\)\(A \+ (\d+)\), (\d+), zeroPart\[(\d+)\]\.first, "
            r"zeroPart\[(\d+)\]\.count, \(double \*\)\(data \+ (\d+)\)\}", prep)):
        g, n, i, j, slot = map(int, (g, n, i, j, slot))
        par = next((p for p in mine.values() if p["name"] == name), None)
        if par is None or par["grad_offset"] != g or par["elements"] != n:
            bad.append(f"rank {r}: the norm chunks of {name} read gradient {g} of {n}")
            continue
        if i != j or i >= len(pshards) or pshards[i] != (n, par["zero_key"], D):
            bad.append(f"rank {r}: the norm chunks of {name} take another part")
        if name in squared:
            bad.append(f"{name}: squared by ranks {squared[name][0]} and {r}")
        if slot % 8 or slot // 8 + norm_chunks(n) > slots_total:
            bad.append(f"rank {r}: the norm chunks of {name} are outside the operand")
        squared[name] = (r, slot // 8, norm_chunks(n))

    # Opt: every parameter's total from the slots Prepare filled.
    totals = re.findall(
        r"\{\(const double \*\)\(A \+ (\d+)\), (\d+), pipert::cuda::call::norm_total\(C, (\d+)\)\}, // (\S+)",
        opt)
    fns["totals"] = totals
    # Gathered: every working copy the rank holds.
    gath = fns.get("Gathered", "")
    arrays = {k: list(map(int, v.split(", "))) for k, v in re.findall(
        r"static const int(?:64|32)_t (kCopy|kMaster|kElements|kKey)\[\] = \{([\d, ]+)\};", gath)}
    cols = [arrays.get(k, []) for k in ("kCopy", "kMaster", "kElements", "kKey")]
    if len({len(c) for c in cols}) != 1:
        bad.append(f"rank {r}: Gathered's tables differ in length")
    got = Counter()
    for c, m, n, key in zip(*cols):
        par = mine.get(m)
        if begin.get((c, m)) != n or par is None or par["zero_key"] != key:
            bad.append(f"rank {r}: Gathered rounds master {m} into copy {c} unlike Begin or the manifest")
        got[m] += 1
    if set(got) != {m for (_, m) in begin} or any(k > 1 for k in got.values()):
        bad.append(f"rank {r}: Gathered covers {len(got)} of Begin's {len(begin)} working copies")
    # Its loop: every replica but this one, each part's bytes (bf16 copy,
    # f32 master) from its first element.
    loop = (f"    for (int i = 0; i < {len(cols[0])}; ++i)\n"
            f"      for (int32_t q = 0; q < {D}; ++q) {{\n"
            f"        const pipert::ShardRange s = pipert::zeroShard(kElements[i], kKey[i], q, {D});\n"
            f"        if (q == (ctx->rank / {S}) || s.count == 0)\n          continue;\n"
            "        if (pipert::cpu::Status e = pipert::cuda::call::round_copy(\n"
            "                C, P{A + kCopy[i] + 2 * s.first}, P{A + kMaster[i] + 4 * s.first}, s.count);\n")
    if loop not in gath:
        bad.append(f"rank {r}: Gathered's loop is not the one over the other replicas' parts")

# The slots: disjoint, and every rank's totals read them.
names = {p["name"] for p in params.values()}
if set(squared) != names:
    bad.append(f"{len(squared)} of {len(names)} parameters have their norm chunks squared")
used = sorted((s, s + c, n) for n, (_, s, c) in squared.items())
for (a0, a1, an), (b0, b1, bn) in zip(used, used[1:]):
    if b0 < a1:
        bad.append(f"the norm slots of {an} and {bn} overlap")
elements = {p["name"]: p["elements"] for p in params.values()}
order = list(dict.fromkeys(p["name"] for p in manifest["parameters"]))
for r, fns in sorted(ranks.items()):
    totals = fns.get("totals", [])
    if Counter(t[3] for t in totals) != Counter(names):
        bad.append(f"rank {r}: totals for {len(totals)} of {len(names)} parameters, or one twice")
    index = {}
    for x, n, p, name in totals:
        if int(n) != elements.get(name):
            bad.append(f"rank {r}: the total of {name} counts {n} elements")
        index[name] = int(p)
    if sorted(index.values()) != list(range(len(names))):
        bad.append(f"rank {r}: the totals' indices are not one per parameter")
    bases = {int(x) - 8 * squared[name][1] for x, n, p, name in totals if name in squared}
    if len(bases) != 1:
        bad.append(f"rank {r}: the totals do not read the slots Prepare wrote")
    else:
        # The operand is none of the parameters' areas in the arena.
        base, end = bases.pop(), 0
        end = base + 8 * fns.get("slots", 0)
        for (rank, off), par in params.items():
            if rank != r:
                continue
            for start, size in ((par["offset"], 4 * par["elements"]),
                                (par["grad_offset"], 4 * par["elements"]),
                                (par["adam_m_offset"], 1), (par["adam_v_offset"], 1)):
                if start < end and base < start + size:
                    bad.append(f"rank {r}: the norm operand overlaps {par['name']}")
    # grad_norm: every total once, in the model's order.
    m = re.search(r"const double \*rest\[\] = \{(.*?)\};", fns.get("Opt", ""))
    added = [int(p) for p in re.findall(r"norm_total\(C, (\d+)\)", m.group(1))] if m else []
    want = [index.get(name, -1) for name in order]
    if added != want:
        bad.append(f"rank {r}: grad_norm does not add every total once in the model's order")
print("\n".join(bad) if bad else
      f"ZeRO-1 tables: {entries} AdamW parts over {len(ranks)} ranks and {D} replicas, "
      f"{len(squared)} parameters' norm chunks, working copies after the all-gather: as the manifest says")
sys.exit(1 if bad else 0)
