"""use_beam_search on /v1/completions (vLLM's extension; n is the beam width) through
`kite serve` with the official openai client, on the shipped TinyStories model: the choices are
the beams of a reference beam search over the float64 numpy oracle of the model
(tests/conformance/model/llama_oracle.py, transformers' num_beams step), best first, for widths
1, 2 and 4; width 1 equals greedy decoding. Bad beam requests are 400s."""

import json
import os
import sys

import pytest

from kite_server import ROOT, TINY

openai = pytest.importorskip("openai")
tokenizers = pytest.importorskip("tokenizers")
sys.path.insert(0, os.path.join(ROOT, "tests", "conformance", "model"))
import beam_reference  # noqa: E402
import llama_oracle  # noqa: E402
from beam_reference import PROMPT, reference_beams  # noqa: E402

T = beam_reference.STEPS


@pytest.fixture(scope="module")
def oracle():
    return llama_oracle.Model(TINY)


def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=60)


@pytest.mark.parametrize("width", [1, 2, 4])
def test_beam_search_matches_the_reference(tiny_server, oracle, width):
    tok = tokenizers.Tokenizer.from_file(os.path.join(TINY, "tokenizer.json"))
    prompt = tok.encode(PROMPT).ids
    ref = reference_beams(oracle, prompt, width, T)
    r = client(tiny_server).completions.create(
        model="tiny", prompt=prompt, n=width, max_tokens=T,
        extra_body={"use_beam_search": True, "return_token_ids": True})
    assert [c.index for c in r.choices] == list(range(width))
    got = [c.model_extra["token_ids"] for c in r.choices]
    assert got == [tokens[len(prompt):] for tokens, _ in ref]
    for c in r.choices:
        assert c.finish_reason == "length"
        assert c.text == tok.decode(c.model_extra["token_ids"])
    assert r.usage.prompt_tokens == len(prompt) and r.usage.completion_tokens == width * T
    if width == 1:
        greedy = client(tiny_server).completions.create(model="tiny", prompt=prompt,
                                                        max_tokens=T, temperature=0)
        assert greedy.choices[0].text == r.choices[0].text
    tiny_server.wait_idle()


def test_bad_beam_requests(tiny_server):
    base = {"model": "tiny", "prompt": "x", "max_tokens": 2, "use_beam_search": True}
    for body, param in [({"n": 33}, "n"), ({"stream": True}, "stream"),
                        ({"logprobs": 1}, "use_beam_search"), ({"echo": True}, "use_beam_search"),
                        ({"length_penalty": "x"}, "length_penalty")]:
        status, _, raw = tiny_server.post("/v1/completions", {**base, **body})
        assert status == 400, raw
        assert json.loads(raw)["error"]["param"] == param, raw
