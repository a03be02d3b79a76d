#!/usr/bin/env bash
# The main job: set up, build, and show what pipec knows about a model and a
# schedule. Later issues make this train a pipelined model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh pipec pipec-opt

BIN=build/bin
OUT=build/demo
mkdir -p "$OUT"

echo
echo "== pipec stats: the models in models/"
for m in models/gpt-tiny.json models/llama-tiny.json models/gpt2-124m.json models/gpt3-175b.json; do
  echo "-- $m"
  "$BIN/pipec" stats "$m"
done

echo
echo "== pipec import models/gpt-tiny.json (first lines of the verified nn module)"
"$BIN/pipec" import models/gpt-tiny.json -o "$OUT/gpt-tiny.mlir"
head -n 20 "$OUT/gpt-tiny.mlir"
echo "   ... $(wc -l < "$OUT/gpt-tiny.mlir") lines in $OUT/gpt-tiny.mlir"

echo
echo "== pipec schedule: zb-v on 4 ranks, 16 micro-batches"
"$BIN/pipec" schedule --stages 4 --microbatches 16 --kind zb-v --svg "$OUT/zb-v.svg"
echo
echo "The schedule's timeline is drawn in $OUT/zb-v.svg (open it in a browser)."
