"""Structured outputs from the Python package, in vLLM's shapes:
SamplingParams(structured_outputs=StructuredOutputsParams(...)) and the older
SamplingParams(guided_decoding=GuidedDecodingParams(...)), on the shipped TinyStories model —
choices are members, regexes fullmatch, JSON validates — and an invalid constraint raises the
server's message as ValueError."""

import json
import re

import kite
import pytest
from kite import GuidedDecodingParams, SamplingParams, StructuredOutputsParams

from conftest import TINY


@pytest.fixture(scope="module")
def llm():
    return kite.LLM(TINY, seed=0)


def test_choice_regex_json(llm):
    choices = ["cat", "dog", "bird"]
    params = [
        SamplingParams(max_tokens=10, structured_outputs=StructuredOutputsParams(choice=choices)),
        SamplingParams(max_tokens=12, temperature=0.8, seed=3,
                       guided_decoding=GuidedDecodingParams(regex=r"[a-e]{2,4} [0-9]")),
        # (TinyStories' 2,048 tokens have no '{': a JSON string value it can write)
        SamplingParams(max_tokens=60, temperature=0, structured_outputs=StructuredOutputsParams(
            json={"enum": ["yes", "no", "maybe"]}, disable_any_whitespace=True)),
    ]
    outs = llm.generate(["Once upon a time"] * 3, params)
    tok = llm.get_tokenizer()

    def answer(out):
        # TinyStories' EOS text survives skip_special_tokens (a normalized special token, as in
        # tokenizers): the constrained answer is the text of the tokens before it.
        ids = list(out.token_ids)
        assert out.finish_reason == "stop" and ids[-1] == tok.eos_token_id, out
        return tok.decode(ids[:-1])

    assert answer(outs[0].outputs[0]) in choices
    assert re.fullmatch(r"[a-e]{2,4} [0-9]", answer(outs[1].outputs[0]))
    assert json.loads(answer(outs[2].outputs[0])) in ("yes", "no", "maybe")


def test_bad_constraints_raise():
    with pytest.raises(ValueError, match="conflicts|give either"):
        SamplingParams(structured_outputs=StructuredOutputsParams(regex="a"),
                       guided_decoding=GuidedDecodingParams(regex="b"))
    with pytest.raises(ValueError, match="more than one"):
        SamplingParams(structured_outputs=StructuredOutputsParams(regex="a", choice=["b"]))
    with pytest.raises(TypeError):
        SamplingParams(structured_outputs={"regex": "a"})


def test_invalid_schema_raises_from_generate(llm):
    p = SamplingParams(max_tokens=4,
                       structured_outputs=StructuredOutputsParams(json={"type": "nonsense"}))
    with pytest.raises(ValueError, match="JSON schema"):
        llm.generate("Once", p)
