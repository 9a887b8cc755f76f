"""Writes the small seed corpora of the model-file fuzzers from the shipped models.

Usage: .venv/bin/python tests/fuzz/make_model_seeds.py   (from the repository root)
  tests/fuzz/gguf_parser/corpus/       small GGUFs: stories260K's metadata with a cut-down
                                       vocabulary and one tensor of each supported type; the
                                       first 4 KiB of each real GGUF
  tests/fuzz/safetensors_header/corpus/ TinyStories' header over a few small tensors, sharded
  tests/fuzz/hf_config/corpus/         every config.json / generation_config.json under tests/data
"""

import glob
import json
import os
import shutil

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFWriter
from gguf.quants import quantize
from safetensors.numpy import load_file, save_file

DATA = "tests/data"


def gguf_seeds(out):
    os.makedirs(out, exist_ok=True)
    r = GGUFReader(f"{DATA}/models/stories260k/stories260K.gguf")
    w = GGUFWriter(f"{out}/stories_small.gguf", "llama")
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        v = field.contents()
        if isinstance(v, list):
            v = v[:16]
        w.add_key_value(name, v, field.types[0],
                        sub_type=field.types[1] if len(field.types) > 1 else None)
    emb = r.get_tensor(0).data[:32]  # token_embd rows, F32 [32, 64]
    w.add_tensor("token_embd.weight", np.ascontiguousarray(emb))
    w.add_tensor("blk.0.attn_q.weight", quantize(np.ascontiguousarray(emb[:, :64]), Q.Q8_0),
                 raw_dtype=Q.Q8_0)
    w.add_tensor("blk.0.attn_norm.weight", emb[0].astype(np.float16))
    rng = np.random.default_rng(0)
    for qtype, size in ((Q.Q4_K, 144), (Q.Q6_K, 210), (Q.Q4_0, 18)):
        w.add_tensor(f"blk.0.{qtype.name}.weight",
                     rng.integers(0, 256, (1, size), dtype=np.uint8), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    for src in (f"{DATA}/models/stories260k/stories260K.gguf",
                f"{DATA}/models/tinystories-656k-q8_0.gguf"):
        with open(src, "rb") as f:
            head = f.read(4096)
        with open(f"{out}/{os.path.basename(src)}.head", "wb") as f:
            f.write(head)


def safetensors_seeds(out):
    os.makedirs(out, exist_ok=True)
    t = load_file(f"{DATA}/models/tinystories-656k/model.safetensors")
    small = {k: v for k, v in t.items() if v.ndim == 1}  # the norm weights
    save_file(small, f"{out}/tinystories_norms.safetensors",
              metadata={"format": "pt", "model.embed_tokens.weight": "lm_head.weight"})
    save_file({"a": small["model.norm.weight"][:4].astype(np.float16),
               "b": np.zeros((2, 3), np.int32)}, f"{out}/mixed.safetensors")


def config_seeds(out):
    os.makedirs(out, exist_ok=True)
    for path in glob.glob(f"{DATA}/**/*config.json", recursive=True):
        name = path[len(DATA) + 1:].replace("/", "_")
        shutil.copy(path, f"{out}/{name}")


if __name__ == "__main__":
    gguf_seeds("tests/fuzz/gguf_parser/corpus")
    safetensors_seeds("tests/fuzz/safetensors_header/corpus")
    config_seeds("tests/fuzz/hf_config/corpus")
