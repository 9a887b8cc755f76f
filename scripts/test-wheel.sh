#!/usr/bin/env bash
# Builds the Python wheel (`pip wheel .`: the engine, libkite.so and kite._core; with the CUDA
# backend when nvcc is found), installs it into a fresh venv and generates text with
# `from kite import LLM` there. A full build of the engine, so a script rather than CI.
#   scripts/test-wheel.sh             # wheel into dist/, venv in a temp folder
#   KITE_WHEEL_CUDA=OFF scripts/test-wheel.sh   # CPU-only wheel even where nvcc exists
#   KITE_WHEEL_GENCODE=90a scripts/test-wheel.sh # CUDA kernels for sm_90a only (quicker)
#   KITE_WHEEL_BUILD_DIR=build-cuda-ci scripts/test-wheel.sh   # reuse a build tree's objects
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python="${KITE_PYTHON:-python3}"
mkdir -p dist
start=$SECONDS
args=()
if [ -n "${KITE_WHEEL_CUDA:-}" ]; then args+=(-C "cmake.define.KITE_CUDA=${KITE_WHEEL_CUDA}"); fi
if [ -n "${KITE_WHEEL_BUILD_DIR:-}" ]; then args+=(-C "build-dir=${KITE_WHEEL_BUILD_DIR}"); fi
if [ -n "${KITE_WHEEL_GENCODE:-}" ]; then
  args+=(-C "cmake.define.KITE_CUDA_GENCODE=${KITE_WHEEL_GENCODE}")
fi
.venv/bin/pip wheel . --no-deps --no-build-isolation -w dist "${args[@]}"
wheel="$(ls -t dist/kite-*.whl | head -1)"
echo "test-wheel: built $wheel in $((SECONDS - start)) s"
unzip -l "$wheel" | grep -E "kite/(_core|libkite)" || true
venv="$(mktemp -d /tmp/kite-wheel-venv.XXXXXX)"
trap 'rm -rf "$venv"' EXIT
"$python" -m venv "$venv"
"$venv/bin/pip" install -q "$wheel"
cd /tmp
"$venv/bin/python" - "$OLDPWD/tests/data/models/tinystories-656k" <<'PY'
import sys
from kite import LLM, SamplingParams
llm = LLM(sys.argv[1])
out = llm.generate(["Once upon a time"], SamplingParams(temperature=0, max_tokens=24), use_tqdm=False)
text = out[0].outputs[0].text
print(repr(text), "| backend:", llm._engine.model_info.backend)
assert text.strip(), "no text"
PY
echo "test-wheel: OK (fresh venv, $(basename "$wheel"))"
