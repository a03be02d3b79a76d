#!/usr/bin/env bash
# The one prepared run for a lent GPU machine (docs/CUDA.md).
#   scripts/gpu-check.sh --prepare DIR [--bin BIN] [--data FILE]
#       on the build machine (nvcc, no GPU): into DIR, a folder git ignores
#       (e.g. build-gpu/), to name in the device tool's `carry`: the kernel
#       harness, the cuda plans of gpt-tiny at S = 1 and S = 4 zb-v (8
#       micro-batches each, built by BIN/pipec: CUDA runtime static,
#       cuBLASLt from the GPU machine's toolkit or wheels), S = 2 1f1b for
#       the nccl transport with two GPUs, two data-parallel replicas at
#       S = 1 and S = 2, pipec-run and the nccl checks
#       (pipec-nccl-check), the data (FILE,
#       default ../shared/data/tinyshakespeare.txt), the bf16-emulated and
#       fp32 reference runs of the same 50 steps (pipec reference-train),
#       a plan and an emulated run of gpt-tiny with a padded vocabulary,
#       plans and an emulated run of gpt-tiny with one head of 64,
#       two replicas of gpt-tiny twice as wide with and without ZeRO-1,
#       the comparison scripts and this script
#   scripts/gpu-check.sh --run DIR [OUT]
#       on the GPU machine, bounded to 5 minutes: the driver, GPU and
#       libraries first, then the kernel harness (every cuda kernel against
#       its CPU emulation), then the e2e checks: both plans train 50 steps,
#       S = 1 and S = 4 (under cuda-local) bit for bit, S = 4 with the
#       host moving the messages (--transport local) and with every chunk
#       function waiting for its stream (--sync-each-function) the same
#       bits over 10 steps, gpt-tiny with one head of 64 (the tiled tensor-core
#       attention) at S = 1 and S = 2 bit for bit over 20 steps and within
#       1e-3 of its emulated run, S = 1, S = 4, the head-64 plan and
#       llama-tiny under --cuda-graphs the uncaptured bits over 10 steps,
#       S = 1 under --profile (every kernel timed by CUDA events
#       against the card's ceilings; the calls as the plan makes them, the
#       unprofiled bits), the nccl transport's device half (the ordered-sum kernel,
#       NCCL's one-rank communicators: pipec-nccl-check), S = 1 over
#       --transport nccl the same bits as cuda-local over 10 steps (and
#       S = 2, one process per GPU, where two GPUs exist), two replicas
#       at S = 1 and S = 2 bit for bit over 10 steps, two replicas of
#       gpt-tiny twice as wide with ZeRO-1 (at S = 1 and S = 2) the bits
#       of the plan without it over 10 steps, S = 1 within
#       1e-3 of the emulated run
#       per step's loss (1e-4 over the first 20) while S = 1 with GELU's
#       VJP perturbed (--debug-perturb-vjp=gelu) fails that gate,
#       S = 1's checkpoint resumed by both plans to the
#       same bits, S = 1's training state after 25 steps resumed by S = 4 to
#       S = 1's final weights bit for bit, gpt-tiny with 131 classes (padded to 256) at S = 2
#       within 1e-4 of the emulated run over 20 steps, one step under
#       compute-sanitizer memcheck, and the
#       S = 1 folder rebuilt there with cmake and ninja, its first steps
#       bit for bit the prebuilt's; then, measured and not checked,
#       cuBLASLt's bias and GELU epilogues against the separate kernels
#       (pipec-epilogue-bench); logs and gpu-check.json into OUT
#       (default $OUT, else DIR/out), written as it goes
# Exit: 0 every check passed, 1 one failed, 3 no GPU, 2 bad usage.
# The device run: bash scripts/gpu-check.sh --prepare build-gpu, then
# run(command="bash build-gpu/gpu-check.sh --run build-gpu", carry=["build-gpu"]).
set -uo pipefail
usage() { sed -n '2,53p' "$0" | sed 's/^# \{0,1\}//'; }
mode=${1:-}; dir=${2:-}
case "$mode" in -h|--help) usage; exit 0 ;; esac
[ -n "$mode" ] && [ -n "$dir" ] || { usage >&2; exit 2; }
steps=50
mb=8
# The plan folders --prepare builds and packs into plans.tgz.
plans="s1 s4 s2 d2s1 d2s2 s1m16 v131 h64s1 h64s2 ll1 p1 wd2 wz2 wz2s2"

case "$mode" in
--prepare)
  root=$(cd "$(dirname "$0")/.." && pwd)
  bin=build/bin
  data=$root/../shared/data/tinyshakespeare.txt
  shift 2
  while [ $# -gt 0 ]; do
    case "$1" in
      --bin) bin=${2:?--bin needs a folder}; shift 2 ;;
      --data) data=${2:?--data needs a file}; shift 2 ;;
      *) usage >&2; exit 2 ;;
    esac
  done
  for p in pipec-cuda-harness pipec pipec-nccl-check pipec-run; do
    if [ ! -x "$bin/$p" ]; then
      echo "gpu-check: $bin/$p is missing: build it first (scripts/build.sh; the harness needs nvcc)" >&2
      exit 1
    fi
  done
  [ -f "$data" ] || { echo "gpu-check: --data $data: no such file" >&2; exit 1; }
  mkdir -p "$dir"
  cp "$bin/pipec-cuda-harness" "$bin/pipec-nccl-check" "$bin/pipec-run" "$dir/"
  # A measurement beside the checks (built wherever the harness is).
  [ -x "$bin/pipec-epilogue-bench" ] && cp "$bin/pipec-epilogue-bench" "$dir/"
  cp "$data" "$dir/data.txt"
  cp "$root/test/e2e/Inputs/compare_metrics.py" "$root/test/e2e/Inputs/compare_safetensors.py" \
     "$root/test/e2e/Inputs/dp_contract.py" "$root/test/e2e/Inputs/check_profile.py" "$dir/"
  model=$root/models/gpt-tiny.json
  for plan in "s1 --stages 1" "s4 --stages 4 --schedule zb-v" "s2 --stages 2 --schedule 1f1b" \
              "d2s1 --stages 1 --dp 2" "d2s2 --stages 2 --dp 2 --schedule 1f1b" \
              "p1 --stages 1 --debug-perturb-vjp=gelu"; do
    set -- $plan
    name=$1; shift
    rm -rf "$dir/$name"
    "$bin/pipec" compile "$model" --target cuda --microbatches $mb "$@" -o "$dir/$name" > "$dir/$name.compile.log" 2>&1 || {
      cat "$dir/$name.compile.log" >&2; echo "gpu-check: compiling the $name cuda plan failed" >&2; exit 1; }
  done
  # One replica with both replicas' micro-batches: the data-parallel
  # contract's other side (test/e2e/Inputs/dp_contract.py).
  rm -rf "$dir/s1m16"
  "$bin/pipec" compile "$model" --target cuda --microbatches $((2 * mb)) --stages 1 -o "$dir/s1m16" > "$dir/s1m16.compile.log" 2>&1 || {
    cat "$dir/s1m16.compile.log" >&2; echo "gpu-check: compiling the s1m16 cuda plan failed" >&2; exit 1; }
  # Only s1 is rebuilt on the GPU machine: the others leave their sources
  # behind (2 MB each of the device tool's 64 MiB carry) and their
  # executables' symbols (0.5 MB each; the kernels' code stays).
  slim() {
    rm -rf "$dir/$1/third_party" "$dir/$1/runtime" "$dir/$1"/*.o
    strip "$dir/$1/pipec-plan" 2>/dev/null || true
  }
  for name in s4 s2 d2s1 d2s2 s1m16 p1; do
    slim $name
  done
  # The references: the same steps and micro-batches on the CPU, bf16
  # storage emulated (the gate) and fp32 (reported).
  for st in bf16 f32; do
    rm -rf "$dir/ref-$st"
    "$bin/pipec" reference-train "$model" --data "$dir/data.txt" --steps $steps --microbatches $mb --storage $st --log-dir "$dir/ref-$st" > "$dir/ref-$st.log" 2>&1 || {
      cat "$dir/ref-$st.log" >&2; echo "gpu-check: the $st reference run failed" >&2; exit 1; }
  done
  # A padded vocabulary (--nn-pad-vocab): gpt-tiny with 131 classes (256
  # columns) at S = 2, against the emulated reference, which gives the
  # unpadded model's bits (test/e2e/pad-vocab.test).
  python3 "$root/test/e2e/Inputs/with_vocab.py" "$model" 131 "$dir/gpt131.json"
  rm -rf "$dir/v131" "$dir/ref-v131"
  "$bin/pipec" compile "$dir/gpt131.json" --target cuda --stages 2 --schedule 1f1b --microbatches $mb \
    -o "$dir/v131" > "$dir/v131.compile.log" 2>&1 || {
    cat "$dir/v131.compile.log" >&2; echo "gpu-check: compiling the v131 cuda plan failed" >&2; exit 1; }
  slim v131
  "$bin/pipec" reference-train "$dir/gpt131.json" --data "$dir/data.txt" --steps 20 --microbatches $mb --storage bf16 \
    --log-dir "$dir/ref-v131" > "$dir/ref-v131.log" 2>&1 || {
    cat "$dir/ref-v131.log" >&2; echo "gpu-check: the v131 reference run failed" >&2; exit 1; }
  # The tiled tensor-core attention (FlashAttention.cuh, head sizes 64
  # and 128; gpt-tiny's heads are 16 wide): gpt-tiny with one head of 64
  # over 128 positions (two 64-row tiles, causal), at S = 1 and S = 2.
  python3 -c "import json, sys; m = json.load(open(sys.argv[1])); m['config'].update(n_head=1, seq=128, n_ctx=128); json.dump(m, open(sys.argv[2], 'w'), indent=1)" \
    "$model" "$dir/gpt-h64.json"
  for plan in "h64s1 --stages 1" "h64s2 --stages 2 --schedule 1f1b"; do
    set -- $plan
    name=$1; shift
    rm -rf "$dir/$name"
    "$bin/pipec" compile "$dir/gpt-h64.json" --target cuda --microbatches 4 "$@" -o "$dir/$name" > "$dir/$name.compile.log" 2>&1 || {
      cat "$dir/$name.compile.log" >&2; echo "gpu-check: compiling the $name cuda plan failed" >&2; exit 1; }
    grep -q "flash_attention_forward(C" "$dir/$name"/chunk0.cu || {
      echo "gpu-check: the $name plan does not call the tiled attention" >&2; exit 1; }
    slim $name
  done
  # ZeRO-1 on cuda: gpt-tiny twice as wide (d = 128, two layers), so that
  # its larger parameters span several norm chunks and the replicas' parts
  # cut them (pipert/ZeroShard.h), two replicas with and without ZeRO-1.
  python3 -c "import json, sys; m = json.load(open(sys.argv[1])); m['config'].update(n_layer=2, d_model=128, d_qkv=384, d_ff=512); json.dump(m, open(sys.argv[2], 'w'), indent=1)" \
    "$model" "$dir/gpt-w128.json"
  for plan in "wd2 --stages 1 --dp 2" "wz2 --stages 1 --dp 2 --zero 1" \
              "wz2s2 --stages 2 --dp 2 --zero 1 --schedule 1f1b"; do
    set -- $plan
    name=$1; shift
    rm -rf "$dir/$name"
    "$bin/pipec" compile "$dir/gpt-w128.json" --target cuda --microbatches 4 "$@" -o "$dir/$name" > "$dir/$name.compile.log" 2>&1 || {
      cat "$dir/$name.compile.log" >&2; echo "gpu-check: compiling the $name cuda plan failed" >&2; exit 1; }
    slim $name
  done
  # llama-tiny at S = 1 (rope from pinned angle tables, rmsnorm, SiLU,
  # grouped-query heads): trained with and without --cuda-graphs.
  rm -rf "$dir/ll1"
  "$bin/pipec" compile "$root/models/llama-tiny.json" --target cuda --microbatches 4 --stages 1 -o "$dir/ll1" \
    > "$dir/ll1.compile.log" 2>&1 || {
    cat "$dir/ll1.compile.log" >&2; echo "gpu-check: compiling the ll1 cuda plan failed" >&2; exit 1; }
  slim ll1
  rm -rf "$dir/ref-h64"
  "$bin/pipec" reference-train "$dir/gpt-h64.json" --data "$dir/data.txt" --steps 20 --microbatches 4 --storage bf16 \
    --log-dir "$dir/ref-h64" > "$dir/ref-h64.log" 2>&1 || {
    cat "$dir/ref-h64.log" >&2; echo "gpu-check: the h64 reference run failed" >&2; exit 1; }
  # The plans travel packed (their executables' kernel code compresses to
  # a third; the device tool carries 64 MiB in all): --run unpacks them.
  rm -f "$dir/plans.tgz"
  tar czf "$dir/plans.tgz" -C "$dir" $plans || { echo "gpu-check: packing the plans failed" >&2; exit 1; }
  (cd "$dir" && rm -rf $plans)
  cp "$0" "$dir/gpu-check.sh"
  git -C "$root" rev-parse --short HEAD > "$dir/commit" 2>/dev/null || echo unknown > "$dir/commit"
  echo "gpu-check: prepared $dir (harness, cuda plans s1 and s4, references, commit $(cat "$dir/commit")); on the GPU machine: bash $dir/gpu-check.sh --run $dir"
  ;;
--run)
  out=${3:-${OUT:-$dir/out}}
  mkdir -p "$out"
  start=$(date +%s)
  if [ -f "$dir/plans.tgz" ]; then
    (cd "$dir" && rm -rf $plans) && tar xzf "$dir/plans.tgz" -C "$dir" ||
      { echo "gpu-check: unpacking $dir/plans.tgz failed" >&2; exit 1; }
  fi
  left() { echo $(( 290 - ($(date +%s) - start) )); }
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
  timeout 150 "$dir/pipec-cuda-harness" > "$out/harness.jsonl" 2> "$out/harness.err"
  rc=$?
  cat "$out/harness.jsonl"
  summary=$(grep '"summary"' "$out/harness.jsonl" | tail -1)
  gpu=$(grep -m1 '"gpu"' "$out/harness.jsonl")
  e2e=()   # "name": true|false entries
  note() { e2e+=("\"$1\": $2"); echo "gpu-check: $1: $2${3:+ ($3)}"; }
  # A run that exited CODE (its output in LOG): NAME true when its metrics
  # agree by compare_metrics.py ARGS..., else false saying why.
  note_run() {
    local name=$1 code=$2 log=$3 r
    shift 3
    if [ "$code" -ne 0 ]; then
      note "$name" false "exit $code: $(tail -c 300 "$log")"
      return
    fi
    r=$(python3 "$dir/compare_metrics.py" "$@")
    [ $? -eq 0 ] && note "$name" true "$r" || note "$name" false "$r"
  }
  # Plan NAME's 10 steps again with FLAG (a graph mode) into
  # $out/NAME-SUFFIX: NOTE true when the metrics are the uncaptured run's
  # bits, with both medians of the steps from SKIP on.
  graph_run() {
    local name=$1 flag=$2 suffix=$3 skip=$4 note_name=$5 code r ok t
    timeout 30 "$dir/$name/pipec-plan" --plan "$dir/$name" --data "$dir/data.txt" --steps 10 \
      $flag --log-dir "$out/$name-$suffix" --quiet > "$out/$name-$suffix.log" 2>&1
    code=$?
    if [ $code -ne 0 ]; then
      note "$note_name" false "exit $code: $(tail -c 300 "$out/$name-$suffix.log")"
      return
    fi
    r=$(python3 "$dir/compare_metrics.py" "$out/$name-$suffix/metrics.jsonl" "$out/$name-first10.jsonl" --steps 10)
    ok=$?
    t=$(python3 -c "import json, statistics, sys; m = lambda f: statistics.median([json.loads(l)['step_time_s'] for l in open(f)][int(sys.argv[3]):]); print('median of steps %s-9: %.2f ms uncaptured, %.2f ms with %s' % (sys.argv[3], 1e3 * m(sys.argv[1]), 1e3 * m(sys.argv[2]), sys.argv[4]))" \
      "$out/$name-first10.jsonl" "$out/$name-$suffix/metrics.jsonl" "$skip" "$flag" 2>&1)
    [ $ok -eq 0 ] && note "$note_name" true "$r; $t" || note "$note_name" false "$r"
  }
  if [ $rc -ne 3 ] && [ -d "$dir/s1" ]; then
    # The two plans, 50 steps each; S = 1 against S = 4 bit for bit, and
    # against the emulated reference within 1e-3 per step's loss.
    for name in s1 s4; do
      save=(); [ $name = s1 ] && save=(--save "$out/s1.safetensors")
      timeout $(( $(left) > 40 ? 40 : $(left) )) "$dir/$name/pipec-plan" --plan "$dir/$name" --data "$dir/data.txt" \
        --steps $steps --log-dir "$out/$name" "${save[@]}" --quiet > "$out/$name.log" 2>&1
      code=$?
      [ $code -eq 0 ] && note "train_$name" true || { note "train_$name" false "exit $code: $(tail -c 300 "$out/$name.log")"; }
    done
    if [ -f "$out/s1/metrics.jsonl" ] && [ -f "$out/s4/metrics.jsonl" ]; then
      r=$(python3 "$dir/compare_metrics.py" "$out/s1/metrics.jsonl" "$out/s4/metrics.jsonl" --steps $steps)
      [ $? -eq 0 ] && note s1_equals_s4_bitwise true "$r" || note s1_equals_s4_bitwise false "$r"
    fi
    # S = 4 ran under cuda-local (the device moves the messages, ordered
    # by events, and the chunks' functions do not wait for the stream);
    # the host moving them instead (--transport local, the path of the
    # first GPU run, every function waiting) must give the same bits.
    if [ -f "$out/s4/metrics.jsonl" ] && [ "$(left)" -gt 30 ]; then
      timeout 30 "$dir/s4/pipec-plan" --plan "$dir/s4" --data "$dir/data.txt" --steps 10 \
        --transport local --log-dir "$out/s4-host" --quiet > "$out/s4-host.log" 2>&1
      code=$?
      head -10 "$out/s4/metrics.jsonl" > "$out/s4-first10.jsonl"
      note_run s4_cuda_local_equals_host_moved $code "$out/s4-host.log" "$out/s4-host/metrics.jsonl" "$out/s4-first10.jsonl" --steps 10
    else
      note s4_cuda_local_equals_host_moved null "no S = 4 run or no time left"
    fi
    # The same device queues with every chunk function waiting for its
    # stream (--sync-each-function): the deferred waits alone, isolated.
    if [ -f "$out/s4-first10.jsonl" ] && [ "$(left)" -gt 30 ]; then
      timeout 30 "$dir/s4/pipec-plan" --plan "$dir/s4" --data "$dir/data.txt" --steps 10 \
        --sync-each-function --log-dir "$out/s4-synced" --quiet > "$out/s4-synced.log" 2>&1
      code=$?
      note_run s4_deferred_equals_synced $code "$out/s4-synced.log" "$out/s4-synced/metrics.jsonl" "$out/s4-first10.jsonl" --steps 10
    else
      note s4_deferred_equals_synced null "no S = 4 run or no time left"
    fi
    # The shadow mode on the device (--transport local: the host moves the
    # messages, every function waits): every access of two steps of S = 4
    # as its stream declares, the working copies and the optimizer's
    # scalars included, the arenas read through the device copy.
    if [ -f "$out/s4-first10.jsonl" ] && [ "$(left)" -gt 30 ]; then
      timeout 30 "$dir/s4/pipec-plan" --plan "$dir/s4" --data "$dir/data.txt" --steps 2 \
        --transport local --shadow --log-dir "$out/s4-shadow" > "$out/s4-shadow.log" 2>&1
      code=$?
      if [ $code -eq 0 ] && grep -q "shadow memory: every access as planned" "$out/s4-shadow.log"; then
        note s4_shadow_every_access_as_planned true "$(grep -m1 'shadow memory' "$out/s4-shadow.log")"
      else
        note s4_shadow_every_access_as_planned false "exit $code: $(tail -c 300 "$out/s4-shadow.log")"
      fi
    else
      note s4_shadow_every_access_as_planned null "no S = 4 run or no time left"
    fi
    # The tiled attention in training (head size 64, two tiles): S = 1 and
    # S = 2 bit for bit over 20 steps, within 1e-3 of the emulated run.
    if [ -d "$dir/h64s1" ] && [ "$(left)" -gt 40 ]; then
      for name in h64s1 h64s2; do
        timeout 30 "$dir/$name/pipec-plan" --plan "$dir/$name" --data "$dir/data.txt" --steps 20 \
          --log-dir "$out/$name" --quiet > "$out/$name.log" 2>&1 || echo "gpu-check: $name: $(tail -c 300 "$out/$name.log")"
      done
      if [ -f "$out/h64s1/metrics.jsonl" ] && [ -f "$out/h64s2/metrics.jsonl" ]; then
        r=$(python3 "$dir/compare_metrics.py" "$out/h64s1/metrics.jsonl" "$out/h64s2/metrics.jsonl" --steps 20)
        [ $? -eq 0 ] && note flash_s1_equals_s2_bitwise true "$r" || note flash_s1_equals_s2_bitwise false "$r"
        r=$(python3 "$dir/compare_metrics.py" "$out/h64s1/metrics.jsonl" "$dir/ref-h64/metrics.jsonl" --fields loss --rtol 1e-3 --steps 20)
        [ $? -eq 0 ] && note flash_within_1e-3_of_emulated true "$r" || note flash_within_1e-3_of_emulated false "$r"
      else
        note flash_s1_equals_s2_bitwise false "a head-64 run failed: $(tail -c 300 "$out/h64s1.log") $(tail -c 300 "$out/h64s2.log")"
      fi
    else
      note flash_s1_equals_s2_bitwise null "no head-64 plans or no time left"
    fi
    # --cuda-graphs (issue 19 item 3): each function captured once and
    # replayed (the first call of each uncaptured, the second captured);
    # S = 1, S = 4 and the head-64 S = 1 must keep the uncaptured bits over 10
    # steps; the median steps both ways are reported.
    # gpt-tiny with one head of 64 runs the tiled attention under graphs,
    # llama-tiny the rope tables' pinned copies (its uncaptured run first).
    if [ -d "$dir/ll1" ] && [ "$(left)" -gt 40 ]; then
      timeout 30 "$dir/ll1/pipec-plan" --plan "$dir/ll1" --data "$dir/data.txt" --steps 10 \
        --log-dir "$out/ll1" --quiet > "$out/ll1.log" 2>&1 || echo "gpu-check: ll1: $(tail -c 300 "$out/ll1.log")"
    fi
    if [ -f "$out/s1/metrics.jsonl" ] && [ -f "$out/s4/metrics.jsonl" ] && [ "$(left)" -gt 40 ]; then
      for name in s1 s4 h64s1 ll1; do
        [ -f "$out/$name/metrics.jsonl" ] || continue
        head -10 "$out/$name/metrics.jsonl" > "$out/$name-first10.jsonl"
        graph_run $name --cuda-graphs graphs 2 ${name}_graphs_bitwise
      done
    else
      note s1_graphs_bitwise null "no S = 1 and S = 4 runs or no time left"
    fi
    # --step-graph (issue 19 item 3): the whole step of every rank, the
    # messages and collectives included, captured once (after the first
    # step and the traced ones) and replayed: S = 1, S = 4 (four ranks,
    # tied embedding all-reduced on the device) and llama-tiny must keep
    # the uncaptured bits over 10 steps; the median steps both ways.
    if [ -f "$out/s1-first10.jsonl" ] && [ "$(left)" -gt 40 ]; then
      for name in s1 s4 ll1; do
        [ -f "$out/$name-first10.jsonl" ] || continue
        graph_run $name --step-graph step-graph 4 ${name}_step_graph_bitwise
      done
    else
      note s1_step_graph_bitwise null "no S = 1 run or no time left"
    fi
    # pipec-plan --profile (issue 19): every kernel call timed with CUDA
    # events on the steps after the first, beside the card's ceilings
    # measured in the same run; the calls counted as the plan makes them,
    # and the profiled steps with the unprofiled run's bits.
    if [ -f "$out/s1/metrics.jsonl" ] && [ "$(left)" -gt 30 ]; then
      timeout 30 "$dir/s1/pipec-plan" --plan "$dir/s1" --data "$dir/data.txt" --steps 5 \
        --profile --log-dir "$out/s1-profile" --quiet > "$out/s1-profile.txt" 2>&1
      code=$?
      head -40 "$out/s1-profile.txt"
      head -5 "$out/s1/metrics.jsonl" > "$out/s1-first5.jsonl"
      if [ $code -eq 0 ]; then
        r=$(python3 "$dir/check_profile.py" "$dir/s1" "$out/s1-profile" $mb 2>&1 &&
            python3 "$dir/compare_metrics.py" "$out/s1-profile/metrics.jsonl" "$out/s1-first5.jsonl" --steps 5 2>&1)
        [ $? -eq 0 ] && note profile_s1 true "$(echo "$r" | tr '\n' ' ')" || note profile_s1 false "$(echo "$r" | tr '\n' ' ' | head -c 300)"
      else
        note profile_s1 false "exit $code: $(tail -c 300 "$out/s1-profile.txt")"
      fi
    else
      note profile_s1 null "no S = 1 run or no time left"
    fi
    # The nccl transport (docs/NCCL.md): its device half on this GPU, then
    # S = 1 through NCCL's one-rank communicators against cuda-local's
    # bits, and S = 2 with a process per GPU where two GPUs exist (NCCL
    # refuses two ranks of a communicator on one GPU).
    if [ -x "$dir/pipec-nccl-check" ] && [ "$(left)" -gt 30 ]; then
      timeout 60 "$dir/pipec-nccl-check" > "$out/nccl-check.jsonl" 2>&1
      code=$?
      cat "$out/nccl-check.jsonl"
      [ $code -eq 0 ] && note nccl_device_checks true "$(grep -c '"ok": true' "$out/nccl-check.jsonl") passed" \
        || note nccl_device_checks false "exit $code: $(grep '"ok": false' "$out/nccl-check.jsonl" | head -c 300)"
    fi
    if [ -f "$out/s1/metrics.jsonl" ] && [ "$(left)" -gt 30 ]; then
      timeout 30 "$dir/s1/pipec-plan" --plan "$dir/s1" --data "$dir/data.txt" --steps 10 \
        --transport nccl --watchdog-ms 10000 --log-dir "$out/s1-nccl" --quiet > "$out/s1-nccl.log" 2>&1
      code=$?
      head -10 "$out/s1/metrics.jsonl" > "$out/s1-first10.jsonl"
      note_run s1_nccl_equals_cuda_local $code "$out/s1-nccl.log" "$out/s1-nccl/metrics.jsonl" "$out/s1-first10.jsonl" --steps 10
    else
      note s1_nccl_equals_cuda_local null "no S = 1 run or no time left"
    fi
    # The same through NCCL with the step captured (--step-graph, the
    # watchdog on each launch). One rank has no communicator but the
    # world's, so no NCCL call is inside this graph: the two-GPU run below
    # has them.
    if [ -f "$out/s1-nccl/metrics.jsonl" ] && [ "$(left)" -gt 30 ]; then
      timeout 30 "$dir/s1/pipec-plan" --plan "$dir/s1" --data "$dir/data.txt" --steps 10 \
        --transport nccl --step-graph --watchdog-ms 10000 --log-dir "$out/s1-nccl-graph" --quiet > "$out/s1-nccl-graph.log" 2>&1
      code=$?
      note_run s1_nccl_step_graph_bitwise $code "$out/s1-nccl-graph.log" "$out/s1-nccl-graph/metrics.jsonl" "$out/s1-first10.jsonl" --steps 10
    else
      note s1_nccl_step_graph_bitwise null "no nccl run or no time left"
    fi
    # Data parallelism on the GPU: two replicas at S = 1 and at S = 2
    # (their gradients all-reduced by the transport in rank order), the
    # same bits.
    if [ -d "$dir/d2s1" ] && [ -d "$dir/d2s2" ] && [ "$(left)" -gt 40 ]; then
      ok=1
      for name in d2s1 d2s2; do
        timeout 30 "$dir/$name/pipec-plan" --plan "$dir/$name" --data "$dir/data.txt" --steps 10 \
          --log-dir "$out/$name" --quiet > "$out/$name.log" 2>&1 || ok=0
      done
      if [ $ok -eq 1 ]; then
        r=$(python3 "$dir/compare_metrics.py" "$out/d2s1/metrics.jsonl" "$out/d2s2/metrics.jsonl" --steps 10)
        [ $? -eq 0 ] && note dp2_s1_equals_s2_bitwise true "$r" || note dp2_s1_equals_s2_bitwise false "$r"
        # Against one replica with both replicas' micro-batches: the same
        # step-0 loss bit for bit, the norm and losses within the contract.
        timeout 30 "$dir/s1m16/pipec-plan" --plan "$dir/s1m16" --data "$dir/data.txt" --steps 10 \
          --log-dir "$out/s1m16" --quiet > "$out/s1m16.log" 2>&1
        r=$(python3 "$dir/dp_contract.py" "$out/s1m16/metrics.jsonl" "$out/d2s1/metrics.jsonl" --steps 10 2>&1)
        [ $? -eq 0 ] && note dp2_contract_against_one_replica true "$r" || note dp2_contract_against_one_replica false "$r"
      else
        note dp2_s1_equals_s2_bitwise false "$(tail -c 300 "$out/d2s2.log")"
      fi
    else
      note dp2_s1_equals_s2_bitwise null "no data-parallel plans or no time left"
    fi
    # ZeRO-1 on the GPU: two replicas of gpt-w128 with the moments split
    # (at S = 1 and S = 2) train to the bits of the plan without ZeRO-1:
    # the same losses and norms, the same weights and optimizer state
    # after 10 steps.
    if [ -d "$dir/wd2" ] && [ -d "$dir/wz2" ] && [ -d "$dir/wz2s2" ] && [ "$(left)" -gt 40 ]; then
      ok=1
      for name in wd2 wz2 wz2s2; do
        timeout 30 "$dir/$name/pipec-plan" --plan "$dir/$name" --data "$dir/data.txt" --steps 10 \
          --save "$out/$name.safetensors" --save-state "$out/$name-state.safetensors" \
          --log-dir "$out/$name" --quiet > "$out/$name.log" 2>&1 || ok=0
      done
      if [ $ok -eq 1 ]; then
        r=$(python3 "$dir/compare_metrics.py" "$out/wz2/metrics.jsonl" "$out/wd2/metrics.jsonl" --steps 10 &&
            python3 "$dir/compare_metrics.py" "$out/wz2s2/metrics.jsonl" "$out/wd2/metrics.jsonl" --steps 10)
        code=$?
        # The weights, and the training state (the moments assembled from
        # the replicas' parts), byte for byte.
        if [ $code -eq 0 ] && cmp -s "$out/wz2.safetensors" "$out/wd2.safetensors" &&
           cmp -s "$out/wz2s2.safetensors" "$out/wd2.safetensors" &&
           cmp -s "$out/wz2-state.safetensors" "$out/wd2-state.safetensors" &&
           cmp -s "$out/wz2s2-state.safetensors" "$out/wd2-state.safetensors"; then
          note zero1_equals_plain_dp_bitwise true "$(echo "$r" | tr '\n' ' ')"
        else
          note zero1_equals_plain_dp_bitwise false "metrics exit $code: $(echo "$r" | tr '\n' ' ' | head -c 200); weights $(cmp "$out/wz2.safetensors" "$out/wd2.safetensors" 2>&1 | head -c 100); state $(cmp "$out/wz2-state.safetensors" "$out/wd2-state.safetensors" 2>&1 | head -c 100)"
        fi
      else
        note zero1_equals_plain_dp_bitwise false "$(tail -c 300 "$out/wz2.log") $(tail -c 300 "$out/wz2s2.log")"
      fi
    else
      note zero1_equals_plain_dp_bitwise null "no ZeRO-1 plans or no time left"
    fi
    gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
    if [ "${gpus:-0}" -ge 2 ] && [ -d "$dir/s2" ] && [ "$(left)" -gt 40 ]; then
      timeout 30 "$dir/s2/pipec-plan" --plan "$dir/s2" --data "$dir/data.txt" --steps 10 \
        --log-dir "$out/s2-local" --quiet > "$out/s2-local.log" 2>&1
      timeout 40 "$dir/pipec-run" "$dir/s2" --data "$dir/data.txt" --steps 10 --transport nccl \
        --watchdog-ms 10000 --log-dir "$out/s2-nccl" --quiet > "$out/s2-nccl.log" 2>&1
      code=$?
      note_run s2_nccl_two_gpus_equals_cuda_local $code "$out/s2-nccl.log" "$out/s2-nccl/metrics.jsonl" "$out/s2-local/metrics.jsonl" --steps 10
      # The same with each rank's step a graph: its sends and receives
      # between the two GPUs inside it.
      timeout 40 "$dir/pipec-run" "$dir/s2" --data "$dir/data.txt" --steps 10 --transport nccl \
        --step-graph --watchdog-ms 10000 --log-dir "$out/s2-nccl-graph" --quiet > "$out/s2-nccl-graph.log" 2>&1
      code=$?
      note_run s2_nccl_step_graph_two_gpus_bitwise $code "$out/s2-nccl-graph.log" "$out/s2-nccl-graph/metrics.jsonl" "$out/s2-local/metrics.jsonl" --steps 10
    else
      note s2_nccl_two_gpus_equals_cuda_local null "${gpus:-0} GPU(s): NCCL needs a GPU per rank"
    fi
    if [ -f "$out/s1/metrics.jsonl" ]; then
      r=$(python3 "$dir/compare_metrics.py" "$out/s1/metrics.jsonl" "$dir/ref-bf16/metrics.jsonl" --fields loss --rtol 1e-3)
      [ $? -eq 0 ] && note s1_within_1e-3_of_emulated true "$r" || note s1_within_1e-3_of_emulated false "$r"
      # The negative control: GELU's VJP perturbed (times 1 + 2^-6, the
      # cuda target's --debug-perturb-vjp) must fail the same gate, or the
      # gate could not tell a wrong gradient from bf16's rounding.
      if [ -x "$dir/p1/pipec-plan" ] && [ "$(left)" -gt 30 ]; then
        timeout 30 "$dir/p1/pipec-plan" --plan "$dir/p1" --data "$dir/data.txt" --steps $steps \
          --log-dir "$out/p1" --quiet > "$out/p1.log" 2>&1
        code=$?
        if [ $code -eq 0 ]; then
          # It must train all the steps near the reference (within 5e-2, so
          # a broken run cannot pass for the control) and yet fail 1e-3.
          loose=$(python3 "$dir/compare_metrics.py" "$out/p1/metrics.jsonl" "$dir/ref-bf16/metrics.jsonl" --fields loss --rtol 5e-2 --steps $steps 2>&1)
          looseCode=$?
          r=$(python3 "$dir/compare_metrics.py" "$out/p1/metrics.jsonl" "$dir/ref-bf16/metrics.jsonl" --fields loss --rtol 1e-3 --steps $steps)
          tightCode=$?
          if [ $looseCode -eq 0 ] && [ $tightCode -ne 0 ]; then
            note perturbed_vjp_fails_1e-3 true "$r"
          else
            note perturbed_vjp_fails_1e-3 false "within 5e-2: $loose; within 1e-3: $r"
          fi
        else
          note perturbed_vjp_fails_1e-3 false "exit $code: $(tail -c 300 "$out/p1.log")"
        fi
      else
        note perturbed_vjp_fails_1e-3 null "no p1 plan or no time left"
      fi
      r=$(python3 "$dir/compare_metrics.py" "$out/s1/metrics.jsonl" "$dir/ref-f32/metrics.jsonl" --fields loss --rtol 0.02)
      note s1_vs_fp32_reported true "$r"
      # The first 20 steps, before the runs' small differences compound:
      # the GPU tracks the emulation at 2e-5 where fp32 is 6e-4 away
      # (H100, 90693f3), so 1e-4 tells bf16 storage from fp32.
      head -20 "$out/s1/metrics.jsonl" > "$out/s1-first20.jsonl"
      head -20 "$dir/ref-bf16/metrics.jsonl" > "$out/ref-bf16-first20.jsonl"
      r=$(python3 "$dir/compare_metrics.py" "$out/s1-first20.jsonl" "$out/ref-bf16-first20.jsonl" --fields loss --rtol 1e-4 --steps 20)
      [ $? -eq 0 ] && note s1_first20_within_1e-4_of_emulated true "$r" || note s1_first20_within_1e-4_of_emulated false "$r"
    fi
    # Checkpoints through the device arenas: S = 1's saved parameters
    # loaded into both plans (one rank, four ranks), one step each, saved
    # again: the same bits, and the resumed loss a trained model's.
    if [ -f "$out/s1.safetensors" ] && [ "$(left)" -gt 30 ]; then
      ok=1
      for name in s1 s4; do
        timeout 30 "$dir/$name/pipec-plan" --plan "$dir/$name" --data "$dir/data.txt" --steps 1 \
          --init "$out/s1.safetensors" --save "$out/$name-resumed.safetensors" --log-dir "$out/$name-resumed" \
          --quiet > "$out/$name-resumed.log" 2>&1 || ok=0
      done
      r=$(python3 "$dir/compare_safetensors.py" "$out/s1-resumed.safetensors" "$out/s4-resumed.safetensors")
      [ $? -eq 0 ] || ok=0
      r="$r; $(python3 - "$out/s1/metrics.jsonl" "$out/s1-resumed/metrics.jsonl" <<'PY' 2>&1
import json, sys
first = json.loads(open(sys.argv[1]).readline())["loss"]
resumed = json.loads(open(sys.argv[2]).readline())["loss"]
print(f"resumed loss {resumed:.4f}, untrained {first:.4f}")
sys.exit(0 if resumed < 0.8 * first else 1)
PY
)" || ok=0
      [ $ok -eq 1 ] && note checkpoint_resume_s1_equals_s4 true "$r" || note checkpoint_resume_s1_equals_s4 false "$r $(tail -c 200 "$out/s4-resumed.log")"
    else
      note checkpoint_resume_s1_equals_s4 null "no checkpoint or no time left"
    fi
    # The training state (parameters and AdamW moments) through the device
    # arenas: S = 1 stops after half the steps and saves it, S = 4 resumes
    # it to the end; the weights must be S = 1's uninterrupted ones, bit for
    # bit (resume and layout independence at once).
    if [ -f "$out/s1.safetensors" ] && [ "$(left)" -gt 40 ]; then
      half=$(( steps / 2 ))
      ok=1
      timeout 30 "$dir/s1/pipec-plan" --plan "$dir/s1" --data "$dir/data.txt" --steps $half \
        --save-state "$out/state-half.safetensors" --quiet > "$out/state-half.log" 2>&1 || ok=0
      timeout 30 "$dir/s4/pipec-plan" --plan "$dir/s4" --data "$dir/data.txt" --steps $steps \
        --resume "$out/state-half.safetensors" --save "$out/s4-from-half.safetensors" --quiet > "$out/s4-from-half.log" 2>&1 || ok=0
      r=$(python3 "$dir/compare_safetensors.py" "$out/s1.safetensors" "$out/s4-from-half.safetensors" 2>&1) || ok=0
      [ $ok -eq 1 ] && note state_resume_s1_half_to_s4_bitwise true "$r" || note state_resume_s1_half_to_s4_bitwise false "$r $(tail -c 200 "$out/s4-from-half.log")"
    else
      note state_resume_s1_half_to_s4_bitwise null "no checkpoint or no time left"
    fi
    # The padded vocabulary: 20 steps within 1e-4 of the emulated run.
    if [ -d "$dir/v131" ] && [ "$(left)" -gt 30 ]; then
      timeout 30 "$dir/v131/pipec-plan" --plan "$dir/v131" --data "$dir/data.txt" --steps 20 \
        --log-dir "$out/v131" --quiet > "$out/v131.log" 2>&1
      code=$?
      note_run padded_vocab_within_1e-4_of_emulated $code "$out/v131.log" "$out/v131/metrics.jsonl" "$dir/ref-v131/metrics.jsonl" --fields loss --rtol 1e-4 --steps 20
    else
      note padded_vocab_within_1e-4_of_emulated null "no v131 plan or no time left"
    fi
    # One step under compute-sanitizer memcheck.
    sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
    if [ -n "$sanitizer" ] && [ "$(left)" -gt 60 ]; then
      timeout 90 "$sanitizer" --tool memcheck --error-exitcode 9 "$dir/s1/pipec-plan" --plan "$dir/s1" --data "$dir/data.txt" \
        --steps 1 --quiet > "$out/memcheck.log" 2>&1
      code=$?
      [ $code -eq 0 ] && note memcheck_one_step true || note memcheck_one_step false "exit $code: $(tail -c 300 "$out/memcheck.log")"
    else
      note memcheck_one_step null "no compute-sanitizer or no time left"
    fi
    # The S = 1 folder rebuilt here with cmake and ninja; its first steps
    # bit for bit the prebuilt's.
    if command -v cmake > /dev/null && command -v ninja > /dev/null && [ "$(left)" -gt 45 ]; then
      rm -rf "$out/rebuild"
      if timeout $(( $(left) - 15 )) bash -c "cmake -G Ninja -S '$dir/s1' -B '$out/rebuild' > '$out/rebuild.log' 2>&1 && ninja -C '$out/rebuild' pipec-plan >> '$out/rebuild.log' 2>&1"; then
        timeout 20 "$out/rebuild/pipec-plan" --plan "$dir/s1" --data "$dir/data.txt" --steps 3 --log-dir "$out/rebuilt" --quiet > /dev/null 2>&1
        head -3 "$out/s1/metrics.jsonl" > "$out/s1-first3.jsonl" 2>/dev/null
        r=$(python3 "$dir/compare_metrics.py" "$out/rebuilt/metrics.jsonl" "$out/s1-first3.jsonl" --steps 3 2>&1)
        [ $? -eq 0 ] && note rebuilt_folder_bitwise true "$r" || note rebuilt_folder_bitwise false "$r"
      else
        note rebuilt_folder_bitwise false "the folder did not build: $(tail -c 300 "$out/rebuild.log")"
      fi
    else
      note rebuilt_folder_bitwise null "no cmake/ninja or no time left"
    fi
  fi
  # Measured, not a check: cuBLASLt's bias and GELU epilogues against the
  # separate kernels at GPT-2's forward GEMMs (issue 19 item 2: epilogues
  # where they measurably pay); null when it could not measure.
  if [ $rc -ne 3 ] && [ -x "$dir/pipec-epilogue-bench" ] && [ "$(left)" -gt 20 ]; then
    timeout 30 "$dir/pipec-epilogue-bench" --batch 64 > "$out/epilogues.jsonl" 2>&1
    code=$?
    r=$(python3 -c "import json, sys; rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{\"shape')]; print('; '.join('%s: gemm %.3f ms, bias epilogue saves %.3f ms, GELU epilogue saves %.3f ms (out %d ulps)' % (r['shape'], r['gemm_ms'], r['bias_epilogue_saves_ms'], r['gelu_epilogue_saves_ms'], r['gelu_out_max_ulps']) for r in rows))" "$out/epilogues.jsonl" 2>&1)
    if [ $code -eq 0 ] && [ "$(grep -c '^{"shape' "$out/epilogues.jsonl")" -eq 3 ]; then
      note epilogues_measured true "$r"
    else
      note epilogues_measured null "exit $code: $(tail -c 300 "$out/epilogues.jsonl")"
    fi
  fi
  joined=$(IFS=,; echo "${e2e[*]:-}")
  printf '{"commit": "%s", "harness_rc": %d, "gpu": %s, "harness": %s, "e2e": {%s}}\n' \
    "$commit" "$rc" "${gpu:-null}" "${summary:-null}" "$joined" > "$out/gpu-check.json"
  cat "$out/gpu-check.json"
  failed_e2e=0
  for e in "${e2e[@]:-}"; do case "$e" in *": false") failed_e2e=1 ;; esac; done
  case $rc in
    0) [ $failed_e2e -eq 0 ] && echo "gpu-check: every check passed" || { echo "gpu-check: an e2e check failed"; rc=1; } ;;
    3) echo "gpu-check: no GPU here ($(head -c 200 "$out/harness.jsonl"))" ;;
    124) echo "gpu-check: the kernel harness timed out after 150 s"; rc=1 ;;
    *) echo "gpu-check: a check failed (rc $rc; $out/harness.jsonl)"; rc=1 ;;
  esac
  exit $rc
  ;;
-h|--help) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac
