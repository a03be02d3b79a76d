#!/usr/bin/env bash
# Installs everything pipec needs on a fresh Debian 12 machine of this kind.
# Idempotent: when everything is already there it only checks, in a second or two.
set -euo pipefail

APT_PACKAGES=(
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
  nlohmann-json3-dev libgtest-dev ninja-build ccache cmake g++
  libopenblas-dev openmpi-bin libopenmpi-dev
)
# nvidia-cuda-cuobjdump: cuobjdump, which the CUDA toolkit here lacks, for
# the test that a cuda plan carries sm_90a code for its kernels.
PY_PACKAGES=(jax numpy nvidia-cuda-cuobjdump)
# transformers as the reference of test/huggingface, on the CPU. PyPI's torch
# wheel brings the CUDA libraries (about 5.6 GB in all with transformers,
# 3.5 minutes here); the CPU-only wheels are on another index.
HF_PACKAGES=(torch transformers tokenizers safetensors)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

cuobjdump_present() {
  python3 - <<'PY' 2>/dev/null
import glob, site, sys
sys.exit(0 if any(glob.glob(p + "/nvidia/*/bin/cuobjdump") for p in site.getsitepackages()) else 1)
PY
}
if ! python3 -c "import jax, numpy" 2>/dev/null || ! cuobjdump_present; then
  echo "setup: installing Python test dependencies: ${PY_PACKAGES[*]}"
  python3 -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
fi
if ! python3 -c "import torch, transformers, tokenizers" 2>/dev/null; then
  echo "setup: installing the transformers reference's dependencies: ${HF_PACKAGES[*]} (several GB, a few minutes, once)"
  python3 -m pip install --quiet --disable-pip-version-check "${HF_PACKAGES[@]}"
fi
echo "setup: all dependencies present"
