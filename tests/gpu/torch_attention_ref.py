#!/usr/bin/env python3
"""Reference point for kite's prefill attention: torch's scaled_dot_product_attention (flash /
cuDNN backends) on the shapes kite_cuda_bench measures (causal, 32 q heads / 8 kv heads,
head_dim 128, bf16), in TFLOP/s with the same FLOP count (4 * heads * head_dim * causal pairs).
CUDA events, 5 warm-up runs, median of 20.

  python3 torch_attention_ref.py
"""
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def bench(fn, reps=20, warmup=5):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    return statistics.median(times)


def main():
    torch.manual_seed(0)
    hq, hkv, hd = 32, 8, 128
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    for batch, seq in ((1, 4096), (8, 2048), (1, 16384)):
        q = torch.randn(batch, hq, seq, hd, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(batch, hkv, seq, hd, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(batch, hkv, seq, hd, device="cuda", dtype=torch.bfloat16)
        # GQA: the flash backend wants equal head counts; the expand is outside the timing.
        ke = k.repeat_interleave(hq // hkv, dim=1)
        ve = v.repeat_interleave(hq // hkv, dim=1)
        flops = 4.0 * batch * hq * hd * seq * (seq + 1) / 2
        for name, backend in (("flash", SDPBackend.FLASH_ATTENTION),
                              ("cudnn", SDPBackend.CUDNN_ATTENTION)):
            try:
                with sdpa_kernel(backend):
                    t = bench(lambda: F.scaled_dot_product_attention(q, ke, ve, is_causal=True))
                print(f"torch sdpa {name} prefill b{batch} ctx{seq} (32/8 heads, hd128): "
                      f"{flops / t / 1e12:.1f} TFLOP/s ({t * 1e3:.3f} ms)")
            except RuntimeError as e:
                print(f"torch sdpa {name} b{batch} ctx{seq}: unavailable ({str(e)[:80]})")


if __name__ == "__main__":
    main()
