"""Reads rank 0's memory split from two `pipec plan` outputs (cpu, cuda)
and prints the cuda/cpu ratio of each kind."""
import re
import sys


def split(path):
    for line in open(path):
        if line.strip().startswith("rank 0:"):
            return {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", line)}
    sys.exit(f"{path}: no 'rank 0:' memory line")


cpu, cuda = split(sys.argv[1]), split(sys.argv[2])
ratios = [(k, cuda[k] / cpu[k]) for k in ("weights", "gradients", "optimizer", "activations")]
print(", ".join(f"{k} {r:.2f}x".replace(".00x", "x").replace("1.50x", "1.5x") for k, r in ratios))
