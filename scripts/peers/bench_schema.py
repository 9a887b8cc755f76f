"""The kite bench result schema ("kite-bench/1", docs/benchmarks.md) for the Python peers.

Same definitions as kite's C++ (src/bench/metrics.cpp, stats.cpp):
  TTFT   first token-carrying output minus the request's start
  ITL    gaps between consecutive token-carrying outputs
  TPOT   (E2E - TTFT) / (output_tokens - 1), requests with >= 2 tokens
  E2E    end of the request minus its start
  percentiles: numpy's default (method="linear"); std: population (ddof=0)
  duration: benchmark start to the end of the last request; throughputs over it.
Times are given to this module in seconds; the JSON has milliseconds.
"""
import datetime
import os
import platform

import numpy as np

SCHEMA = "kite-bench/1"
DEFAULT_PERCENTILES = (50.0, 90.0, 95.0, 99.0)


class Sample:
    """One request: start (s since the benchmark start) and token arrival times (same clock)."""

    def __init__(self, start_s, token_times_s, end_s, prompt_tokens, output_tokens,
                 expected_output_tokens=-1):
        self.start_s = start_s
        self.token_times_s = list(token_times_s)
        self.end_s = end_s
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens
        self.expected_output_tokens = expected_output_tokens

    @property
    def ttft_s(self):
        return self.token_times_s[0] - self.start_s

    @property
    def e2e_s(self):
        return self.end_s - self.start_s

    @property
    def itl_s(self):
        t = self.token_times_s
        return [b - a for a, b in zip(t, t[1:])]

    @property
    def tpot_s(self):
        if self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)


def percentile_key(p):
    return "p%g" % p


def distribution(values, percentiles=DEFAULT_PERCENTILES):
    if len(values) == 0:
        return {"count": 0, "mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0, "median": 0.0}
    a = np.asarray(values, dtype=np.float64)
    d = {"count": int(a.size), "mean": float(a.mean()), "std": float(a.std()),
         "min": float(a.min()), "max": float(a.max()), "median": float(np.percentile(a, 50))}
    for p in percentiles:
        d[percentile_key(p)] = float(np.percentile(a, p))
    return d


def max_overlap(samples):
    events = []
    for s in samples:
        events.append((s.start_s, 1))
        events.append((s.end_s, -1))
    events.sort()
    cur = best = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


def metrics(samples, duration_s, percentiles=DEFAULT_PERCENTILES):
    inp = sum(s.prompt_tokens for s in samples)
    out = sum(s.output_tokens for s in samples)
    ms = lambda xs: [x * 1e3 for x in xs]
    return {
        "duration_s": duration_s,
        "num_requests": len(samples),
        "completed": len(samples),
        "failed": 0,
        "total_input_tokens": inp,
        "total_output_tokens": out,
        "request_throughput": len(samples) / duration_s,
        "input_throughput": inp / duration_s,
        "output_throughput": out / duration_s,
        "total_token_throughput": (inp + out) / duration_s,
        "ttft_ms": distribution(ms([s.ttft_s for s in samples]), percentiles),
        "tpot_ms": distribution(ms([s.tpot_s for s in samples if s.tpot_s is not None]),
                                percentiles),
        "itl_ms": distribution(ms([g for s in samples for g in s.itl_s]), percentiles),
        "e2e_ms": distribution(ms([s.e2e_s for s in samples]), percentiles),
        "max_concurrency_observed": max_overlap(samples),
    }


def token_check(samples):
    return {
        "checked": len(samples),
        "prompt_mismatches": 0,
        "output_mismatches": sum(1 for s in samples if s.expected_output_tokens >= 0
                                 and s.output_tokens != s.expected_output_tokens),
        "usage_missing": 0,
    }


def samples_json(samples, include_itl=False):
    out = []
    for s in samples:
        o = {"start_s": s.start_s, "ok": True, "ttft_ms": s.ttft_s * 1e3,
             "e2e_ms": s.e2e_s * 1e3, "prompt_tokens": s.prompt_tokens,
             "output_tokens": s.output_tokens, "chunks": len(s.token_times_s)}
        if s.tpot_s is not None:
            o["tpot_ms"] = s.tpot_s * 1e3
        if include_itl:
            o["itl_ms"] = [g * 1e3 for g in s.itl_s]
        out.append(o)
    return out


def environment():
    env = {"kernel": f"{platform.system()} {platform.release()}", "arch": platform.machine(),
           "num_cpus": os.cpu_count()}
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                env["os"] = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                env["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                env["memory_bytes"] = int(line.split()[1]) * 1024
    except OSError:
        pass
    gpus = []
    try:
        import torch
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append({"name": p.name, "memory_bytes": int(p.total_memory),
                         "driver_version": torch.version.cuda or ""})
    except Exception:  # no torch or no GPU: the environment says so by an empty list
        pass
    env["gpus"] = gpus
    return env


def new_result(kind, label, tool):
    return {
        "schema": SCHEMA,
        "kind": kind,
        "label": label,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "tool": {"name": tool},
        "environment": environment(),
    }
