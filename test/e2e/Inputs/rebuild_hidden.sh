#!/usr/bin/env bash
# Copies a plan folder out of the checkout, rebuilds its pipec-plan with
# cmake and ninja while the pipec checkout and the LLVM/MLIR installation are
# hidden (an empty tmpfs mounted over each in a private mount namespace), so
# the build can use nothing but the folder and the system's compiler,
# OpenBLAS, OpenMP and MPI; then trains the copy.
#   rebuild_hidden.sh CHECKOUT FOLDER LOG_DIR -- PIPEC_PLAN_ARGS...
# Prints what it hid; the rebuilt plan's metrics land in LOG_DIR. LOG_DIR
# "-" builds without running (a cuda plan where there is no GPU);
# $PIPEC_HIDE_EXTRA names more folders to hide (a cuda plan's build must not
# need OpenBLAS).
set -euo pipefail
checkout=$(realpath "$1"); folder=$(realpath "$2"); logs=$3; shift 3
[ "${1:-}" = "--" ] && shift
work=$(mktemp -d "${TMPDIR:-/tmp}/pipec-plan-folder.XXXXXX")
trap 'rm -rf "$work"' EXIT
case "$work/" in "$checkout"/*) echo "rebuild_hidden: $work is inside the checkout" >&2; exit 2 ;; esac
cp -r "$folder" "$work/plan"
rm -f "$work/plan/pipec-plan"

hidden=("$checkout")
[ -d /usr/lib/llvm-22 ] && hidden+=(/usr/lib/llvm-22)
for d in ${PIPEC_HIDE_EXTRA:-}; do [ -d "$d" ] && hidden+=("$d"); done
build="cmake -G Ninja -S '$work/plan' -B '$work/build' > '$work/cmake.log' 2>&1 && ninja -C '$work/build' pipec-plan > '$work/ninja.log' 2>&1"
if unshare -rm true 2>/dev/null; then
  mounts=""
  for d in "${hidden[@]}"; do mounts+="mount -t tmpfs none '$d' && "; done
  # The checkout must really be gone inside: its CMakeLists.txt unreadable.
  unshare -rm bash -c "$mounts test ! -e '$checkout/CMakeLists.txt' && $build" || {
    cat "$work/cmake.log" "$work/ninja.log" 2>/dev/null | tail -30 >&2
    echo "rebuild_hidden: the plan folder did not build alone" >&2; exit 1; }
  echo "rebuilt with hidden: ${hidden[*]}"
else
  echo "rebuild_hidden: user namespaces are refused here; rebuilding without hiding ${hidden[*]}"
  bash -c "$build" || { tail -30 "$work/ninja.log" >&2; exit 1; }
fi
# Nothing of the checkout or LLVM on any compile line.
if grep -q -e "$checkout" -e llvm-22 "$work/build/compile_commands.json" 2>/dev/null ||
   grep -q -e "$checkout" -e llvm-22 "$work/build/build.ninja"; then
  echo "rebuild_hidden: the build names the checkout or LLVM" >&2; exit 1
fi
if [ "$logs" = "-" ]; then
  test -x "$work/build/pipec-plan" && echo "built $(basename "$folder")/pipec-plan"
  exit 0
fi
"$work/build/pipec-plan" --plan "$work/plan" --log-dir "$logs" "$@"
