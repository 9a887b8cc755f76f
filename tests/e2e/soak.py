"""Soak test for `kite serve`: minutes of mixed load on the CPU, then proof that nothing stayed.

Clients (raw asyncio sockets, so the load measures kite rather than a Python HTTP stack) run a
random mix: whole streaming and non-streaming completions, streams the client leaves after a
few events (a reset, as a killed client), non-streaming requests the client leaves before the
answer, requests cut off in the middle of their body, malformed requests (bad JSON, bad values,
garbage HTTP, a wrong method), /tokenize, and every `--burst-every` seconds a burst of
concurrent streams. After a warm-up of the same mix the server's idle RSS and open descriptors
are the baseline; after the soak the server must come back to idle:

  * /metrics: 0 running, 0 waiting, 0 KV blocks used, 0 API requests in flight;
  * RSS (/proc/<pid>/status VmRSS) at most --rss-bound-mib above the baseline;
  * open descriptors (/proc/<pid>/fd) at most 4 above the baseline;
  * every request ended as its kind must (a whole request with its tokens, a malformed one
    with a 4xx JSON error, never a 5xx other than a 503 admission refusal);
  * SIGTERM ends the server with status 0.

Usage: scripts/soak.sh [--minutes 30] [--json out.json]   (KITE_BIN picks the binary)
tests/e2e/test_soak.py runs a 2-minute version in CI."""

import argparse
import asyncio
import json
import os
import random
import sys
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kite_server import TINY, KiteServer  # noqa: E402

PROMPTS = ["Once upon a time", "The little dog", "Tom and Sue went to the park", "One day, a bird",
           "Lily had a red ball. She", "The sun was hot and"]
# kind -> weight of the random mix.
MIX = {
    "stream": 30, "whole": 20, "stream_leave": 15, "whole_leave": 6, "cut_body": 5,
    "bad_json": 5, "bad_value": 6, "bad_http": 3, "bad_method": 2, "tokenize": 8,
}
FD_SLACK = 4


def request_bytes(body, path="/v1/completions", method="POST"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode() + data


async def read_head(reader):
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed before a status line")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers


async def read_body(reader, headers):
    if headers.get("transfer-encoding") == "chunked":
        out = b""
        while True:
            size = int((await reader.readline()).strip(), 16)
            if size == 0:
                await reader.readline()
                return out
            out += await reader.readexactly(size)
            await reader.readexactly(2)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read()


async def sse_events(reader):
    """Yields the `data:` payloads of a chunked SSE body."""
    buf = b""
    while True:
        size = int((await reader.readline()).strip(), 16)
        if size == 0:
            await reader.readline()
            return
        buf += await reader.readexactly(size)
        await reader.readexactly(2)
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    yield line[6:].decode()


class Soak:
    def __init__(self, server, seed, rng_mix=MIX):
        self.server = server
        self.port = server.port
        self.rng = random.Random(seed)
        self.kinds = list(rng_mix)
        self.weights = [rng_mix[k] for k in self.kinds]
        self.outcomes = Counter()  # (kind, outcome) -> count
        self.latencies = []        # seconds, whole requests that completed
        self.failures = []         # descriptions of wrong answers

    def fail(self, kind, what):
        self.outcomes[(kind, "WRONG")] += 1
        if len(self.failures) < 50:
            self.failures.append(f"{kind}: {what}")

    async def one(self, kind):
        rng = self.rng
        max_tokens = rng.randint(4, 48)
        prompt = rng.choice(PROMPTS)
        t0 = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            if kind in ("stream", "stream_leave"):
                writer.write(request_bytes({
                    "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True,
                    "temperature": 0.8, "stream": True,
                    "stream_options": {"include_usage": True}}))
                await writer.drain()
                status, headers = await read_head(reader)
                if status == 503:
                    await read_body(reader, headers)
                    self.outcomes[(kind, "503")] += 1
                    return
                if status != 200:
                    return self.fail(kind, f"status {status}")
                leave_after = rng.randint(1, 3) if kind == "stream_leave" else None
                seen, text_events, usage, done = 0, 0, None, False
                async for data in sse_events(reader):
                    seen += 1
                    if leave_after is not None and seen >= leave_after:
                        writer.transport.abort()
                        self.outcomes[(kind, "left")] += 1
                        return
                    if data == "[DONE]":
                        done = True
                        continue
                    chunk = json.loads(data)
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    text_events += len(chunk["choices"])
                if leave_after is not None:  # fewer events than the client meant to wait for
                    self.outcomes[(kind, "ended first")] += 1
                    return
                if not done or not usage or usage["completion_tokens"] != max_tokens:
                    return self.fail(kind, f"done={done} usage={usage} want {max_tokens}")
                self.latencies.append(time.monotonic() - t0)
                self.outcomes[(kind, "200")] += 1
            elif kind == "whole":
                writer.write(request_bytes({"prompt": prompt, "max_tokens": max_tokens,
                                            "ignore_eos": True, "temperature": 0.8}))
                await writer.drain()
                status, headers = await read_head(reader)
                body = await read_body(reader, headers)
                if status == 503:
                    self.outcomes[(kind, "503")] += 1
                    return
                if status != 200:
                    return self.fail(kind, f"status {status}: {body[:200]!r}")
                usage = json.loads(body)["usage"]
                if usage["completion_tokens"] != max_tokens:
                    return self.fail(kind, f"usage {usage}, want {max_tokens}")
                self.latencies.append(time.monotonic() - t0)
                self.outcomes[(kind, "200")] += 1
            elif kind == "whole_leave":
                writer.write(request_bytes({"prompt": prompt, "max_tokens": 400,
                                            "ignore_eos": True}))
                await writer.drain()
                await asyncio.sleep(rng.uniform(0.0, 0.2))
                writer.transport.abort()
                self.outcomes[(kind, "left")] += 1
            elif kind == "cut_body":
                full = request_bytes({"prompt": prompt, "max_tokens": max_tokens})
                writer.write(full[:rng.randint(10, len(full) - 1)])
                await writer.drain()
                writer.transport.abort()
                self.outcomes[(kind, "left")] += 1
            elif kind in ("bad_json", "bad_value", "bad_http", "bad_method"):
                if kind == "bad_json":
                    raw = request_bytes(rng.choice([b"{", b"[1,2", b'{"prompt": "a", }', b"\xff\xfe",
                                                    b'{"prompt": ' + b"[" * 2000]))
                elif kind == "bad_value":
                    raw = request_bytes(rng.choice([
                        {"prompt": prompt, "temperature": -1},
                        {"prompt": prompt, "max_tokens": -5},
                        {"prompt": prompt, "top_p": 7},
                        {"prompt": prompt, "n": 0},
                        {"prompt": prompt, "logit_bias": {"x": 1}},
                        {"max_tokens": 3},
                        {"prompt": prompt, "temperature": 1e300},
                    ]))
                elif kind == "bad_http":
                    raw = rng.choice([b"GARBAGE\r\n\r\n", b"POST /v1/completions HTTP/9.9\r\n\r\n",
                                      b"POST /v1/completions HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                                      b"POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: gzip\r\n"
                                      b"Content-Length: 2\r\n\r\n{}"])
                else:
                    raw = request_bytes(b"", path="/v1/completions", method="DELETE")
                writer.write(raw)
                await writer.drain()
                status, headers = await read_head(reader)
                body = await read_body(reader, headers)
                if not 400 <= status < 500 and status not in (501, 505):
                    return self.fail(kind, f"status {status} for {raw[:80]!r}")
                if status < 500 and kind != "bad_http":
                    err = json.loads(body).get("error")  # OpenAI-style error object
                    if not err or "message" not in err:
                        return self.fail(kind, f"no error object: {body[:200]!r}")
                self.outcomes[(kind, str(status))] += 1
            elif kind == "tokenize":
                writer.write(request_bytes({"prompt": prompt}, path="/tokenize"))
                await writer.drain()
                status, headers = await read_head(reader)
                body = await read_body(reader, headers)
                if status != 200 or not json.loads(body).get("tokens"):
                    return self.fail(kind, f"status {status}: {body[:200]!r}")
                self.outcomes[(kind, "200")] += 1
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            if kind in ("whole_leave", "cut_body", "stream_leave"):
                self.outcomes[(kind, "left")] += 1
            else:
                self.fail(kind, f"connection error {e!r}")
        finally:
            writer.close()

    async def client(self, deadline):
        while time.monotonic() < deadline:
            kind = self.rng.choices(self.kinds, self.weights)[0]
            await self.one(kind)

    async def bursts(self, deadline, every, size):
        while True:
            await asyncio.sleep(every)
            if time.monotonic() >= deadline:
                return
            await asyncio.gather(*(self.one("stream") for _ in range(size)))
            self.outcomes[("burst", "done")] += 1

    async def run(self, seconds, clients, burst_every, burst_size):
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(self.client(deadline) for _ in range(clients)),
                             self.bursts(deadline, burst_every, burst_size))


class Sampler:
    """Samples the server's RSS and descriptor count every 0.25 s; keeps the peaks."""

    def __init__(self, server):
        self.server = server
        self.peak_rss = 0
        self.peak_fds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self.server.rss_kib())
            self.peak_fds = max(self.peak_fds, fd_count(self.server))
            self._stop.wait(0.25)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def fd_count(server):
    return len(os.listdir(f"/proc/{server.proc.pid}/fd"))


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def soak(seconds, warmup_seconds=20, clients=12, burst_every=20.0, burst_size=64,
         rss_bound_mib=64, seed=0, server_args=(), log_dir=None, check_rss=True):
    """Runs the soak against a fresh `kite serve` of the tiny model; returns the summary dict
    (with "problems": the failed checks, empty when it passed)."""
    server = KiteServer(TINY, "--kv-cache-memory", "64MiB", "--max-num-seqs", "64",
                        *server_args, log_dir=log_dir, name="soak").start()
    problems = []
    try:
        warm = Soak(server, seed + 1)
        asyncio.run(warm.run(warmup_seconds, clients, max(1.0, warmup_seconds / 2), burst_size))
        server.wait_idle(60)
        rss_base, fds_base = server.rss_kib(), fd_count(server)
        before = server.metrics()

        s = Soak(server, seed)
        t0 = time.monotonic()
        with Sampler(server) as sampler:
            asyncio.run(s.run(seconds, clients, burst_every, burst_size))
        wall = time.monotonic() - t0
        m = server.wait_idle(60)
        rss_after, fds_after = server.rss_kib(), fd_count(server)

        for name in ("kite:num_requests_running", "kite:num_requests_waiting",
                     "kite:kv_cache_blocks_used", "kite:api_requests_in_flight"):
            if m[name] != 0:
                problems.append(f"{name} is {m[name]:g} after the soak")
        if check_rss and rss_after - rss_base > rss_bound_mib * 1024:
            problems.append(f"RSS {rss_after // 1024} MiB is over {rss_bound_mib} MiB above its "
                            f"baseline {rss_base // 1024} MiB")
        if fds_after > fds_base + FD_SLACK:
            problems.append(f"{fds_after} descriptors open, baseline {fds_base}")
        if s.failures:
            problems.append(f"{sum(v for (k, o), v in s.outcomes.items() if o == 'WRONG')} wrong "
                            f"answers, e.g. " + "; ".join(s.failures[:5]))

        by_kind = {}
        for (kind, outcome), n in sorted(s.outcomes.items()):
            by_kind.setdefault(kind, {})[outcome] = n
        lat = s.latencies
        summary = {
            "seconds": round(wall, 1), "clients": clients, "burst_every_s": burst_every,
            "burst_size": burst_size,
            "requests": sum(n for (k, _), n in s.outcomes.items() if k != "burst"),
            "outcomes": by_kind,
            "latency_s": {"count": len(lat), "p50": round(percentile(lat, 50), 4),
                          "p99": round(percentile(lat, 99), 4),
                          "max": round(max(lat), 4) if lat else None},
            "rss_mib": {"baseline": round(rss_base / 1024, 1),
                        "peak": round(sampler.peak_rss / 1024, 1),
                        "after": round(rss_after / 1024, 1), "bound_above_baseline": rss_bound_mib},
            "fds": {"baseline": fds_base, "peak": sampler.peak_fds, "after": fds_after},
            "engine": {
                "generation_tokens": m["kite:generation_tokens_total"]
                - before["kite:generation_tokens_total"],
                "aborted": m["kite:engine_requests_aborted_total"]
                - before["kite:engine_requests_aborted_total"],
                "finished": m["kite:engine_requests_finished_total"]
                - before["kite:engine_requests_finished_total"]},
            "after": {k: m[k] for k in ("kite:num_requests_running", "kite:num_requests_waiting",
                                        "kite:kv_cache_blocks_used",
                                        "kite:api_requests_in_flight")},
        }
    finally:
        code = server.stop()
    if code != 0:
        problems.append(f"kite serve exited with status {code}")
    summary["exit_status"] = code
    summary["problems"] = problems
    return summary


def print_summary(s, out=sys.stdout):
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"soak: {s['seconds']} s, {s['clients']} clients, a burst of {s['burst_size']} streams "
      f"every {s['burst_every_s']} s, {s['requests']} requests")
    p("requests by kind and outcome:")
    for kind, outcomes in s["outcomes"].items():
        p(f"  {kind:<13} " + ", ".join(f"{o}: {n}" for o, n in outcomes.items()))
    lat = s["latency_s"]
    p(f"latency of whole requests (n={lat['count']}): p50 {lat['p50'] * 1000:.1f} ms, "
      f"p99 {lat['p99'] * 1000:.1f} ms, max {(lat['max'] or 0) * 1000:.1f} ms")
    r, f, e = s["rss_mib"], s["fds"], s["engine"]
    p(f"RSS: baseline {r['baseline']} MiB, peak {r['peak']} MiB, after {r['after']} MiB "
      f"(bound: baseline + {r['bound_above_baseline']} MiB)")
    p(f"descriptors: baseline {f['baseline']}, peak {f['peak']}, after {f['after']}")
    p(f"engine: {e['generation_tokens']:.0f} tokens generated, {e['finished']:.0f} requests "
      f"finished, {e['aborted']:.0f} aborted")
    p("after: " + ", ".join(f"{k} {v:g}" for k, v in s["after"].items()))
    p(f"exit status {s['exit_status']}; " +
      ("PASS" if not s["problems"] else "FAIL:\n  " + "\n  ".join(s["problems"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--warmup-seconds", type=float, default=30)
    ap.add_argument("--clients", type=int, default=12)
    ap.add_argument("--burst-every", type=float, default=20)
    ap.add_argument("--burst-size", type=int, default=64)
    ap.add_argument("--rss-bound-mib", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the summary here")
    ap.add_argument("--log-dir", help="where the server's log goes (default /tmp)")
    args = ap.parse_args()
    s = soak(args.minutes * 60, args.warmup_seconds, args.clients, args.burst_every,
             args.burst_size, args.rss_bound_mib, args.seed, log_dir=args.log_dir)
    print_summary(s)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(s, f, indent=2)
    return 1 if s["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
