#!/usr/bin/env bash
# GPT-2 124M training steps on a lent GPU: pipec's cuda plan against JAX
# (bench/jax_gpt2_gpu.py) on the same card, batch and sequence; it measures
# and prints, it asserts no speed (docs/PERFORMANCE.md).
#   bench/gpu_gpt2.sh --prepare DIR [--bin BIN] [--data FILE] [--microbatches M]
#                     [--batch B|auto] [--memory-cap BYTES] [--llmc LLMC_CHECKOUT]
#       on the build machine (nvcc, no GPU): the cuda plan of
#       models/gpt2-124m.json (S = 1, T = 1024, M micro-batches, default 1)
#       at micro-batch B (default auto: the largest of 64, 48, 32, 16, 8
#       and 4 whose exact memory plan, without recompute, fits under
#       --memory-cap, default 78GiB, what an H100 leaves a process) built
#       into DIR/g124 by BIN/pipec, the data (default
#       ../shared/data/tinyshakespeare.txt) beside it; with --llmc,
#       llm.c's train_gpt2cu built from that checkout and the same tokens
#       as an llm.c shard
#   bench/gpu_gpt2.sh --run DIR [OUT] [--steps N]
#       on the GPU machine, each run bounded (120, 90, 200 s): N pipec steps
#       (default 10; the median step after the first two is timed), 3 more
#       under --profile (the kernels' CUDA-event times against the card's
#       measured ceilings, OUT/g124-profile/kernel_profile.json), llm.c's
#       12 steps at the same B, T and tokens a step where prepared, then
#       JAX's jitted step at the same B, T and M (its own warm-up and 10
#       timed steps); bench/gpu_vs_jax.py then prints the table (tokens/s,
#       MFU against 989 TFLOP/s and the GEMM rate measured on the card,
#       the ratios) and writes OUT/gpu-gpt2.json (OUT: default $OUT, else
#       DIR/out)
# Exit: 0 measured, 1 a run failed, 2 bad usage or no prepared plan.
set -uo pipefail
usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }
mode=${1:-}; dir=${2:-}
case "$mode" in -h|--help) usage; exit 0 ;; esac
[ -n "$mode" ] && [ -n "$dir" ] || { usage >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
case "$mode" in
--prepare)
  bin=build/bin data=$root/../shared/data/tinyshakespeare.txt mb=1 llmc= batch=auto cap=78GiB
  shift 2
  while [ $# -gt 0 ]; do
    case "$1" in
      --bin) bin=${2:?--bin needs a folder}; shift 2 ;;
      --llmc) llmc=${2:?--llmc needs a checkout of karpathy/llm.c}; shift 2 ;;
      --data) data=${2:?--data needs a file}; shift 2 ;;
      --microbatches) mb=${2:?--microbatches needs a number}; shift 2 ;;
      --batch) batch=${2:?--batch needs a number or auto}; shift 2 ;;
      --memory-cap) cap=${2:?--memory-cap needs a size}; shift 2 ;;
      *) usage >&2; exit 2 ;;
    esac
  done
  [ "$batch" = auto ] || [[ $batch =~ ^[1-9][0-9]{0,3}$ ]] || {
    echo "gpu_gpt2: --batch must be auto or an integer from 1 to 9999, not '$batch'" >&2; exit 2; }
  [[ $mb =~ ^[1-9][0-9]{0,3}$ ]] || { echo "gpu_gpt2: --microbatches must be an integer from 1 to 9999, not '$mb'" >&2; exit 2; }
  [ -x "$bin/pipec" ] || { echo "gpu_gpt2: $bin/pipec is missing: build it first (scripts/build.sh)" >&2; exit 1; }
  [ -f "$data" ] || { echo "gpu_gpt2: --data $data: no such file" >&2; exit 1; }
  mkdir -p "$dir"
  cp "$data" "$dir/data.txt"
  echo "$mb" > "$dir/g124.microbatches"
  # The model at micro-batch B: the largest that fits by pipec's exact
  # memory plan (the arena pipec-plan allocates), or the one asked for.
  withBatch() {
    python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); m["config"]["batch"] = int(sys.argv[2]); json.dump(m, open(sys.argv[3], "w"), indent=1)' \
      "$root/models/gpt2-124m.json" "$1" "$dir/gpt2-124m.json"
  }
  if [ "$batch" = auto ]; then
    batch=
    for b in 64 48 32 16 8 4; do
      withBatch $b || exit 1
      if "$bin/pipec" plan "$dir/gpt2-124m.json" --target cuda --stages 1 --microbatches "$mb" \
          --recompute none --memory-cap "$cap" > "$dir/g124.plan.log" 2>&1; then
        batch=$b; break
      fi
    done
    [ -n "$batch" ] || { cat "$dir/g124.plan.log" >&2; echo "gpu_gpt2: no micro-batch of 4 or more fits under $cap" >&2; exit 1; }
    echo "gpu_gpt2: micro-batch $batch, the largest that fits under $cap: $(grep 'exact memory plan' "$dir/g124.plan.log")"
  fi
  withBatch "$batch" || exit 1
  echo "$batch" > "$dir/g124.batch"
  rm -rf "$dir/g124"
  "$bin/pipec" compile "$dir/gpt2-124m.json" --target cuda --stages 1 --microbatches "$mb" --recompute none \
    -o "$dir/g124" > "$dir/g124.compile.log" 2>&1 || {
    cat "$dir/g124.compile.log" >&2; echo "gpu_gpt2: compiling the gpt2-124m cuda plan failed" >&2; exit 1; }
  # Only what runs travels (the device tool carries 64 MiB in all): no
  # sources, no symbols.
  rm -rf "$dir/g124/third_party" "$dir/g124/runtime" "$dir/g124"/*.o
  strip "$dir/g124/pipec-plan" 2>/dev/null || true
  # llm.c's train_gpt2cu, the peer issue 19 names, built here for sm_90
  # from a checkout (not vendored), without NCCL, MPI or cuDNN, its one
  # CUDA 13 incompatibility patched in a copy (cudaMemAdvise takes a
  # cudaMemLocation now); it reads the same tokens as pipec (the text's
  # bytes) from an llm.c shard.
  rm -rf "$dir/llmc"
  if [ -n "$llmc" ]; then
    [ -f "$llmc/train_gpt2.cu" ] || { echo "gpu_gpt2: --llmc $llmc: no train_gpt2.cu there" >&2; exit 1; }
    work=$(mktemp -d); cp -r "$llmc"/. "$work/"
    sed -i 's/cudaMemAdviseSetPreferredLocation, cudaCpuDeviceId)/cudaMemAdviseSetPreferredLocation, cudaMemLocation{cudaMemLocationTypeHost, 0})/' \
      "$work/llmc/cuda_utils.cuh"
    mkdir -p "$dir/llmc"
    if ! PATH=/usr/local/cuda/bin:$PATH make -C "$work" train_gpt2cu GPU_COMPUTE_CAPABILITY=90 NO_MULTI_GPU=1 NO_USE_MPI=1 \
        USE_CUDNN=0 NVCC_LDFLAGS="-lcublas -lcublasLt" > "$dir/llmc/build.log" 2>&1; then
      tail -20 "$dir/llmc/build.log" >&2; rm -rf "$work"; echo "gpu_gpt2: building llm.c's train_gpt2cu failed" >&2; exit 1
    fi
    cp "$work/train_gpt2cu" "$dir/llmc/"; strip "$dir/llmc/train_gpt2cu" 2>/dev/null || true
    git -C "$llmc" rev-parse --short HEAD > "$dir/llmc/commit" 2>/dev/null || echo unknown > "$dir/llmc/commit"
    rm -rf "$work"
  fi
  echo "gpu_gpt2: prepared $dir/g124 (B = $batch, M = $mb); on the GPU machine: bash bench/gpu_gpt2.sh --run $dir"
  ;;
--run)
  shift 2
  out=${OUT:-$dir/out} steps=10
  if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then out=$1; shift; fi
  while [ $# -gt 0 ]; do
    case "$1" in
      --steps) steps=${2:?--steps needs a number}; shift 2 ;;
      *) usage >&2; exit 2 ;;
    esac
  done
  [[ $steps =~ ^[1-9][0-9]{0,5}$ ]] || { echo "gpu_gpt2: --steps must be an integer from 1 to 999999, not '$steps'" >&2; exit 2; }
  [ -x "$dir/g124/pipec-plan" ] && [ -f "$dir/g124.microbatches" ] && [ -f "$dir/data.txt" ] || {
    echo "gpu_gpt2: $dir holds no prepared plan (run bench/gpu_gpt2.sh --prepare $dir on the build machine first)" >&2; exit 2; }
  mkdir -p "$out"
  mb=$(cat "$dir/g124.microbatches")
  batch=$(cat "$dir/g124.batch" 2>/dev/null || echo 4)
  export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | tee "$out/gpu-gpt2-card.txt"
  rc=0
  timeout 120 "$dir/g124/pipec-plan" --plan "$dir/g124" --data "$dir/data.txt" --steps "$steps" \
    --log-dir "$out/g124" --quiet > "$out/g124.log" 2>&1 || { echo "gpu_gpt2: the pipec run failed: $(tail -c 400 "$out/g124.log")"; rc=1; }
  # The same plan with the whole step as one CUDA graph (--step-graph:
  # three traced steps, the fourth captured, the rest replayed).
  if [ $rc -eq 0 ] && [ "$steps" -gt 5 ]; then
    timeout 120 "$dir/g124/pipec-plan" --plan "$dir/g124" --data "$dir/data.txt" --steps "$steps" \
      --step-graph --log-dir "$out/g124-graph" --quiet > "$out/g124-graph.log" 2>&1 \
      || echo "gpu_gpt2: the --step-graph run failed: $(tail -c 400 "$out/g124-graph.log")"
  fi
  # Where the step goes: 3 steps under --profile (CUDA events per kernel
  # call, the card's GEMM and copy ceilings measured first).
  if [ $rc -eq 0 ]; then
    timeout 90 "$dir/g124/pipec-plan" --plan "$dir/g124" --data "$dir/data.txt" --steps 3 --profile \
      --log-dir "$out/g124-profile" --quiet > "$out/g124-profile.txt" 2>&1 \
      && head -25 "$out/g124-profile.txt" || echo "gpu_gpt2: the profiled run failed: $(tail -c 400 "$out/g124-profile.txt")"
  fi
  # llm.c at the same B, T and tokens a step (-d: no accumulation beyond
  # the micro-batches), its own defaults otherwise (GELU fusion and
  # recompute as it ships), a random GPT-2 124M (-e d12).
  if [ -x "$dir/llmc/train_gpt2cu" ]; then
    # The shard is written here, not carried (2 bytes a token).
    python3 -c "import struct, sys; t = open(sys.argv[1], 'rb').read(); h = [20240520, 1, len(t)] + [0] * 253; open(sys.argv[2], 'wb').write(struct.pack('<256i', *h) + b''.join(struct.pack('<H', b) for b in t))" \
      "$dir/data.txt" "$out/llmc-tokens.bin"
    timeout 120 "$dir/llmc/train_gpt2cu" -e d12 -b "$batch" -t 1024 -d $((batch * 1024 * mb)) -x 12 -v 1000 -m 1 -s 0 -h 0 \
      -i "$out/llmc-tokens.bin" -j "$out/llmc-tokens.bin" > "$out/llmc.log" 2>&1 \
      || echo "gpu_gpt2: llm.c's run failed: $(tail -c 400 "$out/llmc.log")"
    grep "^step" "$out/llmc.log" | tail -3
  fi
  timeout 200 python3 "$root/bench/jax_gpt2_gpu.py" --batch "$batch" --seq 1024 --microbatches "$mb" --steps 10 --warmup 2 \
    --json "$out/jax.json" > "$out/jax.log" 2>&1 || { echo "gpu_gpt2: the JAX run failed: $(tail -c 400 "$out/jax.log")"; rc=1; }
  tail -3 "$out/jax.log"
  # The comparison: tokens/s, MFU and the ratios (bench/gpu_vs_jax.py).
  python3 "$root/bench/gpu_vs_jax.py" "$out" --batch "$batch" --microbatches "$mb" || rc=1
  exit $rc
  ;;
-h|--help) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac
