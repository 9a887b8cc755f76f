#!/usr/bin/env bash
# The reference workloads (docs/benchmarks.md) for kite and the Hugging Face transformers peers,
# in one call on the GPU machine (<= 10 minutes), with JSON results and the HTML report under
# $OUT. Every step has its own timeout and the remaining budget is checked before each one; a
# step that fails or runs out of time leaves the others' results in place, and the report is
# built from whatever exists at the end.
#
#   OUT=/tmp/out scripts/gpu-bench.sh [--kite PATH] [--budget SECONDS] [STEP...]
#
# STEPs (default: all, in this order):
#   kite-w5 kite-w1 kite-w4 hf-8b hf-3b kite-w2 kite-w3 kite-w6 report
# Environment knobs (defaults in brackets):
#   KITE_BENCH_W1_PROMPTS   kite W1 requests per dataset (128,128),(2048,128),(128,2048),(2048,2048)
#                           [1024,256,256,64]
#   KITE_BENCH_W2_GRID      max-num-seqs grid [1,4,16,64,256]     KITE_BENCH_W2_SCALE [0.125]
#   KITE_BENCH_W3_GRID      request rates [2,4,8,16,32]            KITE_BENCH_W3_SCALE [0.25]
#   KITE_BENCH_W3_POINT_S   seconds of arrivals per W3 point [15]
#   KITE_BENCH_HF_CB        transformers generate_batch W1 counts [256,32,0,0]
#   KITE_BENCH_HF_STATIC    transformers static generate W1 counts [64,16,0,0]
#   KITE_BENCH_ENGINE_ARGS  extra engine flags for every kite run [--dtype bfloat16]
#   KITE_BENCH_WORK         scratch directory for model configs [/tmp/kite-bench-work]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

kite=""
budget=570
steps=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kite) kite="$2"; shift 2 ;;
    --budget) budget="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) steps+=("$1"); shift ;;
  esac
done
if [ ${#steps[@]} -eq 0 ]; then
  steps=(kite-w5 kite-w1 kite-w4 hf-8b hf-3b kite-w2 kite-w3 kite-w6 report)
fi
if [ -z "$kite" ]; then
  for c in .gpu-bundle/bin/kite build-cuda/bundle/bin/kite build-cuda/bin/kite build/bin/kite; do
    if [ -x "$c" ]; then kite="$c"; break; fi
  done
fi
out="${OUT:-$root/gpu-bench-out}"
results="$out/results"
logs="$out/logs"
work="${KITE_BENCH_WORK:-/tmp/kite-bench-work}"
mkdir -p "$results" "$logs" "$work"
if [ -n "$kite" ]; then
  kite="$(cd "$(dirname "$kite")" && pwd)/$(basename "$kite")"
  libdir="$(dirname "$(dirname "$kite")")/lib"
  export LD_LIBRARY_PATH="$libdir:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export PYTHONUNBUFFERED=1 KITE_NO_PROGRESS=1
python="${PYTHON:-python3}"
engine_args=(${KITE_BENCH_ENGINE_ARGS:---dtype bfloat16})
dummy=(--load-format dummy "${engine_args[@]}")

start=$(date +%s)
summary="$out/summary.txt"
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
}

need_kite() {
  if [ -z "$kite" ]; then
    row "$1" "skipped: no kite binary (--kite PATH)"
    return 1
  fi
}

row "gpu" "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
[ -n "$kite" ] && row "kite" "$("$kite" --version 2>&1 | head -1)"
"$python" scripts/peers/hf_bench.py --write-config llama-3-8b "$work/llama-3-8b" >/dev/null &&
  "$python" scripts/peers/hf_bench.py --write-config llama-3.2-3b "$work/llama-3.2-3b" >/dev/null ||
  row "configs" "could not write the model configs"

for step in "${steps[@]}"; do
  case "$step" in
    kite-w5)
      need_kite "$step" && run "$step" 30 90 "$kite" bench throughput "$work/llama-3-8b" \
        "${dummy[@]}" --workload W5 --result-dir "$results" --no-progress ;;
    kite-w1)
      need_kite "$step" && run "$step" 60 200 "$kite" bench throughput "$work/llama-3-8b" \
        "${dummy[@]}" --workload W1 --preset-prompts "${KITE_BENCH_W1_PROMPTS:-1024,256,256,64}" \
        --result-dir "$results" --no-progress ;;
    kite-w4)
      need_kite "$step" && run "$step" 30 90 "$kite" bench throughput "$work/llama-3.2-3b" \
        "${dummy[@]}" --workload W4 --result-dir "$results" --no-progress ;;
    kite-w2)
      need_kite "$step" && run "$step" 60 150 "$kite" bench sweep throughput "$work/llama-3-8b" \
        "${dummy[@]}" --workload W2 --scale "${KITE_BENCH_W2_SCALE:-0.125}" \
        --max-num-seqs "${KITE_BENCH_W2_GRID:-1,4,16,64,256}" --result-dir "$results" --no-progress ;;
    kite-w3)
      need_kite "$step" && run "$step" 60 150 "$kite" bench sweep serve --launch "$work/llama-3-8b" \
        --server-binary "$kite" --workload W3 --scale "${KITE_BENCH_W3_SCALE:-0.25}" \
        --request-rate "${KITE_BENCH_W3_GRID:-2,4,8,16,32}" \
        --sweep-point-seconds "${KITE_BENCH_W3_POINT_S:-15}" --result-dir "$results" \
        --no-progress -- "${dummy[@]}" ;;
    kite-w6)
      need_kite "$step" && run "$step" 30 120 "$kite" bench startup "$work/llama-3-8b" \
        --server-binary "$kite" --server-log "$logs/w6-server.log" --result-dir "$results" \
        --note "weights: --load-format dummy (random, no files read)" -- "${dummy[@]}" ;;
    hf-8b)
      run "$step" 60 200 "$python" scripts/peers/hf_bench.py --shape llama-3-8b --workloads W5,W1 \
        --out "$results" --work "$work/hf" --time-budget 150 \
        --cb-prompts "${KITE_BENCH_HF_CB:-256,32,0,0}" \
        --static-prompts "${KITE_BENCH_HF_STATIC:-64,16,0,0}" ;;
    hf-3b)
      run "$step" 40 120 "$python" scripts/peers/hf_bench.py --shape llama-3.2-3b --workloads W4 \
        --out "$results" --work "$work/hf" --time-budget 90 ;;
    report)
      if [ -n "$kite" ]; then
        run "$step" 1 30 "$kite" bench plot "$results" --out "$out/report.html" \
          --markdown "$out/table.md" --title "kite bench: reference workloads"
      else
        row "$step" "skipped: no kite binary"
      fi ;;
    *) row "$step" "unknown step" ;;
  esac
done
row "results" "$(ls "$results" 2>/dev/null | wc -l) files in $results"
echo "==== summary ($(( $(date +%s) - start ))s) ===="
cat "$summary"
[ -f "$out/table.md" ] && cat "$out/table.md"
exit 0
