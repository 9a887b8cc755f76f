#!/usr/bin/env bash
# Structured outputs on the GPU (issue 16's benchmark): one `kite serve` of Llama-3.1-8B's shape
# (dummy weights, the real Llama-3.1 tokenizer: 128,256 tokens), then the same workload twice with
# `kite bench serve` — 256 concurrent streaming /v1/completions requests, random prompts, EOS
# ignored so both runs generate the same number of tokens — after an uncounted warm-up pass,
# first unconstrained, then with a JSON schema per request (`--response-format-file`, request i
# carries schema i mod 102 of scripts/benchmarks/structured_schemas.json). Prints both throughputs, the cost in percent
# (goal: <= 10%) and the bitmask time per step from /metrics. Fits one 10-minute device call.
#
#   OUT=/tmp/out scripts/benchmarks/structured_bench.sh --kite build-cuda/bin/kite
#
# Knobs: KITE_SB_PROMPTS [1024] requests per run, KITE_SB_CONCURRENCY [256],
# KITE_SB_INPUT [256] / KITE_SB_OUTPUT [128] tokens, KITE_SB_ENGINE_ARGS [--dtype bfloat16],
# KITE_SB_PORT [18080]. Results: $OUT/structured-{plain,schema}.json, $OUT/structured-summary.txt.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
kite="build-cuda/bin/kite"
while [ $# -gt 0 ]; do
  case "$1" in
    --kite) kite="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
kite="$(cd "$(dirname "$kite")" && pwd)/$(basename "$kite")"
# A bundle's binary (scripts/gpu-bundle.sh) keeps its shared libraries in ../lib.
if [ -d "$(dirname "$(dirname "$kite")")/lib" ]; then
  export LD_LIBRARY_PATH="$(dirname "$(dirname "$kite")")/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# The machine's curl must not load the bundle's libcurl (another build: "undefined symbol").
curl() { env -u LD_LIBRARY_PATH curl "$@"; }
out="${OUT:-/tmp/structured-bench}"
work="$(mktemp -d)"
port="${KITE_SB_PORT:-18080}"
prompts="${KITE_SB_PROMPTS:-1024}"
conc="${KITE_SB_CONCURRENCY:-256}"
in_len="${KITE_SB_INPUT:-256}"
out_len="${KITE_SB_OUTPUT:-128}"
engine_args=(${KITE_SB_ENGINE_ARGS:---dtype bfloat16})
mkdir -p "$out" "$work/model"
summary="$out/structured-summary.txt"
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }

cp tests/data/configs/llama-3.1-8b/config.json "$work/model/"
for f in tokenizer.json tokenizer_config.json; do
  gzip -dc "tests/data/tokenizers/llama3.1/$f.gz" >"$work/model/$f"
done
say "gpu: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | head -1)"
say "cpu: $(nproc) cores; kite: $("$kite" version 2>&1 | head -1)"

"$kite" serve "$work/model" --load-format dummy "${engine_args[@]}" --port "$port" \
  --served-model-name llama --max-num-seqs "$conc" --max-model-len 2048 \
  >"$out/structured-serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 240); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 1
done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || { say "server did not start"; tail "$out/structured-serve.log"; exit 1; }

metric() {  # metric NAME: its value in /metrics (0 when absent)
  curl -s "http://127.0.0.1:$port/metrics" | awk -v n="$1" '$1 == n {print $2; found=1} END {if (!found) print 0}'
}
bench() {  # bench LABEL [extra flags]
  local label=$1
  shift
  timeout 240 "$kite" bench serve --base-url "http://127.0.0.1:$port" --model llama \
    --dataset-name random --random-vocab-size 128256 --random-input-len "$in_len" --random-output-len "$out_len" \
    --num-prompts "$prompts" --max-concurrency "$conc" --ignore-eos --num-warmups 8 \
    --label "$label" --output-json "$out/structured-$label.json" "$@" \
    >"$out/structured-$label.log" 2>&1
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); m=r['metrics']; print(m.get('output_throughput', m.get('output_throughput_tok_s')))" \
    "$out/structured-$label.json"
}

# A first pass that is not counted: the first workload after start-up pays one-time costs
# (cuBLASLt plans per new prefill row count, lazily loaded kernels) that would otherwise land
# on whichever run goes first (run 17: TTFT 623 ms for the first run, 131 ms for the second).
bench warm >/dev/null || true
plain=$(bench plain)
steps0=$(metric kite:grammar_mask_steps_total); fill0=$(metric kite:grammar_mask_seconds_total)
wait0=$(metric kite:grammar_mask_wait_seconds_total); masks0=$(metric kite:grammar_masks_total)
comp0=$(metric kite:grammar_compile_seconds_total)
schema=$(bench schema --response-format-file scripts/benchmarks/structured_schemas.json)
steps1=$(metric kite:grammar_mask_steps_total); fill1=$(metric kite:grammar_mask_seconds_total)
wait1=$(metric kite:grammar_mask_wait_seconds_total); masks1=$(metric kite:grammar_masks_total)
comp1=$(metric kite:grammar_compile_seconds_total)
python3 - "$plain" "$schema" "$steps0" "$steps1" "$fill0" "$fill1" "$wait0" "$wait1" \
  "$masks0" "$masks1" "$comp0" "$comp1" <<'EOF' | tee -a "$summary"
import sys
plain, schema, s0, s1, f0, f1, w0, w1, m0, m1, c0, c1 = map(float, sys.argv[1:])
steps = max(s1 - s0, 1)
print(f"output throughput: plain {plain:.0f} tok/s, with JSON schemas {schema:.0f} tok/s, "
      f"cost {100 * (1 - schema / plain):.1f}% (goal <= 10%)")
print(f"bitmasks: {m1 - m0:.0f} over {steps:.0f} steps ({(m1 - m0) / steps:.0f} per step); "
      f"mask time per step {1e3 * (f1 - f0) / steps:.2f} ms (computed while the forward runs), "
      f"of which sampling waited {1e3 * (w1 - w0) / steps:.2f} ms")
print(f"grammar compilation: {c1 - c0:.1f} s in total for the schema run")
EOF
