#!/usr/bin/env bash
# one batched GPU call: verification of the tree (not committed)
set -u
B=build-cuda/bundle-c
t0=$(date +%s)
(timeout 450 python3 tests/conformance/model/transformers_check.py > $OUT/tfcheck.log 2>&1; echo "rc=$?" >> $OUT/tfcheck.log) &
KITE_ENGINE_BATCHES=1x128x256 OUT=$OUT/check timeout 300 bash scripts/gpu-check.sh $B tests tiny engine > $OUT/check.log 2>&1
echo "check done at $(( $(date +%s) - t0 ))s"
K=/tmp/kite-gpu-bundle
KITE_SB_PROMPTS=512 OUT=$OUT/sb timeout 150 bash scripts/benchmarks/structured_bench.sh --kite $K/bin/kite > $OUT/sb.log 2>&1
echo "sb rc=$? at $(( $(date +%s) - t0 ))s"
export LD_LIBRARY_PATH=$K/lib:/usr/local/cuda/lib64
timeout 40 $K/bin/kite_cuda_bench --ops f8_e4m3 --check > $OUT/ops-f8.log 2>&1
timeout 20 $K/bin/kite_cuda_bench --ops fp8 --check >> $OUT/ops-f8.log 2>&1
echo "ops at $(( $(date +%s) - t0 ))s"
left=$(( 560 - ($(date +%s) - t0) ))
if [ $left -gt 60 ]; then
  KITE_COMPARE_NEW_ARGS="--quantization fp8" KITE_COMPARE_W1=256,64,0,0 KITE_COMPARE_W5=4 OUT=$OUT/cmp \
    timeout $(( left - 10 )) bash scripts/gpu-compare.sh $B $B 1 > $OUT/cmp.log 2>&1
fi
wait
cat $OUT/check/summary.txt; echo ---; tail -8 $OUT/tfcheck.log; echo ---; cat $OUT/sb/structured-summary.txt; echo ---
grep -E "^op|FAIL|skipped" $OUT/ops-f8.log | cut -c1-150; echo ---; tail -12 $OUT/cmp.log
