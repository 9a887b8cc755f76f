"""SamplingParams: vLLM's names and defaults; bad values raise ValueError (wrong types TypeError)
with exactly the message `kite serve` answers the same values with.

Both go through the same C++ code (the server's request parser, then SamplingParams::validate);
the parity test below still asks a running `kite serve` (KITE_BIN) and compares the messages,
so a second validator on either side would show.
"""

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import kite
import pytest

from conftest import TINY

KITE = os.environ.get("KITE_BIN", os.path.join(os.path.dirname(TINY), "..", "..", "..", "build",
                                               "bin", "kite"))


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


def test_python_number_types_are_accepted():
    np = pytest.importorskip("numpy")
    p = kite.SamplingParams(n=np.int64(2), temperature=np.float32(0.5), max_tokens=np.int32(7),
                            logit_bias={np.int64(3): np.float64(1.5)})
    core = p._to_core()
    assert (core.n, core.temperature, core.max_tokens) == (2, 0.5, 7)
    assert core.logit_bias == [(3, 1.5)]
    assert kite.SamplingParams(max_tokens=None)._to_core().max_tokens >= 1 << 62


# Bad values and the error `kite serve` gives for them in a /v1/completions request. The
# messages are written out (not only compared with the server's) so that a change shows here.
INVALID = [
    ({"n": 0}, "'n' must be between 1 and 128, got 0"),
    ({"n": 129}, "'n' must be between 1 and 128, got 129"),
    ({"temperature": -1}, "'temperature' must be >= 0, got -1"),
    ({"top_p": 0}, "'top_p' must be in (0, 1], got 0"),
    ({"top_p": 1.5}, "'top_p' must be between 0 and 1, got 1.5"),
    ({"top_k": -2}, "'top_k' must be between -1 and 2147483647, got -2"),
    ({"min_p": 1.5}, "'min_p' must be between 0 and 1, got 1.5"),
    ({"repetition_penalty": 0}, "'repetition_penalty' must be > 0, got 0"),
    ({"presence_penalty": 2.5}, "'presence_penalty' must be between -2 and 2, got 2.5"),
    ({"frequency_penalty": -3}, "'frequency_penalty' must be between -2 and 2, got -3"),
    ({"max_tokens": 0}, "'max_tokens' must be >= 1, got 0"),
    ({"min_tokens": -1}, "'min_tokens' must be >= 0, got -1"),
    ({"min_tokens": 20, "max_tokens": 10}, "'min_tokens' (20) must not exceed max_tokens (10)"),
    ({"stop": ""}, "'stop' must not be an empty string"),
    ({"stop": ["ok", ""]}, "'stop[1]' must not be an empty string"),
    ({"logprobs": 21}, "'logprobs' must be between 0 and 20, got 21"),
    ({"logprobs": -1}, "'logprobs' must be between 0 and 20, got -1"),
    ({"prompt_logprobs": 100}, "'prompt_logprobs' must be between 0 and 20, got 100"),
    ({"logit_bias": {5: 200.0}}, "'logit_bias' values must be between -100 and 100, got 200 "
                                 "for token 5"),
]
# Token ids are checked against the model's vocabulary (2048 here): SamplingParams() alone
# cannot, so these raise from generate().
INVALID_FOR_MODEL = [
    ({"stop_token_ids": [5000]}, "'stop_token_ids[0]': token id 5000 is out of the vocabulary "
                                 "[0, 2048)"),
    ({"logit_bias": {2048: 1.0}}, "'logit_bias' keys must be token ids in [0, 2048), got '2048'"),
]
WRONG_TYPES = [
    ({"n": 1.5}, "'n' must be an integer, got number"),
    ({"n": True}, "'n' must be an integer, got boolean"),
    ({"temperature": "hot"}, "'temperature' must be a number, got string"),
    ({"stop": [1]}, "'stop[0]' must be a string or an array of strings, got integer"),
    ({"ignore_eos": 1}, "'ignore_eos' must be a boolean, got integer"),
    ({"seed": "x"}, "'seed' must be an integer, got string"),
    ({"logit_bias": [[1, 2.0]]}, "'logit_bias' must be an object, got array"),
]


def _ids(cases):
    return [m for _, m in cases]


@pytest.mark.parametrize("kwargs,message", INVALID, ids=_ids(INVALID))
def test_invalid_values_raise_value_error(kwargs, message):
    with pytest.raises(ValueError) as e:
        kite.SamplingParams(**kwargs)
    assert str(e.value) == message


@pytest.mark.parametrize("kwargs,message", WRONG_TYPES, ids=_ids(WRONG_TYPES))
def test_wrong_types_raise_type_error(kwargs, message):
    with pytest.raises(TypeError) as e:
        kite.SamplingParams(**kwargs)
    assert str(e.value) == message


def test_values_json_cannot_carry_are_refused_in_the_servers_form():
    with pytest.raises(ValueError, match=r"^'temperature' must be a finite number, got inf$"):
        kite.SamplingParams(temperature=float("inf"))
    with pytest.raises(TypeError, match=r"^'top_p' must be a JSON-like value"):
        kite.SamplingParams(top_p=object())


def test_unknown_argument_is_a_type_error():
    with pytest.raises(TypeError):
        kite.SamplingParams(best_of=2)


def _generate_error(llm, kwargs):
    """The exception generate() raises for `kwargs` set after construction (so the checks that
    need the model run too)."""
    p = kite.SamplingParams(max_tokens=4)
    for name, value in kwargs.items():
        setattr(p, name, value)
    with pytest.raises((ValueError, TypeError)) as e:
        llm.generate("Once upon a time", p, use_tqdm=False)
    return e.value


@pytest.mark.parametrize("kwargs,message", INVALID_FOR_MODEL, ids=_ids(INVALID_FOR_MODEL))
def test_model_dependent_values_raise_at_generate(tiny_llm, kwargs, message):
    kite.SamplingParams(**kwargs)  # fine without a model
    e = _generate_error(tiny_llm, kwargs)
    assert type(e) is ValueError and str(e) == message


def test_values_changed_after_construction_are_checked_at_generate(tiny_llm):
    e = _generate_error(tiny_llm, {"temperature": -0.5})
    assert type(e) is ValueError and str(e) == "'temperature' must be >= 0, got -0.5"


def test_engine_limits_raise_the_engines_message():
    with kite.LLM(TINY, max_num_seqs=4) as llm:
        with pytest.raises(ValueError) as e:
            llm.generate("Once upon a time", kite.SamplingParams(n=8, max_tokens=2),
                         use_tqdm=False)
    assert str(e.value) == "n (8) exceeds max_num_seqs (4)"


# ---- parity with `kite serve` -----------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    """`kite serve` on the shipped model (port chosen by the OS); yields its base URL."""
    if not os.path.exists(KITE):
        pytest.skip(f"no kite binary at {KITE} (set KITE_BIN)")
    proc = subprocess.Popen([KITE, "serve", TINY, "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        for line in proc.stderr:
            m = re.search(r"listening on (http://[0-9.]+:\d+)", line)
            if m:
                url = m.group(1)
                break
            if time.monotonic() > deadline:
                break
        assert url, "kite serve did not report its address"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        else:
            pytest.fail("kite serve did not become healthy")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _server_error(url, kwargs):
    body = {"prompt": "Once upon a time", "max_tokens": 4}
    body.update(json.loads(json.dumps(kwargs)))  # dict keys become strings, as a client's would
    req = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=60)
    assert e.value.code == 400
    return json.loads(e.value.read())["error"]


@pytest.mark.parametrize("kwargs,message", INVALID + INVALID_FOR_MODEL + WRONG_TYPES,
                         ids=_ids(INVALID + INVALID_FOR_MODEL + WRONG_TYPES))
def test_messages_equal_kite_serves(server, tiny_llm, kwargs, message):
    error = _server_error(server, kwargs)
    assert error["message"] == message
    e = _generate_error(tiny_llm, kwargs)
    assert str(e) == error["message"]
    assert type(e) is (TypeError if error["code"] == "invalid_type" else ValueError)
