#!/usr/bin/env bash
# The main job: set up, build, then walk the flow on real models: what pipec
# knows about a model, the schedule it generates and proves, the plan it makes
# for 4 pipeline ranks, and the model learning on real text.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh pipec pipec-opt

BIN=build/bin
OUT=build/demo
mkdir -p "$OUT"
DATA=../shared/data/tinyshakespeare.txt
[ -f "$DATA" ] || DATA=/usr/share/common-licenses/GPL-3   # a real English text Debian ships

echo
echo "== 1. pipec stats: what pipec knows about a model"
for m in models/gpt-tiny.json models/gpt2-124m.json models/gpt3-175b.json; do
  echo "-- $m"
  "$BIN/pipec" stats "$m"
done

echo
echo "== 2. pipec import: the verified nn module of gpt-tiny"
"$BIN/pipec" import models/gpt-tiny.json -o "$OUT/gpt-tiny.mlir"
grep -m 6 -E "nn\.(parameter|embedding|attention)" "$OUT/gpt-tiny.mlir"
echo "   ... $(wc -l < "$OUT/gpt-tiny.mlir") lines in $OUT/gpt-tiny.mlir"

echo
echo "== 3. pipec schedule: zb-v on 4 ranks, 16 micro-batches, proven deadlock-free"
"$BIN/pipec" schedule --stages 4 --microbatches 16 --kind zb-v --compute-only --svg "$OUT/zb-v.svg"

echo
echo "== 4. pipec plan: gpt-tiny cut into 8 chunks for 4 ranks under zb-v"
"$BIN/pipec" plan models/gpt-tiny.json --stages 4 --microbatches 16 --schedule zb-v

echo
echo "== 5. pipec reference-train: gpt-tiny learns $DATA (loss starts at ln 256 = 5.55)"
"$BIN/pipec" reference-train models/gpt-tiny.json --data "$DATA" --steps 150 \
  --microbatches 2 --log-dir "$OUT/train" | awk 'NR % 15 == 1'
echo "   every step's loss, lr and gradient norm: $OUT/train/metrics.jsonl"

echo
echo "The zb-v timeline is drawn in $OUT/zb-v.svg (open it in a browser)."
