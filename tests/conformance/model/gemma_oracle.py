"""Float64 numpy reference of the Gemma 2 and Gemma 3 (text) decoders, following transformers'
modeling_gemma2.py / modeling_gemma3.py (eager attention), with full causal attention recomputed
for every step (no KV cache):
  x = embed[tokens] * sqrt(hidden)            (the factor rounded to the checkpoint's dtype)
  per layer (sliding or global per layer_types, else Gemma 2: every other layer from layer 0,
  Gemma 3: all but every sliding_window_pattern-th):
    h = norm(x, w_in);  q, k, v = h W^T;  [Gemma 3: q, k = norm(q, q_norm), norm(k, k_norm)]
    q, k = rope(q, k)   (Gemma 3 sliding layers: rope_local_base_freq, unscaled; else
                         rope_theta with rope_scaling)
    s = q k^T * query_pre_attn_scalar^-0.5;  [s = cap * tanh(s / cap)];  + causal mask (sliding
        layers also hide keys sliding_window or more positions back);  softmax;  o = s v W_o^T
    x += norm(o, w_post_attn)
    h = norm(x, w_pre_ff);  x += norm(down(gelu_tanh(gate(h)) * up(h)), w_post_ff)
  logits = norm(x, w_final) @ embed^T;  [logits = cap * tanh(logits / cap)]
where norm(x, w) = x / sqrt(mean(x^2) + eps) * (1 + w).

Used through llama_oracle.py, which hands Gemma checkpoints here.
"""

import json
import math
import os

import numpy as np

from llama_oracle import inv_freq, load_weights, rope


def norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * (1.0 + w)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def round_to(value, dtype):
    if dtype == "bfloat16":
        u = np.array([value], dtype=np.float32).view(np.uint32).astype(np.uint64)
        u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
        return float(u.astype(np.uint32).view(np.float32)[0])
    if dtype == "float16":
        return float(np.float16(value))
    return float(np.float32(value))


class GemmaModel:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = c = json.load(f)
        self.arch = c["architectures"][0]
        gemma3 = self.arch == "Gemma3ForCausalLM"
        self.w = load_weights(model_dir)
        if "lm_head.weight" not in self.w:
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads") or self.heads
        self.head_dim = c.get("head_dim", 256)
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.layers = c["num_hidden_layers"]
        dtype = c.get("torch_dtype", c.get("dtype", "float32"))
        self.normalizer = round_to(math.sqrt(c["hidden_size"]), dtype)
        self.scaling = c.get("query_pre_attn_scalar", 256) ** -0.5
        default_cap = (50.0, 30.0) if not gemma3 else (None, None)
        self.attn_cap = c.get("attn_logit_softcapping", default_cap[0])
        self.final_cap = c.get("final_logit_softcapping", default_cap[1])
        self.window = c.get("sliding_window", 4096)
        if c.get("layer_types"):
            self.sliding = [t == "sliding_attention" for t in c["layer_types"]]
        else:
            pattern = c.get("sliding_window_pattern", 6) if gemma3 else 2
            self.sliding = [bool((i + 1) % pattern) for i in range(self.layers)]
        self.inv_global = inv_freq(c, self.head_dim)
        if gemma3:
            local = {"rope_theta": c.get("rope_local_base_freq", 10000.0)}
            self.inv_local = inv_freq(local, self.head_dim)
        else:
            self.inv_local = self.inv_global

    def forward(self, ids):
        w, T, eps = self.w, len(ids), self.eps
        pos = np.arange(T)
        x = w["model.embed_tokens.weight"][np.array(ids)] * self.normalizer
        causal = np.triu(np.full((T, T), -np.inf), k=1)
        windowed = causal + np.tril(np.full((T, T), -np.inf), k=-self.window)
        group = self.heads // self.kv_heads
        for l in range(self.layers):
            p = f"model.layers.{l}."
            sliding = self.sliding[l]
            h = norm(x, w[p + "input_layernorm.weight"], eps)
            q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(T, self.heads, self.head_dim)
            k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(T, self.kv_heads, self.head_dim)
            v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(T, self.kv_heads, self.head_dim)
            if p + "self_attn.q_norm.weight" in w:
                q = norm(q, w[p + "self_attn.q_norm.weight"], eps)
                k = norm(k, w[p + "self_attn.k_norm.weight"], eps)
            inv = self.inv_local if sliding else self.inv_global
            q, k = rope(q, pos, inv), rope(k, pos, inv)
            k = np.repeat(k, group, axis=1)
            v = np.repeat(v, group, axis=1)
            s = np.einsum("thd,shd->hts", q, k) * self.scaling
            if self.attn_cap:
                s = np.tanh(s / self.attn_cap) * self.attn_cap
            s = s + (windowed if sliding else causal)
            s = s - s.max(axis=-1, keepdims=True)
            prob = np.exp(s)
            prob /= prob.sum(axis=-1, keepdims=True)
            attn = np.einsum("hts,shd->thd", prob, v).reshape(T, -1)
            o = attn @ w[p + "self_attn.o_proj.weight"].T
            x = x + norm(o, w[p + "post_attention_layernorm.weight"], eps)
            h = norm(x, w[p + "pre_feedforward_layernorm.weight"], eps)
            g = h @ w[p + "mlp.gate_proj.weight"].T
            u = h @ w[p + "mlp.up_proj.weight"].T
            m = (gelu_tanh(g) * u) @ w[p + "mlp.down_proj.weight"].T
            x = x + norm(m, w[p + "post_feedforward_layernorm.weight"], eps)
        x = norm(x, w["model.norm.weight"], eps)
        logits = x @ w["lm_head.weight"].T
        if self.final_cap:
            logits = np.tanh(logits / self.final_cap) * self.final_cap
        return logits
