"""POST /v1/messages (the Anthropic Messages API) through `kite serve` with the official
`anthropic` client, on the Qwen3 chat template with tiny dummy weights (hermes tool parser,
qwen3 reasoning parser) and an API key: each answer is checked field by field, and against
/v1/chat/completions for the same conversation in OpenAI's shape (greedy, so the texts must be
equal: the translation renders the same prompt). Streams must follow Anthropic's event order
and fold into the same message. Tool use: tool_choice any / tool enforce a call whose input
validates; a tool_result answers it in the next turn. Bad input gets Anthropic-style errors."""

import json
import os
import socket

import pytest

from kite_server import KITE, KiteServer, http, make_chat_model_dir
from structured_helpers import check_valid, closing_bias

anthropic = pytest.importorskip("anthropic")
openai = pytest.importorskip("openai")
pytest.importorskip("jsonschema")

KEY = "sekrit"
WEATHER = {"name": "get_weather", "description": "Current weather in a city",
           "input_schema": {"type": "object",
                            "properties": {"unit": {"enum": ["celsius", "fahrenheit"]}},
                            "required": ["unit"], "additionalProperties": False}}
ADD = {"name": "add", "description": "Adds two small integers",
       "input_schema": {"type": "object",
                        "properties": {"a": {"enum": [1, 2, 3]}, "b": {"enum": [4, 5]}},
                        "required": ["a", "b"], "additionalProperties": False}}
NO_THINKING = {"type": "disabled"}
# The current client dropped temperature / top_p / top_k from its signature; the API (and kite)
# still take them.
T0 = {"temperature": 0}
CHAT_NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not os.path.exists(KITE):
        pytest.skip(f"no kite binary at {KITE}")
    model_dir = make_chat_model_dir("qwen3", str(tmp_path_factory.mktemp("qwen3")))
    s = KiteServer(model_dir, "--load-format", "dummy", "--max-model-len", "2048",
                   "--kv-cache-memory", "64MiB", "--seed", "1", "--served-model-name", "m",
                   "--tool-call-parser", "hermes", "--enable-auto-tool-choice",
                   "--reasoning-parser", "qwen3", "--api-key", KEY,
                   log_dir=str(tmp_path_factory.mktemp("messages-log")), name="messages").start()
    # Random weights write whitespace forever inside a forced call; kite's logit_bias extension
    # makes them close strings and objects early.
    s.bias = closing_bias(model_dir)
    yield s
    assert s.stop() == 0, s.log()[-4000:]


def client(server, key=KEY):
    return anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0, timeout=120)


def chat(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120)


def test_text_message_matches_chat_field_by_field(server):
    r = client(server).messages.create(
        model="m", max_tokens=8, extra_body=T0, system="Be brief.",
        messages=[{"role": "user", "content": "Hello there"}], thinking=NO_THINKING)
    assert r.id.startswith("msg_") and r.type == "message" and r.role == "assistant"
    assert r.model == "m"
    assert len(r.content) == 1 and r.content[0].type == "text"
    ref = chat(server).chat.completions.create(
        model="m", max_tokens=8, temperature=0,
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Hello there"}], extra_body=CHAT_NO_THINKING)
    assert r.content[0].text == ref.choices[0].message.content
    assert ref.choices[0].finish_reason == "length"
    assert r.stop_reason == "max_tokens" and r.stop_sequence is None
    assert r.usage.input_tokens == ref.usage.prompt_tokens
    assert r.usage.output_tokens == ref.usage.completion_tokens == 8


def test_content_blocks_and_system_blocks_render_like_strings(server):
    c = client(server)
    a = c.messages.create(model="m", max_tokens=5, extra_body=T0,
                          system=[{"type": "text", "text": "Be brief."}],
                          messages=[{"role": "user", "content": [
                              {"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]}],
                          thinking=NO_THINKING)
    b = c.messages.create(model="m", max_tokens=5, extra_body=T0, system="Be brief.",
                          messages=[{"role": "user", "content": "Hello\nthere"}],
                          thinking=NO_THINKING)
    assert a.content[0].text == b.content[0].text
    assert a.usage.input_tokens == b.usage.input_tokens


def test_stream_event_order_and_same_message(server):
    args = dict(model="m", max_tokens=10, extra_body=T0,
                messages=[{"role": "user", "content": "Tell me a story"}], thinking=NO_THINKING)
    c = client(server)
    whole = c.messages.create(**args)
    types = []
    text = ""
    with c.messages.stream(**args) as stream:
        for event in stream:
            types.append(event.type)
            if event.type == "content_block_delta":
                assert event.index == 0 and event.delta.type == "text_delta"
                text += event.delta.text
            elif event.type == "message_start":
                assert event.message.id.startswith("msg_") and event.message.content == []
                assert event.message.usage.input_tokens == whole.usage.input_tokens
                assert event.message.stop_reason is None
        final = stream.get_final_message()
    # The client's own events ("text") interleave with the wire events; keep the wire's.
    wire = [t for t in types if t in ("message_start", "content_block_start",
                                      "content_block_delta", "content_block_stop",
                                      "message_delta", "message_stop")]
    assert wire[0] == "message_start" and wire[1] == "content_block_start"
    assert set(wire[2:-3]) == {"content_block_delta"}
    assert wire[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert text == whole.content[0].text == final.content[0].text
    assert final.stop_reason == whole.stop_reason == "max_tokens"
    assert final.usage.output_tokens == whole.usage.output_tokens == 10


def test_stop_sequences(server):
    c = client(server)
    args = dict(model="m", extra_body=T0, messages=[{"role": "user", "content": "Go on"}],
                thinking=NO_THINKING)
    text = c.messages.create(max_tokens=12, **args).content[0].text
    # A piece of the greedy text that first occurs after its start.
    stop = next(text[k:k + 2] for k in range(1, len(text) - 1)
                if text.find(text[k:k + 2]) == k and text[k:k + 2].strip())
    r = c.messages.create(max_tokens=12, stop_sequences=[stop, "never-appears"], **args)
    assert r.stop_reason == "stop_sequence" and r.stop_sequence == stop
    assert r.content[0].text == text[:text.index(stop)]
    with c.messages.stream(max_tokens=12, stop_sequences=[stop], **args) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == stop


def test_thinking_block(server):
    # Qwen3 thinks first; the dummy weights never close the thinking within 6 tokens.
    c = client(server)
    args = dict(model="m", max_tokens=6, extra_body=T0,
                messages=[{"role": "user", "content": "Think"}])
    r = c.messages.create(**args)
    assert [b.type for b in r.content] == ["thinking"]
    ref = chat(server).chat.completions.create(model="m", max_tokens=6, temperature=0,
                                               messages=[{"role": "user", "content": "Think"}])
    assert r.content[0].thinking == ref.choices[0].message.model_extra["reasoning_content"]
    thinking = ""
    with c.messages.stream(**args) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                assert event.delta.type == "thinking_delta"
                thinking += event.delta.thinking
    assert thinking == r.content[0].thinking


def tool_call(server, stream, tool_choice, tools=(WEATHER, ADD)):
    c = client(server)
    args = dict(model="m", max_tokens=200, extra_body={**T0, "logit_bias": server.bias},
                tools=list(tools),
                tool_choice=tool_choice, thinking=NO_THINKING,
                messages=[{"role": "user", "content": "What is the weather in Oslo?"}])
    if not stream:
        return c.messages.create(**args)
    partial = {}
    with c.messages.stream(**args) as s:
        for event in s:
            if event.type == "content_block_start" and event.content_block.type == "tool_use":
                assert event.content_block.input == {}
                partial[event.index] = ""
            elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partial[event.index] += event.delta.partial_json
        final = s.get_final_message()
    for index, text in partial.items():
        assert json.loads(text) == final.content[index].input
    return final


@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_any_and_named(server, stream):
    schemas = {t["name"]: t["input_schema"] for t in (WEATHER, ADD)}
    r = tool_call(server, stream, {"type": "any", "disable_parallel_tool_use": True})
    uses = [b for b in r.content if b.type == "tool_use"]
    assert len(uses) == 1 and r.stop_reason == "tool_use"
    assert uses[0].id.startswith("toolu_") and uses[0].name in schemas
    check_valid(schemas[uses[0].name], json.dumps(uses[0].input))
    r = tool_call(server, stream, {"type": "tool", "name": "add"})
    uses = [b for b in r.content if b.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "add" and r.stop_reason == "tool_use"
    check_valid(schemas["add"], json.dumps(uses[0].input))


def test_tool_result_round_trip_renders_like_chat(server):
    first = tool_call(server, False, {"type": "tool", "name": "get_weather"})
    use = next(b for b in first.content if b.type == "tool_use")
    messages = [
        {"role": "user", "content": "What is the weather in Oslo?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": use.id, "content": "12 degrees"},
            {"type": "text", "text": "And tomorrow?"}]},
    ]
    r = client(server).messages.create(model="m", max_tokens=6, extra_body=T0, tools=[WEATHER],
                                       messages=messages, thinking=NO_THINKING)
    assert r.stop_reason == "max_tokens" and r.content[0].type == "text"
    # The same turn in OpenAI's shape renders the same prompt, so greedy decoding matches.
    ref = chat(server).chat.completions.create(
        model="m", max_tokens=6, temperature=0, extra_body=CHAT_NO_THINKING,
        tools=[{"type": "function", "function": {
            "name": WEATHER["name"], "description": WEATHER["description"],
            "parameters": WEATHER["input_schema"]}}],
        messages=[
            {"role": "user", "content": "What is the weather in Oslo?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": use.id, "type": "function",
                 "function": {"name": use.name, "arguments": json.dumps(use.input)}}]},
            {"role": "tool", "tool_call_id": use.id, "content": "12 degrees"},
            {"role": "user", "content": "And tomorrow?"}])
    assert r.usage.input_tokens == ref.usage.prompt_tokens
    assert r.content[0].text == ref.choices[0].message.content


def test_api_key_as_x_api_key_or_bearer(server):
    body = {"model": "m", "max_tokens": 2, "messages": [{"role": "user", "content": "x"}]}
    status, _, raw = server.post("/v1/messages", body, headers={"Authorization": f"Bearer {KEY}"})
    assert status == 200, raw
    status, _, raw = server.post("/v1/messages", body, headers={"x-api-key": KEY})
    assert status == 200, raw
    with pytest.raises(anthropic.AuthenticationError) as e:
        client(server, key="wrong").messages.create(**body)
    assert e.value.status_code == 401
    assert e.value.body == {"type": "error", "error": {"type": "authentication_error",
                                                        "message": e.value.body["error"]["message"]}}


def anthropic_error(server, body, status, fragment):
    code, _, raw = server.post("/v1/messages", body, headers={"x-api-key": KEY})
    assert code == status, raw
    err = json.loads(raw)
    assert err["type"] == "error" and set(err["error"]) == {"type", "message"}, err
    assert fragment in err["error"]["message"], err
    return err["error"]["type"]


def test_bad_requests_get_anthropic_errors(server):
    user = [{"role": "user", "content": "x"}]
    base = {"model": "m", "max_tokens": 4, "messages": user}
    cases = [
        ({"model": "m", "messages": user}, "max_tokens"),
        ({**base, "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_nope", "content": "1"}]}]},
         "toolu_nope"),
        ({**base, "messages": [{"role": "user", "content": [{"type": "video", "x": 1}]}]},
         "unknown content block type 'video'"),
        ({**base, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": ""}}]}]}, "not supported"),
        ({**base, "messages": [{"role": "system", "content": "x"}]}, "'user' or 'assistant'"),
        ({**base, "tool_choice": {"type": "any"}}, "requires 'tools'"),
        ({**base, "tools": [WEATHER], "tool_choice": {"type": "tool", "name": "nope"}},
         "not in 'tools'"),
        ({**base, "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
         "server tools"),
        ({**base, "frequency_penalty": 1}, "frequency_penalty"),
        ({**base, "temperature": -1}, "temperature"),
    ]
    for body, fragment in cases:
        assert anthropic_error(server, body, 400, fragment) == "invalid_request_error"
    assert anthropic_error(server, {**base, "model": "claude-x"}, 404, "claude-x") == \
        "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as e:
        client(server).messages.create(model="m", max_tokens=4, messages=[
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x",
                                          "content": "1"}]}])
    assert e.value.body["error"]["type"] == "invalid_request_error"
    server.wait_idle()


def test_client_disconnect_mid_stream_frees_the_request(server):
    body = json.dumps({"model": "m", "max_tokens": 1500, "stream": True, "temperature": 0,
                       "messages": [{"role": "user", "content": "Talk"}]}).encode()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"x-api-key: {KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        seen = b""
        while b"content_block_delta" not in seen:
            chunk = s.recv(4096)
            assert chunk, seen
            seen += chunk
        assert b"event: message_start" in seen
    m = server.wait_idle()
    assert m["kite:num_requests_running"] == 0 and m["kite:kv_cache_blocks_used"] == 0
