"""Test vectors for kite's GGUF dequantisation, made with the `gguf` package's reference
implementation (gguf.quants).

Usage: gguf_quant_vectors.py OUT_DIR SAFETENSORS Q8_GGUF
Writes
  OUT_DIR/quant.gguf     tensors of every supported type: random blocks (scales drawn finite)
                         for Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K; real TinyStories weights
                         quantized with gguf.quants.quantize to Q8_0, Q4_0, Q4_1; F16, BF16
  OUT_DIR/expected.gguf  gguf.quants.dequantize of each, as F32 tensors of the same names
  OUT_DIR/expected_q8.gguf  the dequantized tensors of the shipped Q8_0 file
"""

import sys

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFWriter
from gguf.quants import dequantize, quantize
from gguf.constants import GGML_QUANT_SIZES
from safetensors.numpy import load_file


def random_blocks(rng, qtype, n_rows, n_cols):
    block, size = GGML_QUANT_SIZES[qtype]
    nb = n_rows * n_cols // block
    raw = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
    # Overwrite the f16 scales with finite values (random bytes could be inf/nan).
    def put_f16(col, lo, hi):
        v = rng.uniform(lo, hi, nb).astype(np.float16).view(np.uint8).reshape(nb, 2)
        raw[:, col:col + 2] = v
    if qtype in (Q.Q8_0, Q.Q4_0):
        put_f16(0, -0.1, 0.1)
    elif qtype == Q.Q4_1:
        put_f16(0, -0.1, 0.1)
        put_f16(2, -1, 1)
    elif qtype in (Q.Q4_K, Q.Q5_K):
        put_f16(0, -0.01, 0.01)
        put_f16(2, -0.01, 0.01)
    elif qtype == Q.Q6_K:
        put_f16(size - 2, -0.01, 0.01)
    return raw.reshape(n_rows, n_cols // block * size)


def write(path, tensors, raw_dtypes):
    w = GGUFWriter(path, "llama")
    for name, arr in tensors.items():
        if name in raw_dtypes:
            w.add_tensor(name, arr, raw_dtype=raw_dtypes[name])
        else:
            w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    out, st_path, q8_path = sys.argv[1:4]
    rng = np.random.default_rng(7)
    real = load_file(st_path)["model.layers.0.mlp.gate_proj.weight"]  # [384, 128] F32
    tensors, raw_dtypes, expected = {}, {}, {}
    for qtype in (Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q4_K, Q.Q5_K, Q.Q6_K):
        name = f"random.{qtype.name}"
        raw = random_blocks(rng, qtype, 6, 512)
        tensors[name], raw_dtypes[name] = raw, qtype
        expected[name] = dequantize(raw, qtype).astype(np.float32)
    for qtype in (Q.Q8_0, Q.Q4_0, Q.Q4_1):
        name = f"real.{qtype.name}"
        raw = quantize(real, qtype)
        tensors[name], raw_dtypes[name] = raw, qtype
        expected[name] = dequantize(raw, qtype).astype(np.float32)
    f16 = rng.standard_normal((3, 40)).astype(np.float16)
    tensors["plain.F16"] = f16
    expected["plain.F16"] = f16.astype(np.float32)
    bf16 = quantize(rng.standard_normal((3, 40)).astype(np.float32), Q.BF16)
    tensors["plain.BF16"], raw_dtypes["plain.BF16"] = bf16, Q.BF16
    expected["plain.BF16"] = dequantize(bf16, Q.BF16).astype(np.float32)
    write(f"{out}/quant.gguf", tensors, raw_dtypes)
    write(f"{out}/expected.gguf", expected, {})

    reader = GGUFReader(q8_path)
    expected_q8 = {t.name: dequantize(t.data, t.tensor_type).astype(np.float32)
                   for t in reader.tensors}
    write(f"{out}/expected_q8.gguf", expected_q8, {})


if __name__ == "__main__":
    main()
