"""`kite bench serve` against a real `kite serve`, and `kite bench throughput` in-process, on the
shipped TinyStories-656K model (CPU). KITE_BIN points at the binary (scripts/test.sh sets it).

The load generator's token counts are checked against the server's own accounting: the sums of
the `kite:request_prompt_tokens` and `kite:request_generation_tokens` histograms of `/metrics`
grow by exactly the benchmark's total input and output tokens, and their counts by the number
of completed requests. Prompt and output lengths are ranged (`--random-range-ratio`), so a
benchmark that assumed the nominal lengths would fail. Timing values are not asserted beyond
their definitions (TTFT <= E2E; TPOT = (E2E - TTFT) / (tokens - 1)).
"""

import json
import os
import re
import socket
import subprocess
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KITE = os.environ.get("KITE_BIN", os.path.join(ROOT, "build", "bin", "kite"))
TINY = os.path.join(ROOT, "tests", "data", "models", "tinystories-656k")
PORTS = range(20000, 21000)  # the range kept for tests on shared machines

pytestmark = pytest.mark.skipif(not os.path.exists(KITE), reason=f"no kite binary at {KITE}")

ENV = dict(os.environ, KITE_NO_PROGRESS="1", KITE_BENCH_PORT_RANGE="20000-20999")


def free_port():
    start = (os.getpid() * 7919 + time.monotonic_ns()) % len(PORTS)
    for i in range(len(PORTS)):
        port = PORTS[(start + i) % len(PORTS)]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in 20000-20999")


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def histogram(metrics_text, name):
    """(sum, count) of a Prometheus histogram in the text format (0, 0 when absent)."""
    values = {}
    for suffix in ("_sum", "_count"):
        m = re.search(r"^" + re.escape(name + suffix) + r"(?:\{[^}]*\})? ([0-9.eE+-]+)$",
                      metrics_text, re.M)
        values[suffix] = float(m.group(1)) if m else 0.0
    return values["_sum"], values["_count"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [KITE, "serve", TINY, "--host", "127.0.0.1", "--port", str(port),
         "--served-model-name", "tiny", "--threads", "2", "--max-num-seqs", "8"],
        stdout=log, stderr=subprocess.STDOUT, env=ENV)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            log.close()
            pytest.fail(f"kite serve exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if get(url + "/health", timeout=2)[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("kite serve did not become healthy in 120 s")
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def kite_bench(*args, timeout=180):
    r = subprocess.run([KITE, "bench", *args], capture_output=True, text=True, env=ENV,
                       timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def check_samples(result):
    samples = result["samples"]
    assert len(samples) == result["metrics"]["num_requests"]
    assert all(s["ok"] for s in samples)
    for s in samples:
        assert 0 < s["ttft_ms"] <= s["e2e_ms"]
        if s["output_tokens"] >= 2:
            want = (s["e2e_ms"] - s["ttft_ms"]) / (s["output_tokens"] - 1)
            assert s["tpot_ms"] == pytest.approx(want, rel=1e-9, abs=1e-9)
    m = result["metrics"]
    assert m["total_input_tokens"] == sum(s["prompt_tokens"] for s in samples)
    assert m["total_output_tokens"] == sum(s["output_tokens"] for s in samples)
    assert m["output_throughput"] == pytest.approx(m["total_output_tokens"] / m["duration_s"])


def test_bench_serve_token_counts_match_the_servers_usage(server, tmp_path):
    n = 24
    before = get(server + "/metrics")[1]
    out = tmp_path / "serve.json"
    r = kite_bench("serve", "--base-url", server, "--model", "tiny", "--model-path", TINY,
                   "--num-prompts", str(n), "--random-input-len", "20", "--random-output-len",
                   "10", "--random-range-ratio", "0.5", "--ignore-eos", "--request-rate", "40",
                   "--seed", "3", "--skip-initial-test", "--save-detailed", "--no-progress",
                   "--request-timeout", "60",
                   "--output-json", str(out))
    assert "Serving Benchmark Result" in r.stdout or "Successful requests" in r.stdout, r.stdout
    after = get(server + "/metrics")[1]
    result = json.loads(out.read_text())
    m = result["metrics"]
    assert result["schema"] == "kite-bench/1" and result["kind"] == "serve"
    assert m["completed"] == n and m["failed"] == 0
    assert result["token_check"]["usage_missing"] == 0
    assert result["token_check"]["prompt_mismatches"] == 0
    assert result["token_check"]["output_mismatches"] == 0
    # Ranged lengths: not every request has the nominal length.
    lengths = {s["prompt_tokens"] for s in result["samples"]}
    assert len(lengths) > 1 and min(lengths) >= 10 and max(lengths) <= 30
    check_samples(result)
    # The server counted exactly the tokens the benchmark reports.
    p0, c0 = histogram(before, "kite:request_prompt_tokens")
    p1, c1 = histogram(after, "kite:request_prompt_tokens")
    g0, _ = histogram(before, "kite:request_generation_tokens")
    g1, _ = histogram(after, "kite:request_generation_tokens")
    assert c1 - c0 == n
    assert p1 - p0 == m["total_input_tokens"]
    assert g1 - g0 == m["total_output_tokens"]
    # ITL: one gap per output-carrying chunk after the first.
    for s in result["samples"]:
        assert len(s["itl_ms"]) == s["chunks"] - 1


def test_bench_throughput_in_process_same_model(tmp_path):
    n = 16
    out = tmp_path / "throughput.json"
    kite_bench("throughput", TINY, "--num-prompts", str(n), "--random-input-len", "20",
               "--random-output-len", "10", "--random-range-ratio", "0.5", "--ignore-eos",
               "--seed", "3", "--threads", "2", "--max-num-seqs", "8", "--no-progress",
               "--output-json", str(out))
    result = json.loads(out.read_text())
    m = result["metrics"]
    assert result["kind"] == "throughput" and result["engine"]["backend"] == "cpu"
    assert m["completed"] == n and m["failed"] == 0
    assert result["token_check"]["output_mismatches"] == 0
    assert result["token_check"]["prompt_mismatches"] == 0
    assert result["config"]["max_num_seqs"] == 8
    check_samples(result)
    assert 1 <= m["max_concurrency_observed"] <= n


def test_plot_of_both_runs(server, tmp_path):
    """A serve run and a throughput run plotted together: the report, the Markdown table and the
    standalone SVG charts exist and name both runs."""
    res = tmp_path / "results"
    kite_bench("serve", "--base-url", server, "--model", "tiny", "--model-path", TINY,
               "--num-prompts", "6", "--random-input-len", "12", "--random-output-len", "6",
               "--ignore-eos", "--skip-initial-test", "--no-progress", "--label", "kite-http",
               "--result-dir", str(res))
    kite_bench("throughput", TINY, "--num-prompts", "6", "--random-input-len", "12",
               "--random-output-len", "6", "--ignore-eos", "--threads", "2", "--no-progress",
               "--label", "kite-offline", "--result-dir", str(res))
    svg = tmp_path / "charts"
    md = tmp_path / "table.md"
    kite_bench("plot", str(res), "--out", str(tmp_path / "report.html"), "--markdown", str(md),
               "--svg-dir", str(svg))
    html = (tmp_path / "report.html").read_text()
    table = md.read_text()
    for label in ("kite-http", "kite-offline"):
        assert label in html and label in table
    files = sorted(p.name for p in svg.iterdir())
    assert "throughput-by-workload.svg" in files
    for f in files:
        text = (svg / f).read_text()
        assert text.startswith("<svg xmlns=\"http://www.w3.org/2000/svg\"")
        assert f"(charts/{f})" in table  # linked from the Markdown, relative to it
