"""A tiny Llama-3-shaped model directory for tests: the real Llama-3 tokenizer
(tests/data/tokenizers/llama3.1, decompressed) with the chat template of Llama-3.2-3B-Instruct,
the study's model (tests/data/chat_templates), a config.json with Llama-3's vocabulary
(128256), special token ids and llama3 RoPE scaling but a tiny body, and random weights in
model.safetensors written with numpy (loaded from disk like any checkpoint)."""

import gzip
import json
import os
import shutil

import numpy as np
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKENIZER_DIR = os.path.join(ROOT, "tests", "data", "tokenizers", "llama3.1")
CHAT_TEMPLATE = os.path.join(ROOT, "tests", "data", "chat_templates",
                             "meta-llama-Llama-3.2-3B-Instruct.jinja")

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 128256,
    "hidden_size": 64,
    "intermediate_size": 192,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "hidden_act": "silu",
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "tie_word_embeddings": True,
    "attention_bias": False,
    "mlp_bias": False,
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009],
    "torch_dtype": "float32",
}

# Llama-3.2-Instruct's generation_config.json values.
GENERATION_CONFIG = {"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
                     "do_sample": True, "temperature": 0.6, "top_p": 0.9}


def random_weights(config, seed=0):
    """{HF tensor name: float32 array}, N(0, 0.02) matrices and unit norms (embeddings tied)."""
    rng = np.random.default_rng(seed)
    h, i, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    d = config["head_dim"]
    q, kv = config["num_attention_heads"] * d, config["num_key_value_heads"] * d

    def mat(rows, cols):
        return rng.normal(0.0, 0.02, size=(rows, cols)).astype(np.float32)

    w = {"model.embed_tokens.weight": mat(v, h), "model.norm.weight": np.ones(h, np.float32)}
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        w[p + "input_layernorm.weight"] = np.ones(h, np.float32)
        w[p + "post_attention_layernorm.weight"] = np.ones(h, np.float32)
        w[p + "self_attn.q_proj.weight"] = mat(q, h)
        w[p + "self_attn.k_proj.weight"] = mat(kv, h)
        w[p + "self_attn.v_proj.weight"] = mat(kv, h)
        w[p + "self_attn.o_proj.weight"] = mat(h, q)
        w[p + "mlp.gate_proj.weight"] = mat(i, h)
        w[p + "mlp.up_proj.weight"] = mat(i, h)
        w[p + "mlp.down_proj.weight"] = mat(h, i)
    return w


def make_model_dir(path):
    """Writes the model directory at `path` (created) and returns it."""
    os.makedirs(path, exist_ok=True)
    with gzip.open(os.path.join(TOKENIZER_DIR, "tokenizer.json.gz"), "rb") as src, \
            open(os.path.join(path, "tokenizer.json"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    with gzip.open(os.path.join(TOKENIZER_DIR, "tokenizer_config.json.gz"), "rt") as f:
        tokenizer_config = json.load(f)
    with open(CHAT_TEMPLATE) as f:
        tokenizer_config["chat_template"] = f.read()
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config, f, indent=1)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=1)
    with open(os.path.join(path, "generation_config.json"), "w") as f:
        json.dump(GENERATION_CONFIG, f, indent=1)
    save_file(random_weights(CONFIG), os.path.join(path, "model.safetensors"),
              metadata={"format": "pt"})
    return path
