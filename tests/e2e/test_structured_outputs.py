"""Structured outputs through `kite serve` on the CPU with the official openai client: JSON
schemas (217: hand-written and generated; nested, recursive $ref, enums, unions, bounds, formats)
via response_format on /v1/chat/completions and structured_outputs / guided_json on
/v1/completions, regexes (fullmatch), choices (members), EBNF grammars, json_object — every
output parses and validates with jsonschema. The schema batch runs concurrently on a server with
a small KV cache, so requests are preempted and resumed (their grammar state rebuilt) and share
prompt blocks through the prefix cache. Also n > 1, logprobs, stop strings, max_tokens running out
(finish_reason "length"), and the 400 errors for bad constraints."""

import concurrent.futures as cf
import json
import re

import pytest

from kite_server import KITE, KiteServer, http, make_chat_model_dir
from schema_corpus import all_schemas
from structured_helpers import check_valid, closing_bias

openai = pytest.importorskip("openai")
pytest.importorskip("jsonschema")

CONCURRENCY = 64


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """Llama-3.1 vocabulary (128k tokens), tiny dummy weights, a KV cache of 512 KiB (1,024
    tokens): the concurrent schema batch does not fit, so the scheduler preempts."""
    import os
    if not os.path.exists(KITE):
        pytest.skip(f"no kite binary at {KITE}")
    model_dir = make_chat_model_dir("llama3.1", str(tmp_path_factory.mktemp("llama")))
    server = KiteServer(model_dir, "--load-format", "dummy", "--max-model-len", "512",
                        "--kv-cache-memory", "512KiB", "--seed", "1", "--served-model-name", "m",
                        log_dir=str(tmp_path_factory.mktemp("llama-log")), name="so").start()
    server.model_dir = model_dir
    server.bias = closing_bias(model_dir)
    yield server
    assert server.stop() == 0, server.log()[-4000:]


def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=300)


def run_schema(server, i, schema):
    c = client(server)
    if i % 3 == 0:
        r = c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"Give me JSON number {i}."}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": f"s{i}", "schema": schema, "strict": True}},
            max_tokens=400, temperature=1.0, seed=i, logit_bias=server.bias)
        return r.choices[0].message.content, r.choices[0].finish_reason
    field = "structured_outputs" if i % 3 == 1 else "guided_json"
    body = {field: {"json": schema}} if field == "structured_outputs" else {field: schema}
    r = c.completions.create(model="m", prompt=f"JSON number {i}:", max_tokens=400,
                             temperature=1.0, seed=i, logit_bias=server.bias, extra_body=body)
    return r.choices[0].text, r.choices[0].finish_reason


def test_json_schemas_validate(llama):
    schemas = all_schemas()
    assert len(schemas) >= 200
    before = llama.metrics()
    with cf.ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(lambda a: run_schema(llama, *a), enumerate(schemas)))
    failures = []
    for i, ((text, finish), schema) in enumerate(zip(results, schemas)):
        try:
            assert finish == "stop", f"finish_reason {finish}"
            check_valid(schema, text)
        except Exception as e:  # collect every failure, then report them together
            failures.append(f"schema {i} {json.dumps(schema)[:200]}: {e!r} output {text[:300]!r}")
    assert not failures, "\n".join(failures[:10]) + f"\n({len(failures)} failures)"
    after = llama.metrics()
    # The batch did not fit the KV cache: sequences were preempted and resumed mid-grammar.
    assert after["kite:num_preemptions_total"] > before["kite:num_preemptions_total"]
    # One compilation per distinct schema; repeats (the generator makes a few) hit the cache.
    served = (after["kite:grammar_compiles_total"] - before["kite:grammar_compiles_total"] +
              after["kite:grammar_cache_hits_total"] - before["kite:grammar_cache_hits_total"])
    assert served == len(schemas)


def test_schema_cache_and_prefix_cache(llama):
    """The same schema twice: the second request reuses the compiled grammar and the prompt's
    cached KV blocks, and is valid too."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    c = client(llama)
    before = llama.metrics()
    for _ in range(2):
        r = c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "the same prompt " * 20}],
            response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
            max_tokens=100, logit_bias=llama.bias, temperature=0)
        check_valid(schema, r.choices[0].message.content)
    after = llama.metrics()
    assert after["kite:grammar_cache_hits_total"] >= before["kite:grammar_cache_hits_total"] + 1
    assert after["kite:prefix_cache_hits_total"] > before["kite:prefix_cache_hits_total"]


REGEXES = [r"[a-z]{3,8}@[a-z]{2,5}\.(com|org)", r"\d{3}-\d{4}", r"(yes|no|maybe)",
           r"[A-Z][a-z]{1,6} [A-Z][a-z]{1,6}", r"0x[0-9a-f]{4}", r"(ab)+c?", r"-?[1-9][0-9]{0,2}",
           r"\((\d,){2}\d\)", r"[😀-😎]{1,3}", r"(true|false)"]


@pytest.mark.parametrize("stream", [False, True])
def test_regex_choice_grammar(llama, stream):
    c = client(llama)

    def complete(extra, chat):
        if chat:
            kw = dict(model="m", messages=[{"role": "user", "content": "go"}], max_tokens=60,
                      temperature=1.0, seed=7, extra_body=extra, stream=stream)
            r = c.chat.completions.create(**kw)
            if not stream:
                return r.choices[0].message.content, r.choices[0].finish_reason
            text, finish = "", None
            for chunk in r:
                for ch in chunk.choices:
                    text += ch.delta.content or ""
                    finish = ch.finish_reason or finish
            return text, finish
        r = c.completions.create(model="m", prompt="go", max_tokens=60, temperature=1.0, seed=7,
                                 extra_body=extra, stream=stream)
        if not stream:
            return r.choices[0].text, r.choices[0].finish_reason
        text, finish = "", None
        for chunk in r:
            for ch in chunk.choices:
                text += ch.text or ""
                finish = ch.finish_reason or finish
        return text, finish

    for i, rx in enumerate(REGEXES):
        extra = {"structured_outputs": {"regex": rx}} if i % 2 else {"guided_regex": rx}
        text, finish = complete(extra, chat=i % 3 == 0)
        assert finish == "stop", (rx, text)
        assert re.fullmatch(rx, text), (rx, text)
    choices = ["Paris", "Oslo", "Kuala Lumpur", "東京", "a \"quoted\" one"]
    for i, extra in enumerate([{"guided_choice": choices},
                               {"structured_outputs": {"choice": choices}}]):
        text, finish = complete(extra, chat=i == 0)
        assert text in choices and finish == "stop", text
    grammar = 'root ::= "(" expr ")"\nexpr ::= num | num "+" expr\nnum ::= [1-9]'
    for extra in ({"guided_grammar": grammar}, {"structured_outputs": {"grammar": grammar}}):
        text, finish = complete(extra, chat=False)
        assert re.fullmatch(r"\((\d\+)*\d\)", text) and finish == "stop", text


def test_json_object_n_logprobs_and_stop(llama):
    c = client(llama)
    r = c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "any JSON"}],
        response_format={"type": "json_object"}, n=3, logprobs=True, top_logprobs=3,
        max_tokens=300, temperature=1.0, seed=3, logit_bias=llama.bias)
    assert len(r.choices) == 3
    for ch in r.choices:
        assert ch.finish_reason == "stop"
        assert isinstance(json.loads(ch.message.content), dict)
        # Logprobs are of the masked distribution: the chosen token is always allowed (finite).
        assert all(lp.logprob > -9999 for lp in ch.logprobs.content)
    # A stop string ends the output early; the grammar never holds it back.
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
              "required": ["a", "b"]}
    r = c.completions.create(model="m", prompt="x", max_tokens=200, logit_bias=llama.bias,
                             stop=[","], extra_body={"guided_json": schema})
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text.startswith("{") and "," not in r.choices[0].text


def test_max_tokens_runs_out_with_length(llama):
    schema = {"type": "object", "properties": {"long": {"type": "string", "minLength": 200}},
              "required": ["long"]}
    r = client(llama).completions.create(model="m", prompt="x", max_tokens=5,
                                         extra_body={"guided_json": schema})
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 5


@pytest.mark.parametrize("body,fragment", [
    ({"guided_json": {"type": "object", "properties": {"a": {"type": "nonsense"}}}},
     "JSON schema"),
    ({"guided_json": "{not json"}, "not a valid JSON schema"),
    ({"guided_regex": "(unclosed"}, "regex"),
    ({"guided_grammar": "root ::= undefined_rule"}, "grammar"),
    ({"guided_json": {"type": "object"}, "guided_regex": "a+"}, "conflicts"),
    ({"response_format": {"type": "json_object"}, "structured_outputs": {"regex": "a"}},
     "conflicts"),
    ({"structured_outputs": {"regex": "a", "choice": ["b"]}}, "more than one"),
    ({"guided_json": {"type": "string", "maxLength": 1000000}}, "exceeds the limit"),
    ({"guided_regex": "a{100000}"}, "exceeds the limit"),
    ({"guided_choice": []}, "non-empty"),
    ({"response_format": {"type": "xml"}}, "response_format type"),
    ({"guided_json": {"type": "object"}, "min_tokens": 2}, "min_tokens"),
    ({"guided_decoding_backend": "outlines", "guided_regex": "a"}, "xgrammar"),
])
def test_bad_constraints_are_400(llama, body, fragment):
    status, _, raw = http("POST", llama.url + "/v1/completions",
                          {"model": "m", "prompt": "x", "max_tokens": 4, **body})
    assert status == 400, raw
    err = json.loads(raw)["error"]
    assert fragment in err["message"], err
    assert err["type"] == "invalid_request_error"
    # The server goes on serving.
    ok, _, _ = http("POST", llama.url + "/v1/completions",
                    {"model": "m", "prompt": "x", "max_tokens": 2})
    assert ok == 200
