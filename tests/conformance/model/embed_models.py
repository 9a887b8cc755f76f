"""Tiny random-weight Qwen3 embedding models (the Qwen3-Embedding layout: a Qwen3ForCausalLM
checkpoint with tied embeddings, sentence-transformers' modules.json + 1_Pooling/config.json +
Normalize) and their reference embeddings from the float64 numpy oracle (llama_oracle.py): the
final norm's output pooled (last token or mean) and L2-normalised, Matryoshka-truncated first
when `dimensions` is given. The tokenizer is the shipped TinyStories one (vocab 2048), so text
inputs work. Shared by the e2e, Python and transformers checks of embeddings.
"""

import json
import os
import shutil

import numpy as np

import llama_oracle
import make_tiny_models

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
TINY = os.path.join(ROOT, "tests", "data", "models", "tinystories-656k")

HIDDEN = 32


def make_embedding_model(dest, pooling="lasttoken", matryoshka=None, seed=11):
    """Writes the model to `dest` and returns it.

    pooling: "lasttoken" or "mean" (a 1_Pooling/config.json with that mode), or None (no
    modules.json: kite then pools the last token, vLLM's default). matryoshka: None, True
    (is_matryoshka) or a list of sizes (matryoshka_dimensions) in config.json.
    """
    parent, name = os.path.split(os.path.abspath(dest))
    cfg = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": HIDDEN,
           "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "head_dim": 16, "torch_dtype": "float32",
           "tie_word_embeddings": True, "attention_bias": False, "rope_theta": 1000000.0,
           "vocab_size": 2048, "max_position_embeddings": 128, "bos_token_id": 1,
           "eos_token_id": 2}
    if matryoshka is True:
        cfg["is_matryoshka"] = True
    elif matryoshka:
        cfg["matryoshka_dimensions"] = list(matryoshka)
    make_tiny_models.make(parent, name, cfg, seed)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(TINY, f), os.path.join(dest, f))
    if pooling is not None:
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling",
             "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize",
             "type": "sentence_transformers.models.Normalize"},
        ]
        with open(os.path.join(dest, "modules.json"), "w") as f:
            json.dump(modules, f, indent=2)
        os.makedirs(os.path.join(dest, "1_Pooling"), exist_ok=True)
        modes = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": pooling == "mean",
                 "pooling_mode_max_tokens": False, "pooling_mode_lasttoken": pooling == "lasttoken"}
        with open(os.path.join(dest, "1_Pooling", "config.json"), "w") as f:
            json.dump({"word_embedding_dimension": HIDDEN, **modes}, f, indent=2)
    return dest


def pool(hidden, pooling, dimensions=None):
    """hidden: [T, H] final-norm states -> the normalised embedding (float64)."""
    h = np.asarray(hidden, dtype=np.float64)
    v = h.mean(axis=0) if pooling == "mean" else h[-1]
    if dimensions:
        v = v[:dimensions]
    return v / max(np.linalg.norm(v), 1e-12)


def reference_embedding(oracle, ids, pooling="lasttoken", dimensions=None):
    return pool(oracle.hidden(list(ids)), pooling, dimensions)


def oracle(model_dir):
    return llama_oracle.Model(model_dir)
