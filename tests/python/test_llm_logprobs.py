"""logprobs and prompt_logprobs in vLLM's shape, checked for consistency (chosen token first,
ranks, top-k order, cumulative sum) and against the float64 numpy oracle of the model
(tests/conformance/model/llama_oracle.py) on the shipped TinyStories model.

Tolerance: kite's CPU logits agree with the oracle to 1e-4 (forward conformance test); a
log-softmax value moves by at most twice the largest logit error, so logprobs agree to 2e-4.
"""

import math
import os
import sys

import kite
import numpy as np
import pytest

from conftest import ROOT, TINY

sys.path.insert(0, os.path.join(ROOT, "tests", "conformance", "model"))
import llama_oracle  # noqa: E402

TOL = 2e-4


@pytest.fixture(scope="module")
def oracle():
    return llama_oracle.Model(TINY)


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def check_entry(entry, chosen, ref, k):
    """entry: {token id: Logprob} of one position; ref: the oracle's log-probabilities there."""
    assert list(entry)[0] == chosen  # the chosen token first, as vLLM
    for tid, lp in entry.items():
        assert abs(lp.logprob - ref[tid]) <= TOL, (tid, lp.logprob, ref[tid])
        assert lp.decoded_token is not None
        # rank = 1 + the number of more likely tokens (up to near-ties with the oracle).
        higher = int((ref > ref[tid] + 10 * TOL).sum())
        not_lower = int((ref >= ref[tid] - 10 * TOL).sum())
        assert higher + 1 <= lp.rank <= not_lower, (tid, lp.rank, higher, not_lower)
    # The top-k: ranks 1..k, most likely first; plus the chosen token when it is not among them.
    top = sorted((lp.rank, lp.logprob, tid) for tid, lp in entry.items() if lp.rank <= k)
    assert [r for r, _, _ in top] == list(range(1, k + 1))
    assert all(a[1] >= b[1] for a, b in zip(top, top[1:]))
    assert len(entry) == (k if entry[chosen].rank <= k else k + 1) or k == 0
    order = np.argsort(-ref, kind="stable")
    if k > 0 and ref[order[k - 1]] - ref[order[k]] > 10 * TOL:  # the k-th is clear of the next
        assert {tid for _, _, tid in top} == {int(i) for i in order[:k]}


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_logprobs_match_the_oracle(tiny_llm, oracle, temperature):
    k = 5
    params = kite.SamplingParams(temperature=temperature, seed=11, max_tokens=12, logprobs=k,
                                 prompt_logprobs=3, ignore_eos=True)
    out = tiny_llm.generate("Once upon a time, there was", params, use_tqdm=False)[0]
    prompt = out.prompt_token_ids
    completion = out.outputs[0]
    ids = completion.token_ids
    assert len(ids) == 12 and len(completion.logprobs) == 12
    logits = oracle.forward(prompt + ids[:-1])
    # Output logprobs are those of the processed logits (here: divided by the temperature).
    ref = log_softmax(logits / (temperature if temperature > 0 else 1.0))
    for t, entry in enumerate(completion.logprobs):
        pos = len(prompt) - 1 + t
        check_entry(entry, ids[t], ref[pos], k)
        if temperature == 0:
            assert entry[ids[t]].rank == 1  # greedy picks the most likely
    chosen = [entry[ids[t]].logprob for t, entry in enumerate(completion.logprobs)]
    assert completion.cumulative_logprob == pytest.approx(math.fsum(chosen), abs=1e-9)

    # Prompt logprobs are raw: the log-softmax of the logits at the previous position.
    raw = log_softmax(logits)
    assert out.prompt_logprobs[0] is None
    assert len(out.prompt_logprobs) == len(prompt)
    for i in range(1, len(prompt)):
        check_entry(out.prompt_logprobs[i], prompt[i], raw[i - 1], 3)


def test_logprobs_zero_gives_the_chosen_token_only(tiny_llm):
    params = kite.SamplingParams(temperature=0, max_tokens=4, logprobs=0)
    c = tiny_llm.generate("Once upon a time", params, use_tqdm=False)[0].outputs[0]
    assert [list(e) for e in c.logprobs] == [[t] for t in c.token_ids]
    assert all(e[t].rank == 1 for e, t in zip(c.logprobs, c.token_ids))


def test_no_logprobs_unless_asked(tiny_llm):
    out = tiny_llm.generate("Once", kite.SamplingParams(max_tokens=3), use_tqdm=False)[0]
    assert out.outputs[0].logprobs is None and out.outputs[0].cumulative_logprob is None
    assert out.prompt_logprobs is None


def test_decoded_tokens_are_the_tokens_text(tiny_llm):
    tok = tiny_llm.get_tokenizer()
    params = kite.SamplingParams(temperature=0, max_tokens=5, logprobs=2)
    c = tiny_llm.generate("Once upon a time", params, use_tqdm=False)[0].outputs[0]
    for entry in c.logprobs:
        for tid, lp in entry.items():
            assert lp.decoded_token == tok.decode([tid])
