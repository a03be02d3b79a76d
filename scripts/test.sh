#!/usr/bin/env bash
# Every test suite of pipec: set-up, build, then lit, the unit tests (ctest) and
# the importer fuzzer. Exits non-zero when any suite fails; each runner's
# summary line is printed at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
bash scripts/build.sh || exit 1

BUILD_DIR=${BUILD_DIR:-build}
status=0
summary=()

echo "== lit"
/usr/lib/llvm-22/bin/lit -sv "$BUILD_DIR/test" | tee "$BUILD_DIR/lit.log" || status=1
summary+=("lit: $(grep -E '^ +(Passed|Failed|Unsupported)' "$BUILD_DIR/lit.log" | tr -s ' ' | paste -sd, -)")

echo "== ctest"
(cd "$BUILD_DIR" && ctest --output-on-failure) | tee "$BUILD_DIR/ctest.log" || status=1
summary+=("ctest: $(grep -E 'tests passed' "$BUILD_DIR/ctest.log" | tail -1)")

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
