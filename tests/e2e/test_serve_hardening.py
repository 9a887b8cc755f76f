"""`kite serve` against hostile input (docs/serving.md, "Hostile input"): each case answers
with the documented status and the server keeps serving everyone else."""

import json
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
from openai import OpenAI

from kite_server import KITE, TINY, KiteServer, free_port, http


def error_of(status, body, want_status):
    assert status == want_status, body
    return json.loads(body)["error"]


@pytest.mark.parametrize("field,value", [
    ("temperature", 1e300),         # inf as the sampler's float
    ("top_p", 1e-50),               # 0 as a float
    ("repetition_penalty", 1e-50),  # 0 as a float: a division by zero
    ("repetition_penalty", 1e39),   # inf as a float
])
def test_sampling_values_are_checked_as_floats(tiny_server, field, value):
    # A well-formed request runs alongside; it must finish whatever the bad one does.
    client = OpenAI(base_url=tiny_server.url + "/v1", api_key="x")
    good = {}
    t = threading.Thread(target=lambda: good.update(r=client.completions.create(
        model="tiny", prompt="Once upon a time", max_tokens=16, temperature=0.5)))
    t.start()
    s, _, body = tiny_server.post("/v1/completions",
                                  {"model": "tiny", "prompt": ["Once", "Lily"], field: value,
                                   "max_tokens": 16})
    t.join()
    err = error_of(s, body, 400)
    assert field in err["message"] and "float" in err["message"]
    assert good["r"].choices[0].finish_reason == "length"
    s, _, _ = tiny_server.post("/v1/completions", {"model": "tiny", "prompt": "Once",
                                                   "max_tokens": 2})
    assert s == 200


SPIN_TEMPLATE = "{{ '' * 9223372036854775807 }}{{ messages[0].content }}"
WRAP_TEMPLATE = "{{ 'x'.center(4611686018427387904) }}"
SCAN_TEMPLATE = ("{% set s = 'a' * 30000000 %}{% for i in range(100000) %}{{ 'b' in s }}"
                 "{% endfor %}")
MESSAGES = [{"role": "user", "content": "Hello"}]


def test_request_chat_template_is_refused_by_default(tiny_server):
    for path, body in [
            ("/tokenize", {"messages": MESSAGES, "chat_template": SPIN_TEMPLATE}),
            ("/v1/chat/completions", {"model": "tiny", "messages": MESSAGES,
                                      "chat_template": SPIN_TEMPLATE, "max_tokens": 1})]:
        s, _, body = tiny_server.post(path, body, timeout=10)
        err = error_of(s, body, 400)
        assert err["param"] == "chat_template"
        assert "--trust-request-chat-template" in err["message"]


@pytest.fixture(scope="module")
def trusting_server(tmp_path_factory):
    server = KiteServer(TINY, "--kv-cache-memory", "32MiB", "--served-model-name", "tiny",
                        "--trust-request-chat-template", "--api-key", "secret",
                        log_dir=str(tmp_path_factory.mktemp("trusting-log")),
                        name="trusting").start()
    yield server
    assert server.stop() == 0, server.log()[-4000:]


AUTH = {"Authorization": "Bearer secret"}


def test_tokenize_and_detokenize_need_the_api_key(trusting_server):
    for path, body in [("/tokenize", {"prompt": "Once"}), ("/detokenize", {"tokens": [1, 2]})]:
        s, h, b = trusting_server.post(path, body)
        assert error_of(s, b, 401)["code"] == "invalid_api_key"
        s, _, b = trusting_server.post(path, body, headers=AUTH)
        assert s == 200, b
    s, _, _ = trusting_server.get("/health")  # probes stay open
    assert s == 200


@pytest.mark.parametrize("template,status", [
    (SPIN_TEMPLATE, 200),  # repeating '' is '' at once
    (WRAP_TEMPLATE, 400),  # 2^62 code points of 4 bytes: the size check must not wrap to 0
    (SCAN_TEMPLATE, 400),  # 100,000 scans of 30 MB: counted against the work limit
], ids=["repeat-empty", "width-wraps", "string-scans"])
def test_hostile_templates_are_bounded(trusting_server, template, status):
    s, _, body = trusting_server.post(
        "/tokenize", {"messages": MESSAGES, "chat_template": template}, headers=AUTH, timeout=30)
    assert s == status, body
    if status == 400:
        err = json.loads(body)["error"]
        assert "limit" in err["message"] and err["code"] == "invalid_value"
    s, _, _ = trusting_server.get("/health", timeout=5)
    assert s == 200


# ---- the process -------------------------------------------------------------------------------

def test_a_model_that_cannot_load_exits_nonzero(tmp_path):
    model = tmp_path / "broken"
    shutil.copytree(TINY, model)
    (model / "config.json").write_text("{ not json")
    # A missing path fails at once, which raced the shutdown into exit status 0 (or an abort).
    for path in (str(model), str(tmp_path / "missing")):
        server = KiteServer(path, log_dir=str(tmp_path), name="broken").start(wait=False)
        assert server.proc.wait(60) == 1, server.log()
        assert "cannot load the model" in server.log()


def test_a_closed_stdout_does_not_kill_the_server(tmp_path):
    port = free_port()
    proc = subprocess.Popen([KITE, "serve", TINY, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if http("GET", url + "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        proc.stdout.close()  # the log reader goes away (`kite serve | head`)
        for _ in range(3):  # each request logs a line into the dead pipe
            s, _, _ = http("POST", url + "/v1/completions", {"prompt": "Once", "max_tokens": 2})
            assert s == 200
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for(cond, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_a_second_signal_during_the_drain_exits_at_once(tmp_path):
    server = KiteServer(TINY, "--shutdown-timeout", "120", "--max-num-seqs", "1",
                        log_dir=str(tmp_path), name="twice").start()
    client = OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)

    def stream():
        try:
            for _ in client.completions.create(model="tinystories-656k", prompt="Once",
                                               max_tokens=480, stream=True,
                                               extra_body={"ignore_eos": True}):
                pass
        except Exception:  # noqa: BLE001 - the server goes away mid-stream
            pass

    threads = [threading.Thread(target=stream) for _ in range(16)]  # minutes of work, 1 at a time
    for t in threads:
        t.start()
    assert wait_for(lambda: server.metrics()["kite:generation_tokens_total"] > 0)
    server.proc.send_signal(signal.SIGTERM)
    assert wait_for(lambda: "shutting down" in server.log())
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(30) == 128 + signal.SIGINT, server.log()[-2000:]
    assert "exiting now" in server.log()
    for t in threads:
        t.join(30)


def test_the_shutdown_timeout_is_a_hard_deadline(tmp_path):
    # A preparation worker is busy in add_request tokenizing 24 MB (~15 s here), a stage that
    # cannot stop half-way; the drain cannot end it.
    server = KiteServer(TINY, "--shutdown-timeout", "0", "--http-threads", "1",
                        "--max-request-body-bytes", str(64 << 20), log_dir=str(tmp_path),
                        name="deadline").start()
    text = "Once upon a time, Lily saw a big red ball. " * (24 * 1024 * 1024 // 44)
    def complete():
        try:
            server.post("/v1/completions", {"model": "tinystories-656k", "prompt": text,
                                            "max_tokens": 1}, timeout=120)
        except Exception:  # noqa: BLE001 - the process ends mid-answer
            pass

    t = threading.Thread(target=complete, daemon=True)
    t.start()

    # Parsing (the first job) is done and add_request (the second) runs on a preparation
    # worker; the HTTP thread stays free to answer.
    assert wait_for(lambda: (m := server.metrics())["kite:prep_completed_total"] == 1
                    and m["kite:prep_in_flight"] == 1)
    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(60) == 1, server.log()[-2000:]
    assert "shutdown deadline passed" in server.log()
    assert time.monotonic() - t0 < 10


# ---- request preparation off the HTTP threads -----------------------------------------------------

def test_heavy_preparations_leave_the_http_thread_free(tmp_path):
    # One HTTP thread, two preparation workers, a queue of one. Heavy preparations (8 MB
    # prompts to tokenize, seconds each here) hold the workers; the HTTP thread keeps answering,
    # a full queue gets 503 + Retry-After at once, and the queued request is served later. The
    # preparation deadline is far off: this test is about queueing, and a slow machine (or a
    # sanitizer build, ~10x slower) must not turn the queued request into a deadline 503.
    server = KiteServer(TINY, "--http-threads", "1", "--prep-workers", "2", "--prep-queue", "1",
                        "--prep-timeout-s", "3600", "--kv-cache-memory", "32MiB",
                        log_dir=str(tmp_path), name="prep").start()
    heavy_text = "Once upon a time, Lily saw a big red ball. " * (8 * 1024 * 1024 // 44)
    results = {}

    def post(key, path, body):
        try:
            results[key] = server.post(path, body, timeout=300)
        except Exception as e:  # noqa: BLE001 - reported by the assertion on results
            results[key] = e

    def start(key, path, body):
        t = threading.Thread(target=post, args=(key, path, body), daemon=True)
        t.start()
        return t

    small = {"model": "tinystories-656k", "prompt": "Once", "max_tokens": 2}
    try:
        threads = [start("heavy0", "/tokenize", {"prompt": heavy_text})]
        assert wait_for(lambda: server.metrics()["kite:prep_in_flight"] == 1)
        # One worker busy: /health, /metrics and a small completion are answered meanwhile.
        s, _, _ = server.get("/health", timeout=60)
        assert s == 200
        s, _, body = server.post("/v1/completions", small, timeout=60)
        assert s == 200, body
        threads.append(start("heavy1", "/tokenize", {"prompt": heavy_text}))
        assert wait_for(lambda: server.metrics()["kite:prep_in_flight"] == 2)
        threads.append(start("queued", "/v1/completions", small))
        assert wait_for(lambda: server.metrics()["kite:prep_queued"] == 1)
        s, h, body = server.post("/v1/completions", small, timeout=60)
        err = error_of(s, body, 503)
        assert h["Retry-After"] == "1" and err["code"] == "service_unavailable"
        assert "--prep-queue" in err["message"]
        s, _, _ = server.get("/health", timeout=60)
        assert s == 200
        for t in threads:
            t.join(300)
        assert results["queued"][0] == 200, results["queued"]
        for key in ("heavy0", "heavy1"):
            # 8 MB is more than max_model_len tokens: refused once tokenized
            assert results[key][0] == 400, results[key]
        m = server.metrics()
        assert m["kite:prep_rejected_total"] == 1
        assert m["kite:prep_in_flight"] == 0 and m["kite:prep_queued"] == 0
    finally:
        assert server.stop() == 0, server.log()[-4000:]


def test_a_client_that_leaves_takes_its_queued_preparation_out(tmp_path):
    # One worker, busy with a heavy /tokenize; a completion waits in the queue and its client
    # leaves. The job never runs (the pool completes only the heavy one) and the request counts
    # as 499.
    server = KiteServer(TINY, "--prep-workers", "1", "--kv-cache-memory", "32MiB",
                        log_dir=str(tmp_path), name="prep-leave").start()
    try:
        text = "Once upon a time, Lily saw a big red ball. " * (4 * 1024 * 1024 // 44)
        heavy = threading.Thread(target=lambda: server.post("/tokenize", {"prompt": text},
                                                            timeout=300), daemon=True)
        heavy.start()
        assert wait_for(lambda: server.metrics()["kite:prep_in_flight"] == 1)
        body = json.dumps({"model": "tinystories-656k", "prompt": "Once",
                           "max_tokens": 2}).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            assert wait_for(lambda: server.metrics()["kite:prep_queued"] == 1)
        key = 'kite:http_requests_total{code="499",handler="/v1/completions"}'
        assert wait_for(lambda: server.metrics().get(key) == 1)
        heavy.join(300)
        # The worker skips the dropped job once free.
        assert wait_for(lambda: (m := server.metrics())["kite:prep_queued"] == 0
                        and m["kite:prep_in_flight"] == 0)
        assert server.metrics()["kite:prep_completed_total"] == 1  # the heavy one alone
    finally:
        assert server.stop() == 0, server.log()[-4000:]


def test_a_preparation_past_its_deadline_gets_503(tmp_path):
    # --prep-timeout-s 0.2 and a tokenization of seconds: the request is answered 503 (the
    # work that ran is dropped), and the server serves the next one.
    server = KiteServer(TINY, "--prep-timeout-s", "0.2", "--kv-cache-memory", "32MiB",
                        log_dir=str(tmp_path), name="prep-deadline").start()
    try:
        text = "Once upon a time, Lily saw a big red ball. " * (4 * 1024 * 1024 // 44)
        s, h, body = server.post("/tokenize", {"prompt": text}, timeout=300)
        err = error_of(s, body, 503)
        assert h["Retry-After"] == "1" and "--prep-timeout-s" in err["message"]
        assert server.metrics()["kite:prep_timeouts_total"] == 1
        s, _, _ = server.post("/v1/completions", {"model": "tinystories-656k", "prompt": "Once",
                                                  "max_tokens": 2}, timeout=60)
        assert s == 200
    finally:
        assert server.stop() == 0, server.log()[-4000:]


# ---- admission ---------------------------------------------------------------------------------

def test_prompts_times_n_is_capped_by_default(tiny_server):
    s, _, body = tiny_server.post("/v1/completions", {"model": "tiny", "prompt": ["a", "b", "c"],
                                                      "n": 100, "max_tokens": 1})
    err = error_of(s, body, 400)
    assert err["param"] == "n" and "--max-choices-per-request" in err["message"]


def test_queued_tokens_beyond_the_cap_get_503_with_retry_after(tmp_path):
    server = KiteServer(TINY, "--max-queued-tokens", "64", log_dir=str(tmp_path),
                        name="queued").start()
    try:
        client = OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        prompt = list(range(1, 41))  # 40 tokens
        stream = client.completions.create(model="tinystories-656k", prompt=prompt,
                                           max_tokens=480, stream=True,
                                           extra_body={"ignore_eos": True})
        next(iter(stream))  # the first request is live and holds 40 tokens
        s, h, body = server.post("/v1/completions", {"prompt": prompt, "max_tokens": 1})
        err = error_of(s, body, 503)
        assert "max_queued_tokens" in err["message"] and h["Retry-After"] == "1"
        s, _, body = server.post("/v1/completions", {"prompt": list(range(1, 80)),
                                                     "max_tokens": 1})
        assert "at all" in error_of(s, body, 400)["message"]  # never fits: no retry helps
        stream.response.close()
        server.wait_idle()
        s, _, _ = server.post("/v1/completions", {"prompt": prompt, "max_tokens": 1})
        assert s == 200
    finally:
        assert server.stop() == 0, server.log()[-4000:]


def test_default_limits_are_on():
    out = subprocess.run([KITE, "serve", "--help"], capture_output=True, text=True).stdout
    for flag in ("--max-queued-tokens INT=-1", "--max-waiting-requests INT=1024",
                 "--max-choices-per-request INT=256", "--max-connections UINT=4096",
                 "--keep-alive-timeout FLOAT=5"):
        assert flag in out, flag


# ---- connections -------------------------------------------------------------------------------

def raw(port, data, timeout=10, read_all=True):
    """Sends bytes on a fresh connection; returns what came back until the server closed (or
    the first read when read_all is False)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if not read_all:
                break
        return out


BODY = b'{"prompt": "Once", "max_tokens": 1}'


@pytest.mark.parametrize("headers,status", [
    (b"Transfer-Encoding: chunked, identity\r\nContent-Length: %d\r\n", b"400"),
    (b"Transfer-Encoding: gzip\r\n", b"501"),
    (b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n", b"400"),
], ids=["chunked-not-last", "gzip", "te-and-cl"])
def test_transfer_encoding_is_strict(tiny_server, headers, status):
    if b"%d" in headers:
        headers = headers % len(BODY)
    reply = raw(tiny_server.port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\n" + headers + b"\r\n" + BODY)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split()[1] == status, reply
    assert b"connection: close" in head.lower()
    json.loads(body)


def test_expect_100_continue(tiny_server):
    with socket.create_connection(("127.0.0.1", tiny_server.port), timeout=10) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(BODY))
        assert s.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n")  # before any body byte
        s.sendall(BODY)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")


def test_error_bodies_are_valid_utf8(tiny_server):
    reply = raw(tiny_server.port, b"GET /\xff\xfe%ff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split()[1] == b"404"
    assert "\ufffd" in body.decode("utf-8")  # strict decoding: raises on invalid bytes


def test_connections_are_capped_and_idle_ones_time_out(tmp_path):
    server = KiteServer(TINY, "--max-connections", "4", "--keep-alive-timeout", "0.5",
                        log_dir=str(tmp_path), name="conns").start()
    try:
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
        probe = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        replies = []
        # The four are registered as the server accepts them; then a fifth is refused.
        refused = wait_for(lambda: replies.append(raw(server.port, probe)) or
                           replies[-1].startswith(b"HTTP/1.1 503"))
        assert refused, (f"{len(replies)} probes, none refused; the last: {replies[-1][:300]!r}; "
                         f"log: {server.log()[-3000:]}")
        assert b"Retry-After: 1" in replies[-1] and b"too many open connections" in replies[-1]
        # A keep-alive connection that sends nothing after its first request is closed.
        k = held[0]
        k.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        k.settimeout(10)
        first = k.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        assert k.recv(65536) == b""  # closed by the server within the keep-alive timeout
        for s in held:
            s.close()
        assert wait_for(lambda: server.get("/health")[0] == 200)
    finally:
        assert server.stop() == 0, server.log()[-4000:]


# ---- privacy -----------------------------------------------------------------------------------

def test_cache_salt_keeps_tenants_prefixes_apart(tiny_server):
    prompt = [(7 * i) % 1500 + 3 for i in range(80)]  # 5 full blocks of 16

    def hits(salt):
        before = tiny_server.metrics()["kite:prefix_cache_hits_total"]
        body = {"model": "tiny", "prompt": prompt, "max_tokens": 1}
        if salt is not None:
            body["cache_salt"] = salt
        s, _, raw_body = tiny_server.post("/v1/completions", body)
        assert s == 200, raw_body
        return tiny_server.metrics()["kite:prefix_cache_hits_total"] - before

    hits("tenant-a")  # fills the cache under tenant A's salt
    assert hits("tenant-b") == 0
    assert hits(None) == 0
    assert hits("tenant-a") >= 64
    s, _, body = tiny_server.post("/v1/chat/completions", {
        "model": "tiny", "messages": MESSAGES, "cache_salt": ""})
    assert error_of(s, body, 400)["param"] == "cache_salt"


def test_metrics_aggregate_only_hides_one_requests_cache_hits(tmp_path):
    """Without a salt, a client could read from two scrapes whether its probe hit another
    tenant's cached prefix. With --metrics-aggregate-only the prefix-cache counters move only
    once 64 requests have ended since the last published snapshot."""
    server = KiteServer(TINY, "--metrics-aggregate-only", log_dir=str(tmp_path),
                        name="aggregate").start()
    try:
        prompt = [(7 * i) % 1500 + 3 for i in range(80)]  # 5 full blocks of 16

        def complete(p):
            s, _, body = server.post("/v1/completions", {"prompt": p, "max_tokens": 1})
            assert s == 200, body

        def counters():
            m = server.metrics()
            return (m["kite:prefix_cache_hits_total"], m["kite:prefix_cache_queries_total"],
                    m["kite:engine_requests_finished_total"])

        complete(prompt)  # the victim's prompt is now cached
        hits0, queries0, _ = counters()
        complete(prompt)  # the attacker's probe hits it ...
        hits1, queries1, _ = counters()
        assert (hits1, queries1) == (hits0, queries0)  # ... and /metrics does not say so
        # Once the group is full, the aggregate (with the probe's 64+ hit tokens) is published.
        group = 64
        for i in range(group):
            complete([i + 3])
        hits2, queries2, finished = counters()
        assert finished >= group + 2
        assert hits2 - hits0 >= 64 and queries2 > queries0
    finally:
        assert server.stop() == 0, server.log()[-4000:]


# ---- model files -------------------------------------------------------------------------------

def test_an_oversized_tokenizer_is_refused_before_it_is_read(tmp_path):
    model = tmp_path / "huge-tokenizer"
    shutil.copytree(TINY, model)
    with open(model / "tokenizer.json", "r+b") as f:
        f.truncate(1 << 30)  # 1 GiB, sparse: costs no disk
    server = KiteServer(str(model), log_dir=str(tmp_path), name="huge").start(wait=False)
    assert server.proc.wait(60) == 1, server.log()
    assert "over the limit of 134217728 bytes" in server.log()


def test_tokenize_output_is_capped_at_max_model_len(tiny_server):
    s, _, body = tiny_server.post("/tokenize", {"prompt": "Once upon a time. " * 400,
                                                "return_token_strs": True})
    err = error_of(s, body, 400)
    assert err["code"] == "context_length_exceeded" and err["param"] == "prompt"
    s, _, body = tiny_server.post("/tokenize", {"prompt": "Once upon a time. " * 10})
    assert s == 200 and json.loads(body)["count"] <= 512
