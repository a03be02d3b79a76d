#!/usr/bin/env bash
# The main job: set up, build, then walk the flow on real models: what pipec
# knows about a model, the schedule it generates and proves, the plan it makes
# for 4 pipeline ranks, and that plan compiled, trained on real text and
# sampled from.
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
echo "The zb-v timelines: $OUT/zb-v.svg (the schedule) and $OUT/gpt-tiny-zbv.svg"
echo "(gpt-tiny's plan, with its cost model); open them in a browser."
