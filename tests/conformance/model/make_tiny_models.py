"""Writes small random models of each supported family in Hugging Face layout, to exercise the
code paths the shipped TinyStories model does not (biases, q/k norm, RoPE scaling, F16/BF16
weights, sharded checkpoints, MQA, explicit head_dim; Phi-3's fused qkv_proj / gate_up_proj
and partial rotary; Gemma 2/3's extra norms, soft-capping, sliding/global layers and two RoPE
bases; Qwen3-MoE's and Mixtral's experts, routers and dense layers), each in the tensor layout
its published checkpoints use. Deterministic (fixed seeds).

Usage: make_tiny_models.py OUT_DIR   -> OUT_DIR/<name>/{config.json, *.safetensors}
Also writes two MoE models as llama.cpp's converter would (OUT_DIR/<name>.gguf, from
OUT_DIR/<name>/): Mixtral as a "llama" GGUF with stacked expert tensors and permuted Q/K rows,
Qwen3-MoE as "qwen3moe".
"""

import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file

VOCAB = 96


def to_bf16_bits(a):
    # Round to nearest even, as torch does.
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def store(arr, dtype):
    if dtype == "float32":
        return arr.astype(np.float32)
    if dtype == "float16":
        return arr.astype(np.float16)
    # safetensors.numpy cannot write bfloat16: written as raw uint16 and patched below.
    return to_bf16_bits(arr)


def make(out, name, cfg, seed, shards=1):
    rng = np.random.default_rng(seed)
    c = dict(cfg)
    c.setdefault("vocab_size", VOCAB)
    c.setdefault("rms_norm_eps", 1e-5)
    c.setdefault("max_position_embeddings", 256)
    arch = c["architectures"][0]
    gemma = arch.startswith("Gemma")
    c.setdefault("hidden_activation" if gemma else "hidden_act",
                 "gelu_pytorch_tanh" if gemma else "silu")
    h, heads = c["hidden_size"], c["num_attention_heads"]
    kvh = c.get("num_key_value_heads", heads)
    d = c.get("head_dim", h // heads)
    inter, dtype = c["intermediate_size"], c["torch_dtype"]
    tied = c.get("tie_word_embeddings", gemma)  # Gemma's configs default to tied

    def norm_w(n):
        # Gemma stores w of its (1 + w) norms, near 0.
        return (0.0 if gemma else 1.0) + 0.2 * rng.uniform(-1, 1, n)

    def mat(rows, cols):
        return rng.uniform(-1, 1, (rows, cols)) * np.sqrt(3.0 / cols)

    t = {"model.embed_tokens.weight": rng.uniform(-1, 1, (c["vocab_size"], h))}
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = norm_w(h)
        t[p + "post_attention_layernorm.weight"] = norm_w(h)
        if gemma:
            t[p + "pre_feedforward_layernorm.weight"] = norm_w(h)
            t[p + "post_feedforward_layernorm.weight"] = norm_w(h)
        t[p + "self_attn.q_proj.weight"] = mat(heads * d, h)
        t[p + "self_attn.k_proj.weight"] = mat(kvh * d, h)
        t[p + "self_attn.v_proj.weight"] = mat(kvh * d, h)
        t[p + "self_attn.o_proj.weight"] = mat(h, heads * d)
        if arch == "Qwen2ForCausalLM":
            t[p + "self_attn.q_proj.bias"] = 0.3 * rng.uniform(-1, 1, heads * d)
            t[p + "self_attn.k_proj.bias"] = 0.3 * rng.uniform(-1, 1, kvh * d)
            t[p + "self_attn.v_proj.bias"] = 0.3 * rng.uniform(-1, 1, kvh * d)
        if arch in ("Qwen3ForCausalLM", "Qwen3MoeForCausalLM", "Gemma3ForCausalLM"):
            t[p + "self_attn.q_norm.weight"] = (0 if gemma else 1) + 0.3 * rng.uniform(-1, 1, d)
            t[p + "self_attn.k_norm.weight"] = (0 if gemma else 1) + 0.3 * rng.uniform(-1, 1, d)
        if moe_layer(c, l):
            # Published layout: one tensor per expert and projection. The router is scaled up so
            # that the routing probabilities are well apart (float32 and float64 pick the same
            # experts).
            mixtral = arch == "MixtralForCausalLM"
            m = p + ("block_sparse_moe." if mixtral else "mlp.")
            experts = c["num_local_experts" if mixtral else "num_experts"]
            e_inter = inter if mixtral else c["moe_intermediate_size"]
            t[m + "gate.weight"] = mat(experts, h) * 4
            for e in range(experts):
                x = f"{m}experts.{e}."
                names = ("w1", "w3", "w2") if mixtral else ("gate_proj", "up_proj", "down_proj")
                t[x + names[0] + ".weight"] = mat(e_inter, h)
                t[x + names[1] + ".weight"] = mat(e_inter, h)
                t[x + names[2] + ".weight"] = mat(h, e_inter)
            continue
        t[p + "mlp.gate_proj.weight"] = mat(inter, h)
        t[p + "mlp.up_proj.weight"] = mat(inter, h)
        t[p + "mlp.down_proj.weight"] = mat(h, inter)
        if arch == "Phi3ForCausalLM":  # Phi-3's checkpoints hold [q; k; v] and [gate; up]
            t[p + "self_attn.qkv_proj.weight"] = np.concatenate(
                [t.pop(p + f"self_attn.{x}_proj.weight") for x in "qkv"])
            t[p + "mlp.gate_up_proj.weight"] = np.concatenate(
                [t.pop(p + "mlp.gate_proj.weight"), t.pop(p + "mlp.up_proj.weight")])
    t["model.norm.weight"] = norm_w(h)
    if not tied:
        t["lm_head.weight"] = mat(c["vocab_size"], h) * 4

    path = os.path.join(out, name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    names = sorted(t)
    groups = [names[i::shards] for i in range(shards)]
    weight_map = {}
    for i, group in enumerate(groups):
        fname = "model.safetensors" if shards == 1 else f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        fpath = os.path.join(path, fname)
        save_file({n: store(t[n], dtype) for n in group}, fpath, metadata={"format": "pt"})
        if dtype == "bfloat16":
            patch_dtype(fpath, "U16", "BF16")
        for n in group:
            weight_map[n] = fname
    if shards > 1:
        with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)


def moe_layer(c, l):
    # transformers' Qwen3MoeDecoderLayer / MixtralDecoderLayer.
    arch = c["architectures"][0]
    if arch == "MixtralForCausalLM":
        return True
    if arch != "Qwen3MoeForCausalLM":
        return False
    return (l not in (c.get("mlp_only_layers") or []) and c.get("num_experts", 128) > 0
            and (l + 1) % c.get("decoder_sparse_step", 1) == 0)


def write_moe_gguf(out, name, q8_experts=False):
    """Skipped under --no-gguf (transformers_check.py on a machine without the gguf package).
    The HF model OUT/name as a GGUF in llama.cpp's layout (convert_hf_to_gguf.py): experts
    stacked into blk.N.ffn_{gate,up,down}_exps ([experts, rows, cols]), the router as
    ffn_gate_inp; llama-architecture Q/K rows permuted for llama.cpp's interleaved RoPE. With
    q8_experts the stacked experts are Q8_0, and the HF model's expert tensors are rewritten to
    their dequantized values, so both files hold the same numbers."""
    if NO_GGUF:
        return
    from gguf import GGUFWriter, GGMLQuantizationType
    from gguf.quants import dequantize, quantize
    from safetensors.numpy import load_file

    src = os.path.join(out, name)
    with open(os.path.join(src, "config.json")) as f:
        c = json.load(f)
    t = load_file(os.path.join(src, "model.safetensors"))
    mixtral = c["architectures"][0] == "MixtralForCausalLM"
    arch = "llama" if mixtral else "qwen3moe"
    heads, kvh = c["num_attention_heads"], c["num_key_value_heads"]
    d = c.get("head_dim") or c["hidden_size"] // heads
    w = GGUFWriter(os.path.join(out, name + ".gguf"), arch)
    w.add_uint32(f"{arch}.context_length", c["max_position_embeddings"])
    w.add_uint32(f"{arch}.embedding_length", c["hidden_size"])
    w.add_uint32(f"{arch}.block_count", c["num_hidden_layers"])
    w.add_uint32(f"{arch}.feed_forward_length", c["intermediate_size"])
    w.add_uint32(f"{arch}.attention.head_count", heads)
    w.add_uint32(f"{arch}.attention.head_count_kv", kvh)
    w.add_uint32(f"{arch}.attention.key_length", d)
    w.add_uint32(f"{arch}.attention.value_length", d)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", c["rms_norm_eps"])
    w.add_float32(f"{arch}.rope.freq_base", c["rope_theta"])
    experts = c["num_local_experts" if mixtral else "num_experts"]
    w.add_uint32(f"{arch}.expert_count", experts)
    w.add_uint32(f"{arch}.expert_used_count", c["num_experts_per_tok"])
    if not mixtral:
        w.add_uint32(f"{arch}.expert_feed_forward_length", c["moe_intermediate_size"])

    def permute(m, n_head):
        return m.reshape(n_head, 2, m.shape[0] // n_head // 2, *m.shape[1:]).swapaxes(1, 2) \
            .reshape(m.shape)

    g = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
         "lm_head.weight": "output.weight"}
    for k, v in g.items():
        if k in t:
            w.add_tensor(v, t[k])
    m = "block_sparse_moe." if mixtral else "mlp."
    names = ("w1", "w3", "w2") if mixtral else ("gate_proj", "up_proj", "down_proj")
    for l in range(c["num_hidden_layers"]):
        p, b = f"model.layers.{l}.", f"blk.{l}."
        w.add_tensor(b + "attn_norm.weight", t[p + "input_layernorm.weight"])
        w.add_tensor(b + "ffn_norm.weight", t[p + "post_attention_layernorm.weight"])
        q, k = t[p + "self_attn.q_proj.weight"], t[p + "self_attn.k_proj.weight"]
        if mixtral:
            q, k = permute(q, heads), permute(k, kvh)
        w.add_tensor(b + "attn_q.weight", q)
        w.add_tensor(b + "attn_k.weight", k)
        w.add_tensor(b + "attn_v.weight", t[p + "self_attn.v_proj.weight"])
        w.add_tensor(b + "attn_output.weight", t[p + "self_attn.o_proj.weight"])
        if not mixtral:
            w.add_tensor(b + "attn_q_norm.weight", t[p + "self_attn.q_norm.weight"])
            w.add_tensor(b + "attn_k_norm.weight", t[p + "self_attn.k_norm.weight"])
        w.add_tensor(b + "ffn_gate_inp.weight", t[p + m + "gate.weight"])
        for gguf_name, hf in zip(("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"), names):
            stacked = np.stack([t[f"{p}{m}experts.{e}.{hf}.weight"] for e in range(experts)])
            if not q8_experts:
                w.add_tensor(f"{b}{gguf_name}.weight", stacked)
                continue
            q8 = GGMLQuantizationType.Q8_0
            raw = quantize(stacked.astype(np.float32), q8)
            w.add_tensor(f"{b}{gguf_name}.weight", raw, raw_dtype=q8)
            exact = dequantize(raw, q8).astype(np.float32)
            for e in range(experts):
                t[f"{p}{m}experts.{e}.{hf}.weight"] = exact[e]
    if q8_experts:
        save_file(t, os.path.join(src, "model.safetensors"), metadata={"format": "pt"})
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def patch_dtype(path, old, new):
    # Same-length rename in the JSON header keeps every offset valid ("U16" -> "BF16" is one
    # byte longer, so the header's trailing padding absorbs it).
    with open(path, "rb") as f:
        data = bytearray(f.read())
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    for k, v in header.items():
        if k != "__metadata__" and v["dtype"] == old:
            v["dtype"] = new
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + data[8 + n :])


NO_GGUF = False


def main():
    global NO_GGUF
    NO_GGUF = "--no-gguf" in sys.argv[2:]
    out = sys.argv[1]
    # Llama 3.1 style: llama3 RoPE scaling (all three frequency bands present at head_dim 32),
    # BF16 weights, untied, GQA 4/2.
    make(out, "llama31-bf16", {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
        "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "rope_theta": 10000.0, "torch_dtype": "bfloat16",
        "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": [2, 3],
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}, 1)
    # Qwen2.5 style: q/k/v biases, F16 weights, tied embeddings, two shards with an index.
    make(out, "qwen2-f16-sharded", {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 48,
        "intermediate_size": 80, "num_hidden_layers": 2, "num_attention_heads": 6,
        "num_key_value_heads": 2, "rope_theta": 1000000.0, "torch_dtype": "float16",
        "tie_word_embeddings": True, "sliding_window": 32768, "use_sliding_window": False}, 2,
        shards=2)
    # Qwen3 style: per-head q/k RMSNorm, head_dim (24) != hidden / heads, transformers 5
    # "rope_parameters" with linear scaling, F32, untied.
    make(out, "qwen3-f32", {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 24, "torch_dtype": "float32",
        "tie_word_embeddings": False, "attention_bias": False,
        "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 5000.0}}, 3)
    # Mistral style: multi-query attention (1 kv head), head_dim 16, and a sliding window of 8
    # positions, shorter than the test sequences, so windowed attention is what is compared.
    make(out, "mistral-mqa", {
        "architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 1, "rope_theta": 10000.0, "torch_dtype": "float32",
        "sliding_window": 8, "tie_word_embeddings": False}, 4)
    # Phi-3 style: fused qkv_proj / gate_up_proj, partial rotary (8 of 16 dims, as Phi-4-mini
    # rotates 96 of 128), GQA 4/2 and a sliding window (10) shorter than the test sequences.
    make(out, "phi3-fused", {
        "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 64,
        "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
        "sliding_window": 10, "original_max_position_embeddings": 256, "rope_scaling": None,
        "torch_dtype": "float32", "tie_word_embeddings": False}, 5)
    # Phi-3.5 / Phi-4-mini style LongRoPE: short factors within original_max_position_embeddings
    # (20: every test prompt fits, the greedy continuations pass it and switch to the long
    # factors), attention factor sqrt(1 + ln(128 / 20) / ln(20)), partial rotary 12 of 16 dims.
    frng = np.random.default_rng(8)
    make(out, "phi3-longrope", {
        "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 64,
        "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 4, "rope_theta": 10000.0, "partial_rotary_factor": 0.75,
        "max_position_embeddings": 128, "original_max_position_embeddings": 20,
        "rope_scaling": {"type": "longrope",
                         "short_factor": [float(f) for f in 1 + 0.5 * frng.uniform(0, 1, 6)],
                         "long_factor": [float(f) for f in 1 + 7 * frng.uniform(0, 1, 6)]},
        "sliding_window": None, "torch_dtype": "float32", "tie_word_embeddings": False}, 8)
    # Gemma 2 style: BF16 (the embedding scale sqrt(48) rounded to bfloat16), head_dim 16 !=
    # hidden / heads, layers 0 and 2 sliding (window 6), small soft-caps so that the tanh bends,
    # query_pre_attn_scalar != head_dim, tied embeddings by default (no lm_head).
    make(out, "gemma2-bf16", {
        "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "hidden_size": 48,
        "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "rope_theta": 10000.0,
        "query_pre_attn_scalar": 24, "attn_logit_softcapping": 2.0,
        "final_logit_softcapping": 3.0, "sliding_window": 6, "rms_norm_eps": 1e-6,
        "torch_dtype": "bfloat16"}, 6)
    # Gemma 3 style: per-head q/k norms, MQA, sliding_window_pattern 3 (layers 0, 1, 3 slide,
    # window 5), local RoPE base 10000 vs global 1e6 with linear scaling, no soft-caps.
    make(out, "gemma3-f32", {
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 1, "head_dim": 32, "rope_theta": 1000000.0,
        "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 4.0},
        "query_pre_attn_scalar": 32, "attn_logit_softcapping": None,
        "final_logit_softcapping": None, "sliding_window": 5, "sliding_window_pattern": 3,
        "rms_norm_eps": 1e-6, "torch_dtype": "float32"}, 7)
    # Qwen3-30B-A3B style: 8 experts of 24, top 3 renormalized (norm_topk_prob), q/k norms,
    # layer 1 a dense MLP of intermediate_size 40 (mlp_only_layers), BF16.
    make(out, "qwen3moe-bf16", {
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 32,
        "intermediate_size": 40, "moe_intermediate_size": 24, "num_experts": 8,
        "num_experts_per_tok": 3, "norm_topk_prob": True, "decoder_sparse_step": 1,
        "mlp_only_layers": [1], "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "rope_theta": 1000000.0,
        "torch_dtype": "bfloat16", "tie_word_embeddings": False, "use_sliding_window": False,
        "sliding_window": None, "attention_bias": False}, 9)
    # Qwen3-MoE with decoder_sparse_step 2 (layers 1 and 3 sparse, 0 and 2 dense), top 2 of 6
    # without renormalization (norm_topk_prob false: the weights are the plain probabilities).
    make(out, "qwen3moe-step2-f32", {
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 32,
        "intermediate_size": 48, "moe_intermediate_size": 16, "num_experts": 6,
        "num_experts_per_tok": 2, "norm_topk_prob": False, "decoder_sparse_step": 2,
        "num_hidden_layers": 4, "num_attention_heads": 2, "num_key_value_heads": 1,
        "head_dim": 16, "rope_theta": 10000.0, "torch_dtype": "float32",
        "tie_word_embeddings": True}, 10)
    # Mixtral-8x7B style: block_sparse_moe with w1/w3/w2 experts (4 of intermediate_size 40,
    # top 2, always renormalized), GQA 4/2, a sliding window of 12, F16.
    make(out, "mixtral-f16", {
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 48,
        "intermediate_size": 40, "num_local_experts": 4, "num_experts_per_tok": 2,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "rope_theta": 1000000.0, "sliding_window": 12, "torch_dtype": "float16",
        "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2}, 11)
    # The same families as GGUFs (what llama.cpp's converter keeps: no sliding window, every
    # layer sparse, top-k renormalized), each beside the safetensors model it was made from.
    make(out, "mixtral-gguf-f16", {
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 48,
        "intermediate_size": 40, "num_local_experts": 4, "num_experts_per_tok": 2,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "rope_theta": 1000000.0, "sliding_window": None, "torch_dtype": "float16",
        "tie_word_embeddings": False}, 12)
    write_moe_gguf(out, "mixtral-gguf-f16")
    make(out, "qwen3moe-gguf-f32", {
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 32,
        "intermediate_size": 40, "moe_intermediate_size": 24, "num_experts": 8,
        "num_experts_per_tok": 3, "norm_topk_prob": True, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "rope_theta": 1000000.0, "torch_dtype": "float32", "tie_word_embeddings": False}, 13)
    write_moe_gguf(out, "qwen3moe-gguf-f32")
    make(out, "qwen3moe-gguf-q8", {
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 64,
        "intermediate_size": 64, "moe_intermediate_size": 32, "num_experts": 4,
        "num_experts_per_tok": 2, "norm_topk_prob": True, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "rope_theta": 1000000.0, "torch_dtype": "float32", "tie_word_embeddings": False}, 14)
    write_moe_gguf(out, "qwen3moe-gguf-q8", q8_experts=True)


if __name__ == "__main__":
    main()
