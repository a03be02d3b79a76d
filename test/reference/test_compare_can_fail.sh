#!/usr/bin/env bash
# Shows that compare.py can fail: it must PASS on pipec's unperturbed run and FAIL (exit 1, a gradient row
# marked FAIL) when pipec multiplies one op's B gradient by 1+1e-3 (--debug-perturb-vjp); likewise with
# --compiled against a plan compiled with `pipec compile --debug-perturb-vjp` (a curve row marked FAIL).
# Usage: test/reference/test_compare_can_fail.sh [MODEL (models/gpt-tiny.json)] [OP (gelu)] [extra compare.py flags]
# Exit: 0 as expected, 1 not as expected, 77 (ctest's skip) while pipec has no reference-train subcommand.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
model="${1:-$repo/models/gpt-tiny.json}"
op="${2:-gelu}"
shift $(( $# < 2 ? $# : 2 ))
pipec="${PIPEC:-$repo/build/bin/pipec}"

subcommands="$("$pipec" 2>&1)"  # with no arguments pipec lists its subcommands (and exits 2)
if ! grep -q "reference-train" <<<"$subcommands"; then
  echo "SKIP: $pipec has no reference-train subcommand yet (set PIPEC=path to use another binary)"
  exit 77
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# Few steps: the loss curve is not what this test is about.
python3 "$here/compare.py" --model "$model" --steps 3 --pipec "$pipec" "$@" >"$out/clean.log" 2>&1
clean=$?
python3 "$here/compare.py" --model "$model" --steps 3 --pipec "$pipec" --perturb-vjp "$op" "$@" >"$out/bad.log" 2>&1
bad=$?

status=0
if [ $clean -ne 0 ]; then
  echo "FAIL: compare.py did not pass on the unperturbed run (exit $clean):"; cat "$out/clean.log"; status=1
fi
if [ $bad -ne 1 ] || ! grep -E "^gradients .* FAIL" "$out/bad.log" >/dev/null; then
  echo "FAIL: with --perturb-vjp $op compare.py exited $bad and flagged no gradient (expected exit 1):"
  cat "$out/bad.log"; status=1
fi
if [ $status -eq 0 ]; then
  echo "PASS: compare.py passes the clean run and catches a 1e-3 perturbation of $op's VJP:"
  grep -E "^gradients .* FAIL" "$out/bad.log" | head -2
fi

# The same for compiled plans (compare.py --compiled): `pipec compile --debug-perturb-vjp` perturbs the
# emitted code only (the step-0 gradients still come from a clean reference-train), so the plan's loss or
# grad_norm curve must be flagged.
pipec_run="$(dirname "$pipec")/pipec-run"
if [ ! -x "$pipec_run" ]; then
  echo "note: no $pipec_run: the compiled-plan check is skipped"
  exit $status
fi
python3 "$here/compare.py" --model "$model" --steps 3 --pipec "$pipec" --compiled "$@" >"$out/clean-compiled.log" 2>&1
cclean=$?
python3 "$here/compare.py" --model "$model" --steps 3 --pipec "$pipec" --compiled --perturb-vjp "$op" "$@" \
  >"$out/bad-compiled.log" 2>&1
cbad=$?
cstatus=0
if [ $cclean -ne 0 ]; then
  echo "FAIL: compare.py --compiled did not pass on the unperturbed plan (exit $cclean):"
  cat "$out/clean-compiled.log"; cstatus=1
fi
if [ $cbad -ne 1 ] || ! grep -E "^(loss|grad_norm) curve .* FAIL" "$out/bad-compiled.log" >/dev/null; then
  echo "FAIL: with --compiled --perturb-vjp $op compare.py exited $cbad and flagged no curve (expected exit 1):"
  cat "$out/bad-compiled.log"; cstatus=1
fi
if [ $cstatus -eq 0 ]; then
  echo "PASS: compare.py --compiled passes the clean plan and catches a plan compiled with $op's VJP perturbed:"
  grep -E "^(loss|grad_norm) curve .* FAIL" "$out/bad-compiled.log" | head -2
fi
[ $cstatus -eq 0 ] || status=1
exit $status
