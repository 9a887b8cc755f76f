"""Writes one small random Llama-layout model as FP8 checkpoints in the formats published FP8
models use, plus the float32 checkpoint each of them stands for (their FP8 weights times their
scales), with numpy + ml_dtypes only (independent of kite's own FP8 code):

  ref/         float32: every quantized linear replaced by its dequantized FP8 value
  ct-channel/  compressed-tensors float-quantized, per-channel weight_scale [rows, 1] =
               max|row| / 448, dynamic per-token input activations, lm_head ignored
               (RedHatAI ...-FP8-dynamic style; also what --quantization fp8 makes of bf16/)
  ct-tensor/   compressed-tensors, per-tensor weight_scale [1] per checkpoint tensor and static
               input_scale [1] (RedHatAI ...-FP8 style)
  fp8-block/   quant_method fp8 with weight_block_size [128, 128], weight_scale_inv per block
               (Qwen/Qwen3-8B-FP8 style; shapes with partial blocks)
  bf16/        the unquantized model in bfloat16 (for --quantization fp8)

Usage: make_fp8_models.py OUT_DIR
"""

import json
import os
import sys

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

FP8 = ml_dtypes.float8_e4m3fn
FP8_MAX = 448.0
LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "vocab_size": 160,
    "hidden_size": 160,
    "intermediate_size": 320,
    "num_hidden_layers": 2,
    "num_attention_heads": 5,
    "num_key_value_heads": 1,
    "head_dim": 32,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 256,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "bos_token_id": 1,
    "eos_token_id": 2,
}


def base_weights(rng):
    c = CONFIG
    h, inter, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    q = c["num_attention_heads"] * c["head_dim"]
    kv = c["num_key_value_heads"] * c["head_dim"]

    def mat(rows, cols):
        # Rows of different magnitudes, so per-channel and per-block scales differ.
        row_scale = np.exp(rng.uniform(-1.5, 1.5, (rows, 1)))
        return (rng.uniform(-1, 1, (rows, cols)) * np.sqrt(3.0 / cols) * row_scale).astype(
            np.float32)

    t = {"model.embed_tokens.weight": rng.uniform(-1, 1, (v, h)).astype(np.float32)}
    shapes = {"self_attn.q_proj": (q, h), "self_attn.k_proj": (kv, h),
              "self_attn.v_proj": (kv, h), "self_attn.o_proj": (h, q),
              "mlp.gate_proj": (inter, h), "mlp.up_proj": (inter, h), "mlp.down_proj": (h, inter)}
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = (1 + 0.2 * rng.uniform(-1, 1, h)).astype(np.float32)
        t[p + "post_attention_layernorm.weight"] = (1 + 0.2 * rng.uniform(-1, 1, h)).astype(
            np.float32)
        for name in LINEARS:
            t[p + name + ".weight"] = mat(*shapes[name])
    t["model.norm.weight"] = (1 + 0.2 * rng.uniform(-1, 1, h)).astype(np.float32)
    t["lm_head.weight"] = mat(v, h) * 4
    return t


def to_fp8(x):
    return np.clip(x, -FP8_MAX, FP8_MAX).astype(FP8)


def quantize(w, scheme):
    """FP8 weight and its (dequantization) scale; dequantized = fp8 * scale."""
    if scheme == "tensor":
        s = np.float32(np.abs(w).max() / FP8_MAX)
        return to_fp8(w / s), np.array([s], dtype=np.float32)
    if scheme == "channel":
        s = (np.abs(w).max(axis=1, keepdims=True) / FP8_MAX).astype(np.float32)
        return to_fp8(w / s), s
    # 128 x 128 blocks (partial at the edges)
    rows, cols = w.shape
    br, bc = -(-rows // 128), -(-cols // 128)
    s = np.zeros((br, bc), dtype=np.float32)
    q = np.zeros(w.shape, dtype=FP8)
    for i in range(br):
        for j in range(bc):
            blk = w[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128]
            s[i, j] = np.abs(blk).max() / FP8_MAX
            q[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128] = to_fp8(blk / s[i, j])
    return q, s


def dequantize(q, s, scheme):
    f = q.astype(np.float32)
    if scheme == "tensor":
        return f * s[0]
    if scheme == "channel":
        return f * s
    return f * np.repeat(np.repeat(s, 128, axis=0), 128, axis=1)[:f.shape[0], :f.shape[1]]


def to_bf16_bits(a):
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def write(path, config, tensors, bf16=()):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    file = os.path.join(path, "model.safetensors")
    save_file({k: (to_bf16_bits(v) if k in bf16 else v) for k, v in tensors.items()}, file)
    if bf16:
        # safetensors.numpy cannot write BF16 or F8_E4M3 names: patch the header's dtypes.
        patch_dtypes(file, {k: "BF16" for k in bf16})


def patch_dtypes(file, dtypes):
    with open(file, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    for k, d in dtypes.items():
        header[k]["dtype"] = d
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # data offsets are relative to the end of the header
    with open(file, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + data[8 + n:])


def fp8_checkpoint(base, scheme):
    """Tensors of the FP8 checkpoint and of its dequantized float32 reference."""
    out, ref, fp8_names = {}, dict(base), []
    for name, w in base.items():
        module = name[: -len(".weight")]
        if not any(module.endswith(l) for l in LINEARS):
            out[name] = w
            continue
        q, s = quantize(w, scheme)
        out[name] = q.view(np.uint8)
        fp8_names.append(name)
        out[module + (".weight_scale_inv" if scheme == "block" else ".weight_scale")] = s
        if scheme == "tensor":
            out[module + ".input_scale"] = np.array([0.02], dtype=np.float32)
        ref[name] = dequantize(q, s, scheme)
    return out, ref, fp8_names


def bf16_round(a):
    return (to_bf16_bits(a).astype(np.uint32) << 16).view(np.float32)


def main(out):
    rng = np.random.default_rng(7)
    # Every variant starts from the bfloat16 values the bf16/ checkpoint stores, so that
    # --quantization fp8 on bf16/ must reproduce ct-channel/ exactly.
    base = {k: bf16_round(v) for k, v in base_weights(rng).items()}
    ct_group = lambda strategy, acts: {"quant_method": "compressed-tensors",
                                       "format": "float-quantized", "ignore": ["lm_head"],
                                       "config_groups": {"group_0": {
                                           "targets": ["Linear"],
                                           "weights": {"num_bits": 8, "type": "float",
                                                       "strategy": strategy, "dynamic": False,
                                                       "symmetric": True},
                                           "input_activations": acts}}}
    variants = {
        "ct-channel": ("channel", ct_group("channel", {"num_bits": 8, "type": "float",
                                                       "strategy": "token", "dynamic": True})),
        "ct-tensor": ("tensor", ct_group("tensor", {"num_bits": 8, "type": "float",
                                                    "strategy": "tensor", "dynamic": False})),
        "fp8-block": ("block", {"quant_method": "fp8", "fmt": "e4m3",
                                "activation_scheme": "dynamic", "weight_block_size": [128, 128]}),
    }
    for name, (scheme, qcfg) in variants.items():
        tensors, ref, fp8_names = fp8_checkpoint(base, scheme)
        cfg = dict(CONFIG, quantization_config=qcfg)
        path = os.path.join(out, name)
        write(path, cfg, tensors)
        patch_dtypes(os.path.join(path, "model.safetensors"), {k: "F8_E4M3" for k in fp8_names})
        write(os.path.join(out, "ref-" + name), dict(CONFIG, torch_dtype="float32"), ref)
    write(os.path.join(out, "bf16"), CONFIG, base, bf16=tuple(base))


if __name__ == "__main__":
    main(sys.argv[1])
