"""The transformers peer (scripts/peers/hf_bench.py) on a tiny random Llama, end to end: every
workload writes a kite-bench/1 result whose token counts are the requested ones, and
`kite bench plot` reads them. Needs torch (skipped without it: the CI venv has none; the GPU
machine has it, and runs the real shapes through scripts/gpu-bench.sh)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KITE = os.environ.get("KITE_BIN", os.path.join(ROOT, "build", "bin", "kite"))
HF_BENCH = os.path.join(ROOT, "scripts", "peers", "hf_bench.py")

torch = pytest.importorskip("torch", reason="torch is not installed (the peers need it)")


def test_hf_bench_tiny_model_writes_valid_results(tmp_path):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = tmp_path / "results"
    r = subprocess.run(
        [sys.executable, HF_BENCH, "--shape", "tiny-llama", "--device", device,
         "--workloads", "W5,W1,W4", "--out", str(out), "--work", str(tmp_path / "work"),
         "--w5-repeats", "1", "--cb-prompts", "3,0,0,0", "--static-prompts", "4,1,0,0",
         "--static-batch", "2"],
        capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted([
        "transformers-W5-batch1.json", "transformers_cb-W1-128x128.json",
        "transformers_static-W1-128x128.json", "transformers_static-W1-2048x128.json",
        "transformers-W4-batch4.json", "transformers-W4-batch8.json",
        "transformers-W4-batch16.json", "transformers-W4-batch32.json"]), files
    for name in files:
        res = json.loads((out / name).read_text())
        m = res["metrics"]
        assert res["schema"] == "kite-bench/1"
        assert res["engine"]["name"] == "transformers"
        assert m["completed"] == res["workload"]["num_prompts"]
        assert res["token_check"]["output_mismatches"] == 0, name
        out_len = res["workload"]["output_len"]
        assert m["total_output_tokens"] == m["completed"] * out_len
        assert m["ttft_ms"]["count"] == m["completed"]
        assert 0 < m["ttft_ms"]["mean"] <= m["e2e_ms"]["mean"]
    if os.path.exists(KITE):
        p = subprocess.run([KITE, "bench", "plot", str(out), "--out", str(tmp_path / "r.html"),
                            "--markdown", str(tmp_path / "t.md")], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert "transformers generate_batch" in (tmp_path / "t.md").read_text()
