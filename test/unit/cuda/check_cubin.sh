#!/usr/bin/env bash
# Builds the cuda kernel library's sources (Kernels.cu, and
# EmbeddingBackward.cu with its CUB sort) for sm_90a as cubins, as
# libpipert_kernels_cuda is built, and checks on a machine without a GPU
# that every kernel is there as Hopper code and that ptxas spilled nothing
# and put nothing in local memory (spills would be slow and are a sign of a kernel that
# needs rework, docs/CUDA.md).
#   check_cubin.sh NVCC SOURCE_ROOT KERNEL...
set -euo pipefail
nvcc=$1; root=$2; shift 2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
symbols=""
: > "$work/ptxas.log"
for source in Kernels EmbeddingBackward; do
  "$nvcc" -std=c++17 -cubin -gencode=arch=compute_90a,code=sm_90a \
    -prec-div=true -prec-sqrt=true -ftz=false -fmad=false \
    -I"$root/runtime" -I"$root/runtime/include" -Xptxas -v -o "$work/$source.cubin" \
    "$root/runtime/kernels/cuda/$source.cu" 2> "$work/$source.log"
  # The cubin is an ELF file for sm_90a.
  readelf -h "$work/$source.cubin" | grep -q "NVIDIA CUDA" ||
    { echo "$source: not a cubin"; exit 1; }
  grep -q "Compiling entry function.*for 'sm_90a'" "$work/$source.log" ||
    { cat "$work/$source.log"; echo "$source: no sm_90a code"; exit 1; }
  cat "$work/$source.log" >> "$work/ptxas.log"
  symbols+=$(readelf -sW "$work/$source.cubin")$'\n'
done
status=0
for k in "$@"; do
  if ! grep -q "FUNC .*$k" <<< "$symbols"; then
    echo "kernel $k: not in the sm_90a cubin"; status=1
  fi
done
# ptxas -v: "N bytes stack frame, N bytes spill stores, N bytes spill loads":
# no kernel may spill or keep anything in local memory (a stack frame).
if grep -E "[1-9][0-9]* bytes (spill stores|spill loads|stack frame)" "$work/ptxas.log"; then
  echo "spills or local memory above"; status=1
fi
kernels=$(grep -c "Compiling entry function" "$work/ptxas.log")
[ "$status" = 0 ] && echo "cubin: $kernels kernels for sm_90a, all of: $*; no spills, no local memory"
exit $status
