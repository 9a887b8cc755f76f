#!/usr/bin/env bash
# The reference workloads (docs/benchmarks.md) for kite and the Hugging Face transformers peers,
# in one call on the GPU machine (<= 10 minutes), with JSON results, the HTML report, the
# Markdown table and the SVG charts under $OUT. Every step has its own timeout and the remaining
# budget is checked before each one; a step that fails or runs out of time leaves the others'
# results in place, and the report is built from whatever exists at the end.
#
#   OUT=/tmp/out scripts/gpu-bench.sh [--bundle DIR | --kite PATH] [--budget SECONDS] [STEP...]
#
# --bundle DIR: a folder made by scripts/gpu-bundle.sh (bin.tar.xz holding bin/kite and lib/);
# default: the first of .gpu-bundle, build-cuda/bundle that exists. --kite PATH: a kite binary
# instead (its shared libraries in ../lib next to its bin/).
# STEPs (default: all, in this order):
#   kite-w5 kite-w4 kite-w1 hf-8b hf-3b kite-w2 kite-w3 kite-w6 report
# Environment knobs (defaults in brackets):
#   KITE_BENCH_W1_PROMPTS   kite W1 requests per dataset (128,128),(2048,128),(128,2048),(2048,2048)
#                           [512,128,128,32]
#   KITE_BENCH_W2_GRID      max-num-seqs grid [1,4,16,64,256]     KITE_BENCH_W2_SCALE [0.0625]
#   KITE_BENCH_W3_GRID      request rates [2,4,8,16]               KITE_BENCH_W3_SCALE [0.25]
#   KITE_BENCH_W3_POINT_S   seconds of arrivals per W3 point [10]
#   KITE_BENCH_W5_PROMPTS   kite W5 requests [8]                    KITE_BENCH_HF_W5 [2]
#   KITE_BENCH_HF_CB        transformers generate_batch W1 counts [128,16,0,0]
#   KITE_BENCH_HF_STATIC    transformers static generate W1 counts [32,8,0,0]
#   KITE_BENCH_ENGINE_ARGS  extra engine flags for every kite run [--dtype bfloat16]
#   KITE_BENCH_WORK         scratch directory [/tmp/kite-bench-work]
# What comes back under $OUT (at most a handful of files, no folders): summary.txt, table.md,
# report.html, and bench-results.tar.gz (results/*.json, logs/*.log, charts/*.svg).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

kite=""
bundle=""
budget=570
steps=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kite) kite="$2"; shift 2 ;;
    --bundle) bundle="$2"; shift 2 ;;
    --budget) budget="$2"; shift 2 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) steps+=("$1"); shift ;;
  esac
done
if [ ${#steps[@]} -eq 0 ]; then
  steps=(kite-w5 kite-w4 kite-w1 hf-8b hf-3b kite-w2 kite-w3 kite-w6 report)
fi
start=$(date +%s)
work="${KITE_BENCH_WORK:-/tmp/kite-bench-work}"
out="${OUT:-$root/gpu-bench-out}"
results="$work/out/results"
logs="$work/out/logs"
charts="$work/out/charts"
rm -rf "$work/out"
mkdir -p "$results" "$logs" "$charts" "$out"

if [ -z "$kite" ]; then
  if [ -z "$bundle" ]; then
    for c in .gpu-bundle build-cuda/bundle; do
      if [ -f "$c/bin.tar.xz" ] || [ -x "$c/bin/kite" ]; then bundle="$c"; break; fi
    done
  fi
  if [ -n "$bundle" ] && [ -f "$bundle/bin.tar.xz" ]; then
    rm -rf "$work/bundle" && mkdir -p "$work/bundle" && tar -C "$work/bundle" -xJf "$bundle/bin.tar.xz"
    bundle="$work/bundle"
  fi
  if [ -n "$bundle" ] && [ -x "$bundle/bin/kite" ]; then kite="$bundle/bin/kite"; fi
fi
if [ -n "$kite" ]; then
  kite="$(cd "$(dirname "$kite")" && pwd)/$(basename "$kite")"
  libdir="$(dirname "$(dirname "$kite")")/lib"
  export LD_LIBRARY_PATH="$libdir:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export PYTHONUNBUFFERED=1 KITE_NO_PROGRESS=1
python="${PYTHON:-python3}"
engine_args=(${KITE_BENCH_ENGINE_ARGS:---dtype bfloat16})
dummy=(--load-format dummy "${engine_args[@]}")

summary="$work/out/summary.txt"
: >"$summary"
row() { printf '%-10s %s\n' "$1" "$2" | tee -a "$summary"; }
remaining() { echo $(( budget - ($(date +%s) - start) )); }

# run STEP MIN_SECONDS MAX_SECONDS CMD...: runs CMD with a timeout of min(MAX, remaining - 20)
# (20 s kept for the report), or skips it when less than MIN_SECONDS would be left.
run() {
  local name=$1 min=$2 max=$3
  shift 3
  local left=$(( $(remaining) - 20 ))
  if [ "$name" = report ]; then left=$(( $(remaining) )); fi
  if [ "$left" -lt "$min" ]; then
    row "$name" "skipped: ${left}s left, needs ${min}s"
    return
  fi
  local t=$max
  if [ "$left" -lt "$t" ]; then t=$left; fi
  local t0=$(date +%s)
  timeout --kill-after=10 "$t" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  local note=""
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then note=" (timed out after ${t}s; partial results kept)"; fi
  row "$name" "rc=$rc in $(( $(date +%s) - t0 ))s$note"
  if [ $rc -ne 0 ]; then tail -n 5 "$logs/$name.log" | sed 's/^/           | /' | tee -a "$summary"; fi
}

need_kite() {
  if [ -z "$kite" ]; then
    row "$1" "skipped: no kite binary (--bundle DIR or --kite PATH)"
    return 1
  fi
}

row "date" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
row "gpu" "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
row "cpu" "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
[ -n "$kite" ] && row "kite" "$("$kite" version 2>&1 | head -1)"
row "peers" "$("$python" -c 'import torch, transformers; print("transformers", transformers.__version__, "torch", torch.__version__)' 2>&1 | tail -1)"
"$python" scripts/peers/hf_bench.py --write-config llama-3-8b "$work/llama-3-8b" >/dev/null &&
  "$python" scripts/peers/hf_bench.py --write-config llama-3.2-3b "$work/llama-3.2-3b" >/dev/null ||
  row "configs" "could not write the model configs"
# The Llama-3 tokenizer beside both configs: `kite serve` then streams text (a model without a
# tokenizer streams empty chunks, which leave nothing to time a first token by), and the
# in-process runs detokenize as a deployment would.
for d in llama-3-8b llama-3.2-3b; do
  for f in tokenizer.json tokenizer_config.json; do
    gzip -dc "tests/data/tokenizers/llama3.1/$f.gz" >"$work/$d/$f" || row "tokenizer" "missing $f"
  done
done

for step in "${steps[@]}"; do
  case "$step" in
    kite-w5)
      need_kite "$step" && run "$step" 30 90 "$kite" bench throughput "$work/llama-3-8b" \
        "${dummy[@]}" --workload W5 --preset-prompts "${KITE_BENCH_W5_PROMPTS:-8}" \
        --result-dir "$results" --no-progress ;;
    kite-w1)
      need_kite "$step" && run "$step" 60 150 "$kite" bench throughput "$work/llama-3-8b" \
        "${dummy[@]}" --workload W1 --preset-prompts "${KITE_BENCH_W1_PROMPTS:-512,128,128,32}" \
        --result-dir "$results" --no-progress ;;
    kite-w4)
      need_kite "$step" && run "$step" 30 90 "$kite" bench throughput "$work/llama-3.2-3b" \
        "${dummy[@]}" --workload W4 --result-dir "$results" --no-progress ;;
    kite-w2)
      need_kite "$step" && run "$step" 60 120 "$kite" bench sweep throughput "$work/llama-3-8b" \
        "${dummy[@]}" --workload W2 --scale "${KITE_BENCH_W2_SCALE:-0.0625}" \
        --max-num-seqs "${KITE_BENCH_W2_GRID:-1,4,16,64,256}" --result-dir "$results" --no-progress ;;
    kite-w3)
      need_kite "$step" && run "$step" 60 100 "$kite" bench sweep serve --launch "$work/llama-3-8b" \
        --server-binary "$kite" --workload W3 --scale "${KITE_BENCH_W3_SCALE:-0.25}" \
        --request-rate "${KITE_BENCH_W3_GRID:-2,4,8,16}" \
        --sweep-point-seconds "${KITE_BENCH_W3_POINT_S:-10}" --result-dir "$results" \
        --no-progress -- "${dummy[@]}" ;;
    kite-w6)
      need_kite "$step" && run "$step" 20 40 "$kite" bench startup "$work/llama-3-8b" \
        --server-binary "$kite" --server-log "$logs/w6-server.log" --result-dir "$results" \
        --note "weights: --load-format dummy (random, no files read)" -- "${dummy[@]}" ;;
    hf-8b)
      run "$step" 60 150 "$python" scripts/peers/hf_bench.py --shape llama-3-8b --workloads W5,W1 \
        --out "$results" --work "$work/hf" --time-budget 120 \
        --w5-repeats "${KITE_BENCH_HF_W5:-2}" \
        --cb-prompts "${KITE_BENCH_HF_CB:-128,16,0,0}" \
        --static-prompts "${KITE_BENCH_HF_STATIC:-32,8,0,0}" ;;
    hf-3b)
      run "$step" 30 60 "$python" scripts/peers/hf_bench.py --shape llama-3.2-3b --workloads W4 \
        --out "$results" --work "$work/hf" --time-budget 45 ;;
    report)
      if [ -n "$kite" ]; then
        run "$step" 1 30 "$kite" bench plot "$results" --out "$work/out/report.html" \
          --markdown "$work/out/table.md" --svg-dir "$charts" \
          --title "kite bench: reference workloads"
      else
        row "$step" "skipped: no kite binary"
      fi ;;
    *) row "$step" "unknown step" ;;
  esac
done
row "results" "$(ls "$results" 2>/dev/null | wc -l) result files, $(( $(date +%s) - start ))s in all"

# The device tool brings back a few plain files: the tables and report as they are, the rest
# packed.
cp "$summary" "$out/summary.txt"
for f in report.html table.md; do [ -f "$work/out/$f" ] && cp "$work/out/$f" "$out/$f"; done
tar -C "$work/out" -czf "$out/bench-results.tar.gz" results logs charts
echo "==== summary ===="
cat "$summary"
[ -f "$work/out/table.md" ] && cat "$work/out/table.md"
exit 0
