"""Checks kite's beam search against transformers' `generate(num_beams=W)` on the shipped
TinyStories model (tests/data/models/tinystories-656k, a Llama checkpoint transformers loads as
it is). CI has no torch: there kite's beams are compared with a reference beam search over the
float64 numpy oracle (tests/python/test_llm_beam_search.py, tests/e2e/test_serve_beam_search.py);
this script closes the loop where torch is installed:

  PYTHONPATH=build/python python3 transformers_beam_check.py [--kite-bin build/bin/kite]
      [--widths 1,2,4] [--max-tokens 6] [--length-penalty 1.0] [--early-stopping]

For each width W it runs transformers (float64, eager attention, do_sample=False, num_beams=W,
num_return_sequences=W, output_scores=True, return_dict_in_generate=True) and kite's
`LLM.beam_search` (kite's python package: PYTHONPATH=<build>/python), and with --kite-bin also
`kite serve`'s /v1/completions with use_beam_search (token ids only: the completions response
carries no scores). It compares, best first, the beams' token sequences (must be equal) and their
scores: transformers' sequences_scores are cum_logprob / generated_len ** length_penalty, kite's
(vLLM's) ranking divides by the whole length (prompt included), so the check compares the
cumulative log-probabilities (transformers': the sum of compute_transition_scores over the
beam, which the script also checks against sequences_scores) within --tol (default 1e-3: kite
computes in float32). The default prompt and length reach no EOS and
have no near-tie at any cut, so both libraries' rankings agree exactly; where a beam ends in EOS
the length normalisations differ by design and the script says so instead of failing.
Exit status 1 on any mismatch. --skip-transformers runs kite only (no torch needed).
Where torch and kite's python package are on different machines (the GPU machine has torch but
not this build's Python module): `--save-reference F` there writes transformers' beams and
cumulative log-probabilities to F (no kite), and `--reference F` here compares kite with them.
"""

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
TINY = os.path.join(ROOT, "tests", "data", "models", "tinystories-656k")
sys.path.insert(0, HERE)
from beam_reference import PROMPT, STEPS  # noqa: E402
from kite_serve import kite_serve, post, report  # noqa: E402


def kite_beams(prompt_ids, width, max_tokens, length_penalty):
    """[(tokens after the prompt, cum_logprob)], best first, from LLM.beam_search."""
    import kite

    global _LLM
    if _LLM is None:
        _LLM = kite.LLM(TINY, device="cpu", seed=0)
    out = _LLM.beam_search([{"prompt_token_ids": prompt_ids}],
                           kite.BeamSearchParams(beam_width=width, max_tokens=max_tokens,
                                                 length_penalty=length_penalty))[0]
    return [(list(s.tokens[len(prompt_ids):]), float(s.cum_logprob)) for s in out.sequences]


_LLM = None


def serve_beams(kite_bin, prompt_ids, widths, max_tokens, length_penalty, log_path):
    """{width: [tokens after the prompt]} from kite serve's completions beam search."""
    out = {}
    args = [TINY, "--device", "cpu", "--served-model-name", "tiny", "--kv-cache-memory", "64MiB"]
    with kite_serve(kite_bin, args, log_path, ready_s=120) as base:
        for w in widths:
            body = {"model": "tiny", "prompt": prompt_ids, "n": w, "max_tokens": max_tokens,
                    "use_beam_search": True, "length_penalty": length_penalty,
                    "return_token_ids": True}
            status, r = post(base + "/v1/completions", body)
            if status != 200:
                raise RuntimeError(f"/v1/completions W={w}: HTTP {status} {r}")
            out[w] = [list(c["token_ids"]) for c in sorted(r["choices"], key=lambda c: c["index"])]
    return out


def hf_beams(model, prompt_ids, width, max_tokens, length_penalty, early_stopping, eos):
    """[(tokens after the prompt, cum_logprob)], best first, from transformers' generate."""
    import torch

    with torch.no_grad():
        out = model.generate(
            input_ids=torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids),
                                                                            dtype=torch.long),
            num_beams=width, do_sample=False, num_return_sequences=width,
            length_penalty=length_penalty, early_stopping=early_stopping,
            max_new_tokens=max_tokens, min_new_tokens=0, output_scores=True,
            return_dict_in_generate=True, pad_token_id=eos, eos_token_id=eos,
            temperature=None, top_p=None, top_k=None)
    # Per-token log-probabilities of each returned beam (transformers' documented way: their
    # sum with the length penalty applied is sequences_scores); padding after an early EOS
    # scores 0. num_beams=1 is greedy search in transformers: no beam indices, and its scores are
    # the raw logits (normalised here).
    beam_indices = getattr(out, "beam_indices", None)
    if beam_indices is None:
        trans = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    else:
        trans = model.compute_transition_scores(out.sequences, out.scores, beam_indices,
                                                normalize_logits=False)
    beams = []
    for i, seq in enumerate(out.sequences.tolist()):
        gen = seq[len(prompt_ids):]
        steps = int((beam_indices[i] >= 0).sum()) if beam_indices is not None else len(gen)
        gen = gen[:steps]
        cum = float(trans[i][:steps].sum())
        if getattr(out, "sequences_scores", None) is not None:
            via_score = float(out.sequences_scores[i]) * len(gen) ** length_penalty
            if abs(via_score - cum) > 1e-6:
                print(f"  note: sequences_scores * len ** lp = {via_score:.6f}, transition sum "
                      f"{cum:.6f} (this transformers version normalises another length)")
        beams.append((gen, cum))
    return beams


def transformers_refs(prompt_ids, widths, args, eos):
    """{width: [(tokens, cum_logprob)]} from transformers (float64, eager attention)."""
    import torch
    import transformers

    torch.set_default_dtype(torch.float64)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        TINY, dtype=torch.float64, attn_implementation="eager").eval()
    return {w: hf_beams(model, prompt_ids, w, args.max_tokens, args.length_penalty,
                        args.early_stopping, eos) for w in widths}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="1,2,4")
    ap.add_argument("--max-tokens", type=int, default=STEPS)
    ap.add_argument("--length-penalty", type=float, default=1.0)
    ap.add_argument("--early-stopping", action="store_true")
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--kite-bin", default=None, help="also check kite serve's completions")
    ap.add_argument("--save-reference", default=None,
                    help="run transformers only and write its beams to this JSON file")
    ap.add_argument("--reference", default=None,
                    help="transformers' beams from --save-reference instead of running torch")
    ap.add_argument("--skip-transformers", action="store_true",
                    help="run kite only (no torch needed): prints its beams")
    args = ap.parse_args()
    widths = [int(w) for w in args.widths.split(",")]

    from tokenizers import Tokenizer

    prompt_ids = Tokenizer.from_file(os.path.join(TINY, "tokenizer.json")).encode(args.prompt).ids
    with open(os.path.join(TINY, "config.json")) as f:
        eos = json.load(f)["eos_token_id"]
    if args.save_reference:
        refs = transformers_refs(prompt_ids, widths, args, eos)
        import torch
        import transformers
        with open(args.save_reference, "w") as f:
            json.dump({"prompt_ids": prompt_ids, "max_tokens": args.max_tokens,
                       "length_penalty": args.length_penalty,
                       "early_stopping": args.early_stopping,
                       "transformers": transformers.__version__, "torch": torch.__version__,
                       "beams": {str(w): refs[w] for w in widths}}, f, indent=1)
        for w in widths:
            for rank, (tokens, cum) in enumerate(refs[w]):
                print(f"transformers W={w} #{rank}: {tokens} cum_logprob {cum:.6f}")
        return 0
    kite = {w: kite_beams(prompt_ids, w, args.max_tokens, args.length_penalty) for w in widths}
    served = {}
    if args.kite_bin:
        served = serve_beams(args.kite_bin, prompt_ids, widths, args.max_tokens,
                             args.length_penalty, os.path.join(tempfile.mkdtemp(prefix="kite-beam-check-"), "serve.log"))
    for w in widths:
        for rank, (tokens, cum) in enumerate(kite[w]):
            print(f"kite W={w} #{rank}: {tokens} cum_logprob {cum:.6f}")
    failures = []
    for w in widths:
        if args.kite_bin and served[w] != [t for t, _ in kite[w]]:
            failures.append(f"W={w}: kite serve's beams {served[w]} != LLM.beam_search's")
    if args.skip_transformers:
        return report(failures)

    if args.reference:
        with open(args.reference) as f:
            saved = json.load(f)
        same = (saved["prompt_ids"] == prompt_ids and saved["max_tokens"] == args.max_tokens and
                saved["length_penalty"] == args.length_penalty and
                saved["early_stopping"] == args.early_stopping)
        if not same:
            failures.append(f"{args.reference} was written for another prompt or settings")
            return report(failures)
        print(f"reference: transformers {saved['transformers']}, torch {saved['torch']}")
        refs = {w: [(list(t), float(c)) for t, c in saved["beams"][str(w)]] for w in widths}
    else:
        refs = transformers_refs(prompt_ids, widths, args, eos)
    for w in widths:
        ref = refs[w]
        for rank, ((kt, kc), (ht, hc)) in enumerate(zip(kite[w], ref)):
            eos_ended = (kt and kt[-1] == eos) or (ht and ht[-1] == eos)
            print(f"W={w} #{rank}: kite {kt} {kc:.6f} | transformers {ht} {hc:.6f}")
            if kt != ht or abs(kc - hc) > args.tol:
                what = f"W={w} beam {rank}: kite {kt} ({kc:.6f}) != transformers {ht} ({hc:.6f})"
                if eos_ended:
                    print("  (a beam ended in EOS: vLLM and transformers normalise lengths "
                          "differently, not counted)")
                else:
                    failures.append(what)
        if len(kite[w]) != len(ref):
            failures.append(f"W={w}: kite returned {len(kite[w])} beams, transformers {len(ref)}")
    return report(failures)


if __name__ == "__main__":
    sys.exit(main())
