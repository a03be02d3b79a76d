#!/usr/bin/env bash
# Every test suite of pipec: set-up, build, then lit, the unit tests (ctest),
# the importer fuzzer and the JAX reference comparison. Exits non-zero when any suite fails; each runner's
# summary line is printed at the end.
#   scripts/test.sh          everything (what CI runs)
#   scripts/test.sh --quick  build, lit and ctest only: the inner loop (minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "scripts/test.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh || exit 1
bash scripts/build.sh || exit 1

BUILD_DIR=${BUILD_DIR:-build}
status=0
summary=()

echo "== lit"
/usr/lib/llvm-22/bin/lit -sv "$BUILD_DIR/test" | tee "$BUILD_DIR/lit.log" || status=1
lit_count() { local n; n=$(grep -E "^ +$1: " "$BUILD_DIR/lit.log" | awk '{print $2}' | tail -1); echo "${n:-0}"; }
summary+=("lit: $(lit_count Passed) passed, $(lit_count Failed) failed")

echo "== ctest"
(cd "$BUILD_DIR" && ctest --output-on-failure) | tee "$BUILD_DIR/ctest.log" || status=1
summary+=("ctest: $(grep -E 'tests passed' "$BUILD_DIR/ctest.log" | tail -1)")

if [ "$quick" = 1 ]; then
  echo
  echo "== summary (--quick: no fuzzer, no JAX or transformers reference)"
  printf '%s\n' "${summary[@]}"
  exit $status
fi

# The importer fuzzer in a second build with AddressSanitizer (only its target
# is built there): first the harness's own checks (each injected fault must be
# caught), then about two minutes of mutants of models/.
ASAN_DIR=${ASAN_BUILD_DIR:-build-asan}
echo "== import fuzzer ($ASAN_DIR, AddressSanitizer)"
if [ ! -f "$ASAN_DIR/build.ninja" ]; then
  cmake -G Ninja -S . -B "$ASAN_DIR" -DCMAKE_BUILD_TYPE=Release -DPIPEC_ENABLE_ASAN=ON \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit >/dev/null
fi
asan_env=(env ASAN_OPTIONS=detect_leaks=1:handle_abort=1)
rm -f "$ASAN_DIR/fuzz.log"
if ninja -C "$ASAN_DIR" pipec-import-fuzz; then
  (cd "$ASAN_DIR" && "${asan_env[@]}" ctest -R '^import-fuzz-catches' --output-on-failure) || status=1
  "${asan_env[@]}" "$ASAN_DIR/bin/pipec-import-fuzz" models --seed "${FUZZ_SEED:-1}" --count 20000 \
    --time-budget 110 --hang-timeout 20 --crash-file "$ASAN_DIR/import-fuzz-crash.json" \
    | tee "$ASAN_DIR/fuzz.log" || status=1
else
  status=1
fi
fuzz_line=$(grep -E '^import-fuzz: [0-9]+ mutants \(' "$ASAN_DIR/fuzz.log" 2>/dev/null | tail -1)
summary+=("fuzz: ${fuzz_line:-FAILED (see the output above; the reproducer is $ASAN_DIR/import-fuzz-crash.json)}")

# The JAX reference (test/reference): its self-test, then pipec reference-train
# against JAX on both tiny models in float32 and float64, and proof that the
# comparison fails when one VJP is perturbed by 1e-3.
echo "== JAX reference"
ref_pass=0; ref_fail=0
ref_run() {
  echo "-- $*"
  if "$@"; then ref_pass=$((ref_pass + 1)); else ref_fail=$((ref_fail + 1)); status=1; fi
}
ref_run python3 test/reference/selftest.py
for model in gpt-tiny llama-tiny; do
  for precision in "" --f64; do
    ref_run python3 test/reference/compare.py --model "models/$model.json" \
      --pipec "$BUILD_DIR/bin/pipec" $precision
  done
done
ref_run env PIPEC="$BUILD_DIR/bin/pipec" bash test/reference/test_compare_can_fail.sh
# The GPU baseline script (docs/PERFORMANCE.md) on a tiny GPT-2 on the CPU (~8 s): it still builds and trains.
ref_run python3 bench/jax_gpt2_gpu.py --smoke
summary+=("reference: $ref_pass passed, $ref_fail failed")

# transformers as the reference (test/huggingface, docs/HUGGINGFACE.md): small
# random GPT2LMHeadModel and LlamaForCausalLM models built and saved by
# transformers, imported with `pipec import-hf`; one batch's loss and every
# gradient agree in float32 (1e-5) and float64 (1e-10), and a perturbed VJP
# makes the comparison fail (exit 1).
echo "== transformers reference"
hf_pass=0; hf_fail=0
hf_run() {
  local want=$1; shift
  echo "-- $* (expect exit $want)"
  local rc=0
  env TRANSFORMERS_VERBOSITY=error HF_HUB_DISABLE_PROGRESS_BARS=1 "$@" || rc=$?
  if [ "$rc" = "$want" ]; then hf_pass=$((hf_pass + 1)); else hf_fail=$((hf_fail + 1)); status=1; fi
}
cat models/*.json > "$BUILD_DIR/hf-data.txt"
hf=(python3 test/huggingface/agreement.py --pipec "$BUILD_DIR/bin/pipec" --data "$BUILD_DIR/hf-data.txt")
hf_run 0 "${hf[@]}"
hf_run 0 "${hf[@]}" --f64
hf_run 1 "${hf[@]}" --models gpt2 --perturb gelu
hf_run 1 "${hf[@]}" --models llama-gqa --perturb silu
summary+=("transformers reference: $hf_pass passed, $hf_fail failed")

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
