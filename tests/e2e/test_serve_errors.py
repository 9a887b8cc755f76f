"""`kite serve` under bad input: every case answers with the right status and an OpenAI-style
error object, and the server keeps serving (and holds no request) afterwards. Also API keys
(--api-key and KITE_API_KEY), CORS (--allowed-origins), body limits and overload
(--max-waiting-requests)."""

import asyncio
import json
import socket

import openai
import pytest
from openai import OpenAI

from kite_server import TINY, KiteServer, http


def assert_error(status, body, want_status, code=None, param=None):
    assert status == want_status, body
    doc = json.loads(body)
    assert set(doc) == {"error"}
    err = doc["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    assert err["type"] in ("invalid_request_error", "server_error")
    assert err["type"] == ("server_error" if want_status >= 500 else "invalid_request_error")
    if code is not None:
        assert err["code"] == code, err
    if param is not None:
        assert err["param"] == param, err
    return err


COMPLETION_CASES = [
    # (id, body, status, code, param)
    ("wrong type prompt", {"prompt": 5}, 400, "invalid_type", "prompt"),
    ("wrong type max_tokens", {"prompt": "a", "max_tokens": "ten"}, 400, "invalid_type",
     "max_tokens"),
    ("wrong type temperature", {"prompt": "a", "temperature": "hot"}, 400, "invalid_type",
     "temperature"),
    ("wrong type n", {"prompt": "a", "n": 1.5}, 400, "invalid_type", "n"),
    ("wrong type stream", {"prompt": "a", "stream": "yes"}, 400, "invalid_type", "stream"),
    ("wrong type stop", {"prompt": "a", "stop": [1]}, 400, "invalid_type", "stop[0]"),
    ("wrong type seed", {"prompt": "a", "seed": "x"}, 400, "invalid_type", "seed"),
    ("token id out of vocab", {"prompt": [1, 5000]}, 400, "invalid_value", "prompt[1]"),
    ("unknown field", {"prompt": "a", "foo": 1}, 400, "unknown_parameter", "foo"),
    ("unknown stream_options field",
     {"prompt": "a", "stream": True, "stream_options": {"bar": True}}, 400, "unknown_parameter",
     "stream_options.bar"),
    ("negative temperature", {"prompt": "a", "temperature": -1}, 400, "invalid_value",
     "temperature"),
    ("top_p zero", {"prompt": "a", "top_p": 0}, 400, "invalid_value", "top_p"),
    ("top_p above one", {"prompt": "a", "top_p": 1.5}, 400, "invalid_value", "top_p"),
    ("top_k below -1", {"prompt": "a", "top_k": -2}, 400, "invalid_value", "top_k"),
    ("min_p above one", {"prompt": "a", "min_p": 2}, 400, "invalid_value", "min_p"),
    ("n zero", {"prompt": "a", "n": 0}, 400, "invalid_value", "n"),
    ("max_tokens zero", {"prompt": "a", "max_tokens": 0}, 400, "invalid_value", "max_tokens"),
    ("max_tokens negative", {"prompt": "a", "max_tokens": -5}, 400, "invalid_value", "max_tokens"),
    ("logprobs too many", {"prompt": "a", "logprobs": 50}, 400, "invalid_value", "logprobs"),
    ("presence_penalty range", {"prompt": "a", "presence_penalty": 3}, 400, "invalid_value",
     "presence_penalty"),
    ("frequency_penalty range", {"prompt": "a", "frequency_penalty": -2.5}, 400, "invalid_value",
     "frequency_penalty"),
    ("repetition_penalty zero", {"prompt": "a", "repetition_penalty": 0}, 400, "invalid_value",
     "repetition_penalty"),
    ("logit_bias range", {"prompt": "a", "logit_bias": {"5": 200}}, 400, "invalid_value",
     "logit_bias"),
    ("min_tokens over max", {"prompt": "a", "max_tokens": 2, "min_tokens": 5}, 400,
     "invalid_value", "min_tokens"),
    ("stream_options without stream", {"prompt": "a", "stream_options": {"include_usage": True}},
     400, "invalid_value", "stream_options"),
    ("empty prompt string", {"prompt": ""}, 400, "invalid_value", "prompt"),
    ("empty prompt list", {"prompt": []}, 400, "invalid_value", "prompt"),
    ("empty prompt in list", {"prompt": ["a", ""]}, 400, "invalid_value", "prompt[1]"),
    ("empty token list", {"prompt": [[1, 2], []]}, 400, "invalid_value", "prompt[1]"),
    ("missing prompt", {"max_tokens": 3}, 400, "missing_required_parameter", "prompt"),
    ("prompt over max-model-len", {"prompt": [5] * 600}, 400, "context_length_exceeded",
     "prompt"),
    ("unknown model", {"model": "gpt-4", "prompt": "a"}, 404, "model_not_found", "model"),
    ("suffix unsupported", {"prompt": "a", "suffix": "b"}, 400, "unsupported_value", "suffix"),
]

CHAT_CASES = [
    ("messages not a list", {"messages": "hi"}, 400, "invalid_type", "messages"),
    ("empty messages", {"messages": []}, 400, "invalid_value", "messages"),
    ("missing messages", {}, 400, "missing_required_parameter", "messages"),
    ("bad role", {"messages": [{"role": "wizard", "content": "x"}]}, 400, "invalid_value",
     "messages[0].role"),
    ("unknown message field", {"messages": [{"role": "user", "content": "x", "mood": 1}]}, 400,
     "unknown_parameter", "messages[0].mood"),
    ("unknown field", {"messages": [{"role": "user", "content": "x"}], "foo": 1}, 400,
     "unknown_parameter", "foo"),
    ("top_logprobs without logprobs",
     {"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}, 400, "invalid_value",
     "top_logprobs"),
    ("image content", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x"}}]}]}, 400, "unsupported_value",
     None),
    ("unknown model", {"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404,
     "model_not_found", "model"),
]


@pytest.mark.parametrize("case", COMPLETION_CASES, ids=[c[0] for c in COMPLETION_CASES])
def test_bad_completion_request(tiny_server, case):
    _, body, status, code, param = case
    body = {"model": "tiny", **body}
    s, _, raw = tiny_server.post("/v1/completions", body)
    assert_error(s, raw, status, code, param)


@pytest.mark.parametrize("case", CHAT_CASES, ids=[c[0] for c in CHAT_CASES])
def test_bad_chat_request(tiny_server, case):
    _, body, status, code, param = case
    s, _, raw = tiny_server.post("/v1/chat/completions", {"model": "tiny", **body})
    assert_error(s, raw, status, code, param)


def test_chat_without_template_is_a_clear_400(tiny_server):
    # TinyStories ships no chat template.
    s, _, raw = tiny_server.post("/v1/chat/completions",
                                 {"messages": [{"role": "user", "content": "hi"}]})
    err = assert_error(s, raw, 400, "failed_precondition")
    assert "chat template" in err["message"]


@pytest.mark.parametrize("raw", [b"{", b'{"prompt": "a",}', b"[1, 2]", b"\xff\xfe", b"",
                                 b'{"prompt": "a"} trailing'])
def test_malformed_json(tiny_server, raw):
    s, _, body = tiny_server.post("/v1/completions", raw)
    err = assert_error(s, body, 400)
    assert err["code"] in ("invalid_json", "invalid_type")


def test_max_tokens_beyond_the_context_is_cut_to_it(tiny_server):
    # kite caps max_tokens at the context left (docs/serving.md); only the prompt itself is
    # refused when it does not fit.
    s, _, raw = tiny_server.post("/v1/completions", {"prompt": [5] * 500, "max_tokens": 100})
    assert s == 200, raw
    doc = json.loads(raw)
    assert doc["usage"] == {"prompt_tokens": 500, "completion_tokens": 12, "total_tokens": 512}
    assert doc["choices"][0]["finish_reason"] == "length"
    s, _, raw = tiny_server.post("/v1/completions", {"prompt": [5] * 512, "max_tokens": 1})
    assert_error(s, raw, 400, "context_length_exceeded", "prompt")


def test_openai_client_raises_typed_errors(tiny_server):
    client = OpenAI(base_url=tiny_server.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="gpt-4", prompt="a", max_tokens=2)
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="tiny", prompt="a", max_tokens=2, temperature=-1)
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="tiny", prompt="a", extra_body={"foo": 1})


def test_routing_errors(tiny_server):
    s, h, raw = tiny_server.get("/v1/completions")
    assert_error(s, raw, 405)
    assert "POST" in h["Allow"]
    s, _, raw = tiny_server.get("/v1/nothing-here")
    assert_error(s, raw, 404, "not_found")
    s, _, raw = tiny_server.get("/v1/models/not-served")
    assert_error(s, raw, 404, "model_not_found")


def test_malformed_http_and_server_survives(tiny_server):
    with socket.create_connection(("127.0.0.1", tiny_server.port), timeout=10) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        reply = sock.recv(4096).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 400"), reply
    assert '"error"' in reply
    # A body shorter than its Content-Length, then the client leaves.
    with socket.create_connection(("127.0.0.1", tiny_server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    s, _, _ = tiny_server.get("/health")
    assert s == 200
    m = tiny_server.wait_idle()
    assert m["kite:api_requests_in_flight"] == 0


@pytest.fixture(scope="module")
def policy_server(tmp_path_factory):
    """API key from KITE_API_KEY, CORS for one origin, a 64 KiB body limit."""
    server = KiteServer(TINY, "--allowed-origins", "https://chat.example.com",
                        "--max-request-body-bytes", "65536", env={"KITE_API_KEY": "env-key"},
                        log_dir=str(tmp_path_factory.mktemp("policy-log")), name="policy").start()
    yield server
    assert server.stop() == 0


def test_api_key_from_env(policy_server):
    url = policy_server.url
    body = {"prompt": "Once", "max_tokens": 2}
    s, h, raw = http("POST", url + "/v1/completions", body)
    assert_error(s, raw, 401, "invalid_api_key")
    assert h.get("WWW-Authenticate") == "Bearer"
    s, _, raw = http("POST", url + "/v1/completions", body,
                     headers={"Authorization": "Bearer wrong-key"})
    assert_error(s, raw, 401, "invalid_api_key")
    s, _, raw = http("GET", url + "/v1/models", headers={"Authorization": "Basic env-key"})
    assert_error(s, raw, 401)
    s, _, raw = http("POST", url + "/v1/completions", body,
                     headers={"Authorization": "Bearer env-key"})
    assert s == 200, raw
    # Outside /v1: health, metrics and the chat page stay open (probes and the page itself).
    assert http("GET", url + "/health")[0] == 200
    assert http("GET", url + "/metrics")[0] == 200
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=url + "/v1", api_key="nope", max_retries=0).models.list()
    assert OpenAI(base_url=url + "/v1", api_key="env-key").models.list().data[0].id


def test_api_key_flag(tmp_path):
    server = KiteServer(TINY, "--api-key", "flag-key", log_dir=str(tmp_path), name="key").start()
    try:
        s, _, raw = server.post("/v1/completions", {"prompt": "a", "max_tokens": 1})
        assert_error(s, raw, 401, "invalid_api_key")
        s, _, _ = server.post("/v1/completions", {"prompt": "a", "max_tokens": 1},
                              headers={"Authorization": "Bearer flag-key"})
        assert s == 200
    finally:
        assert server.stop() == 0


def test_oversized_body_is_413(policy_server):
    auth = {"Authorization": "Bearer env-key"}
    big = {"prompt": "x" * 70_000, "max_tokens": 1}
    s, _, raw = http("POST", policy_server.url + "/v1/completions", big, headers=auth)
    assert_error(s, raw, 413, "request_too_large")
    # Just under the limit is read (and then judged on its content).
    fits = {"prompt": "Once " * 12_000, "max_tokens": 1}
    assert len(json.dumps(fits)) < 65536
    s, _, raw = http("POST", policy_server.url + "/v1/completions", fits, headers=auth)
    assert_error(s, raw, 400, "context_length_exceeded")
    assert http("GET", policy_server.url + "/health")[0] == 200


def test_cors_preflight_and_headers(policy_server):
    url = policy_server.url + "/v1/chat/completions"
    s, h, _ = http("OPTIONS", url, headers={
        "Origin": "https://chat.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert s == 204
    assert h["Access-Control-Allow-Origin"] == "https://chat.example.com"
    assert "POST" in h["Access-Control-Allow-Methods"]
    assert "authorization" in h["Access-Control-Allow-Headers"].lower()
    # Preflight needs no API key (browsers send none); a foreign origin gets no grant.
    s, h, _ = http("OPTIONS", url, headers={"Origin": "https://evil.example.org",
                                            "Access-Control-Request-Method": "POST"})
    assert s == 204 and "Access-Control-Allow-Origin" not in h
    s, h, _ = http("POST", policy_server.url + "/v1/completions",
                   {"prompt": "Once", "max_tokens": 1},
                   headers={"Origin": "https://chat.example.com",
                            "Authorization": "Bearer env-key"})
    assert s == 200 and h["Access-Control-Allow-Origin"] == "https://chat.example.com"
    # Errors carry the CORS headers too, so a browser can read them.
    s, h, _ = http("POST", policy_server.url + "/v1/completions", {"prompt": ""},
                   headers={"Origin": "https://chat.example.com",
                            "Authorization": "Bearer env-key"})
    assert s == 400 and h["Access-Control-Allow-Origin"] == "https://chat.example.com"


async def post_raw(port, body, timeout=60):
    """One POST on its own connection; returns (status, body bytes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: " + str(len(data)).encode() +
                 b"\r\n\r\n" + data)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout)
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


def test_overload_is_503_never_a_hang(tmp_path):
    server = KiteServer(TINY, "--max-waiting-requests", "4", "--max-num-seqs", "2",
                        log_dir=str(tmp_path), name="overload").start()
    try:
        body = {"prompt": "Once upon a time", "max_tokens": 200, "ignore_eos": True}

        async def burst():
            return await asyncio.gather(*(post_raw(server.port, body) for _ in range(40)))

        results = asyncio.run(asyncio.wait_for(burst(), 120))
        statuses = [s for s, _ in results]
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.count(200) >= 2 and statuses.count(503) >= 1, statuses
        for s, payload in results:
            if s == 503:
                err = assert_error(s, payload, 503)
                assert "max_waiting_requests" in err["message"]
            else:
                assert json.loads(payload)["usage"]["completion_tokens"] == 200
        m = server.wait_idle()
        assert m["kite:num_requests_running"] == 0 and m["kite:kv_cache_blocks_used"] == 0
        assert m['kite:http_requests_total{code="503",handler="/v1/completions"}'] == \
            statuses.count(503)
    finally:
        assert server.stop() == 0
