"""`kite serve` /v1/completions with the official openai client on the shipped TinyStories model:
whole and streamed answers, n > 1, stop strings, seeds, logprobs, echo and usage, checked
against Hugging Face `tokenizers` and the float64 reference model."""

import json
import math
import os
import socket
import sys

import pytest
from openai import OpenAI
from tokenizers import Tokenizer

from kite_server import ROOT, TINY

sys.path.insert(0, os.path.join(ROOT, "tests", "conformance", "model"))
import llama_oracle  # noqa: E402

PROMPT = "Once upon a time"


@pytest.fixture(scope="module")
def client(tiny_server):
    return OpenAI(base_url=tiny_server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.from_file(os.path.join(TINY, "tokenizer.json"))


@pytest.fixture(scope="module")
def oracle():
    return llama_oracle.Model(TINY)


def greedy(client, prompt=PROMPT, max_tokens=24, **kw):
    return client.completions.create(model="tiny", prompt=prompt, max_tokens=max_tokens,
                                     temperature=0, **kw)


def test_whole_completion_matches_reference_model_and_tokenizer(client, tok, oracle):
    r = greedy(client, extra_body={"return_token_ids": True})
    assert r.object == "text_completion"
    assert r.id.startswith("cmpl-") and r.model == "tiny" and r.created > 1_600_000_000
    (choice,) = r.choices
    prompt_ids = tok.encode(PROMPT).ids
    ids = choice.model_extra["token_ids"]
    assert choice.model_extra["prompt_token_ids"] == prompt_ids
    assert choice.finish_reason == "length" and len(ids) == 24
    # Greedy: every token is the reference model's argmax after the prompt and the ones before.
    logits = oracle.forward(prompt_ids + ids[:-1])
    assert [int(row.argmax()) for row in logits[len(prompt_ids) - 1:]] == ids
    assert choice.text == tok.decode(ids, skip_special_tokens=True)
    assert r.usage.prompt_tokens == len(prompt_ids)
    assert r.usage.completion_tokens == 24
    assert r.usage.total_tokens == len(prompt_ids) + 24


def test_stream_equals_whole_and_usage_comes_last(client, tok):
    whole = greedy(client, max_tokens=32)
    chunks = list(greedy(client, max_tokens=32, stream=True,
                         stream_options={"include_usage": True},
                         extra_body={"return_token_ids": True}))
    assert len(chunks) > 3  # streamed in pieces, not one blob
    *body, last = chunks
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in body)
    assert all(c.id == body[0].id and c.object == "text_completion" for c in body)
    text = "".join(c.choices[0].text for c in body)
    assert text == whole.choices[0].text
    streamed_ids = [t for c in body for t in c.choices[0].model_extra["token_ids"]]
    assert len(streamed_ids) == 32 == last.usage.completion_tokens
    assert tok.decode(streamed_ids, skip_special_tokens=True) == text
    assert last.usage.prompt_tokens == len(tok.encode(PROMPT).ids)
    assert [c.choices[0].finish_reason for c in body].count("length") == 1
    assert body[-1].choices[0].finish_reason == "length"


def test_stream_without_include_usage_has_no_usage(client):
    chunks = list(greedy(client, max_tokens=8, stream=True))
    assert chunks and all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


def test_n_choices_and_prompt_lists(client):
    r = client.completions.create(model="tiny", prompt=["The dog", "A girl named Lily"], n=3,
                                  max_tokens=12, temperature=1.0, seed=3,
                                  extra_body={"ignore_eos": True})
    assert sorted(c.index for c in r.choices) == list(range(6))
    assert all(c.finish_reason == "length" for c in r.choices)
    assert r.usage.completion_tokens == 6 * 12
    # Different samples of one prompt (a tiny model can repeat itself; not all three agree).
    assert len({c.text for c in r.choices[:3]}) > 1
    # Streaming: every index streams its own tokens and ends once.
    chunks = list(client.completions.create(model="tiny", prompt="The dog", n=2, max_tokens=10,
                                            temperature=1.0, seed=3, stream=True,
                                            stream_options={"include_usage": True},
                                            extra_body={"ignore_eos": True,
                                                        "return_token_ids": True}))
    per_index = {0: 0, 1: 0}
    finished = []
    for c in chunks[:-1]:
        (ch,) = c.choices
        per_index[ch.index] += len(ch.model_extra["token_ids"])
        if ch.finish_reason:
            finished.append(ch.index)
    assert per_index == {0: 10, 1: 10}
    assert sorted(finished) == [0, 1]
    assert chunks[-1].usage.completion_tokens == 20


def test_stop_strings_cut_the_text(client):
    full = greedy(client, max_tokens=40).choices[0].text
    words = full.split()
    assert len(words) > 6, full
    stop = " " + words[4]  # a word in the middle of the greedy text
    cut = full[:full.index(stop)]
    r = greedy(client, max_tokens=40, stop=[stop, "zzzz-never"])
    (choice,) = r.choices
    assert choice.text == cut
    assert choice.finish_reason == "stop"
    assert choice.model_extra["stop_reason"] == stop
    streamed = list(greedy(client, max_tokens=40, stop=stop, stream=True))
    assert "".join(c.choices[0].text for c in streamed) == cut
    assert streamed[-1].choices[0].finish_reason == "stop"
    kept = greedy(client, max_tokens=40, stop=stop, extra_body={"include_stop_str_in_output": True})
    assert kept.choices[0].text == cut + stop


def test_seed_reproduces_and_differs(client):
    def sample(seed):
        return client.completions.create(model="tiny", prompt="The cat", max_tokens=32,
                                         temperature=1.2, seed=seed,
                                         extra_body={"ignore_eos": True}).choices[0].text
    a, b, c = sample(7), sample(7), sample(8)
    assert a == b
    assert a != c


def check_logprobs(lp, completion_tokens, greedy_choice):
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == completion_tokens
    assert len(lp.text_offset) == completion_tokens
    for token, logprob, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert logprob <= 0.0 and math.isfinite(logprob)
        assert token in top and math.isclose(top[token], logprob, abs_tol=1e-4)
        assert 1 <= len(top) <= 6 and all(v <= 0.0 for v in top.values())
        if greedy_choice:
            assert math.isclose(max(top.values()), logprob, abs_tol=1e-4)
    assert all(b >= a for a, b in zip(lp.text_offset, lp.text_offset[1:]))


def test_logprobs_are_consistent(client, tok, oracle):
    r = greedy(client, max_tokens=16, logprobs=5, extra_body={"return_token_ids": True})
    (choice,) = r.choices
    check_logprobs(choice.logprobs, r.usage.completion_tokens, greedy_choice=True)
    # The values are the model's log-softmax (float64 reference, float32 engine).
    prompt_ids = tok.encode(PROMPT).ids
    ids = choice.model_extra["token_ids"]
    logits = oracle.forward(prompt_ids + ids[:-1])[len(prompt_ids) - 1:]
    for row, token_id, logprob in zip(logits, ids, choice.logprobs.token_logprobs):
        m = row.max()
        ref = row[token_id] - m - math.log(sum(math.exp(x - m) for x in row))
        assert math.isclose(logprob, ref, abs_tol=1e-3)
    # Sampled (not greedy): the chosen token is always among top_logprobs.
    s = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=16, temperature=1.0,
                                  seed=11, logprobs=3)
    check_logprobs(s.choices[0].logprobs, s.usage.completion_tokens, greedy_choice=False)
    # Streaming carries the same logprobs, piece by piece.
    chunks = list(greedy(client, max_tokens=16, logprobs=5, stream=True))
    streamed = [v for c in chunks for v in c.choices[0].logprobs.token_logprobs]
    assert streamed == pytest.approx(choice.logprobs.token_logprobs, abs=1e-6)


def test_echo_returns_prompt_with_its_logprobs(client, tok):
    r = greedy(client, max_tokens=4, echo=True, logprobs=1)
    (choice,) = r.choices
    plain = greedy(client, max_tokens=4).choices[0].text
    assert choice.text == PROMPT + plain
    n_prompt = len(tok.encode(PROMPT).ids)
    assert r.usage.prompt_tokens == n_prompt
    lp = choice.logprobs
    assert len(lp.tokens) == n_prompt + 4
    assert lp.token_logprobs[0] is None  # the first prompt token has no logprob
    assert all(v is not None and v <= 0.0 for v in lp.token_logprobs[1:])
    assert lp.text_offset[0] == 0
    streamed = list(greedy(client, max_tokens=4, echo=True, stream=True))
    assert "".join(c.choices[0].text for c in streamed) == PROMPT + plain


def test_token_id_prompts_and_max_tokens_default(client, tok):
    ids = tok.encode(PROMPT).ids
    a = greedy(client, prompt=ids, max_tokens=8)
    b = greedy(client, max_tokens=8)
    assert a.choices[0].text == b.choices[0].text
    assert a.usage.prompt_tokens == len(ids)


def test_keep_alive_connection_never_stalls(tiny_server):
    # Many requests in a row on one keep-alive connection (what the openai client does), whole
    # and streamed in turn. A watch for client disconnects that blocked on a spurious readiness
    # once stalled such a connection until the client sent more.
    with socket.create_connection(("127.0.0.1", tiny_server.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        for i in range(60):
            stream = i % 2 == 1
            body = json.dumps({"prompt": "Hello 🙂 world", "max_tokens": 16, "seed": i,
                               "temperature": 1.0, "ignore_eos": True, "stream": stream})
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body.encode()), body.encode()))
            try:
                head = read_head(reader)
                assert head[0].startswith(b"HTTP/1.1 200"), head
                if stream:
                    events = read_chunked(reader)
                    assert events.endswith(b"data: [DONE]\n\n")
                else:
                    length = int(next(h.split(b":")[1] for h in head
                                      if h.lower().startswith(b"content-length")))
                    assert json.loads(reader.read(length))["usage"]["completion_tokens"] == 16
            except socket.timeout:
                pytest.fail(f"request {i} on a keep-alive connection stalled")


def read_head(reader):
    lines = []
    while True:
        line = reader.readline()
        if line in (b"\r\n", b""):
            return lines
        lines.append(line.rstrip(b"\r\n"))


def read_chunked(reader):
    data = b""
    while True:
        size = int(reader.readline().strip(), 16)
        if size == 0:
            reader.readline()
            return data
        data += reader.read(size)
        reader.readline()
