#!/usr/bin/env bash
# The build-machine half of scripts/gpu-check.sh: it prepares a folder (the
# harness, the two cuda plans, the data and the reference runs), and its run
# half, here without a GPU, reports that (exit 3) in gpu-check.json instead
# of failing obscurely; on a GPU machine every check must pass (exit 0).
#   gpu_check_selftest.sh SOURCE_ROOT BIN_DIR
set -uo pipefail
root=$1; bin=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
data=$root/../shared/data/tinyshakespeare.txt
if [ ! -f "$data" ]; then
  cat "$root"/models/*.json > "$work/data.txt"; data=$work/data.txt
fi
bash "$root/scripts/gpu-check.sh" --prepare "$work/gpu" --bin "$bin" --data "$data" || exit 1
for f in pipec-cuda-harness pipec-nccl-check pipec-epilogue-bench pipec-run gpu-check.sh commit data.txt compare_metrics.py \
         dp_contract.py check_profile.py plans.tgz ref-h64/metrics.jsonl \
         ref-bf16/metrics.jsonl ref-f32/metrics.jsonl; do
  [ -e "$work/gpu/$f" ] || { echo "prepare left out $f"; exit 1; }
done
# The plans travel packed; each with its executable.
packed=$(tar tzf "$work/gpu/plans.tgz")
for f in s1/pipec-plan s1/manifest.json s1/CMakeLists.txt s1/kernel_calls.json s4/pipec-plan s2/pipec-plan \
         d2s1/pipec-plan d2s2/pipec-plan s1m16/pipec-plan v131/pipec-plan h64s1/pipec-plan h64s2/pipec-plan \
         ll1/pipec-plan p1/pipec-plan wd2/pipec-plan wz2/pipec-plan wz2s2/pipec-plan; do
  grep -qx "$f" <<< "$packed" || { echo "plans.tgz left out $f"; exit 1; }
done
# The references hold the 50 steps the GPU runs are compared with.
[ "$(wc -l < "$work/gpu/ref-bf16/metrics.jsonl")" -eq 50 ] || { echo "the bf16 reference does not hold 50 steps"; exit 1; }
bash "$work/gpu/gpu-check.sh" --run "$work/gpu" "$work/out"
rc=$?
[ -x "$work/gpu/s1/pipec-plan" ] || { echo "--run did not unpack the plans"; exit 1; }
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['harness_rc'] == $rc, d; print('gpu-check.json:', d)" "$work/out/gpu-check.json" || exit 1
case $rc in
  0|3) exit 0 ;;
  *) echo "gpu-check --run exited $rc"; exit 1 ;;
esac
