#!/usr/bin/env bash
# Runs on the GPU machine, from the repo root, over a bundle made by scripts/gpu-bundle.sh:
#   tests   the GPU test suite (kernels vs the CPU ops, the op table's cases vs the CPU ops,
#           sampler vs the CPU sampler, runner)
#   tiny    shipped TinyStories-656K / stories260K: GPU greedy text vs the CPU backend's
#   models  random-weight models at real shapes vs transformers (tests/gpu/hf_compare.py)
#   bench   kernel benchmarks and W5 (kite_cuda_bench)
#   ops     every op-table case timed (kite_cuda_bench --ops; KITE_OPS_FILTER: a name substring)
#   profile the 8B step profile (kite_cuda_bench --step-profile: per-phase device time against
#           the rooflines) and cuBLASLt plan costs (--gemm-plans); KITE_PROFILE_FLAGS adds flags
#   engine  the product path on the GPU: `kite generate --device cuda` vs `--device cpu` greedy
#           text of the tiny models, `kite serve --device cuda` answering a completion, and an
#           8B-shape offline batch (dummy weights) through the Engine (continuous batching +
#           CUDA graphs; KITE_ENGINE_KEEP=1 keeps their outputs)
#   tp1     the multi-rank worker path with one rank on one GPU: `mpirun -np 1 kite ...
#           --device cuda --tensor-parallel-size 1` (MPI world and NCCL communicator of one
#           rank) vs the plain path: greedy tokens of the tiny models, then W5 and W1 (128,128)
#           on the 8B shape (dummy weights) through both, and the ratios (the issue's bound: 2%)
#   tp2     several GPUs (KITE_TP, default 2; needs that many): `mpirun -np N kite generate
#           --device cuda --tensor-parallel-size N` greedy tokens vs one GPU on the tiny models
#           and an 8B-shape dummy model, a worker killed mid-run ending every rank, and W5 /
#           W1 (128,128) on the 8B shape at TP N
#   moe     Qwen3-30B-A3B at its published shape (dummy weights): W5 and W1 through the engine
#           with sampled step profiles, with the MoE grouped GEMM's tensor-core kernel
#           (KITE_MOE_TC=1) and its CUDA-core one (=0; KITE_MOE_TC_VALUES picks, default "1 0"),
#           the MoE op cases (both kernels), W5 on 8 layers against its roofline
#   startup `kite generate` of the transformers-written Llama-3.1-8B files that
#           `models` kept (KITE_HF_KEEP, page cache warm): process start to exit after 1 token
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
# NCCL (the bundle leaves it out): the toolkit's, else the nvidia-nccl-cu13 wheel's.
if [ ! -e /usr/local/cuda/lib64/libnccl.so.2 ]; then
  nccl_lib=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null || true)
  if [ -n "$nccl_lib" ]; then export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$nccl_lib"; fi
fi
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

# Writes make_tiny_models.py's family models once into $out/tiny-families and exports
# KITE_TINY_FAMILY_DIR; leaves it unset when python3 lacks numpy or safetensors.
tiny_families() {
  if [ -n "${KITE_TINY_FAMILY_DIR:-}" ]; then return 0; fi
  if [ ! -f "$out/tiny-families/gemma2-bf16/config.json" ]; then
    rm -rf "$out/tiny-families"
    python3 tests/conformance/model/make_tiny_models.py "$out/tiny-families" --no-gguf \
      >"$out/tiny-families.log" 2>&1 || { row "tiny family models" "not written (see log)"; return 0; }
  fi
  export KITE_TINY_FAMILY_DIR="$out/tiny-families"
}

# Open MPI for the tp steps: the bundle's (gpu-bundle.sh carries the Open MPI that kite's ranks
# are linked against, and the launcher must be of the same Open MPI: a machine's other mpirun
# loads its own PMIx plugins against the bundle's libpmix and fails), relocated, with Debian's
# component choices (its openmpi-mca-params.conf stays behind): no InfiniBand/UCX/OFI transports.
# The machine's mpirun only when the bundle has none. Sets $mpirun; fails when there is none.
find_mpirun() {
  export NCCL_NVLS_ENABLE=0
  if [ -x "${unpacked:-}/mpi/bin/mpirun" ]; then
    export OPAL_PREFIX="$unpacked/mpi" PATH="$unpacked/mpi/bin:$PATH"
    export PMIX_MCA_mca_base_component_path="$unpacked/mpi/pmix"
    export OMPI_MCA_btl='^uct,openib,ofi' OMPI_MCA_pml='^ucx' OMPI_MCA_mtl='^ofi'
    export OMPI_MCA_osc='^ucx,pt2pt' OMPI_MCA_btl_base_warn_component_unused=0
    mpirun="$unpacked/mpi/bin/mpirun"
  else
    mpirun=$(command -v mpirun || true)
  fi
  [ -n "$mpirun" ]
}

for step in "${steps[@]}"; do
  case "$step" in
    tests)
      # The tiny family models (Phi-3, Gemma 2/3, Qwen3-MoE, Mixtral, ...) for cuda_runner_test's
      # CudaFamilyRunnerTest, written with this machine's python3 (numpy + safetensors).
      tiny_families
      gtest_row "cuda_kernels_test" "$bin/cuda_kernels_test" "$out/kernels.log"
      gtest_row "cuda_ops_test" "$bin/cuda_ops_test" "$out/ops.log"
      gtest_row "cuda_runner_test" "$bin/cuda_runner_test" "$out/runner.log"
      gtest_row "cuda_nccl_test" "$bin/cuda_nccl_test" "$out/nccl.log"
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
      # The family models (random weights, vocabulary 96): GPU vs CPU greedy ids from a short
      # prompt. float32-mode models (F32 checkpoints, head_dim <= 32) must agree on every token;
      # bf16 ones may part where the CPU's top-2 logits nearly tie.
      tiny_families
      if [ -n "${KITE_TINY_FAMILY_DIR:-}" ]; then
        printf '1 5 9 33\n3 1 4 1 5 9 2 6 5 3 5 8 9 7 9 3 2 3 8\n' >"$out/tiny_prompts_fam.txt"
        for fam in phi3-fused phi3-longrope gemma2-bf16 gemma3-f32 qwen3moe-bf16 \
                   qwen3moe-step2-f32 mixtral-f16; do
          timeout 120 "$bin/kite_cuda_model_check" --model "$KITE_TINY_FAMILY_DIR/$fam" \
            --prompts "$out/tiny_prompts_fam.txt" --max-new 40 --compare-cpu --gpu-mem 0.3 \
            >"$out/tiny_fam.log" 2>&1
          rc=$?
          cat "$out/tiny_fam.log" >>"$out/tiny.log"
          agree=$(grep -o 'agree on [0-9]* of [0-9]*' "$out/tiny_fam.log" | tr '\n' ';')
          path=$(grep -o 'attention path [a-z-]*' "$out/tiny_fam.log" | tail -1)
          # Where GPU and CPU part, the CPU's top-2 logit gap at that step (a bf16 model may
          # part at a near-tie; a wide gap is a real difference).
          gaps=$(sed -n 's/.*cpu top-2 \[[0-9-]* \([0-9.e+-]*\) [0-9-]* \([0-9.e+-]*\)\].*/\1 \2/p' \
                   "$out/tiny_fam.log" | awk '{printf "%s%.4f", (NR > 1 ? "," : ""), $1 - $2}')
          row "tiny $fam" "rc=$rc $agree $path${gaps:+ (parts where the CPU top-2 gap is $gaps)}"
        done
        rm -f "$out/tiny_prompts_fam.txt" "$out/tiny_fam.log"
      fi
      ;;
    models)
      timeout "${KITE_MODELS_TIMEOUT:-500}" python3 "$bundle/hf_compare.py" --tool "$bin/kite_cuda_model_check" \
        --work "${KITE_MODEL_WORK:-/tmp/kite-models}" \
        --models "${KITE_HF_MODELS:-llama3.1-8b,qwen2.5-7b,qwen3-8b,mistral-7b}" \
        --layers "${KITE_HF_LAYERS:-}" --keep "${KITE_HF_KEEP:-}" --out "$out/models.json" \
        >"$out/models.log" 2>&1
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
      # W5 on the family shapes with fewer layers than published (random weights): Qwen3-30B-A3B
      # (MoE: bytes of the router and the 8 active experts per layer) and Gemma-3-12B.
      if [ "${KITE_BENCH_FAMILIES:-1}" = "1" ]; then
        timeout 300 "$bin/kite_cuda_bench" --w5-family "qwen3-30b-a3b:${KITE_MOE_LAYERS:-8}" \
          --w5-family "gemma-3-12b:${KITE_GEMMA_LAYERS:-12}" --out "$out/bench.jsonl" \
          >>"$out/bench.log" 2>&1
        row "kite_cuda_bench families" "rc=$?"
      fi
      grep -E 'ceiling|M=1 |attention|W5 (TPOT mean|prefill|weight bytes)|W5 [a-z0-9.-]+ [0-9]+L (TPOT mean|prefill|weight bytes)' "$out/bench.log" | tee -a "$summary"
      ;;
    profile)
      rm -f "$out/profile.jsonl"
      timeout "${KITE_PROFILE_TIMEOUT:-300}" "$bin/kite_cuda_bench" --gemm-plans --step-profile \
        ${KITE_PROFILE_FLAGS:-} --out "$out/profile.jsonl" >"$out/profile.log" 2>&1
      row "kite_cuda_bench --step-profile" "rc=$?"
      grep -E 'first calls total|device busy|graph step wall|eager step wall' "$out/profile.log" \
        | tee -a "$summary"
      ;;
    ops)
      rm -f "$out/bench_ops.jsonl"
      timeout "${KITE_BENCH_TIMEOUT:-300}" "$bin/kite_cuda_bench" --ops ${KITE_OPS_FILTER:-} \
        --out "$out/bench_ops.jsonl" >"$out/bench_ops.log" 2>&1
      row "kite_cuda_bench --ops" "rc=$? cases=$(grep -c '^op ' "$out/bench_ops.log")"
      ;;
    engine)
      kite="$bin/kite"
      # Tiny models through the Engine: greedy token ids on the GPU vs the CPU.
      tiny_pairs=("tinystories-656k:1,80,147,201,282,57" "stories260k/stories260K.gguf:1"
                  "tinystories-656k-q8_0.gguf:1,80,147,201,282,57")
      if [ "${KITE_ENGINE_SKIP_TINY:-0}" = "1" ]; then tiny_pairs=(); fi
      for pair in "${tiny_pairs[@]}"; do
        m="$models/${pair%%:*}"
        tag=$(basename "${pair%%:*}")
        for dev in cpu cuda; do
          timeout 120 "$kite" generate "$m" --device "$dev" --prompt-ids "${pair##*:}" \
            --max-tokens 200 --temperature 0 --ignore-eos --print-ids --no-progress \
            >"$out/engine_${tag}_$dev.txt" 2>"$out/engine_${tag}_$dev.log"
        done
        how=$(grep -o 'cuda: [^ ]* on device.*' "$out/engine_${tag}_cuda.log" | sed 's/.*), //' | head -1)
        if cmp -s "$out/engine_${tag}_cpu.txt" "$out/engine_${tag}_cuda.txt" &&
           [ -s "$out/engine_${tag}_cpu.txt" ]; then
          row "engine greedy $tag" "gpu == cpu (200 tokens; $how)"
        else
          row "engine greedy $tag" "DIFFER ($how): see engine_${tag}_*.txt"
        fi
      done
      # kite serve --device cuda: one completion over HTTP.
      "$kite" serve "$models/tinystories-656k" --device cuda --port 18123 >"$out/serve.log" 2>&1 &
      serve_pid=$!
      python3 - >"$out/serve_completion.json" 2>&1 <<'PY'
import json, time, urllib.request
base = "http://127.0.0.1:18123"
for _ in range(120):
    try:
        urllib.request.urlopen(base + "/health", timeout=1)
        break
    except Exception:
        time.sleep(0.5)
req = urllib.request.Request(base + "/v1/completions", method="POST",
                             headers={"Content-Type": "application/json"},
                             data=json.dumps({"model": "tinystories-656k",
                                              "prompt": "Once upon a time", "max_tokens": 24,
                                              "temperature": 0}).encode())
print(urllib.request.urlopen(req, timeout=30).read().decode())
PY
      kill "$serve_pid" 2>/dev/null
      wait "$serve_pid" 2>/dev/null
      row "kite serve --device cuda" "$(head -c 300 "$out/serve_completion.json")"
      # 8B shape, dummy weights: offline batches through the Engine.
      for shape in ${KITE_ENGINE_BATCHES:-256x128x128 64x2048x128 1x128x256}; do
        IFS=x read -r n inl outl <<<"$shape"
        python3 - "$n" "$inl" "$outl" >"$out/reqs_$shape.jsonl" <<'PY'
import json, random, sys
n, inl, outl = map(int, sys.argv[1:])
rng = random.Random(0)
for i in range(n):
    print(json.dumps({"prompt_token_ids": [rng.randrange(128000) for _ in range(inl)],
                      "max_tokens": outl, "ignore_eos": True, "temperature": 0}))
PY
        start=$(date +%s.%N)
        # shellcheck disable=SC2086  # KITE_ENGINE_FLAGS: extra engine flags, word-split
        timeout 300 "$kite" generate tests/data/configs/llama-3-8b --load-format dummy --device cuda \
          ${KITE_ENGINE_FLAGS:-} \
          --input "$out/reqs_$shape.jsonl" --output "$out/engine_out_$shape.jsonl" --no-progress \
          >"$out/engine_8b_$shape.log" 2>&1
        rc=$?
        end=$(date +%s.%N)
        row "engine 8B dummy $shape ${KITE_ENGINE_FLAGS:-}" "rc=$rc process $(awk "BEGIN {printf \"%.2f\", $end - $start}") s; $(grep -E '^(throughput|TPOT|TTFT)' "$out/engine_8b_$shape.log" | tr '\n' ' ')"
        rm -f "$out/reqs_$shape.jsonl"
        # KITE_ENGINE_KEEP=1 keeps the outputs (greedy token ids: compare two builds' numerics).
        [ "${KITE_ENGINE_KEEP:-0}" = "1" ] || rm -f "$out/engine_out_$shape.jsonl"
      done
      ;;
    tp1)
      kite="$bin/kite"
      if ! find_mpirun; then
        row "tp1" "SKIPPED: no mpirun here or in the bundle"
        continue
      fi
      mpi=("$mpirun" -np 1 --oversubscribe --bind-to none)
      [ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
      # Greedy tokens: the plain path vs the worker path (its log names the NCCL communicator).
      for pair in "tinystories-656k:1,80,147,201,282,57" "stories260k/stories260K.gguf:1"; do
        m="$models/${pair%%:*}"
        tag=$(basename "${pair%%:*}")
        gen=(generate "$m" --device cuda --prompt-ids "${pair##*:}" --max-tokens 200
             --temperature 0 --ignore-eos --print-ids --no-progress)
        timeout 120 "$kite" "${gen[@]}" >"$out/tp1_${tag}_plain.txt" 2>"$out/tp1_${tag}_plain.log"
        timeout 180 "${mpi[@]}" "$kite" "${gen[@]}" --tensor-parallel-size 1 \
          >"$out/tp1_${tag}_mpi.txt" 2>"$out/tp1_${tag}_mpi.log"
        rc=$?
        nccl=$(grep -o 'nccl: rank 0 of 1[^)]*)' "$out/tp1_${tag}_mpi.log" | head -1)
        if [ "$rc" = 0 ] && [ -s "$out/tp1_${tag}_plain.txt" ] &&
           cmp -s "$out/tp1_${tag}_plain.txt" "$out/tp1_${tag}_mpi.txt"; then
          row "tp1 greedy $tag" "mpirun -np 1 == plain (200 tokens; ${nccl:-NO nccl line})"
        else
          row "tp1 greedy $tag" "DIFFER or failed (rc=$rc; ${nccl:-no nccl line}): see tp1_${tag}_*"
        fi
      done
      # W5 and W1 (128,128), 8B shape, dummy weights: plain, then the worker path, in this call.
      shape="$out/tp1-llama-3-8b"
      mkdir -p "$shape" && cp tests/data/configs/llama-3-8b/config.json "$shape/"
      for f in tokenizer.json tokenizer_config.json; do
        gzip -dc "tests/data/tokenizers/llama3.1/$f.gz" >"$shape/$f"
      done
      rm -rf "$out/tp1-results" && mkdir -p "$out/tp1-results"
      for w in "W5:${KITE_TP1_W5_PROMPTS:-8}" "W1:${KITE_TP1_W1_PROMPTS:-512},0,0,0"; do
        for how in plain mpi; do
          launch=()
          extra=()
          if [ "$how" = mpi ]; then launch=("${mpi[@]}"); extra=(--tensor-parallel-size 1); fi
          timeout 300 "${launch[@]}" "$kite" bench throughput "$shape" --load-format dummy \
            --dtype bfloat16 --device cuda --workload "${w%%:*}" --preset-prompts "${w#*:}" \
            "${extra[@]}" --result-dir "$out/tp1-results/$how" --no-progress \
            >"$out/tp1_${w%%:*}_$how.log" 2>&1
          row "tp1 ${w%%:*} $how" "rc=$?"
        done
      done
      python3 - "$out/tp1-results" <<'PY' | tee -a "$summary"
import glob, json, os, sys
root = sys.argv[1]
def metric(how, name, key):
    files = glob.glob(os.path.join(root, how, name))
    if not files:
        return None
    m = json.load(open(files[0]))["metrics"]
    v = m[key]
    return v["mean"] if isinstance(v, dict) else v
for label, name, key, better in [("W5 TPOT mean (ms)", "*W5*.json", "tpot_ms", "lower"),
                                 ("W1 (128,128) output tok/s", "*W1-128x128*.json",
                                  "output_throughput", "higher")]:
    p, w = metric("plain", name, key), metric("mpi", name, key)
    if p is None or w is None:
        print(f"tp1 {label}: missing a result (plain {p}, mpirun -np 1 {w})")
        continue
    r = w / p
    ok = r <= 1.02 if better == "lower" else r >= 0.98
    print(f"tp1 {label}: plain {p:.3f}, mpirun -np 1 {w:.3f}, ratio {r:.4f} "
          f"({'within' if ok else 'OUTSIDE'} 2%)")
PY
      ;;
    tp2)
      kite="$bin/kite"
      n="${KITE_TP:-2}"
      gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
      if [ "$gpus" -lt "$n" ]; then
        row "tp2" "SKIPPED: $gpus GPU(s), TP $n needs $n"
        continue
      fi
      if ! find_mpirun; then
        row "tp2" "SKIPPED: no mpirun here or in the bundle"
        continue
      fi
      mpi=("$mpirun" -np "$n" --oversubscribe --bind-to none -x NCCL_NVLS_ENABLE)
      [ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
      # Greedy tokens, one GPU vs N (float32-mode tiny models: equal up to the sums' order).
      shape="$out/tp2-llama-3-8b"
      mkdir -p "$shape" && cp tests/data/configs/llama-3-8b/config.json "$shape/"
      for pair in "$models/tinystories-656k:1,80,147,201,282,57:" \
                  "$shape:128000,791,1917,374:--load-format dummy --dtype bfloat16"; do
        IFS=: read -r m ids flags <<<"$pair"
        tag=$(basename "$m")
        # shellcheck disable=SC2206  # flags: word-split on purpose
        gen=(generate "$m" --device cuda --prompt-ids "$ids" --max-tokens 64 --temperature 0
             --ignore-eos --print-ids --no-progress $flags)
        timeout 300 "$kite" "${gen[@]}" >"$out/tp2_${tag}_one.txt" 2>"$out/tp2_${tag}_one.log"
        timeout 300 "${mpi[@]}" "$kite" "${gen[@]}" --tensor-parallel-size "$n" \
          >"$out/tp2_${tag}_tp.txt" 2>"$out/tp2_${tag}_tp.log"
        rc=$?
        if [ "$rc" = 0 ] && cmp -s "$out/tp2_${tag}_one.txt" "$out/tp2_${tag}_tp.txt"; then
          row "tp$n greedy $tag" "TP $n == one GPU (64 tokens)"
        else
          row "tp$n greedy $tag" "DIFFER or failed (rc=$rc): see tp2_${tag}_*"
        fi
      done
      # A worker killed at its 3rd step: every rank ends with an error, within the bound.
      start=$(date +%s)
      KITE_TEST_FAIL_RANK_AT_STEP=1:3:kill timeout 300 "${mpi[@]}" -x KITE_TEST_FAIL_RANK_AT_STEP \
        "$kite" generate "$models/tinystories-656k" --device cuda --prompt-ids 1 --max-tokens 32 \
        --ignore-eos --print-ids --no-progress --tensor-parallel-size "$n" \
        >/dev/null 2>"$out/tp2_killed.log"
      rc=$?
      row "tp$n rank killed mid-run" "rc=$rc (non-zero expected) after $(( $(date +%s) - start )) s"
      for f in tokenizer.json tokenizer_config.json; do
        gzip -dc "tests/data/tokenizers/llama3.1/$f.gz" >"$shape/$f"
      done
      for w in "W5:${KITE_TP1_W5_PROMPTS:-8}" "W1:${KITE_TP1_W1_PROMPTS:-512},0,0,0"; do
        timeout 300 "${mpi[@]}" "$kite" bench throughput "$shape" --load-format dummy \
          --dtype bfloat16 --device cuda --workload "${w%%:*}" --preset-prompts "${w#*:}" \
          --tensor-parallel-size "$n" --no-progress >"$out/tp2_${w%%:*}.log" 2>&1
        row "tp$n ${w%%:*}" "rc=$? $(grep -E '^(Mean TPOT|Output token throughput)' \
          "$out/tp2_${w%%:*}.log" | tr -s ' ' | tr '\n' ' ')"
      done
      ;;
    attnref)  # torch SDPA on kite_cuda_bench's prefill shapes (a reference, not a test)
      timeout 180 python3 "$bundle/torch_attention_ref.py" >"$out/attnref.log" 2>&1
      row "torch attention reference" "rc=$?"
      grep -E 'TFLOP|unavailable|torch ' "$out/attnref.log" | tee -a "$summary"
      ;;
    startup)
      m="${KITE_MODEL_WORK:-/tmp/kite-models}/${KITE_STARTUP_MODEL:-llama3.1-8b}"
      if [ ! -f "$m/config.json" ]; then
        row "startup" "SKIPPED: no $m (run the models step with KITE_HF_KEEP first)"
      else
        cat "$m"/*.safetensors >/dev/null  # page cache warm, as W6 asks
        for i in 1 2; do
          start=$(date +%s.%N)
          timeout 120 "$bin/kite" generate "$m" --device cuda --prompt-ids 128000,791,1917 \
            --max-tokens 1 --temperature 0 --print-ids --no-progress >"$out/startup_$i.txt" \
            2>"$out/startup_$i.log"
          rc=$?
          end=$(date +%s.%N)
          row "startup 8B to first token ($i)" "rc=$rc $(awk "BEGIN {printf \"%.2f\", $end - $start}") s (process start to exit)"
        done
        grep -E 'loaded|profil|KV cache|captured|engine:' "$out/startup_1.log" | tee -a "$summary"
        rm -rf "$m"
      fi
      ;;
    moe)
      # The MoE family at its published shape (Qwen3-30B-A3B, 48 layers, dummy BF16 weights,
      # ~57 GiB): W5 through the engine with every 20th step profiled (the log's "cuda step
      # profile" lines: where a decode step's time goes), then W1 (128,128); the MoE block's op
      # cases timed and checked; W5 on 8 layers against its roofline (kite_cuda_bench). The
      # model runs go once per KITE_MOE_TC value: the tensor-core grouped GEMM first (built, not
      # yet measured), then the CUDA-core one (256 W1 requests did not finish in 95 s on it).
      kite="$bin/kite"
      m=tests/data/configs/qwen3-30b-a3b
      for tc in ${KITE_MOE_TC_VALUES:-1 0}; do
        for wl in "W5 4" "W1 ${KITE_MOE_W1:-128,0,0,0}"; do
          set -- $wl
          rm -rf "$out/moe_tc${tc}_$1" && mkdir -p "$out/moe_tc${tc}_$1"
          KITE_MOE_TC=$tc KITE_STEP_PROFILE=20 timeout "${KITE_MOE_TIMEOUT:-240}" "$kite" bench \
            throughput "$m" --load-format dummy --dtype bfloat16 --device cuda --workload "$1" \
            --preset-prompts "$2" --result-dir "$out/moe_tc${tc}_$1" --no-progress \
            >"$out/moe_tc${tc}_$1.log" 2>&1
          row "qwen3-30b-a3b $1 KITE_MOE_TC=$tc" "rc=$? $(grep -o 'TPOT (ms): *[0-9.]*' "$out/moe_tc${tc}_$1.log" | head -1) $(grep -o 'Output token throughput (tok/s): *[0-9.]*' "$out/moe_tc${tc}_$1.log" | head -1)"
          grep -m 3 'cuda step profile' "$out/moe_tc${tc}_$1.log" | cut -c1-400 | tee -a "$summary"
        done
      done
      # The op cases: moe_grouped_gemm "_cc" / "_tc" and moe_block "_tc" pick their kernel;
      # the other moe_block cases follow KITE_MOE_TC as the caller's environment sets it.
      timeout 300 "$bin/kite_cuda_bench" --ops moe --check --out "$out/bench_moe.jsonl" \
        >"$out/bench_moe.log" 2>&1
      row "kite_cuda_bench --ops moe --check" "rc=$? cases=$(grep -c '^op ' "$out/bench_moe.log") failed=$(grep -c 'CHECK FAILED' "$out/bench_moe.log")"
      grep '^op moe_grouped_gemm' "$out/bench_moe.log" | tee -a "$summary"
      timeout 180 "$bin/kite_cuda_bench" --w5-family "qwen3-30b-a3b:${KITE_MOE_LAYERS:-8}" \
        --out "$out/bench_moe.jsonl" >>"$out/bench_moe.log" 2>&1
      row "kite_cuda_bench --w5-family qwen3-30b-a3b" "rc=$?"
      grep -E 'W5 qwen3' "$out/bench_moe.log" | tee -a "$summary"
      ;;
    *)
      echo "unknown step $step" >&2
      ;;
  esac
done
echo "==== summary ===="
cat "$summary"
