#!/usr/bin/env bash
# The one prepared run for a lent GPU machine (docs/CUDA.md).
#   scripts/gpu-check.sh --prepare DIR [--bin BIN]
#       on the build machine: copies the GPU programs (the CUDA runtime
#       linked statically; cuBLASLt dynamically, found on the GPU machine in
#       its CUDA toolkit or its Python wheels (site-packages/nvidia/))
#       from BIN (default build/bin; build them with scripts/build.sh) and
#       this script into DIR, a folder git ignores (e.g. build-gpu/), to
#       name in the device tool's `carry`
#   scripts/gpu-check.sh --run DIR [OUT]
#       on the GPU machine: the driver and GPU first, then the kernel harness
#       (every cuda kernel against its CPU emulation); logs and gpu-check.json
#       into OUT (default $OUT, else DIR/out), written as it goes
# Exit: 0 every check passed, 1 one failed, 3 no GPU, 2 bad usage.
# The device run: bash scripts/gpu-check.sh --prepare build-gpu, then
# run(command="bash build-gpu/gpu-check.sh --run build-gpu", carry=["build-gpu"]).
set -uo pipefail
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
mode=${1:-}; dir=${2:-}
[ -n "$mode" ] && [ -n "$dir" ] || { usage >&2; exit 2; }
programs=(pipec-cuda-harness)

case "$mode" in
--prepare)
  bin=build/bin
  if [ "${3:-}" = "--bin" ]; then bin=${4:?--bin needs a folder}; fi
  mkdir -p "$dir"
  for p in "${programs[@]}"; do
    if [ ! -x "$bin/$p" ]; then
      echo "gpu-check: $bin/$p is missing: build it first (scripts/build.sh $p; it needs nvcc)" >&2
      exit 1
    fi
    cp "$bin/$p" "$dir/"
  done
  cp "$0" "$dir/gpu-check.sh"
  git -C "$(dirname "$0")/.." rev-parse --short HEAD > "$dir/commit" 2>/dev/null || echo unknown > "$dir/commit"
  echo "gpu-check: prepared $dir (${programs[*]}, commit $(cat "$dir/commit")); on the GPU machine: bash $dir/gpu-check.sh --run $dir"
  ;;
--run)
  out=${3:-${OUT:-$dir/out}}
  mkdir -p "$out"
  # The dynamic libraries (cuBLASLt; later cuDNN and NCCL, whose wheels ship
  # only versioned names) from the toolkit and the Python wheels.
  libdirs=$(
    for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && echo "$d"; done
    for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
      [ -d "$sp/nvidia" ] && find "$sp/nvidia" -name 'lib*.so*' -printf '%h\n'
    done | sort -u)
  export LD_LIBRARY_PATH="$(echo $libdirs | tr ' ' ':')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  commit=$(cat "$dir/commit" 2>/dev/null || echo unknown)
  {
    echo "commit $commit"
    date -u
    if command -v nvidia-smi > /dev/null; then
      nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    else
      echo "nvidia-smi: not found"
    fi
    echo "libraries:"
    ldd "$dir/pipec-cuda-harness" | grep -E "cublas|cudnn|nccl|not found"
  } > "$out/gpu.txt" 2>&1
  cat "$out/gpu.txt"
  # Every program is bounded, so a hang cannot eat the machine's minutes.
  timeout 240 "$dir/pipec-cuda-harness" > "$out/harness.jsonl" 2> "$out/harness.err"
  rc=$?
  cat "$out/harness.jsonl"
  summary=$(grep '"summary"' "$out/harness.jsonl" | tail -1)
  gpu=$(grep -m1 '"gpu"' "$out/harness.jsonl")
  printf '{"commit": "%s", "harness_rc": %d, "gpu": %s, "harness": %s}\n' \
    "$commit" "$rc" "${gpu:-null}" "${summary:-null}" > "$out/gpu-check.json"
  case $rc in
    0) echo "gpu-check: every check passed" ;;
    3) echo "gpu-check: no GPU here ($(head -c 200 "$out/harness.jsonl"))" ;;
    124) echo "gpu-check: the kernel harness timed out after 240 s"; rc=1 ;;
    *) echo "gpu-check: a check failed (rc $rc; $out/harness.jsonl)"; rc=1 ;;
  esac
  exit $rc
  ;;
-h|--help) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac
