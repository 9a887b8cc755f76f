#!/usr/bin/env python3
"""Mask time per token of llguidance (the PyPI wheel) on the cases of grammar_mask_cases.json:
each case's instance is tokenized with the given tokenizer.json, and at every position the
matcher computes the next-token bitmask (timed), then consumes the instance's token. The same
walk as kite_grammar_mask_bench (xgrammar's C++ core inside kite), for the comparison in
docs/structured-outputs.md. Needs: pip install llguidance tokenizers numpy.

    python scripts/benchmarks/mask_llguidance.py TOKENIZER_JSON [--cases FILE] [--repeat N]
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import llguidance
import llguidance.numpy
from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer_json")
    ap.add_argument("--cases", default=os.path.join(os.path.dirname(__file__),
                                                    "grammar_mask_cases.json"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--eos", type=int, default=128009)
    a = ap.parse_args()
    text = open(a.tokenizer_json).read()
    hf = Tokenizer.from_str(text)
    n_vocab = hf.get_vocab_size(with_added_tokens=True)
    t0 = time.perf_counter()
    lltok = llguidance.LLTokenizer(text, n_vocab=n_vocab, eos_token=a.eos)
    print(f"llguidance {llguidance.__version__ if hasattr(llguidance, '__version__') else ''}: "
          f"tokenizer {n_vocab} tokens, built in {1e3 * (time.perf_counter() - t0):.0f} ms")
    cases = json.load(open(a.cases))["cases"]
    mask = llguidance.numpy.allocate_token_bitmask(1, n_vocab)
    all_us = []
    print(f"{'case':18} {'compile ms':>10} {'tokens':>6} {'mean us':>8} {'p50 us':>8} {'p99 us':>8}")
    for c in cases:
        ids = hf.encode(c["instance"], add_special_tokens=False).ids
        grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(c["schema"]))
        t0 = time.perf_counter()
        m = llguidance.LLMatcher(lltok, grammar)
        compile_ms = 1e3 * (time.perf_counter() - t0)
        if m.is_error():
            print(f"{c['name']}: {m.get_error()}")
            continue
        times = []
        for _ in range(a.repeat):
            m = llguidance.LLMatcher(lltok, grammar)
            for t in ids:
                t1 = time.perf_counter()
                llguidance.numpy.fill_next_token_bitmask(m, mask, 0)
                times.append(1e6 * (time.perf_counter() - t1))
                allowed = (int(mask[0, t // 32]) >> (t % 32)) & 1
                if not allowed or not m.consume_token(t):
                    raise SystemExit(f"{c['name']}: token {t} ({hf.id_to_token(t)!r}) refused: "
                                     f"{m.get_error()}")
            t1 = time.perf_counter()
            llguidance.numpy.fill_next_token_bitmask(m, mask, 0)
            times.append(1e6 * (time.perf_counter() - t1))
            if not (int(mask[0, a.eos // 32]) >> (a.eos % 32)) & 1:
                raise SystemExit(f"{c['name']}: EOS not allowed at the end")
        all_us += times
        q = np.percentile(times, [50, 99])
        print(f"{c['name']:18} {compile_ms:10.1f} {len(ids):6d} {statistics.mean(times):8.1f} "
              f"{q[0]:8.1f} {q[1]:8.1f}")
    q = np.percentile(all_us, [50, 99])
    print(f"{'all':18} {'':10} {len(all_us):6d} {statistics.mean(all_us):8.1f} {q[0]:8.1f} "
          f"{q[1]:8.1f}")


if __name__ == "__main__":
    main()
