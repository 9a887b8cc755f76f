"""POST /v1/responses (OpenAI's Responses API) through `kite serve` with the official `openai`
client (`client.responses.create`), on the Qwen3 chat template with tiny dummy weights (hermes
tool parser, qwen3 reasoning parser): each response is checked field by field, and against
/v1/chat/completions for the same conversation (greedy, so the texts must be equal: the
translation renders the same prompt). Streams follow the Responses event sequence and fold into
the same response; a function tool round trip works with items and with previous_response_id;
bad input gets OpenAI-style errors."""

import json
import os
import socket

import pytest

from kite_server import KITE, KiteServer, make_chat_model_dir
from structured_helpers import check_valid, closing_bias

openai = pytest.importorskip("openai")
pytest.importorskip("jsonschema")

NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather",
           "parameters": {"type": "object",
                          "properties": {"unit": {"enum": ["celsius", "fahrenheit"]}},
                          "required": ["unit"], "additionalProperties": False}}
CHAT_WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather", "parameters": WEATHER["parameters"]}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not os.path.exists(KITE):
        pytest.skip(f"no kite binary at {KITE}")
    model_dir = make_chat_model_dir("qwen3", str(tmp_path_factory.mktemp("qwen3")))
    s = KiteServer(model_dir, "--load-format", "dummy", "--max-model-len", "2048",
                   "--kv-cache-memory", "64MiB", "--seed", "1", "--served-model-name", "m",
                   "--tool-call-parser", "hermes", "--enable-auto-tool-choice",
                   "--reasoning-parser", "qwen3",
                   log_dir=str(tmp_path_factory.mktemp("responses-log")), name="responses").start()
    # Random weights write whitespace forever inside a forced call; kite's logit_bias extension
    # makes them close strings and objects early.
    s.bias = closing_bias(model_dir)
    yield s
    assert s.stop() == 0, s.log()[-4000:]


def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=120)


def test_text_response_matches_chat_field_by_field(server):
    c = client(server)
    r = c.responses.create(model="m", input="Hello there", instructions="Be brief.",
                           max_output_tokens=8, temperature=0, extra_body=NO_THINKING)
    assert r.id.startswith("resp_") and r.object == "response" and r.model == "m"
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.instructions == "Be brief." and r.max_output_tokens == 8 and r.temperature == 0
    assert r.tools == [] and r.tool_choice == "none" and r.error is None
    assert len(r.output) == 1
    item = r.output[0]
    assert item.type == "message" and item.role == "assistant" and item.id.startswith("msg_")
    assert [p.type for p in item.content] == ["output_text"]
    ref = c.chat.completions.create(model="m", max_tokens=8, temperature=0,
                                    messages=[{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": "Hello there"}],
                                    extra_body=NO_THINKING)
    assert r.output_text == item.content[0].text == ref.choices[0].message.content
    assert r.usage.input_tokens == ref.usage.prompt_tokens
    assert r.usage.output_tokens == ref.usage.completion_tokens == 8
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_input_items_render_like_a_string(server):
    c = client(server)
    a = c.responses.create(model="m", max_output_tokens=5, temperature=0, extra_body=NO_THINKING,
                           input=[{"role": "user", "content": [
                               {"type": "input_text", "text": "Hi"}]}])
    b = c.responses.create(model="m", max_output_tokens=5, temperature=0, extra_body=NO_THINKING,
                           input="Hi")
    assert a.output_text == b.output_text and a.usage.input_tokens == b.usage.input_tokens


def test_stream_event_sequence_and_same_response(server):
    c = client(server)
    args = dict(model="m", input="Tell me a story", max_output_tokens=10, temperature=0,
                extra_body=NO_THINKING)
    whole = c.responses.create(**args)
    events = list(c.responses.create(stream=True, **args))
    types = [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert types[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert set(types[4:-4]) == {"response.output_text.delta"}
    assert types[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.incomplete"]
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert text == whole.output_text == final.output_text
    assert events[-4].text == text
    assert final.usage.output_tokens == whole.usage.output_tokens == 10
    assert final.status == "incomplete" and final.id == events[0].response.id


def test_reasoning_item(server):
    # Qwen3 thinks first; the dummy weights never close the thinking within 6 tokens.
    c = client(server)
    r = c.responses.create(model="m", input="Think", max_output_tokens=6, temperature=0)
    assert [o.type for o in r.output] == ["reasoning"]
    ref = c.chat.completions.create(model="m", max_tokens=6, temperature=0,
                                    messages=[{"role": "user", "content": "Think"}])
    assert r.output[0].content[0].text == ref.choices[0].message.model_extra["reasoning_content"]
    events = list(c.responses.create(model="m", input="Think", max_output_tokens=6,
                                     temperature=0, stream=True))
    text = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert text == r.output[0].content[0].text


def test_json_schema_text_format(server):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    r = client(server).responses.create(
        model="m", input="Answer in JSON", max_output_tokens=100, temperature=0,
        text={"format": {"type": "json_schema", "name": "answer", "schema": schema}},
        extra_body={**NO_THINKING, "logit_bias": server.bias})
    assert r.status == "completed"
    check_valid(schema, r.output_text)
    assert r.text.format.type == "json_schema"


def call_weather(server, stream, **kw):
    c = client(server)
    args = dict(model="m", input="What is the weather in Oslo?", tools=[WEATHER],
                tool_choice="required", parallel_tool_calls=False, max_output_tokens=200,
                temperature=0, extra_body={**NO_THINKING, "logit_bias": server.bias})
    args.update(kw)
    if not stream:
        return c.responses.create(**args)
    events = list(c.responses.create(stream=True, **args))
    types = [e.type for e in events]
    assert "response.function_call_arguments.delta" in types
    assert types[-1] == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == deltas and done.name == "get_weather"
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.type == "function_call" and added.item.arguments == ""
    return events[-1].response


@pytest.mark.parametrize("stream", [False, True])
def test_function_tool_round_trip(server, stream):
    r = call_weather(server, stream)
    assert r.status == "completed"
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and call.call_id.startswith("call_")
    assert call.id.startswith("fc_") and call.status == "completed"
    check_valid(WEATHER["parameters"], call.arguments)
    # The next turn: the call and its output as items.
    c = client(server)
    items = [{"role": "user", "content": "What is the weather in Oslo?"},
             {"type": "function_call", "call_id": call.call_id, "name": call.name,
              "arguments": call.arguments},
             {"type": "function_call_output", "call_id": call.call_id, "output": "12 degrees"}]
    r2 = c.responses.create(model="m", input=items, tools=[WEATHER], max_output_tokens=6,
                            temperature=0, extra_body=NO_THINKING)
    assert r2.output[0].type == "message"
    ref = c.chat.completions.create(
        model="m", max_tokens=6, temperature=0, tools=[CHAT_WEATHER], extra_body=NO_THINKING,
        messages=[{"role": "user", "content": "What is the weather in Oslo?"},
                  {"role": "assistant", "content": "", "tool_calls": [
                      {"id": call.call_id, "type": "function",
                       "function": {"name": call.name, "arguments": call.arguments}}]},
                  {"role": "tool", "tool_call_id": call.call_id, "content": "12 degrees"}])
    assert r2.output_text == ref.choices[0].message.content
    assert r2.usage.input_tokens == ref.usage.prompt_tokens
    # The same turn through previous_response_id: the stored conversation + the output item.
    r3 = c.responses.create(model="m", previous_response_id=r.id, tools=[WEATHER],
                            max_output_tokens=6, temperature=0, extra_body=NO_THINKING,
                            input=[{"type": "function_call_output", "call_id": call.call_id,
                                    "output": "12 degrees"}])
    assert r3.previous_response_id == r.id
    assert r3.output_text == r2.output_text and r3.usage.input_tokens == r2.usage.input_tokens


def test_store_false_is_not_kept(server):
    c = client(server)
    r = c.responses.create(model="m", input="x", max_output_tokens=2, store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError) as e:
        c.responses.create(model="m", input="y", max_output_tokens=2, previous_response_id=r.id)
    assert e.value.body["param"] == "previous_response_id"


def test_bad_requests_get_openai_errors(server):
    c = client(server)
    cases = [
        (dict(input=[{"type": "function_call_output", "call_id": "call_nope", "output": "1"}]),
         "call_nope"),
        (dict(input=[{"type": "mystery_item"}]), "unknown input item type"),
        (dict(input=[{"type": "item_reference", "id": "x"}]), "not supported"),
        (dict(input=[{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]),
         "not supported"),
        (dict(input="x", tools=[{"type": "web_search"}]), "not supported"),
        (dict(input="x", tool_choice="required"), "requires 'tools'"),
        (dict(input="x", background=True), "background"),
        (dict(input=[]), "must not be empty"),
        (dict(input="x", temperature=-1), "temperature"),
    ]
    for kw, fragment in cases:
        with pytest.raises(openai.BadRequestError) as e:
            c.responses.create(model="m", max_output_tokens=4, **kw)
        assert fragment in e.value.body["message"], (kw, e.value.body)
        assert e.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="gpt-x", input="x")
    server.wait_idle()


def test_client_disconnect_mid_stream_frees_the_request(server):
    body = json.dumps({"model": "m", "max_output_tokens": 1500, "stream": True,
                       "temperature": 0, "input": "Talk"}).encode()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        seen = b""
        while b"reasoning_text.delta" not in seen:
            chunk = s.recv(4096)
            assert chunk, seen
            seen += chunk
        assert b"event: response.created" in seen
    m = server.wait_idle()
    assert m["kite:num_requests_running"] == 0 and m["kite:kv_cache_blocks_used"] == 0
