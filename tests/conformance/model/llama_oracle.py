"""Float64 numpy reference of the Llama-family decoder (Llama 2/3/3.1, Mistral, Qwen2, Qwen3,
Phi-3, and the mixture-of-experts Qwen3-MoE and Mixtral). Gemma 2/3 models are handed to
gemma_oracle.py.

Independent of kite: it reads config.json and the safetensors files itself (single file or
shards with model.safetensors.index.json; F32/F16/BF16) and recomputes full causal attention
for every step (no KV cache), following the Hugging Face modeling code:
  x = embed[tokens]
  per layer: h = rmsnorm(x) * w1; q,k,v = h W^T (+ b); [Qwen3: per-head rmsnorm of q, k];
             rope (rotate-half); softmax(q k^T / sqrt(d) + causal mask) v, the mask also hiding
             keys more than sliding_window - 1 positions back for Mistral and Phi-3; x += o_proj;
             h = rmsnorm(x) * w2; x += down(silu(gate(h)) * up(h))
  logits = rmsnorm(x) * w_final @ lm_head^T
Phi-3 stores q/k/v as one qkv_proj and gate/up as one gate_up_proj (split here as
transformers' Phi3Attention / Phi3MLP do) and may rotate only the first
head_dim * partial_rotary_factor dims of each head.
Qwen3-MoE and Mixtral replace the MLP of their sparse layers (Qwen3-MoE: not in mlp_only_layers
and (layer + 1) % decoder_sparse_step == 0; Mixtral: every layer) with transformers'
Qwen3MoeSparseMoeBlock / MixtralSparseMoeBlock, token by token:
  p = softmax(h @ router^T);  top = the num_experts_per_tok largest p;
  w = p[top] (/ sum(p[top]) when norm_topk_prob; Mixtral always);
  out = sum_j w_j * down_j(silu(gate_j(h)) * up_j(h))
with the experts' published tensor names (mlp.experts.E.gate_proj/up_proj/down_proj;
block_sparse_moe.experts.E.w1/w3/w2).

Usage: llama_oracle.py MODEL_DIR OUT.json --prompts 1,2,3 4,5 [--greedy N]
Writes {"prompts": [{"ids": [...], "logits": [[vocab] per prompt position],
"greedy": [N ids], "greedy_gaps": [top-1 minus top-2 logit at each greedy step]}]}.
"""

import argparse
import json
import math
import os
import struct

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[base + b : base + e]
        dtype = info["dtype"]
        if dtype == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dtype == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dtype == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32).astype(np.float64)
        else:
            raise ValueError(f"dtype {dtype}")
        out[name] = arr.reshape(info["shape"])
    aliases = header.get("__metadata__", {})
    for k, v in aliases.items():
        if k not in out and v in out:
            out[k] = out[v]
    return out


def load_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        w = {}
        for name in files:
            w.update(read_safetensors(os.path.join(model_dir, name)))
        return w
    return read_safetensors(os.path.join(model_dir, "model.safetensors"))


def inv_freq(cfg, head_dim):
    theta = cfg.get("rope_theta")
    rope = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    if theta is None:
        theta = rope.get("rope_theta", 10000.0)
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind == "linear":
        inv = inv / rope["factor"]
    elif kind == "llama3":
        factor = rope["factor"]
        low, high = rope["low_freq_factor"], rope["high_freq_factor"]
        old = rope["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv = np.where(medium, smoothed, scaled)
    elif kind != "default":
        raise ValueError(kind)
    return inv


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, positions, inv, factor=1.0):
    # x: [T, H, D]; rotate-half over the first 2 * R/2 dims, the rest passed through. inv is
    # [R/2], or [T, R/2] for a frequency set per token (LongRoPE); cos and sin are multiplied by
    # `factor` (LongRoPE's attention factor).
    inv = np.broadcast_to(inv, (len(positions), inv.shape[-1]))
    ang = positions[:, None].astype(np.float64) * inv  # [T, R/2]
    cos, sin = factor * np.cos(ang)[:, None, :], factor * np.sin(ang)[:, None, :]
    half = inv.shape[-1]
    x0, x1, rest = x[..., :half], x[..., half : 2 * half], x[..., 2 * half :]
    return np.concatenate([x0 * cos - x1 * sin, x1 * cos + x0 * sin, rest], axis=-1)


class Model:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = json.load(f)
        c = self.cfg
        self.arch = c["architectures"][0]
        self.w = load_weights(model_dir)
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads") or self.heads
        self.head_dim = c.get("head_dim") or c["hidden_size"] // self.heads
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.layers = c["num_hidden_layers"]
        rotary = self.head_dim
        if self.arch == "Phi3ForCausalLM":
            rotary = int(self.head_dim * c.get("partial_rotary_factor", 1.0))
        rs = c.get("rope_scaling") or {}
        self.long = None
        if rs.get("rope_type", rs.get("type")) in ("longrope", "su"):
            # transformers' _compute_longrope_parameters (Phi-3 keeps the original context at the
            # top level of its config).
            base = 1.0 / (c.get("rope_theta", 10000.0) ** (np.arange(0, rotary, 2) / rotary))
            self.inv = base / np.array(rs["short_factor"], dtype=np.float64)
            self.long = base / np.array(rs["long_factor"], dtype=np.float64)
            self.orig = c["original_max_position_embeddings"]
            scale = c["max_position_embeddings"] / self.orig
            default = math.sqrt(1 + math.log(scale) / math.log(self.orig)) if scale > 1 else 1.0
            self.attention_factor = rs.get("attention_factor") or default
        else:
            self.inv = inv_freq(c, rotary)
            self.attention_factor = 1.0
        # Mistral's and Phi-3's sliding window (Qwen2 would need use_sliding_window, which kite
        # refuses).
        windowed = self.arch in ("MistralForCausalLM", "Phi3ForCausalLM", "MixtralForCausalLM")
        self.window = c.get("sliding_window") if windowed else None
        # Phi-3: split the fused tensors into the Llama names.
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        for l in range(self.layers):
            p = f"model.layers.{l}."
            qkv = self.w.pop(p + "self_attn.qkv_proj.weight", None)
            if qkv is not None:
                self.w[p + "self_attn.q_proj.weight"] = qkv[:q]
                self.w[p + "self_attn.k_proj.weight"] = qkv[q : q + kv]
                self.w[p + "self_attn.v_proj.weight"] = qkv[q + kv :]
            gate_up = self.w.pop(p + "mlp.gate_up_proj.weight", None)
            if gate_up is not None:
                inter = gate_up.shape[0] // 2
                self.w[p + "mlp.gate_proj.weight"] = gate_up[:inter]
                self.w[p + "mlp.up_proj.weight"] = gate_up[inter:]
        if "lm_head.weight" not in self.w:
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        if "model.embed_tokens.weight" not in self.w:
            self.w["model.embed_tokens.weight"] = self.w["lm_head.weight"]

    def sparse_layer(self, l):
        c = self.cfg
        if self.arch == "MixtralForCausalLM":
            return True
        if self.arch != "Qwen3MoeForCausalLM":
            return False
        return (l not in (c.get("mlp_only_layers") or [])
                and (l + 1) % c.get("decoder_sparse_step", 1) == 0)

    def moe(self, h, l):
        c, w = self.cfg, self.w
        mixtral = self.arch == "MixtralForCausalLM"
        m = f"model.layers.{l}." + ("block_sparse_moe." if mixtral else "mlp.")
        names = ("w1", "w3", "w2") if mixtral else ("gate_proj", "up_proj", "down_proj")
        top_k = c.get("num_experts_per_tok", 2 if mixtral else 8)
        renorm = True if mixtral else c.get("norm_topk_prob", False)
        logits = h @ w[m + "gate.weight"].T
        p = np.exp(logits - logits.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        out = np.zeros_like(h)
        for t in range(h.shape[0]):
            top = np.argsort(-p[t], kind="stable")[:top_k]
            weights = p[t, top] / (p[t, top].sum() if renorm else 1.0)
            for e, wt in zip(top, weights):
                x = f"{m}experts.{e}."
                g = w[x + names[0] + ".weight"] @ h[t]
                u = w[x + names[1] + ".weight"] @ h[t]
                out[t] += wt * (w[x + names[2] + ".weight"] @ (g / (1 + np.exp(-g)) * u))
        return out

    def linear(self, x, name):
        y = x @ self.w[name + ".weight"].T
        if name + ".bias" in self.w:
            y = y + self.w[name + ".bias"]
        return y

    def forward(self, ids):
        return self.hidden(ids) @ self.w["lm_head.weight"].T

    def hidden(self, ids):
        """The final norm's output, [T, hidden] (what embedding models pool)."""
        w, T = self.w, len(ids)
        pos = np.arange(T)
        x = w["model.embed_tokens.weight"][np.array(ids)]
        mask = np.triu(np.full((T, T), -np.inf), k=1)
        if self.window:  # query t sees keys (t - window, t]
            mask = mask + np.tril(np.full((T, T), -np.inf), k=-self.window)
        group = self.heads // self.kv_heads
        for l in range(self.layers):
            p = f"model.layers.{l}."
            h = rmsnorm(x, w[p + "input_layernorm.weight"], self.eps)
            q = self.linear(h, p + "self_attn.q_proj").reshape(T, self.heads, self.head_dim)
            k = self.linear(h, p + "self_attn.k_proj").reshape(T, self.kv_heads, self.head_dim)
            v = self.linear(h, p + "self_attn.v_proj").reshape(T, self.kv_heads, self.head_dim)
            if p + "self_attn.q_norm.weight" in w:
                q = rmsnorm(q, w[p + "self_attn.q_norm.weight"], self.eps)
                k = rmsnorm(k, w[p + "self_attn.k_norm.weight"], self.eps)
            inv = self.inv
            if self.long is not None:
                # transformers switches to the long factors for a forward call whose positions
                # pass the original context. Kite's test prompts stay within it and the steps
                # after prefill are one token each, so each token's frequencies are those of
                # its own position: long from position `orig` on.
                inv = np.where((pos >= self.orig)[:, None], self.long[None, :], self.inv[None, :])
            q = rope(q, pos, inv, self.attention_factor)
            k = rope(k, pos, inv, self.attention_factor)
            k = np.repeat(k, group, axis=1)
            v = np.repeat(v, group, axis=1)
            scores = np.einsum("thd,shd->hts", q, k) / math.sqrt(self.head_dim) + mask
            scores = scores - scores.max(axis=-1, keepdims=True)
            prob = np.exp(scores)
            prob /= prob.sum(axis=-1, keepdims=True)
            attn = np.einsum("hts,shd->thd", prob, v).reshape(T, -1)
            x = x + self.linear(attn, p + "self_attn.o_proj")
            h = rmsnorm(x, w[p + "post_attention_layernorm.weight"], self.eps)
            if self.sparse_layer(l):
                x = x + self.moe(h, l)
                continue
            g = self.linear(h, p + "mlp.gate_proj")
            u = self.linear(h, p + "mlp.up_proj")
            x = x + self.linear(g / (1 + np.exp(-g)) * u, p + "mlp.down_proj")
        return rmsnorm(x, w["model.norm.weight"], self.eps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--prompts", nargs="+", required=True)
    ap.add_argument("--greedy", type=int, default=0)
    a = ap.parse_args()
    with open(os.path.join(a.model, "config.json")) as f:
        arch = json.load(f)["architectures"][0]
    if arch.startswith("Gemma"):
        from gemma_oracle import GemmaModel

        m = GemmaModel(a.model)
    else:
        m = Model(a.model)
    result = {"prompts": []}
    for text in a.prompts:
        ids = [int(t) for t in text.split(",")]
        entry = {"ids": ids, "logits": m.forward(ids).tolist(), "greedy": [], "greedy_gaps": []}
        seq = list(ids)
        for _ in range(a.greedy):
            last = m.forward(seq)[-1]
            order = np.argsort(-last, kind="stable")
            entry["greedy"].append(int(order[0]))
            entry["greedy_gaps"].append(float(last[order[0]] - last[order[1]]))
            seq.append(int(order[0]))
        result["prompts"].append(entry)
    with open(a.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
