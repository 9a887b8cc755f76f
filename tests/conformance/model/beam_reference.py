"""The reference beam search the beam-search tests compare kite with: transformers' `num_beams`
step (every beam's next-token log-probabilities added to its score, the `width` best
(beam, token) pairs kept; no EOS handling) over a model oracle's float64 forward
(llama_oracle.py; torch is not a test dependency, so the oracle stands in for transformers').
Shared by tests/python/test_llm_beam_search.py and tests/e2e/test_serve_beam_search.py.
"""

import numpy as np

# A prompt and length with no EOS and no near-tie at any cut of widths 1, 2 and 4 on the
# shipped TinyStories model.
PROMPT = "The cat sat on the"
STEPS = 6


def log_softmax(x):
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


def reference_beams(oracle, prompt, width, steps, min_gap=None):
    """[(tokens, cum_logprob)], best first. min_gap: assert that the kept and the first dropped
    candidate at every cut differ by more than this, so the beams are not decided by rounding."""
    beams = [(list(prompt), 0.0)]
    for _ in range(steps):
        cands = []
        for tokens, cum in beams:
            lp = log_softmax(np.asarray(oracle.forward(tokens)[-1], dtype=np.float64))
            for tid in np.argsort(-lp, kind="stable")[:2 * width]:
                cands.append((tokens + [int(tid)], cum + float(lp[tid])))
        cands.sort(key=lambda c: -c[1])
        if min_gap is not None and len(cands) > width:
            assert cands[width - 1][1] - cands[width][1] > min_gap
        beams = cands[:width]
    return beams
