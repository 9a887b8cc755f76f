#!/usr/bin/env bash
# Fetches FlashInfer's header-only kernels (and the CUTLASS/CuTe headers its Hopper kernels
# include) from the pinned flashinfer-python wheel into DEST (default .deps/flashinfer), checking
# the wheel's sha256. Prints the include directory to pass as KITE_FLASHINFER_INCLUDE:
#
#   cmake --preset cuda -DKITE_FLASHINFER_INCLUDE=$(scripts/fetch-flashinfer.sh)
#
# Needs python3 -m pip (PyPI reachable) and unzip. Only headers are extracted (~35 MB); nothing of
# the wheel's Python or JIT machinery is used.
set -euo pipefail
version=0.7.2.post1
sha256=bfdc18b9e1e4d8d0730fe4343dc0e284cd0c160086de80f99888bc4867922d49
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/.deps/flashinfer}"
inc="$dest/$version/include"
if [ -f "$inc/flashinfer/attention/hopper/prefill_sm90.cuh" ] && [ -f "$inc/cuda/__cmath/fast_modulo_division.h" ]; then
  echo "$inc"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" \
  "flashinfer-python==$version" >&2
wheel="$(ls "$tmp"/flashinfer_python-"$version"-*.whl)"
echo "$sha256  $wheel" | sha256sum -c --quiet - >&2
unzip -q "$wheel" 'flashinfer/data/include/*' 'flashinfer/data/cutlass/include/*' \
  'flashinfer/data/cutlass/tools/util/include/*' 'flashinfer/data/cccl/libcudacxx/include/*' \
  'flashinfer/data/cccl/cub/cub/*' 'flashinfer/data/cccl/thrust/thrust/*' -d "$tmp/x"
rm -rf "$dest/$version"
mkdir -p "$inc"
cp -r "$tmp/x/flashinfer/data/include/." "$inc/"
cp -r "$tmp/x/flashinfer/data/cutlass/include/." "$inc/"
cp -r "$tmp/x/flashinfer/data/cutlass/tools/util/include/." "$inc/"
# FlashInfer uses CCCL newer than CUDA 13.0's (cuda::fast_mod_div): the wheel's CCCL headers go
# first on the include path.
cp -r "$tmp/x/flashinfer/data/cccl/libcudacxx/include/." "$inc/"
cp -r "$tmp/x/flashinfer/data/cccl/cub/cub" "$tmp/x/flashinfer/data/cccl/thrust/thrust" "$inc/"
echo "$inc"
