"""A real `kite serve` subprocess for the e2e tests: start on a free loopback port, wait for
/health, read /metrics, watch RSS, stop with a signal. KITE_BIN points at the binary
(scripts/test.sh sets it)."""

import gzip
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KITE = os.environ.get("KITE_BIN", os.path.join(ROOT, "build", "bin", "kite"))
DATA = os.path.join(ROOT, "tests", "data")
TINY = os.path.join(DATA, "models", "tinystories-656k")

# Ports the tests may use; a free one is picked at random and kite retries on a clash.
PORT_RANGE = (19000, 19999)


def free_port():
    for _ in range(200):
        port = random.randint(*PORT_RANGE)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")


def http(method, url, body=None, headers=None, timeout=30, context=None):
    """One request with urllib: (status, headers, body bytes); HTTP errors are returned too.
    `context`: the ssl.SSLContext of an https URL."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def parse_metrics(text):
    """Prometheus text -> {'name{labels}': value} (labels as written; no labels: bare name)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(\S+?)(\{.*\})?\s+(\S+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


class KiteServer:
    def __init__(self, model, *args, env=None, log_dir=None, name="kite", tls_context=None):
        """tls_context: an ssl.SSLContext for a server started with --ssl-*: the URL is https
        and every helper request goes through it."""
        self.model = model
        self.tls_context = tls_context
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.pop("KITE_API_KEY", None)
        if env:
            self.env.update(env)
        self.log_dir = log_dir
        self.name = name
        self.proc = None
        self.port = None
        self.log_path = None

    @property
    def url(self):
        scheme = "https" if self.tls_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, wait=True, timeout=120):
        for attempt in range(5):
            self.port = free_port()
            log_dir = self.log_dir or "/tmp"
            self.log_path = os.path.join(log_dir, f"{self.name}-{self.port}.log")
            self._log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(
                [KITE, "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port),
                 *self.args],
                stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
            if not wait:
                return self
            if self.wait_ready(timeout):
                return self
            if self.proc.poll() is not None and "cannot listen" in self.log():
                continue  # the port was taken between the check and kite's bind
            raise RuntimeError(f"kite serve did not become ready:\n{self.log()[-4000:]}")
        raise RuntimeError("kite serve: no port could be bound")

    def log(self):
        self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _, _ = http("GET", self.url + "/health", timeout=2,
                                    context=self.tls_context)
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def get(self, path, **kw):
        kw.setdefault("context", self.tls_context)
        return http("GET", self.url + path, **kw)

    def post(self, path, body, **kw):
        kw.setdefault("context", self.tls_context)
        return http("POST", self.url + path, body, **kw)

    def metrics(self):
        status, _, body = self.get("/metrics")
        assert status == 200
        return parse_metrics(body.decode())

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def wait_idle(self, timeout=30):
        """Waits until the engine holds no request and no KV block; returns the last metrics."""
        deadline = time.monotonic() + timeout
        m = self.metrics()
        while time.monotonic() < deadline:
            if (m["kite:num_requests_running"] == 0 and m["kite:num_requests_waiting"] == 0
                    and m["kite:kv_cache_blocks_used"] == 0
                    and m["kite:api_requests_in_flight"] == 0):
                return m
            time.sleep(0.05)
            m = self.metrics()
        return m

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._log.close()


TINY_CONFIGS = {
    # A Llama-3.1 / Qwen3 model of the real family (rope scaling, q/k norm, vocabulary size) but
    # tiny layers, so dummy weights load in a moment.
    "llama3.1": ("llama-3.1-8b", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                      torch_dtype="bfloat16",
                                      tie_word_embeddings=True)),
    "qwen3": ("qwen3-0.6b", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                 max_window_layers=2)),
    # Mistral-7B's architecture with the Llama-2 SentencePiece vocabulary (32,000 tokens, byte
    # fallback) and a tool-calling template in Mistral's format (chat_templates/mistral).
    "mistral": ("mistral-7b-v0.1", dict(hidden_size=64, intermediate_size=128,
                                        num_hidden_layers=2, num_attention_heads=4,
                                        num_key_value_heads=2, head_dim=16)),
}

# Where each family's tokenizer.json comes from (tests/data/tokenizers/<dir>).
TOKENIZER_DIRS = {"llama3.1": "llama3.1", "qwen3": "qwen3", "mistral": "llama2"}


def make_chat_model_dir(family, dest, chat_template=None):
    """A model directory of `family` (llama3.1, qwen3 or mistral): a tiny config of that family, the
    family's tokenizer.json and the tokenizer_config.json carrying its chat template (or
    `chat_template`, a file of tests/data/chat_templates, which then wins). Weights come from
    --load-format dummy. Returns the directory."""
    config_dir, overrides = TINY_CONFIGS[family]
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(DATA, "configs", config_dir, "config.json")) as f:
        config = json.load(f)
    config.update(overrides)
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with gzip.open(os.path.join(DATA, "tokenizers", TOKENIZER_DIRS[family], "tokenizer.json.gz"),
                   "rb") as src, \
            open(os.path.join(dest, "tokenizer.json"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    shutil.copy(os.path.join(DATA, "chat_templates", family, "tokenizer_config.json"),
                os.path.join(dest, "tokenizer_config.json"))
    if chat_template:  # a template of tests/data/chat_templates, as chat_template.jinja
        shutil.copy(os.path.join(DATA, "chat_templates", chat_template),
                    os.path.join(dest, "chat_template.jinja"))
    return dest
