#!/usr/bin/env bash
# Old vs new on the same GPU in one call: W5 (TPOT, batch 1) and W1's (128,128) and (2048,128)
# output throughput through `kite bench throughput` (in-process Engine, 8B shape, dummy BF16
# weights), runs of the two builds interleaved (old, new, old, new, ...) so that clock drift
# hits both. Prints one table (median over the repeats) and the ratio new/old.
#
#   OUT=/tmp/out scripts/gpu-compare.sh OLD_BUNDLE NEW_BUNDLE [REPEATS]
#
# A bundle is a folder made by scripts/gpu-bundle.sh (bin.tar.xz with bin/kite and lib/), or a
# folder with bin/kite (the same bundle twice compares flags). Environment: KITE_COMPARE_W1 (W1
# counts, default 512,128,0,0), KITE_COMPARE_W5 (W5 requests, default 8), KITE_COMPARE_OLD_ARGS /
# KITE_COMPARE_NEW_ARGS (extra engine flags of each side, e.g. "--quantization fp8"),
# KITE_BENCH_WORK (scratch, /tmp/kite-compare).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
old="$1"
new="$2"
repeats="${3:-2}"
work="${KITE_BENCH_WORK:-/tmp/kite-compare}"
out="${OUT:-$PWD/gpu-compare-out}"
mkdir -p "$work" "$out"

unpack() {  # bundle dir -> path of its kite binary
  local b=$1 tag=$2
  if [ -f "$b/bin.tar.xz" ]; then
    rm -rf "$work/$tag" && mkdir -p "$work/$tag" && tar -C "$work/$tag" -xJf "$b/bin.tar.xz"
    echo "$work/$tag/bin/kite"
  else
    echo "$b/bin/kite"
  fi
}
kite_old=$(unpack "$old" old)
kite_new=$(unpack "$new" new)
model=tests/data/configs/llama-3-8b
export KITE_NO_PROGRESS=1

run() {  # tag kite workload counts rep
  local tag=$1 kite=$2 workload=$3 counts=$4 rep=$5
  local extra="${KITE_COMPARE_OLD_ARGS:-}"
  [ "$tag" = new ] && extra="${KITE_COMPARE_NEW_ARGS:-}"
  local dir="$work/results/$tag-$workload-$rep"
  rm -rf "$dir" && mkdir -p "$dir"
  LD_LIBRARY_PATH="$(dirname "$(dirname "$kite")")/lib:/usr/local/cuda/lib64" \
    timeout 300 "$kite" bench throughput "$model" --load-format dummy --dtype bfloat16 \
    --workload "$workload" --preset-prompts "$counts" --result-dir "$dir" --no-progress $extra \
    >"$out/$tag-$workload-$rep.log" 2>&1
  echo "$tag $workload rep $rep: rc=$?"
}

for rep in $(seq 1 "$repeats"); do
  for tag in old new; do
    kite=$kite_old
    [ "$tag" = new ] && kite=$kite_new
    run "$tag" "$kite" W5 "${KITE_COMPARE_W5:-8}" "$rep"
    run "$tag" "$kite" W1 "${KITE_COMPARE_W1:-512,128,0,0}" "$rep"
  done
done

python3 - "$work/results" "$out" <<'PY'
import glob, json, os, statistics, sys
root, out = sys.argv[1], sys.argv[2]
rows = {}  # (metric) -> {tag: [values]}
for path in glob.glob(os.path.join(root, "*", "*.json")):
    tag = os.path.basename(os.path.dirname(path)).split("-")[0]
    d = json.load(open(path))
    w = d.get("workload", {})
    m = d["metrics"]
    inl, outl = w.get("input_len"), w.get("output_len")
    if w.get("max_concurrency") == 1:  # W5: one request at a time
        rows.setdefault("W5 TPOT mean (ms)", {}).setdefault(tag, []).append(m["tpot_ms"]["mean"])
    else:
        key = f"W1 ({inl},{outl}) output tok/s"
        rows.setdefault(key, {}).setdefault(tag, []).append(m["output_throughput"])
lines = ["| metric | old | new | new/old |", "| --- | ---: | ---: | ---: |"]
for k in sorted(rows):
    o = statistics.median(rows[k].get("old", [float("nan")]))
    n = statistics.median(rows[k].get("new", [float("nan")]))
    lines.append(f"| {k} | {o:.2f} | {n:.2f} | {n / o:.3f} |")
    lines.append(f"|  (runs) | {', '.join(f'{v:.2f}' for v in rows[k].get('old', []))} | "
                 f"{', '.join(f'{v:.2f}' for v in rows[k].get('new', []))} | |")
table = "\n".join(lines)
print(table)
open(os.path.join(out, "compare.md"), "w").write(table + "\n")
PY
