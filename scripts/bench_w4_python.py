#!/usr/bin/env python3
"""W4 of BENCHMARKS.md from Python: offline batch on kite's Python package beside Hugging Face
transformers, on the same GPU, model files and prompts.

W4: Llama-3.2-3B shape, BF16, chat prompts in the study's form (a system message "Respond in two
sentences." and a short question, rendered with the chat template by transformers'
AutoTokenizer as the study's script does: about 48 tokens), 128 new tokens (EOS ignored so both
engines do the same work), batches of 4/8/16/32. The metric is the wall time of the whole batch
of the study's call: `llm.generate(rendered_prompts, sampling_params)` for kite, and
`model.generate(**tokenizer(rendered_prompts, padding=True), ...)` for transformers (SDPA), after
one warm-up batch.

The model: random BF16 weights at the Llama-3.2-3B shape written once by transformers
(`LlamaForCausalLM(config).save_pretrained`) with the Llama-3 tokenizer and Llama-3.2-3B-Instruct's
chat template, so both engines
load the very same safetensors. Each engine runs in its own process (kite takes
gpu_memory_utilization of the GPU). Needs torch and transformers (the GPU machine has them).

    PYTHONPATH=<dir with the kite package> python3 scripts/bench_w4_python.py --out gpu-out/w4

Writes one kite-bench/1 JSON per engine and batch under --out and prints a table.
"""

import argparse
import datetime
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER = os.path.join(ROOT, "tests", "data", "tokenizers", "llama3.1")
CHAT_TEMPLATE = os.path.join(ROOT, "tests", "data", "chat_templates",
                             "meta-llama-Llama-3.2-3B-Instruct.jinja")
BATCHES = (4, 8, 16, 32)
SYSTEM = "You are a helpful assistant. Respond in two sentences."
# The study's four questions first, then more of the same kind (32 for the largest batch).
QUESTIONS = [
    "What is Thailand's national food symbol?", "What is the capital of Norway?",
    "Who invented the telescope?", "What is the chemical symbol for gold?",
    "What is the tallest mountain in Africa?", "Who wrote the novel Don Quixote?",
    "What is the largest planet in the solar system?", "How many bones are in the human body?",
    "What is the official language of Brazil?", "Who painted the Mona Lisa?",
    "What is the boiling point of water at sea level?", "Which ocean is the deepest?",
    "What is the currency of Japan?", "Who discovered penicillin?",
    "What is the longest river in South America?", "What gas do plants absorb from the air?",
    "What is the smallest prime number?", "Which country hosted the 2016 Olympic Games?",
    "What is the hardest natural material?", "Who was the first person to walk on the Moon?",
    "What is the capital of Canada?", "How many continents are there?",
    "What is the main ingredient of guacamole?", "Which planet is known as the Red Planet?",
    "What is the freezing point of water in Fahrenheit?", "Who composed the Four Seasons?",
    "What is the largest desert in the world?", "What is the speed of light in vacuum?",
    "Which element has the atomic number 1?", "What is the national animal of Scotland?",
    "Who developed the theory of general relativity?", "What is the capital of Kenya?",
]
OUTPUT_LEN = 128
# Published config of meta-llama/Llama-3.2-3B-Instruct (shapes; the weights here are random).
LLAMA32_3B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
    "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28,
    "num_attention_heads": 24, "num_key_value_heads": 8, "head_dim": 128,
    "hidden_act": "silu", "max_position_embeddings": 131072, "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "torch_dtype": "bfloat16",
}


def render_prompts(model_dir):
    """The chat prompts as text, rendered as the study's script renders them."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return [tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM},
                                           {"role": "user", "content": q}], tokenize=False)
            for q in QUESTIONS]


def make_model(path):
    """Random-weight Llama-3.2-3B-shaped checkpoint (BF16 safetensors) + tokenizer files."""
    if os.path.exists(os.path.join(path, "model.safetensors.index.json")) or os.path.exists(
            os.path.join(path, "model.safetensors")):
        return path
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    os.makedirs(path, exist_ok=True)
    torch.manual_seed(0)
    config = LlamaConfig(**{k: v for k, v in LLAMA32_3B.items() if k != "architectures"})
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path, safe_serialization=True)
    del model
    torch.cuda.empty_cache()
    write_tokenizer(path)
    return path


def write_tokenizer(path):
    """The Llama-3 tokenizer with Llama-3.2-3B-Instruct's chat template (the study's model)."""
    with gzip.open(os.path.join(TOKENIZER, "tokenizer.json.gz"), "rb") as src, \
            open(os.path.join(path, "tokenizer.json"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    with gzip.open(os.path.join(TOKENIZER, "tokenizer_config.json.gz"), "rt") as f:
        config = json.load(f)
    with open(CHAT_TEMPLATE) as f:
        config["chat_template"] = f.read()
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=1)


def gpu_name():
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return ""


def run_kite(model_dir, prompts, repeats):
    import kite
    from kite import LLM, SamplingParams

    t0 = time.perf_counter()
    llm = LLM(model_dir, max_model_len=2048, dtype="bfloat16")  # as the study's LLM(...)
    load_s = time.perf_counter() - t0
    params = SamplingParams(max_tokens=OUTPUT_LEN, ignore_eos=True)  # the study's, EOS ignored
    llm.generate(prompts[:4], params, use_tqdm=False)  # warm-up
    results = []
    for b in BATCHES:
        times, out_tokens, in_tokens = [], 0, 0
        for _ in range(repeats):
            t = time.perf_counter()
            outs = llm.generate(prompts[:b], params, use_tqdm=False)  # the study's call
            times.append(time.perf_counter() - t)
            out_tokens = sum(len(o.outputs[0].token_ids) for o in outs)
            in_tokens = sum(len(o.prompt_token_ids) for o in outs)
        results.append({"batch": b, "times_s": times, "output_tokens": out_tokens,
                        "input_tokens": in_tokens})
    info = llm.model_info
    engine = {"name": "kite (python)", "version": kite.__version__, "backend": info.backend}
    model = {"served_model_name": info.served_model_name, "architecture": info.architecture,
             "max_model_len": info.max_model_len, "num_kv_blocks": info.num_kv_blocks,
             "block_size": info.block_size}
    llm.shutdown()
    return engine, model, load_s, results


def run_transformers(model_dir, prompts, repeats):
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    tokenizer.pad_token = tokenizer.eos_token  # as the study's script
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16,
                                                 attn_implementation="sdpa").to("cuda").eval()
    load_s = time.perf_counter() - t0

    def generate(batch):
        inputs = tokenizer(batch, return_tensors="pt", padding=True).to("cuda")
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=OUTPUT_LEN, min_new_tokens=OUTPUT_LEN,
                                 do_sample=True, pad_token_id=tokenizer.pad_token_id)
        torch.cuda.synchronize()
        width = inputs["input_ids"].shape[1]
        return int((out.shape[1] - width) * out.shape[0]), int(inputs["attention_mask"].sum())

    generate(prompts[:4])  # warm-up
    results = []
    for b in BATCHES:
        times, out_tokens, in_tokens = [], 0, 0
        for _ in range(repeats):
            t = time.perf_counter()
            out_tokens, in_tokens = generate(prompts[:b])
            times.append(time.perf_counter() - t)
        results.append({"batch": b, "times_s": times, "output_tokens": out_tokens,
                        "input_tokens": in_tokens})
    engine = {"name": "transformers", "version": transformers.__version__,
              "torch": torch.__version__, "attn_implementation": "sdpa"}
    return engine, {"served_model_name": os.path.basename(model_dir)}, load_s, results


def result_json(engine, model, load_s, r):
    median = statistics.median(r["times_s"])
    inputs = r["input_tokens"]
    model = dict(model, name="Llama-3.2-3B shape (random weights)", dtype="bfloat16")
    return {
        "schema": "kite-bench/1",
        "kind": "throughput",
        "label": f"W4 batch {r['batch']} ({engine['name']})",
        "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "tool": {"name": "scripts/bench_w4_python.py"},
        "engine": engine,
        "environment": {"gpus": [{"name": gpu_name()}], "python": platform.python_version(),
                        "os": platform.platform()},
        "model": model,
        "workload": {"preset": "W4", "num_prompts": r["batch"], "input_len_mean":
                     inputs / r["batch"], "output_len": OUTPUT_LEN, "ignore_eos": True,
                     "request_rate": "inf",
                     "prompts": "scripts/bench_w4_python.py QUESTIONS, chat template"},
        "config": {"model_load_s": load_s, "num_warmups": 1, "repeats": len(r["times_s"])},
        "metrics": {
            "duration_s": median,
            "durations_s": r["times_s"],
            "num_requests": r["batch"],
            "completed": r["batch"],
            "failed": 0,
            "total_input_tokens": inputs,
            "total_output_tokens": r["output_tokens"],
            "request_throughput": r["batch"] / median,
            "output_throughput": r["output_tokens"] / median,
            "total_token_throughput": (inputs + r["output_tokens"]) / median,
        },
        "notes": ["wall time of one offline batch (the study's metric), median of the repeats"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="gpu-out/w4")
    ap.add_argument("--model-dir", default="/tmp/kite-w4/llama-3.2-3b-random")
    ap.add_argument("--engines", default="kite,transformers")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hf-repeats", type=int, default=1,
                    help="repeats for transformers (its batches take seconds each)")
    ap.add_argument("--engine", help=argparse.SUPPRESS)  # child process: run one engine
    a = ap.parse_args()
    if a.engine:
        prompts = render_prompts(a.model_dir)
        run = run_kite if a.engine == "kite" else run_transformers
        engine, model, load_s, results = run(a.model_dir, prompts, a.repeats)
        os.makedirs(a.out, exist_ok=True)
        for r in results:
            path = os.path.join(a.out, f"W4-batch{r['batch']}-{a.engine}.json")
            with open(path, "w") as f:
                json.dump(result_json(engine, model, load_s, r), f, indent=1)
        return

    make_model(a.model_dir)
    rows = []
    for name in a.engines.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--engine", name, "--out", a.out,
               "--model-dir", a.model_dir,
               "--repeats", str(a.repeats if name == "kite" else a.hf_repeats)]
        rc = subprocess.run(cmd).returncode
        if rc != 0:
            print(f"{name}: exit code {rc}", file=sys.stderr)
            continue
        for b in BATCHES:
            with open(os.path.join(a.out, f"W4-batch{b}-{name}.json")) as f:
                m = json.load(f)["metrics"]
            rows.append((name, b, m["duration_s"], m["output_throughput"],
                         m["total_input_tokens"] / b))
    print("engine | batch | wall s (median) | output tok/s | prompt tokens (mean)")
    for name, b, s, tps, mean_in in rows:
        print(f"{name} | {b} | {s:.3f} | {tps:.1f} | {mean_in:.1f}")
    if len(rows) != len(BATCHES) * len(a.engines.split(",")):
        sys.exit(1)


if __name__ == "__main__":
    main()
