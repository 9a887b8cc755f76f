"""SamplingParams: vLLM's names and defaults; bad values raise ValueError with the engine's own
message (C++ SamplingParams::validate, shared with the HTTP server), wrong types TypeError."""

import kite
import pytest


def test_defaults_are_vllms():
    p = kite.SamplingParams()
    assert (p.n, p.temperature, p.top_p, p.top_k, p.min_p) == (1, 1.0, 1.0, 0, 0.0)
    assert (p.repetition_penalty, p.presence_penalty, p.frequency_penalty) == (1.0, 0.0, 0.0)
    assert (p.max_tokens, p.min_tokens, p.seed, p.stop, p.stop_token_ids) == (16, 0, None, [], [])
    assert kite.SamplingParams(stop="x").stop == ["x"]
    assert (p.logprobs, p.prompt_logprobs, p.ignore_eos) == (None, None, False)
    assert p.skip_special_tokens and p.spaces_between_special_tokens
    assert not p.include_stop_str_in_output
    assert p.sampling_type == "random"
    assert kite.SamplingParams(temperature=0).sampling_type == "greedy"
    assert kite.SamplingParams(seed=3).sampling_type == "random_seed"


def test_clone_eq_repr():
    p = kite.SamplingParams(temperature=0.5, stop=["x"], logit_bias={3: 1.0})
    q = p.clone()
    assert p == q and p is not q
    q.stop.append("y")
    assert p.stop == ["x"]
    assert p != q
    assert repr(p).startswith("SamplingParams(n=1, temperature=0.5")


# (arguments, the engine's message); the messages are SamplingParams::validate's.
INVALID = [
    ({"n": 0}, "n must be in [1, 1024], got 0"),
    ({"n": 1025}, "n must be in [1, 1024], got 1025"),
    ({"temperature": -1}, "temperature must be >= 0, got -1"),
    ({"temperature": float("inf")}, "temperature must be >= 0, got inf"),
    ({"top_p": 0}, "top_p must be in (0, 1], got 0"),
    ({"top_p": 1.5}, "top_p must be in (0, 1], got 1.5"),
    ({"top_k": -2}, "top_k must be -1 or 0 (disabled) or at least 1, got -2"),
    ({"min_p": 1.5}, "min_p must be in [0, 1], got 1.5"),
    ({"repetition_penalty": 0}, "repetition_penalty must be > 0, got 0"),
    ({"presence_penalty": 2.5}, "presence_penalty must be in [-2, 2], got 2.5"),
    ({"frequency_penalty": -3}, "frequency_penalty must be in [-2, 2], got -3"),
    ({"max_tokens": 0}, "max_tokens must be at least 1, got 0"),
    ({"min_tokens": -1}, "min_tokens must be >= 0, got -1"),
    ({"min_tokens": 20, "max_tokens": 10}, "min_tokens (20) must be <= max_tokens (10)"),
    ({"stop": ["ok", ""]}, "stop[1] must not be empty"),
    ({"stop": ""}, "stop[0] must not be empty"),
    ({"logprobs": 21}, "logprobs must be in [0, 20], got 21"),
    ({"logprobs": -1}, "logprobs must be in [0, 20], got -1"),
    ({"prompt_logprobs": 100}, "prompt_logprobs must be in [0, 20], got 100"),
    ({"logit_bias": {5: 200.0}}, "logit_bias for token 5 must be in [-100, 100], got 200"),
    ({"logit_bias": {-1: 1.0}}, "logit_bias has token id -1 outside the vocabulary [0, inf)"),
    ({"stop_token_ids": [-5]}, "stop_token_ids has token id -5 outside the vocabulary [0, inf)"),
]


@pytest.mark.parametrize("kwargs,message", INVALID, ids=[m for _, m in INVALID])
def test_invalid_values_raise_the_engines_message(kwargs, message):
    with pytest.raises(ValueError) as e:
        kite.SamplingParams(**kwargs)
    assert str(e.value) == message


WRONG_TYPES = [
    ({"n": 1.5}, "n must be an integer, got 1.5"),
    ({"n": True}, "n must be an integer, got True"),
    ({"temperature": "hot"}, "temperature must be a number, got 'hot'"),
    ({"top_k": None}, "top_k must be an integer, got None"),
    ({"stop": [1]}, "stop must be a string or a list of strings, got [1]"),
    ({"ignore_eos": 1}, "ignore_eos must be True or False, got 1"),
    ({"logit_bias": [(1, 2.0)]}, "logit_bias must be a dict of token id to bias"),
]


@pytest.mark.parametrize("kwargs,message", WRONG_TYPES, ids=[m for _, m in WRONG_TYPES])
def test_wrong_types_raise_type_error(kwargs, message):
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace("[", r"\[")):
        kite.SamplingParams(**kwargs)


def test_unknown_argument_is_a_type_error():
    with pytest.raises(TypeError):
        kite.SamplingParams(best_of=2)


def test_values_changed_after_construction_are_checked_at_generate(tiny_llm):
    p = kite.SamplingParams(max_tokens=4)
    p.temperature = -0.5
    with pytest.raises(ValueError, match=r"^temperature must be >= 0, got -0.5$"):
        tiny_llm.generate("Once upon a time", p, use_tqdm=False)


# Checks that need the model (its vocabulary and context): the engine's add_request messages.
MODEL_INVALID = [
    ({"stop_token_ids": [5000]}, "stop_token_ids has token id 5000 outside the vocabulary "
                                 "[0, 2048)"),
    ({"logit_bias": {2048: 1.0}}, "logit_bias has token id 2048 outside the vocabulary [0, 2048)"),
    ({"n": 300}, "n (300) exceeds max_num_seqs (256)"),
]


@pytest.mark.parametrize("kwargs,message", MODEL_INVALID, ids=[m for _, m in MODEL_INVALID])
def test_model_dependent_values_raise_at_generate(tiny_llm, kwargs, message):
    p = kite.SamplingParams(max_tokens=4, **kwargs)
    with pytest.raises(ValueError) as e:
        tiny_llm.generate("Once upon a time", p, use_tqdm=False)
    assert str(e.value) == message
