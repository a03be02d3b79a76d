#!/usr/bin/env python3
"""A cuda plan's streams declare what its generated code touches outside
the chunks' regions (what the shadow mode, pipec-plan --shadow, holds
every instruction to):

  the bf16 working copies   Begin makes them (plan.cu's round_copy lines
                            give each copy's offset and elements); every
                            F and B reads all of them, expecting the
                            optimizer step (or, with --zero, the all-gather
                            after it) as their last writer; the optimizer
                            writes them, and so does ZeRO-1's all-gather
  the optimizer's scalars   the step that rankNOpt copies in is written by
                            the optimizer step
  the workspace             plan.cu's kRanks place it in the arena (256-byte
                            aligned, inside the arena, clear of the
                            manifest's buffers and the copies); every F, B,
                            W and optimizer step writes it and no
                            instruction reads it (its contents never
                            outlive a function)

Usage: check_cuda_accesses.py PLAN_DIR [--zero] [--drop-copies]
                              [--drop-workspace]
--drop-copies (--drop-workspace) removes the accesses of the copies'
block (the workspace) from the decoded streams first (a negative
control: the check must then fail).
"""
import json
import re
import struct
import sys
from pathlib import Path

OPS = {0: "fwd", 1: "bwd_b", 2: "bwd_w", 9: "opt_step", 11: "all_gather"}


def decode(path):
    data = path.read_bytes()
    assert data[:8] == b"PIPESTRM", f"{path}: not a stream"
    # The header (docs/RUNTIME.md, version 4): 80 bytes.
    (version, rank, ranks, mbs, n_instr, n_acc, arena, _sum, _plan,
     n_parts, _rounds, _comms) = struct.unpack_from("<IiiiqqqqqqII", data, 8)
    assert version == 4, f"{path}: stream version {version}, this reads 4"
    off = 8 + struct.calcsize("<IiiiqqqqqqII")
    instrs = []
    for _ in range(n_instr):
        op, sub, dtype, _pad, peer, chunk, mb, req, acc_count, offset, nbytes, part_count = \
            struct.unpack_from("<BBBBiiiiIqqI", data, off)
        off += struct.calcsize("<BBBBiiiiIqqI")
        instrs.append({"op": op, "chunk": chunk, "mb": mb, "accesses": acc_count})
    accesses = []
    for _ in range(n_acc):
        write, _a, _b, _c, writer, offset, nbytes = struct.unpack_from("<BBBBiqq", data, off)
        off += struct.calcsize("<BBBBiqq")
        accesses.append({"write": write == 1, "writer": writer, "offset": offset,
                         "bytes": nbytes})
    first = 0
    for ins in instrs:
        ins["acc"] = accesses[first:first + ins["accesses"]]
        first += ins["accesses"]
    return instrs


def covers(accs, lo, hi, write, writer=None):
    """Whether the accesses of that kind cover [lo, hi) (as one region or
    several)."""
    spans = sorted((a["offset"], a["offset"] + a["bytes"]) for a in accs
                   if a["write"] == write and (writer is None or a["writer"] == writer))
    at = lo
    for s, e in spans:
        if s <= at < e:
            at = e
        if at >= hi:
            return True
    return at >= hi


def overlaps(lo, hi, a):
    return a["offset"] < hi and lo < a["offset"] + a["bytes"]


def check_workspace(r, info, ws, copies, buffers, instrs, problems):
    """The workspace (offset, bytes) of rank r against its stream."""
    lo, hi = ws
    if lo % 256 or hi <= lo or hi > info["arena_bytes"]:
        problems.append(f"rank {r}: the workspace [{lo}, {hi}) is not a 256-byte "
                        f"aligned block of the arena of {info['arena_bytes']} bytes")
    for b in buffers:
        if b["rank"] == r and b["offset"] < hi and lo < b["offset"] + b["bytes"]:
            problems.append(f"rank {r}: the workspace [{lo}, {hi}) overlaps {b['name']}")
    for a, b in copies:
        if a < hi and lo < b:
            problems.append(f"rank {r}: the workspace [{lo}, {hi}) overlaps a working copy")
    writers = 0
    for i, ins in enumerate(instrs):
        if any(not a["write"] and overlaps(lo, hi, a) for a in ins["acc"]):
            problems.append(f"rank {r} #{i}: reads the workspace across instructions")
        if ins["op"] in (0, 1, 2, 9):
            if covers(ins["acc"], lo, hi, True):
                writers += 1
            else:
                problems.append(f"rank {r} #{i} {OPS[ins['op']]}(chunk {ins['chunk']}, "
                                f"mb {ins['mb']}): does not declare the workspace "
                                f"[{lo}, {hi}) written")
    # The gradient norm's all-reduce (group 0 of the rank's replica: the
    # one whose operand the rank's prepare squares into) runs
    # sum_squares_multi, which uses the workspace.
    norms = [ins for ins in instrs if ins["op"] == 8 and
             any(a["write"] and overlaps(lo, hi, a) for a in ins["acc"])]
    if any(ins["op"] == 9 for ins in instrs) and not norms:
        problems.append(f"rank {r}: no all-reduce declares the workspace "
                        f"[{lo}, {hi}) written (the gradient norm's squares)")
    writers += len(norms)
    return writers


def function(src, name):
    m = re.search(r"pipert::cpu::Status %s\(.*?\n}\n" % re.escape(name), src, re.S)
    return m.group(0) if m else ""


def main():
    plan = Path(sys.argv[1])
    zero = "--zero" in sys.argv
    drop = "--drop-copies" in sys.argv
    drop_ws = "--drop-workspace" in sys.argv
    manifest = json.loads((plan / "manifest.json").read_text())
    src = (plan / "plan.cu").read_text()
    workspaces = {int(c): (int(o), int(o) + int(n)) for c, o, n in re.findall(
        r"\{rank(\d+)Prepare, rank\d+Opt, \w+, \w+, (\d+), (\d+)\},", src)}
    problems, checked, ws_writers = [], 0, 0
    pipeline = len({p["rank"] for p in manifest["parameters"]})
    ranks = manifest["rank_info"]
    if "replica_stream_checksums" in manifest:
        # Replica 0's ranks are listed; rank r's stream is rank<r>.pstream.
        ranks = ranks + [dict(ranks[r % len(ranks)], stream=f"rank{r}.pstream")
                         for r in range(len(ranks), manifest["ranks"])]
    elif "replica_streams" in manifest:
        # Replica 0's ranks are listed; the others run their files moved
        # (other peers and groups; the same accesses).
        ranks = ranks + [ranks[r % len(ranks)]
                         for r in range(len(ranks), manifest["ranks"])]
    for r, info in enumerate(ranks):
        code = r % pipeline
        begin = function(src, f"rank{code}Begin")
        copies = [(int(a), int(a) + 2 * int(n)) for a, n in
                  re.findall(r"round_copy\(C, P\{A \+ (\d+)\}, P\{A \+ \d+\}, (\d+)\)", begin)]
        if not copies:
            problems.append(f"rank {r}: no working copies in rank{code}Begin")
            continue
        block = (min(a for a, _ in copies), max(b for _, b in copies))
        step = re.search(r"copyHostInput\(C, \(\(int64_t \*\)\(A \+ (\d+)\)\), &step",
                         function(src, f"rank{code}Opt"))
        instrs = decode(plan / info["stream"])
        if drop:
            for ins in instrs:
                ins["acc"] = [a for a in ins["acc"]
                              if a["offset"] + a["bytes"] <= block[0] or
                              a["offset"] >= block[1]]
        if code not in workspaces:
            problems.append(f"rank {r}: kRanks gives no workspace for rank{code}")
            continue
        if drop_ws:
            for ins in instrs:
                ins["acc"] = [a for a in ins["acc"]
                              if not overlaps(*workspaces[code], a)]
        ws_writers += check_workspace(r, info, workspaces[code], copies,
                                      manifest["buffers"], instrs, problems)
        opt = [i for i, ins in enumerate(instrs) if ins["op"] == 9]
        gather = [i for i, ins in enumerate(instrs) if ins["op"] == 11]
        if len(opt) != 1:
            problems.append(f"rank {r}: {len(opt)} optimizer steps")
            continue
        last = gather[-1] if zero and gather else opt[0]
        for lo, hi in copies:
            if not covers(instrs[opt[0]]["acc"], lo, hi, True):
                problems.append(f"rank {r}: the optimizer does not write the copy [{lo}, {hi})")
            if zero and not any(covers(instrs[g]["acc"], lo, hi, True) for g in gather):
                problems.append(f"rank {r}: no all-gather writes the copy [{lo}, {hi})")
        if step and not covers(instrs[opt[0]]["acc"], int(step.group(1)),
                               int(step.group(1)) + 8, True):
            problems.append(f"rank {r}: the optimizer does not write its step slot")
        for i, ins in enumerate(instrs):
            if ins["op"] not in (0, 1):
                continue
            checked += 1
            for lo, hi in copies:
                if not covers(ins["acc"], lo, hi, False, last):
                    problems.append(f"rank {r} #{i} {OPS[ins['op']]}(chunk {ins['chunk']}, "
                                    f"mb {ins['mb']}): no read of the copy [{lo}, {hi}) "
                                    f"written by #{last}")
                    break
    if problems:
        print(f"{len(problems)} problems, the first: {problems[0]}")
        return 1
    who = "the optimizer and the all-gather write" if zero else "the optimizer writes"
    print(f"{len(ranks)} ranks: {who} every working copy and the "
          f"step; {checked} F and B read every copy from it; {ws_writers} "
          f"functions write the workspace, none reads it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
