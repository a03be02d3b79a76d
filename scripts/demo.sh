#!/usr/bin/env bash
# The main job: set up, build, then walk the flow on real models: what pipec
# knows about a model, the schedule it generates and proves, the plan it makes
# for 4 pipeline ranks, and that plan compiled, trained on real text and
# sampled from, checkpointed and resumed; then two data-parallel replicas.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh pipec pipec-opt pipec-run

BIN=${BUILD_DIR:-build}/bin   # scripts/build.sh builds into $BUILD_DIR too
OUT=build/demo
mkdir -p "$OUT"
DATA=../shared/data/tinyshakespeare.txt
[ -f "$DATA" ] || DATA=/usr/share/common-licenses/GPL-3   # English text every Debian ships (base-files)

echo
echo "== 1. pipec stats: what pipec knows about a model"
for m in models/gpt-tiny.json models/gpt2-124m.json; do
  echo "-- $m"
  "$BIN/pipec" stats "$m"
done

echo
echo "== 2. pipec schedule: zb-v on 4 ranks, 16 micro-batches, proven deadlock-free"
"$BIN/pipec" schedule --stages 4 --microbatches 16 --kind zb-v --compute-only --svg "$OUT/zb-v.svg" |
  grep -v '^rank '   # the per-rank instruction lists are in the SVG

echo
echo "== 3. pipec plan: gpt-tiny cut into 8 chunks for 4 ranks under zb-v"
"$BIN/pipec" plan models/gpt-tiny.json --stages 4 --microbatches 8 --schedule zb-v \
  --svg "$OUT/gpt-tiny-zbv.svg"

echo
echo "== 4. pipec compile: the plan as C++ per chunk, 4 rank streams, one executable"
"$BIN/pipec" compile models/gpt-tiny.json --stages 4 --microbatches 8 --schedule zb-v \
  -o "$OUT/gpt-tiny-zbv"

echo
echo "== 5. pipec-run: 4 ranks (threads) train on $DATA (loss starts at ln 256 = 5.55),"
echo "      then the trained model writes 400 bytes"
echo "      (a committed checkpoint every 100 steps into $OUT/ckpt)"
rm -rf "$OUT/ckpt"   # checkpoints of an earlier demo run would be refused
"$BIN/pipec-run" "$OUT/gpt-tiny-zbv" --data "$DATA" --steps 300 \
  --log-dir "$OUT/train" --sample 400 --checkpoint-dir "$OUT/ckpt" --checkpoint-every 100 |
  awk '/^step/ { if (n++ % 25 == 0) { print; fflush() } next } { print }'
echo "   every step's loss, lr and gradient norm: $OUT/train/metrics.jsonl"
echo "   the runtime's trace (chrome://tracing): $OUT/train/trace.json"

echo
echo "== 6. pipec-run --resume: from the checkpoint after step 200, the last 100 steps again"
"$BIN/pipec-run" "$OUT/gpt-tiny-zbv" --data "$DATA" --steps 300 \
  --resume "$OUT/ckpt/step-0000000200" --log-dir "$OUT/resumed" --quiet
python3 - "$OUT/train/metrics.jsonl" "$OUT/resumed/metrics.jsonl" <<'PY'
import json, sys
whole = [json.loads(l) for l in open(sys.argv[1])][200:]
resumed = [json.loads(l) for l in open(sys.argv[2])]
same = [a["loss"] == b["loss"] and a["grad_norm"] == b["grad_norm"] for a, b in zip(whole, resumed)]
print("   resumed steps 200-299: %d of %d losses and gradient norms equal to the "
      "uninterrupted run's, bit for bit" % (sum(same), len(whole)))
sys.exit(0 if len(resumed) == len(whole) and all(same) else 1)
PY

echo
echo "== 7. pipec compile --dp 2: two replicas of a 2-rank pipeline (4 ranks), each"
echo "      taking half of every step's 8 micro-batches, against one pipeline of 8"
"$BIN/pipec" compile models/gpt-tiny.json --stages 2 --microbatches 4 --dp 2 \
  --schedule zb-h1 -o "$OUT/gpt-tiny-dp2" | tail -2
"$BIN/pipec" compile models/gpt-tiny.json --stages 2 --microbatches 8 \
  --schedule zb-h1 -o "$OUT/gpt-tiny-dp1" > /dev/null
for d in 1 2; do
  "$BIN/pipec-run" "$OUT/gpt-tiny-dp$d" --data "$DATA" --steps 20 \
    --log-dir "$OUT/dp$d" --quiet
done
python3 - "$OUT/dp1/metrics.jsonl" "$OUT/dp2/metrics.jsonl" <<'PY'
import json, sys
one = [json.loads(l) for l in open(sys.argv[1])]
two = [json.loads(l) for l in open(sys.argv[2])]
worst = max(abs(a["loss"] - b["loss"]) / a["loss"] for a, b in zip(one, two))
print("   step 0 loss: one pipeline %.9f, two replicas %.9f (%s); largest loss "
      "difference over 20 steps %.1e relative (the replicas add their gradients "
      "in another order); %.0f and %.0f tokens/s"
      % (one[0]["loss"], two[0]["loss"],
         "bitwise equal" if one[0]["loss"] == two[0]["loss"] else "DIFFERENT",
         worst, one[-1]["tokens_per_s"], two[-1]["tokens_per_s"]))
sys.exit(0 if one[0]["loss"] == two[0]["loss"] and worst < 1e-5 else 1)
PY

echo
echo "== 7b. --zero 1: the same two replicas with ZeRO-1 (each keeps half of the"
echo "       AdamW moments, gradients reduce-scattered, parameters all-gathered)"
"$BIN/pipec" compile models/gpt-tiny.json --stages 2 --microbatches 4 --dp 2 \
  --zero 1 --schedule zb-h1 -o "$OUT/gpt-tiny-zero" | grep "^rank"
for p in dp2 zero; do
  "$BIN/pipec-run" "$OUT/gpt-tiny-$p" --data "$DATA" --steps 5 \
    --save "$OUT/$p.safetensors" --quiet
done
if cmp -s "$OUT/dp2.safetensors" "$OUT/zero.safetensors"; then
  echo "   parameters after 5 steps: bitwise equal to --dp 2 alone"
else
  echo "   parameters after 5 steps DIFFER from --dp 2 alone" >&2
  exit 1
fi

echo
echo "The zb-v timelines: $OUT/zb-v.svg (the schedule) and $OUT/gpt-tiny-zbv.svg"
echo "(gpt-tiny's plan, with its cost model); open them in a browser."
