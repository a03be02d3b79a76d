#!/usr/bin/env python3
"""Runs a training command, kills one rank's process with SIGKILL (or
stops it with SIGSTOP: a hung rank) once the run has printed a few
progress lines, and reports how the others ended: whether every process of
the job was gone within the limit, the time that took, the exit code, and
the lines of stderr that name the rank.

  kill_rank.py --rank R --log-dir D [--signal KILL|STOP] [--after N]
               [--limit S] -- CMD...

The rank's process id comes from D/rank-R.pid, which the plan runner
writes. Prints "rc=N", "ended within S s: yes|no (T s)" and "named: LINE"
for the first stderr line that names rank R as ended (or "named:
(none)").
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rank", type=int, required=True)
    ap.add_argument("--log-dir", required=True)
    ap.add_argument("--after", type=int, default=3)
    ap.add_argument("--limit", type=float, default=30.0)
    ap.add_argument("--signal", choices=["KILL", "STOP"], default="KILL")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    seen = 0
    deadline = time.time() + 120
    while seen < a.after and time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        seen += line.startswith("step")
    pidfile = os.path.join(a.log_dir, "rank-%d.pid" % a.rank)
    if seen < a.after or not os.path.exists(pidfile):
        p.kill()
        print("the run printed %d progress lines%s" %
              (seen, "" if os.path.exists(pidfile) else ", and no " + pidfile))
        return 1
    with open(pidfile) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGKILL if a.signal == "KILL" else signal.SIGSTOP)
    killed = time.time()
    try:
        _, err = p.communicate(timeout=a.limit + 30)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    if a.signal == "STOP":
        try:
            os.kill(pid, signal.SIGKILL)  # whatever mpirun left of it
        except ProcessLookupError:
            pass
    took = time.time() - killed
    print("rc=%d" % p.returncode)
    print("ended within %g s: %s (%.1f s)" %
          (a.limit, "yes" if took <= a.limit else "no", took))
    # A line that names the rank and says it ended (mpirun's "process rank
    # 1 with PID ... exited on signal 9") or never answered (a survivor's
    # "timed out: rank 1 did not post ..."), not a survivor's list of ranks.
    ended = re.compile(r"\brank %d\b.*(exited|signal|died|killed)|"
                       r"timed out: rank %d\b" % (a.rank, a.rank),
                       re.IGNORECASE)
    named = [l for l in err.splitlines() if ended.search(l)]
    print("named: " + (named[0].strip() if named else "(none)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
