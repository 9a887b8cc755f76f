"""Tool calling and reasoning output through `kite serve` with the official openai client, for
the Llama-3.1 (llama3_json), Qwen3 (hermes, with --reasoning-parser qwen3) and Mistral (mistral)
chat templates on tiny dummy weights: tool_choice "required" (one or parallel calls) and a named
function are enforced by grammar in the family's own format, so the family parser must turn the
text into message.tool_calls whose arguments validate against the function's parameters —
whole and streamed (OpenAI's deltas: index, id and name once, then argument fragments).
Reasoning: Qwen3's <think>…</think> goes to reasoning_content (streamed too), and a schema
constrains only the answer after it. Bad tool requests are 400s."""

import json
import os

import pytest

from kite_server import KITE, KiteServer, http, make_chat_model_dir
from structured_helpers import check_valid, closing_bias, token_id

openai = pytest.importorskip("openai")
pytest.importorskip("jsonschema")

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {
            "location": {"type": "string"},
            "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["location", "unit"]}}},
    {"type": "function", "function": {
        "name": "add", "description": "Adds two integers",
        "parameters": {"type": "object", "properties": {
            "a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"],
            "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "search", "parameters": {"type": "object", "properties": {
            "query": {"type": "string"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 10}},
            "required": ["query"]}}},
]
PARAMS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}

FAMILIES = {
    "llama3.1": ["--tool-call-parser", "llama3_json", "--enable-auto-tool-choice"],
    "qwen3": ["--tool-call-parser", "hermes", "--enable-auto-tool-choice",
              "--reasoning-parser", "qwen3"],
    "mistral": ["--tool-call-parser", "mistral", "--enable-auto-tool-choice"],
}


@pytest.fixture(scope="module", params=list(FAMILIES))
def family_server(request, tmp_path_factory):
    if not os.path.exists(KITE):
        pytest.skip(f"no kite binary at {KITE}")
    family = request.param
    # Llama-3.1's tool-calling template (the tokenizer_config.json of the test data has the
    # basic one).
    template = "meta-llama-Llama-3.1-8B-Instruct.jinja" if family == "llama3.1" else None
    model_dir = make_chat_model_dir(family, str(tmp_path_factory.mktemp(family)), template)
    server = KiteServer(model_dir, "--load-format", "dummy", "--max-model-len", "2048",
                        "--kv-cache-memory", "64MiB", "--seed", "1", "--served-model-name", "m",
                        *FAMILIES[family], log_dir=str(tmp_path_factory.mktemp(f"{family}-log")),
                        name=f"tools-{family}").start()
    server.family = family
    server.model_dir = model_dir
    server.bias = closing_bias(model_dir)
    yield server
    assert server.stop() == 0, server.log()[-4000:]


def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=120)


def extra(server):
    # Qwen3 thinks first by default; these calls test tools, so thinking is switched off (the
    # reasoning tests below cover it).
    return {"chat_template_kwargs": {"enable_thinking": False}} if server.family == "qwen3" else {}


def ask(server, stream, **kw):
    """One chat request; returns (tool_calls as [(id, name, arguments)], content, finish)."""
    c = client(server)
    args = dict(model="m", messages=[{"role": "user", "content": "What is the weather in Oslo?"}],
                tools=TOOLS, max_tokens=400, temperature=1.0, seed=11, logit_bias=server.bias,
                extra_body=extra(server))
    args.update(kw)
    if not stream:
        r = c.chat.completions.create(**args)
        m = r.choices[0].message
        calls = [(t.id, t.function.name, t.function.arguments) for t in (m.tool_calls or [])]
        assert all(t.type == "function" for t in (m.tool_calls or []))
        return calls, m.content, r.choices[0].finish_reason
    calls, content, finish, names_seen = {}, "", None, {}
    for chunk in c.chat.completions.create(stream=True, **args):
        for ch in chunk.choices:
            content += ch.delta.content or ""
            finish = ch.finish_reason or finish
            for t in ch.delta.tool_calls or []:
                if t.index not in calls:
                    # The first delta of a call carries id, type and name.
                    assert t.id and t.type == "function" and t.function.name, t
                    calls[t.index] = [t.id, t.function.name, ""]
                    names_seen[t.index] = 1
                else:
                    assert not t.id and not (t.function and t.function.name), t  # name once
                calls[t.index][2] += (t.function.arguments or "") if t.function else ""
    assert sorted(calls) == list(range(len(calls)))
    return [tuple(v) for _, v in sorted(calls.items())], content or None, finish


@pytest.mark.parametrize("stream", [False, True])
def test_required_tool_calls(family_server, stream):
    for parallel in (True, False):
        calls, _, finish = ask(family_server, stream, tool_choice="required",
                               parallel_tool_calls=parallel)
        assert calls, "no tool call"
        if not parallel:
            assert len(calls) == 1
        assert finish == "tool_calls"
        ids = set()
        for call_id, name, arguments in calls:
            assert name in PARAMS, name
            check_valid(PARAMS[name], arguments)
            assert call_id.startswith("call_") and call_id not in ids
            ids.add(call_id)


@pytest.mark.parametrize("stream", [False, True])
def test_named_tool_call(family_server, stream):
    for name in ("add", "search"):
        calls, _, finish = ask(family_server, stream,
                               tool_choice={"type": "function", "function": {"name": name}})
        assert len(calls) == 1 and calls[0][1] == name
        check_valid(PARAMS[name], calls[0][2])
        assert finish == "stop"  # as OpenAI: a forced function ends with "stop"


def test_auto_and_none_leave_text_as_content(family_server):
    # Random weights do not decide to call a tool: the text comes back as content.
    for choice in ("auto", "none"):
        calls, content, finish = ask(family_server, False, tool_choice=choice, max_tokens=8,
                                     logit_bias=None)
        assert not calls and finish in ("stop", "length")


def test_bad_tool_requests(family_server):
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 4}
    cases = [
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
         "not in 'tools'"),
        ({"tool_choice": "required"}, "requires 'tools'"),
        ({"tools": TOOLS, "tool_choice": "required",
          "response_format": {"type": "json_object"}}, "cannot be combined"),
        ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": TOOLS, "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"},
         "does not support tools"),
    ]
    for body, fragment in cases:
        status, _, raw = http("POST", family_server.url + "/v1/chat/completions", {**base, **body})
        assert status == 400, (body, raw)
        assert fragment in json.loads(raw)["error"]["message"], raw


# ---- reasoning (Qwen3) -------------------------------------------------------------------------

def qwen3_only(server):
    if server.family != "qwen3":
        pytest.skip("reasoning is tested on Qwen3")


def test_reasoning_split_whole_and_streamed(family_server):
    qwen3_only(family_server)
    c = client(family_server)
    msgs = [{"role": "user", "content": "Think about it."}]
    r = c.chat.completions.create(model="m", messages=msgs, max_tokens=12, temperature=0)
    m = r.choices[0].message
    # Thinking never closed within 12 tokens: everything is reasoning.
    reasoning = m.model_extra.get("reasoning_content")
    assert reasoning and not m.content
    streamed_reasoning, streamed_content = "", ""
    for chunk in c.chat.completions.create(model="m", messages=msgs, max_tokens=12, temperature=0,
                                           stream=True):
        for ch in chunk.choices:
            streamed_reasoning += (ch.delta.model_extra or {}).get("reasoning_content") or ""
            streamed_content += ch.delta.content or ""
    assert streamed_reasoning == reasoning and not streamed_content
    # With thinking off the template closes the thinking in the prompt: all content.
    r = c.chat.completions.create(model="m", messages=msgs, max_tokens=6, temperature=0,
                                  extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert r.choices[0].message.content and not r.choices[0].message.model_extra.get(
        "reasoning_content")


@pytest.mark.parametrize("stream", [False, True])
def test_schema_constrains_the_answer_not_the_thinking(family_server, stream):
    qwen3_only(family_server)
    c = client(family_server)
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                               "days": {"type": "integer"}},
              "required": ["city", "days"]}
    end_think = token_id(family_server.model_dir, "</think>")
    bias = dict(family_server.bias)
    bias[str(end_think)] = 100  # the model ends its thinking at once; the answer follows
    args = dict(model="m", messages=[{"role": "user", "content": "Plan a trip."}],
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "trip", "schema": schema}},
                max_tokens=300, temperature=1.0, seed=5, logit_bias=bias)
    if not stream:
        r = c.chat.completions.create(**args)
        content, finish = r.choices[0].message.content, r.choices[0].finish_reason
    else:
        content, finish = "", None
        for chunk in c.chat.completions.create(stream=True, **args):
            for ch in chunk.choices:
                content += ch.delta.content or ""
                finish = ch.finish_reason or finish
    assert finish == "stop"
    check_valid(schema, content)
    # Without the bias the dummy model never closes its thinking: the schema is not applied to
    # the thinking, which is free text (reasoning_content), and the output runs to max_tokens.
    r = c.chat.completions.create(**{**args, "logit_bias": None, "max_tokens": 10})
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.model_extra.get("reasoning_content")
