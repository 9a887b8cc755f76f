"""Checks the numpy oracles (llama_oracle.py, gemma_oracle.py) against transformers itself, on
the tiny models of make_tiny_models.py. CI has no torch, so CI compares kite's CPU logits with
the oracles only; this script closes the loop where torch is installed (the GPU machine; it
runs on the CPU, in float64):

  python3 transformers_check.py [--models phi3-fused,gemma2-bf16,...] [--work DIR]

For each model and prompt it runs transformers the way kite runs the sequence — the prompt in
one forward call, then one token per call on the KV cache (this matters for LongRoPE, whose
frequencies transformers picks per call) — with eager attention in float64, greedy for 24
steps, and compares the logits at every position with the oracle's full forward over the same
tokens. Exit status 1 when any model differs by more than TOL (below) or picks another greedy token.
"""

import argparse
import math
import os
import sys
import tempfile

import numpy as np
import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tiny_models  # noqa: E402
from gemma_oracle import GemmaModel  # noqa: E402
from llama_oracle import Model  # noqa: E402

# transformers' float64 run is not float64 throughout: its RMSNorms (Llama's, Qwen's, Phi's,
# Mistral's, Gemma's) cast the hidden state to float32 for the normalisation, and its RoPE tables
# are computed in float32, so its logits carry float32 rounding (2-7e-6 on these models, with the
# oracle's exact float64 on the other side). TOL bounds that, three orders of magnitude under any
# real mistake (a wrong scaling, norm or routing moves logits by 1e-2 or more); greedy tokens
# must be identical.
TOL = 2e-5
PROMPTS = [[1, 5, 9, 33], [7], [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8]]
STEPS = 24
MODELS = ["llama31-bf16", "qwen2-f16-sharded", "qwen3-f32", "mistral-mqa", "phi3-fused",
          "phi3-longrope", "gemma2-bf16", "gemma3-f32", "qwen3moe-bf16", "qwen3moe-step2-f32",
          "mixtral-f16"]


@torch.no_grad()
def hf_run(model, prompt):
    """Prompt in one call, then one token per call; greedy. Returns (ids, logits [T-1, V])."""
    out = model(input_ids=torch.tensor([prompt]), use_cache=True)
    logits = list(out.logits[0].numpy())
    past = out.past_key_values
    ids = list(prompt)
    for s in range(STEPS):
        nxt = int(np.argmax(logits[-1]))
        ids.append(nxt)
        if s + 1 == STEPS:
            break
        out = model(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits.append(out.logits[0, -1].numpy())
    return ids, np.array(logits)


def check(model_dir, name):
    config = transformers.AutoConfig.from_pretrained(model_dir)
    # Phi-3's config class defaults pad_token_id to 32000, past the tiny vocabulary, and
    # nn.Embedding refuses a padding index outside the table (padding plays no part here).
    if getattr(config, "pad_token_id", None) is not None and config.pad_token_id >= config.vocab_size:
        config.pad_token_id = None
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, config=config, dtype=torch.float64, attn_implementation="eager",
        experts_implementation="eager")  # its grouped_mm experts take no float64
    model.eval()
    arch = model.config.architectures[0]
    oracle = GemmaModel(model_dir) if arch.startswith("Gemma") else Model(model_dir)
    if arch.startswith("Gemma"):
        # transformers rounds sqrt(hidden) to the dtype it runs in: here float64.
        oracle.normalizer = math.sqrt(model.config.hidden_size)
    worst, ok = 0.0, True
    for prompt in PROMPTS:
        ids, hf_logits = hf_run(model, prompt)
        ref = oracle.forward(ids[:-1])
        diff = float(np.abs(ref - hf_logits).max())
        worst = max(worst, diff)
        greedy_ok = all(int(np.argmax(ref[p])) == ids[p + 1] for p in range(len(prompt) - 1,
                                                                             len(ids) - 1))
        ok = ok and diff <= TOL and greedy_ok
        print(f"{name} prompt of {len(prompt)}: max |oracle - transformers| {diff:.3g}, "
              f"greedy {'same' if greedy_ok else 'DIFFERENT'}", flush=True)
    return ok, worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--work", default="")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="kite-tiny-")
    sys.argv = ["make_tiny_models.py", work, "--no-gguf"]  # transformers reads no GGUF
    make_tiny_models.main()
    failed = []
    for name in a.models.split(","):
        ok, worst = check(os.path.join(work, name), name)
        print(f"{name}: {'ok' if ok else 'FAILED'} (worst {worst:.3g})", flush=True)
        if not ok:
            failed.append(name)
    print("all models agree" if not failed else f"failed: {', '.join(failed)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
