"""Checks kite's embeddings against transformers itself. CI has no torch: there kite's
embeddings are compared with the float64 numpy oracle (tests/e2e/test_serve_embeddings.py,
tests/python/test_llm_embed.py); this script closes the loop where torch is installed:

  python3 transformers_embed_check.py --kite-bin build/bin/kite [--device cpu|cuda] [--work DIR]

It writes the tiny random-weight Qwen3 embedding models of embed_models.py (last-token pooling
with Matryoshka sizes, and mean pooling), starts `kite serve MODEL --runner pooling` for each,
asks /v1/embeddings for a batch of texts and token ids (and dimensions=16 where allowed), and
compares every vector with transformers' AutoModel (Qwen3Model, float64, eager attention):
last_hidden_state pooled (last token / mean) and L2-normalised. It also compares the numpy oracle
with transformers, so a mismatch says which side is off. Exit status 1 on any difference above
--tol (default 1e-4 on unit vectors: kite computes in float32 on the CPU; use --tol 2e-2 for the
bfloat16 CUDA path). --skip-transformers stops before importing torch (checks kite against the
oracle only).
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import embed_models  # noqa: E402
from kite_serve import kite_serve, post, report  # noqa: E402

TEXTS = ["The cat sat on the mat.", "Once upon a time there was a little dog", "a"]
IDS = [[5, 17, 300, 2000, 44], [9]]
MODELS = [  # (name, pooling, matryoshka, dimensions to ask for)
    ("last", "lasttoken", [16, 32], 16),
    ("mean", "mean", None, None),
]


def kite_embeddings(kite_bin, model_dir, device, inputs, dimensions, log_path):
    """{input index: vector} from a `kite serve` started for this model."""
    args = [model_dir, "--runner", "pooling", "--device", device, "--served-model-name", "emb",
            "--max-model-len", "128"]
    if device == "cpu":
        args += ["--kv-cache-memory", "16MiB"]
    out = []
    with kite_serve(kite_bin, args, log_path) as base:
        for body in inputs:
            if dimensions:
                body = dict(body, dimensions=dimensions)
            status, r = post(base + "/v1/embeddings", dict(body, model="emb"))
            if status != 200:
                raise RuntimeError(f"/v1/embeddings {body}: HTTP {status} {r}")
            out.append([np.asarray(d["embedding"], dtype=np.float64) for d in r["data"]])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kite-bin", default=os.path.join(embed_models.ROOT, "build", "bin", "kite"))
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--work", default=None, help="folder for the models and logs (default: temp)")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--skip-transformers", action="store_true",
                    help="compare kite with the numpy oracle only (no torch needed)")
    args = ap.parse_args()
    if not os.path.exists(args.kite_bin):
        sys.exit(f"no kite binary at {args.kite_bin} (--kite-bin)")
    work = args.work or tempfile.mkdtemp(prefix="kite-embed-check-")
    from tokenizers import Tokenizer  # the tokenizer the texts go through, as kite's

    failures = []
    results = []  # (model name, pooling, model_dir, [(ids, dims, kite vector)])
    for name, pooling, matryoshka, dims in MODELS:
        model_dir = embed_models.make_embedding_model(os.path.join(work, name), pooling, matryoshka)
        tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        inputs = [{"input": TEXTS}, {"input": IDS}]
        token_ids = [[tok.encode(t).ids for t in TEXTS], IDS]
        got = kite_embeddings(args.kite_bin, model_dir, args.device, inputs, dims,
                              os.path.join(work, f"{name}.log"))
        oracle = embed_models.oracle(model_dir)
        rows = []
        for batch_ids, batch_got in zip(token_ids, got):
            for ids, vec in zip(batch_ids, batch_got):
                ref = embed_models.reference_embedding(oracle, ids, pooling, dims)
                err = float(np.max(np.abs(vec - ref))) if vec.shape == ref.shape else np.inf
                print(f"{name}: kite vs oracle  {len(ids):3d} tokens  max |diff| {err:.2e}")
                if not err <= args.tol:
                    failures.append(f"{name} {ids[:6]}: kite vs oracle {err:.2e}")
                rows.append((ids, vec))
        results.append((name, pooling, dims, model_dir, rows))
    if args.skip_transformers:
        return report(failures, "OK: kite's embeddings match")

    import torch
    import transformers

    torch.set_default_dtype(torch.float64)
    for name, pooling, dims, model_dir, rows in results:
        model = transformers.AutoModel.from_pretrained(
            model_dir, dtype=torch.float64, attn_implementation="eager").eval()
        oracle = embed_models.oracle(model_dir)
        for ids, vec in rows:
            with torch.no_grad():
                hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()
            ref = embed_models.pool(hidden, pooling, dims)
            oracle_err = float(np.max(np.abs(
                embed_models.reference_embedding(oracle, ids, pooling, dims) - ref)))
            err = float(np.max(np.abs(vec - ref))) if vec.shape == ref.shape else np.inf
            print(f"{name}: kite vs transformers {len(ids):3d} tokens  max |diff| {err:.2e}  "
                  f"(oracle vs transformers {oracle_err:.2e})")
            if not err <= args.tol:
                failures.append(f"{name} {ids[:6]}: kite vs transformers {err:.2e}")
            # transformers normalises (RMSNorm) in float32 inside its float64 run: ~1e-7 on
            # these unit vectors; a real mismatch (pooling, norm, RoPE) is orders larger.
            if not oracle_err <= 1e-6:
                failures.append(f"{name} {ids[:6]}: oracle vs transformers {oracle_err:.2e}")
    return report(failures, "OK: kite's embeddings match")


if __name__ == "__main__":
    sys.exit(main())
