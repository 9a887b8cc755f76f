#!/usr/bin/env bash
# Runs on the GPU machine, from the repo root, over a bundle made by scripts/gpu-bundle.sh:
#   tests   the GPU test suite (kernels vs the CPU ops, sampler vs the CPU sampler, runner)
#   tiny    shipped TinyStories-656K / stories260K: GPU greedy text vs the CPU backend's
#   models  random-weight models at real shapes vs transformers (tests/gpu/hf_compare.py)
#   bench   kernel benchmarks and W5 (kite_cuda_bench)
# Writes logs under $OUT (default ./gpu-out) and prints a short table last.
#
#   scripts/gpu-check.sh [BUNDLE] [STEP...]       (default: .gpu-bundle, all steps; run from the
#                                                  repository root: models come from tests/data)
#   KITE_HF_MODELS=llama3.1-8b KITE_HF_LAYERS=qwen3-8b=8 scripts/gpu-check.sh .gpu-bundle models
set -uo pipefail
bundle="${1:-.gpu-bundle}"
shift || true
steps=("$@")
if [ ${#steps[@]} -eq 0 ]; then steps=(tests tiny models bench); fi
out="${OUT:-$PWD/gpu-out}"
mkdir -p "$out"
# The test models (TinyStories, stories260K) from the repository.
models="${KITE_TEST_MODELS:-tests/data/models}"
if [ -f "$bundle/bin.tar.xz" ]; then  # unpack the compressed binaries once
  unpacked="${TMPDIR:-/tmp}/kite-gpu-bundle"
  rm -rf "$unpacked" && mkdir -p "$unpacked" && tar -C "$unpacked" -xJf "$bundle/bin.tar.xz"
  bin="$unpacked/bin"
  lib="$unpacked/lib"
else
  bin="$bundle/bin"
  lib="$bundle/lib"
fi
export LD_LIBRARY_PATH="$lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONUNBUFFERED=1
summary="$out/summary.txt"
: >"$summary"
row() { printf '%-34s %s\n' "$1" "$2" | tee -a "$summary"; }

row "gpu" "$(nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,clocks.mem \
  --format=csv,noheader 2>&1 | head -1)"

gtest_row() {  # name, binary, log
  local name=$1 exe=$2 log=$3
  timeout "${KITE_TEST_TIMEOUT:-300}" "$exe" --gtest_color=no >"$log" 2>&1
  local rc=$?
  local passed failed
  passed=$(grep -c '^\[       OK \]' "$log")
  failed=$(grep -c '^\[  FAILED  \]' "$log")
  row "$name" "rc=$rc passed=$passed failed_lines=$failed"
}

for step in "${steps[@]}"; do
  case "$step" in
    tests)
      gtest_row "cuda_kernels_test" "$bin/cuda_kernels_test" "$out/kernels.log"
      gtest_row "cuda_runner_test" "$bin/cuda_runner_test" "$out/runner.log"
      ;;
    tiny)
      : >"$out/tiny.log"
      # TinyStories-656K: BOS, and "Once upon a time" (ids from its tokenizer.json);
      # stories260K: BOS only (its publisher's greedy text, tests/data/models/stories260k/GOLDEN.md).
      printf '1\n1 80 147 201 282 57\n' >"$out/tiny_prompts_656k.txt"
      printf '1\n' >"$out/tiny_prompts_260k.txt"
      cp "$out/tiny_prompts_656k.txt" "$out/tiny_prompts_656k-q8.txt"
      for pair in "tinystories-656k:656k" "tinystories-656k-q8_0.gguf:656k-q8" \
                  "stories260k/stories260K.gguf:260k"; do
        m="$models/${pair%%:*}"
        timeout 120 "$bin/kite_cuda_model_check" --model "$m" --prompts "$out/tiny_prompts_${pair##*:}.txt" \
          --max-new 200 --compare-cpu --gpu-mem 0.3 >"$out/tiny_${pair##*:}.log" 2>&1
        rc=$?
        cat "$out/tiny_${pair##*:}.log" >>"$out/tiny.log"
        agree=$(grep -o 'agree on [0-9]* of [0-9]*' "$out/tiny_${pair##*:}.log" | tr '\n' ';')
        path=$(grep -o 'attention path [a-z-]*' "$out/tiny_${pair##*:}.log" | tail -1)
        row "tiny ${pair##*:}" "rc=$rc $agree $path"
      done
      rm -f "$out"/tiny_*.txt "$out"/tiny_656k.log "$out"/tiny_656k-q8.log "$out"/tiny_260k.log
      ;;
    models)
      timeout "${KITE_MODELS_TIMEOUT:-500}" python3 "$bundle/hf_compare.py" --tool "$bin/kite_cuda_model_check" \
        --work "${KITE_MODEL_WORK:-/tmp/kite-models}" \
        --models "${KITE_HF_MODELS:-llama3.1-8b,qwen2.5-7b,qwen3-8b,mistral-7b}" \
        --layers "${KITE_HF_LAYERS:-}" --out "$out/models.json" >"$out/models.log" 2>&1
      row "models vs transformers" "rc=$?"
      sed -n '/^model | layers/,$p' "$out/models.log" | tee -a "$summary"
      ;;
    bench)
      rm -f "$out/bench.jsonl"
      timeout "${KITE_BENCH_TIMEOUT:-300}" "$bin/kite_cuda_bench" --out "$out/bench.jsonl" >"$out/bench.log" 2>&1
      row "kite_cuda_bench" "rc=$?"
      # W5 variants: unfused cuBLASLt linears, no CUDA graphs, no programmatic dependent launch.
      if [ "${KITE_BENCH_VARIANTS:-1}" = "1" ]; then
        timeout 120 "$bin/kite_cuda_bench" --only-w5 --gemv-max-m 0 --tag "cuBLASLt, unfused" \
          --out "$out/bench.jsonl" >>"$out/bench.log" 2>&1
        timeout 120 "$bin/kite_cuda_bench" --only-w5 --graphs 0 --tag "no graphs" \
          --out "$out/bench.jsonl" >>"$out/bench.log" 2>&1
        KITE_CUDA_PDL=0 timeout 120 "$bin/kite_cuda_bench" --only-w5 --tag "no PDL" \
          --out "$out/bench.jsonl" >>"$out/bench.log" 2>&1
      fi
      grep -E 'ceiling|M=1 |attention|W5 (TPOT mean|prefill|weight bytes)' "$out/bench.log" | tee -a "$summary"
      ;;
    *)
      echo "unknown step $step" >&2
      ;;
  esac
done
echo "==== summary ===="
cat "$summary"
