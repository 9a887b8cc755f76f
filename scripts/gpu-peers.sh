#!/usr/bin/env bash
# kite and vLLM side by side on one GPU, measured by the same `kite bench serve` client (same
# seeds, token-id prompts, EOS ignored), Llama-3-8B shape with dummy weights, --max-model-len
# 4096 on both, each engine's defaults otherwise. The vLLM kit (../shared/peers/vllm, README
# there) arrives in 30 MiB pieces, one per device call, so the run is a sequence of calls on one
# warm machine (a warm machine keeps /tmp between calls; a bare one must start again at `stage`):
#
#   scripts/gpu-peers.sh stage KIT_DIR          copy the kit files present in KIT_DIR to /tmp/vst
#                                               (one call per piece: p01 + SHA256SUMS + the two
#                                               scripts, then p02, p03, p04)
#   scripts/gpu-peers.sh install                install.sh over /tmp/vst (~1 min)
#   scripts/gpu-peers.sh vllm-start             vllm serve on :8000; startup seconds recorded
#   scripts/gpu-peers.sh bench vllm [STEP...]   the workloads against vLLM
#   scripts/gpu-peers.sh vllm-stop              frees the GPU for kite
#   scripts/gpu-peers.sh kite-start BUNDLE      kite serve on :8001 from a gpu-bundle.sh folder
#   scripts/gpu-peers.sh bench kite [STEP...]
#   scripts/gpu-peers.sh kite-stop
#   scripts/gpu-peers.sh table                  one Markdown table: kite, vLLM, kite / vLLM
#
# STEPs (default all, in this order): w5 w1-128-128 w1-2048-128 w1-128-2048 w1-2048-2048 w2 w3.
#   w5  batch 1 (--max-concurrency 1), (128,256), PEERS_W5 requests [8]
#   w1  every request at t = 0; PEERS_W1 requests per dataset [1024,256,128,32]
#   w2  (2048,128) concurrency sweep PEERS_W2_GRID [4,8,16,32,64], PEERS_W2 requests per point
#       [64], best output tok/s with mean TPOT < 20 ms
#   w3  (2048,128) Poisson rate sweep PEERS_W3_GRID [4,8,12,16], PEERS_W3_S seconds of arrivals
#       per point [12], best output tok/s with mean TTFT < 1 s
# Results accumulate in /tmp/peers/results (kite-bench/1 JSON) and are copied to $OUT after each
# call with the summary; `table` also writes $OUT/peers-table.md. Every step is bounded by
# PEERS_BUDGET seconds for the whole call [560].
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
work=/tmp/peers
results="$work/results"
out="${OUT:-$root/gpu-peers-out}"
mkdir -p "$results" "$work/logs" "$out"
start=$(date +%s)
budget="${PEERS_BUDGET:-560}"
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1 KITE_NO_PROGRESS=1
summary="$work/summary.txt"
row() { printf '%-22s %s\n' "$1" "$2" | tee -a "$summary"; }
left() { echo $(( budget - ($(date +%s) - start) )); }
finish() { cp -f "$summary" "$out/" 2>/dev/null; cp -f "$results"/*.json "$out/" 2>/dev/null; true; }
trap finish EXIT

kite_bin() {  # the unpacked bundle's kite, with its libraries on the path
  export LD_LIBRARY_PATH="$work/bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "$work/bundle/bin/kite"
}

wait_health() {  # URL SECONDS: 0 once /health answers 200
  local url=$1 deadline=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    curl -sf -o /dev/null "$url/health" && return 0
    sleep 0.2
  done
  return 1
}

tokenizer_dir() {
  mkdir -p "$work/tok"
  for f in tokenizer.json tokenizer_config.json; do
    [ -f "$work/tok/$f" ] || gzip -dc "tests/data/tokenizers/llama3.1/$f.gz" >"$work/tok/$f"
  done
  echo "$work/tok"
}

# step ENGINE URL MODEL STEP: one workload against a running server.
step() {
  local engine=$1 url=$2 model=$3 name=$4
  local t=$(( $(left) - 10 ))
  if [ "$t" -lt 30 ]; then row "$engine $name" "skipped: ${t}s left"; return; fi
  local common=(--base-url "$url" --model "$model" --engine-name "$engine" --seed 0 --ignore-eos
                --random-vocab-size "${PEERS_VOCAB:-128256}" --dataset-name random --no-progress)
  local kite
  kite=$(command -v kite || kite_bin)
  local cmd=() w1=(${PEERS_W1//,/ })
  [ ${#w1[@]} -eq 4 ] || w1=(1024 256 128 32)
  case "$name" in
    w5) cmd=(bench serve "${common[@]}" --random-input-len 128 --random-output-len 256
             --num-prompts "${PEERS_W5:-8}" --max-concurrency 1 --output-json "$results/$engine-w5.json") ;;
    w1-128-128|w1-2048-128|w1-128-2048|w1-2048-2048)
      local io=${name#w1-} i=0
      case "$io" in 128-128) i=0 ;; 2048-128) i=1 ;; 128-2048) i=2 ;; 2048-2048) i=3 ;; esac
      cmd=(bench serve "${common[@]}" --random-input-len "${io%-*}" --random-output-len "${io#*-}"
           --num-prompts "${w1[$i]}" --output-json "$results/$engine-$name.json") ;;
    w2) cmd=(bench sweep serve "${common[@]}" --random-input-len 2048 --random-output-len 128
             --num-prompts "${PEERS_W2:-64}" --max-concurrency "${PEERS_W2_GRID:-4,8,16,32,64}"
             --subject-to "tpot_mean<20ms" --label "$engine W2" --result-dir "$results/$engine-w2") ;;
    w3) local rates=${PEERS_W3_GRID:-4,8,12,16}
        cmd=(bench sweep serve "${common[@]}" --random-input-len 2048 --random-output-len 128
             --request-rate "$rates" --num-prompts "$(( ${PEERS_W3_S:-12} * ${rates##*,} ))"
             --subject-to "ttft_mean<1s" --label "$engine W3" --result-dir "$results/$engine-w3") ;;
    *) row "$name" "unknown step"; return ;;
  esac
  local t0=$(date +%s)
  timeout --kill-after=10 "$t" "$kite" "${cmd[@]}" >"$work/logs/$engine-$name.log" 2>&1
  local rc=$?
  row "$engine $name" "rc=$rc in $(( $(date +%s) - t0 ))s"
  [ $rc -eq 0 ] || tail -n 5 "$work/logs/$engine-$name.log" | sed 's/^/    | /' | tee -a "$summary"
  if [ "$name" = w2 ] || [ "$name" = w3 ]; then
    cp -f "$results/$engine-$name"/*.json "$out/" 2>/dev/null
    grep -iE "best|feasible" "$work/logs/$engine-$name.log" | tail -n 3 | sed 's/^/    | /' | tee -a "$summary"
  fi
}

cmd="${1:-}"
shift || true
case "$cmd" in
  stage)
    mkdir -p /tmp/vst
    for f in "$1"/*; do [ -f "$f" ] && cp -f "$f" /tmp/vst/; done
    row "stage" "$(ls /tmp/vst | tr '\n' ' ')" ;;
  install)
    bash /tmp/vst/install.sh /tmp/vst >"$work/logs/install.log" 2>&1
    row "install" "rc=$? $(tail -n 1 "$work/logs/install.log")" ;;
  vllm-start)
    t0=$(date +%s.%N)
    WAIT_S=$(( $(left) - 20 )) bash /tmp/vst/bench_vllm.sh start "$(tokenizer_dir)" 8000 \
      >"$work/logs/vllm-start.log" 2>&1
    rc=$?
    row "vllm start" "rc=$rc to /health $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s"
    [ $rc -eq 0 ] || tail -n 20 "$work/logs/vllm-start.log" | sed 's/^/    | /' ;;
  vllm-stop)
    bash /tmp/vst/bench_vllm.sh stop >>"$work/logs/vllm-start.log" 2>&1
    row "vllm stop" "rc=$?" ;;
  kite-start)
    rm -rf "$work/bundle" && mkdir -p "$work/bundle" && tar -C "$work/bundle" -xJf "$1/bin.tar.xz"
    kite=$(kite_bin)
    python3 scripts/peers/hf_bench.py --write-config llama-3-8b "$work/llama-3-8b" >/dev/null
    cp "$(tokenizer_dir)"/* "$work/llama-3-8b/"
    t0=$(date +%s.%N)
    setsid "$kite" serve "$work/llama-3-8b" --load-format dummy --dtype bfloat16 \
      --max-model-len 4096 --port 8001 --served-model-name llama-3-8b \
      >"$work/logs/kite-serve.log" 2>&1 </dev/null &
    echo $! >"$work/kite.pid"
    if wait_health http://127.0.0.1:8001 120; then
      row "kite start" "to /health $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s ($("$kite" version | head -1))"
    else
      row "kite start" "failed"; tail -n 20 "$work/logs/kite-serve.log"
    fi ;;
  kite-stop)
    [ -f "$work/kite.pid" ] && kill -INT "$(cat "$work/kite.pid")" && sleep 3
    row "kite stop" "done" ;;
  bench)
    engine=$1
    shift
    steps=("$@")
    [ ${#steps[@]} -gt 0 ] || steps=(w5 w1-128-128 w1-2048-128 w1-128-2048 w1-2048-2048 w2 w3)
    url=http://127.0.0.1:8000
    [ "$engine" = kite ] && url=http://127.0.0.1:8001
    row "gpu" "$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1)"
    for s in "${steps[@]}"; do step "$engine" "$url" llama-3-8b "$s"; done ;;
  table)
    kite=$(command -v kite || kite_bin)
    dirs=("$results")
    for d in "$results"/*/; do [ -d "$d" ] && dirs+=("$d"); done
    "$kite" bench plot "${dirs[@]}" --out "$out/peers-report.html" \
      --markdown "$out/peers-table.md" --svg-dir "$out/charts" >"$work/logs/plot.log" 2>&1
    row "table" "rc=$? $out/peers-table.md" ;;
  *) sed -n '2,30p' "$0"; exit 2 ;;
esac
