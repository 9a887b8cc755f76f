#!/usr/bin/env bash
# The Python package on the GPU machine, which has Python 3.12, nanobind and CUDA but none of
# kite's C++ dependencies (Boost, ICU, PCRE2, spdlog). The binding uses only the public headers
# (include/kite), so the work splits in two:
#
#   here (dev machine):   scripts/gpu-python.sh bundle [OUT]
#       builds libkite.so with the CUDA preset (KITE_PRESET=cpu for a CPU-only try) and packs
#       it, with every shared library it needs that a bare machine lacks, into
#       OUT/libs.tar.xz (default OUT: build-cuda/python-bundle; libkite's rpath is $ORIGIN).
#       Carry OUT to the GPU machine.
#   there (GPU machine):  scripts/gpu-python.sh build|check|w4|all [BUNDLE]
#       build  compiles only kite._core against BUNDLE/libkite.so and include/kite with the
#              machine's Python (cmake -S python, standalone mode) into BUNDLE/py/kite
#       check  imports it and generates: TinyStories on CUDA equal to the CPU backend (greedy),
#              then the Llama-3-8B shape with random weights (--load-format dummy, BF16)
#       w4     W4 of BENCHMARKS.md from Python beside transformers (scripts/bench_w4_python.py)
#   Results go under $OUT (default ./gpu-out); a summary table is printed last.
#
#   KITE_CUDA_GENCODE=90a scripts/gpu-python.sh bundle      # Hopper only: smaller, faster build
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step="${1:-}"
shift || true

bundle_step() {
  set -e
  local preset="${KITE_PRESET:-cuda}"
  local build_dir=build-cuda
  [ "$preset" = "cuda" ] || build_dir=build
  local out="${1:-$root/$build_dir/python-bundle}"
  # The layers compile with the CI preset's flags (warnings as errors, no tests), and
  # CCACHE_BASEDIR makes their objects shared with build/: only the CUDA backend is new work.
  export CCACHE_BASEDIR="$root"
  local configure=(cmake --preset "$preset" -DKITE_PYTHON=ON -DKITE_WERROR=ON
                   -DKITE_BUILD_TESTS=OFF -DKITE_BUILD_BENCHMARKS=OFF)
  if [ -n "${KITE_CUDA_GENCODE:-}" ]; then configure+=("-DKITE_CUDA_GENCODE=${KITE_CUDA_GENCODE}"); fi
  "${configure[@]}" >/dev/null
  cmake --build "$build_dir" -j "${KITE_JOBS:-2}" --target kite_shared
  local lib="$build_dir/python/kite/libkite.so"
  local stage="$out.stage"
  rm -rf "$out" "$stage"
  mkdir -p "$out" "$stage"
  cp "$lib" "$stage/"
  strip --strip-debug "$stage/libkite.so"
  # Shared libraries outside the base system and the CUDA toolkit travel along.
  local system_re='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libgcc_s\.|libstdc\+\+\.|libcuda\.|libcublas|libcudart|libnvidia)'
  ldd "$lib" | awk '/=>/ {print $1, $3}' | while read -r name path; do
    if [[ "$name" =~ $system_re ]] || [ ! -f "$path" ]; then continue; fi
    cp -L "$path" "$stage/$name"
  done
  # xz: ICU's data library alone is 30 MiB, and the carried tree (64 MiB) holds the repo too.
  tar -C "$stage" -cJf "$out/libs.tar.xz" .
  rm -rf "$stage"
  local size_kb
  size_kb=$(du -sk "$out" | cut -f1)
  echo "gpu-python: $out ($((size_kb / 1024)) MiB): $(tar -tJf "$out/libs.tar.xz" | tr '\n' ' ')"
  if [ "$size_kb" -gt $((32 * 1024)) ]; then
    echo "gpu-python: larger than 32 MiB; the device tool carries 64 MiB with the repo" >&2
    exit 1
  fi
}

bundle="${1:-build-cuda/python-bundle}"
out="${OUT:-$PWD/gpu-out}"
python="${KITE_PYTHON_BIN:-python3}"
pkg="$bundle/py"
summary="$out/python-summary.txt"
row() { printf '%-30s %s\n' "$1" "$2" | tee -a "$summary"; }

build_step() {
  local lib="$bundle/lib"
  rm -rf "$lib" "$bundle/build-py" && mkdir -p "$lib" && tar -C "$lib" -xJf "$bundle/libs.tar.xz"
  cmake -S python -B "$bundle/build-py" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DKITE_LIBRARY="$(cd "$lib" && pwd)/libkite.so" -DKITE_INCLUDE_DIR="$root/include" \
    -DPython_EXECUTABLE="$(command -v "$python")" >"$out/python-build.log" 2>&1 &&
    cmake --build "$bundle/build-py" -j "$(nproc)" >>"$out/python-build.log" 2>&1
  local rc=$?
  rm -rf "$pkg" && mkdir -p "$pkg" && cp -r "$bundle/build-py/kite" "$pkg/" 2>/dev/null
  # The bundled dependencies next to libkite.so (its rpath is $ORIGIN).
  find "$lib" -maxdepth 1 -name '*.so*' ! -name libkite.so -exec cp {} "$pkg/kite/" \;
  row "build kite._core" "rc=$rc ($("$python" --version 2>&1))"
  return $rc
}

check_step() {
  PYTHONPATH="$pkg" timeout "${KITE_CHECK_TIMEOUT:-300}" "$python" - >"$out/python-check.log" 2>&1 <<'EOF'
import json, os, time
import kite
from kite import LLM, SamplingParams

res = {"version": kite.__version__}
tiny = "tests/data/models/tinystories-656k"
greedy = SamplingParams(temperature=0, max_tokens=64, ignore_eos=True)
prompts = ["Once upon a time", "The little dog", "Tom and Lily went"]
cpu = LLM(tiny, device="cpu")
want = [o.outputs[0].token_ids for o in cpu.generate(prompts, greedy, use_tqdm=False)]
cpu.shutdown()
gpu = LLM(tiny, device="cuda", gpu_memory_utilization=0.3)
res["tiny_backend"] = gpu.model_info.backend
got = [o.outputs[0].token_ids for o in gpu.generate(prompts, greedy, use_tqdm=False)]
res["tiny_equal_prompts"] = sum(a == b for a, b in zip(want, got))
res["tiny_agree_tokens"] = sum(sum(x == y for x, y in zip(a, b)) for a, b in zip(want, got))
gpu.shutdown()

t0 = time.perf_counter()
llm = LLM("tests/data/configs/llama-3-8b/config.json", load_format="dummy", dtype="bfloat16",
          max_model_len=4096)
res["8b_load_s"] = time.perf_counter() - t0
ids = [[128000] + list(range(1000, 1127))] * 8
t0 = time.perf_counter()
outs = llm.generate([{"prompt_token_ids": p} for p in ids],
                    SamplingParams(temperature=0, max_tokens=128, ignore_eos=True), use_tqdm=False)
res["8b_batch8_128x128_s"] = time.perf_counter() - t0
res["8b_tokens"] = [len(o.outputs[0].token_ids) for o in outs]
print("RESULT " + json.dumps(res))
EOF
  local rc=$?
  row "check (tiny cuda==cpu, 8B)" "rc=$rc $(grep -o 'RESULT .*' "$out/python-check.log" | cut -c8-)"
  return $rc
}

w4_step() {
  PYTHONPATH="$pkg" timeout "${KITE_W4_TIMEOUT:-540}" "$python" scripts/bench_w4_python.py \
    --out "$out/w4" >"$out/python-w4.log" 2>&1
  local rc=$?
  row "W4 (kite python, transformers)" "rc=$rc"
  sed -n '/^engine | batch/,$p' "$out/python-w4.log" | tee -a "$summary"
  # One file for the per-batch JSONs (the device tool brings back few files).
  [ -d "$out/w4" ] && tar -C "$out" -czf "$out/w4.tgz" w4 && rm -rf "$out/w4"
  return $rc
}

case "$step" in
  bundle) bundle_step "$@" ;;
  build | check | w4 | all)
    mkdir -p "$out"
    # cuBLASLt comes from the machine's CUDA toolkit. The bundled libraries' own dependencies
    # (libicuuc -> libicudata) are not found through libkite's $ORIGIN runpath: name the folder.
    mkdir -p "$pkg/kite"
    export LD_LIBRARY_PATH="$(cd "$pkg/kite" && pwd):/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    : >"$summary"
    status=0
    if [ "$step" = "build" ] || [ "$step" = "all" ]; then build_step || status=1; fi
    if [ "$step" = "check" ] || [ "$step" = "all" ]; then check_step || status=1; fi
    if [ "$step" = "w4" ] || [ "$step" = "all" ]; then w4_step || status=1; fi
    echo "---- summary"
    cat "$summary"
    exit $status
    ;;
  *)
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
