"""LLM.beam_search (vLLM's shape) on the shipped TinyStories model, widths 1, 2 and 4, against
a reference beam search written here over the float64 numpy oracle of the model
(tests/conformance/model/llama_oracle.py) with transformers' `num_beams` step (every beam's
next-token log-probabilities added to its score, the `width` best (beam, token) pairs kept):
the same beams in the same order with the same cumulative log-probabilities. torch is not a
test dependency, so the oracle stands in for transformers' forward.

Tolerance: kite's logprobs agree with the oracle to 2e-4 per token (test_llm_logprobs.py), so a
sum over T tokens to T * 2e-4; the test checks that no two reference candidates at a cut are
closer than that, so the beams themselves are not decided by rounding."""

import os
import sys

import kite
import pytest

from conftest import ROOT, TINY

sys.path.insert(0, os.path.join(ROOT, "tests", "conformance", "model"))
import beam_reference  # noqa: E402
import llama_oracle  # noqa: E402
from beam_reference import PROMPT  # noqa: E402

T = beam_reference.STEPS
TOL = T * 2e-4


@pytest.fixture(scope="module")
def oracle():
    return llama_oracle.Model(TINY)


def reference_beams(oracle, prompt, width, steps):
    # The cut is clear of kite's tolerance.
    return beam_reference.reference_beams(oracle, prompt, width, steps, min_gap=2 * TOL)


@pytest.mark.parametrize("width", [1, 2, 4])
def test_beams_match_the_reference(tiny_llm, oracle, width):
    prompt = tiny_llm.get_tokenizer().encode(PROMPT)
    ref = reference_beams(oracle, prompt, width, T)
    out = tiny_llm.beam_search([{"prompt_token_ids": prompt}],
                               kite.BeamSearchParams(beam_width=width, max_tokens=T))[0]
    eos = tiny_llm.model_info.eos_token_ids
    assert all(t not in eos for tokens, _ in ref for t in tokens[len(prompt):])
    assert [b.tokens for b in out.sequences] == [tokens for tokens, _ in ref]
    for beam, (_, cum) in zip(out.sequences, ref):
        assert abs(beam.cum_logprob - cum) <= TOL, (beam.cum_logprob, cum)
        assert len(beam.logprobs) == T and beam.finish_reason == "length"
        assert beam.text == tiny_llm.get_tokenizer().decode(beam.tokens, skip_special_tokens=True)
    if width == 1:  # width 1 is greedy decoding
        greedy = tiny_llm.generate({"prompt_token_ids": prompt},
                                   kite.SamplingParams(temperature=0, max_tokens=T, logprobs=0),
                                   use_tqdm=False)[0].outputs[0]
        assert out.sequences[0].tokens[len(prompt):] == list(greedy.token_ids)
        assert abs(out.sequences[0].cum_logprob - greedy.cumulative_logprob) <= 1e-5


def test_beam_search_is_deterministic_and_validates(tiny_llm):
    params = kite.BeamSearchParams(beam_width=3, max_tokens=4)
    a = tiny_llm.beam_search(["One day", "Tom had a"], params)
    b = tiny_llm.beam_search(["One day", "Tom had a"], params)
    assert [[s.tokens for s in o.sequences] for o in a] == \
        [[s.tokens for s in o.sequences] for o in b]
    assert all(len(o.sequences) == 3 for o in a)
    for bad in (dict(beam_width=0, max_tokens=4), dict(beam_width=33, max_tokens=4),
                dict(beam_width=2, max_tokens=0)):
        with pytest.raises(ValueError):
            kite.BeamSearchParams(**bad)
