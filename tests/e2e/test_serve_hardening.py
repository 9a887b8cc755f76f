"""`kite serve` against hostile input (docs/serving.md, "Hostile input"): each case answers
with the documented status and the server keeps serving everyone else."""

import json
import threading

import pytest
from openai import OpenAI

from kite_server import TINY, KiteServer, http


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
