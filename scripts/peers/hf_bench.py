#!/usr/bin/env python3
"""Hugging Face transformers on kite's reference workloads, written as kite bench results.

The peers of docs/benchmarks.md, measured on the same GPU as kite, with random weights at real
shapes (speed does not depend on the values; no model hub needed):
  W1  random prompts, fixed lengths, every request at t = 0, at reduced counts:
        "transformers generate_batch"  continuous batching (model.generate_batch)
        "transformers generate"        static batches of --static-batch (model.generate)
  W4  the W4 chat prompts (src/bench/data/w4_chat_prompts.json), batches 4/8/16/32,
      128 new tokens, wall time of each batch (static model.generate)
  W5  batch 1, 128 in / 256 out (static model.generate)
Every request generates exactly its output length (min_new_tokens = max_new_tokens; EOS
disabled for generate_batch). Per-token times come from a streamer (generate) or
record_timestamps (generate_batch); the metric definitions are kite's (bench_schema.py).
Each result is written as soon as it is measured, so a run cut short keeps what it finished.

  python3 scripts/peers/hf_bench.py --shape llama-3-8b --workloads W1,W5 --out results/
  python3 scripts/peers/hf_bench.py --shape llama-3.2-3b --workloads W4 --out results/
  python3 scripts/peers/hf_bench.py --write-config llama-3-8b /tmp/models/llama-3-8b
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_schema  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
W4_PROMPTS = os.path.join(HERE, "..", "..", "src", "bench", "data", "w4_chat_prompts.json")

# config.json of each shape, as the published checkpoints have it (transformers 4.x layout, which
# both transformers 5 and kite read).
SHAPES = {
    "llama-3-8b": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": None, "tie_word_embeddings": False, "attention_bias": False,
        "mlp_bias": False, "hidden_act": "silu", "bos_token_id": 128000,
        "eos_token_id": 128001, "torch_dtype": "bfloat16",
    },
    "llama-3.2-3b": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": 128256, "hidden_size": 3072, "intermediate_size": 8192,
        "num_hidden_layers": 28, "num_attention_heads": 24, "num_key_value_heads": 8,
        "head_dim": 128, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False,
        "hidden_act": "silu", "bos_token_id": 128000,
        "eos_token_id": [128001, 128008, 128009], "torch_dtype": "bfloat16",
    },
    # For testing this script on a CPU (tests/e2e/test_peers.py); not a reference shape.
    "tiny-llama": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": 128256, "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": None, "tie_word_embeddings": True, "attention_bias": False,
        "mlp_bias": False, "hidden_act": "silu", "bos_token_id": 128000,
        "eos_token_id": 128001, "torch_dtype": "bfloat16",
    },
}
W1_DATASETS = [(128, 128), (2048, 128), (128, 2048), (2048, 2048)]


def write_config(shape, path):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(SHAPES[shape], f, indent=2)
        f.write("\n")
    return path


def model_json(shape):
    c = SHAPES[shape]
    h, i, l = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    heads, kv = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c.get("head_dim", h // heads)
    v, tied = c["vocab_size"], c["tie_word_embeddings"]
    per_layer = h * (heads * hd + 2 * kv * hd) + heads * hd * h + 3 * h * i + 2 * h
    return {"name": shape, "format": "hf", "architecture": "LlamaForCausalLM", "dtype": "bfloat16",
            "hidden_size": h, "intermediate_size": i, "num_hidden_layers": l,
            "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": hd,
            "vocab_size": v, "tie_word_embeddings": tied,
            "num_parameters": l * per_layer + h + v * h * (1 if tied else 2)}


class Peer:
    def __init__(self, args):
        import torch
        import transformers
        self.torch = torch
        self.transformers = transformers
        self.args = args
        self.deadline = time.monotonic() + args.time_budget if args.time_budget > 0 else None
        cfg_dir = write_config(args.shape, os.path.join(args.work, args.shape))
        config = transformers.AutoConfig.from_pretrained(cfg_dir)
        self.device = torch.device(args.device)
        t = time.perf_counter()
        torch.manual_seed(0)
        with self.device:
            self.model = transformers.AutoModelForCausalLM.from_config(
                config, attn_implementation=args.attn, dtype=torch.bfloat16)
        self.model.eval()
        self.sync()
        self.load_s = time.perf_counter() - t
        self.vocab = config.vocab_size
        print(f"[hf] {args.shape}: random weights on the GPU in {self.load_s:.1f} s "
              f"(transformers {transformers.__version__}, torch {torch.__version__}, "
              f"attn {args.attn})", flush=True)

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def out_of_time(self, what):
        if self.deadline is not None and time.monotonic() > self.deadline:
            print(f"[hf] skipping {what}: the time budget is spent", flush=True)
            return True
        return False

    def random_prompts(self, n, length, seed):
        rng = np.random.default_rng(seed)
        # Below 128000: the Llama-3 special tokens start there.
        return rng.integers(0, min(self.vocab, 128000), size=(n, length)).tolist()

    def write(self, label, file_label, workload, config, samples, duration_s, notes=()):
        r = bench_schema.new_result("throughput", label, "scripts/peers/hf_bench.py")
        r["engine"] = {"name": "transformers", "version": self.transformers.__version__,
                       "torch": self.torch.__version__, "attn_implementation": self.args.attn}
        r["model"] = model_json(self.args.shape)
        r["workload"] = workload
        cfg = {"model_init_s": self.load_s, "dtype": "bfloat16", "do_sample": False}
        cfg.update(config)
        r["config"] = cfg
        r["metrics"] = bench_schema.metrics(samples, duration_s)
        r["slo"] = {}
        r["token_check"] = bench_schema.token_check(samples)
        r["failures"] = {"count": 0, "by_kind": {}, "examples": []}
        r["samples"] = bench_schema.samples_json(samples, include_itl=self.args.save_detailed)
        r["notes"] = list(notes)
        path = os.path.join(self.args.out, f"{file_label}-{workload['file_stem']}.json")
        del r["workload"]["file_stem"]
        os.makedirs(self.args.out, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump(r, f, indent=1)
        os.replace(path + ".tmp", path)
        m = r["metrics"]
        print(f"[hf] {label} {workload['name']}: {m['completed']} requests in "
              f"{m['duration_s']:.2f} s, {m['output_throughput']:.1f} output tok/s, "
              f"TTFT mean {m['ttft_ms']['mean']:.1f} ms, TPOT mean {m['tpot_ms']['mean']:.2f} ms"
              f" -> {path}", flush=True)

    # -- static batches (model.generate) with a per-step timing streamer --

    def generate_static(self, batch, out_len):
        """Runs one static batch; returns (start, [step times], end) in perf_counter seconds."""
        torch = self.torch
        lens = [len(p) for p in batch]
        width = max(lens)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for k, p in enumerate(batch):  # left padding
            ids[k, width - len(p):] = torch.tensor(p)
            mask[k, width - len(p):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        times = []

        class Streamer(self.transformers.generation.streamers.BaseStreamer):
            def __init__(self):
                self.first = True

            def put(self, value):
                if self.first:  # the prompt
                    self.first = False
                    return
                value.cpu()  # waits for the step's token
                times.append(time.perf_counter())

            def end(self):
                pass

        gen = self.transformers.GenerationConfig(
            max_new_tokens=out_len, min_new_tokens=out_len, do_sample=False, pad_token_id=0,
            eos_token_id=SHAPES[self.args.shape]["eos_token_id"])
        self.sync()
        start = time.perf_counter()
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=gen,
                                      streamer=Streamer())
        self.sync()
        end = time.perf_counter()
        produced = out.shape[1] - width
        return start, times, end, produced, lens

    def run_static(self, prompts, out_len, batch_size):
        """Every prompt at t = 0, served in static batches one after another."""
        samples = []
        t0 = None
        for b in range(0, len(prompts), batch_size):
            batch = prompts[b:b + batch_size]
            start, times, end, produced, lens = self.generate_static(batch, out_len)
            t0 = start if t0 is None else t0
            for n_in in lens:
                samples.append(bench_schema.Sample(
                    0.0, [t - t0 for t in times], end - t0, n_in, produced, out_len))
        duration = max(s.end_s for s in samples)
        return samples, duration

    def warmup(self):
        self.generate_static(self.random_prompts(2, 16, 99), 4)

    # -- workloads --

    def w1(self):
        a = self.args
        cb_counts = [int(x) for x in a.cb_prompts.split(",")]
        st_counts = [int(x) for x in a.static_prompts.split(",")]
        for k, (n_in, n_out) in enumerate(W1_DATASETS):
            stem = f"W1-{n_in}x{n_out}"
            name = f"W1 ({n_in},{n_out})"
            workload = {"preset": "W1", "name": name, "file_stem": stem, "dataset": "random",
                        "input_len": n_in, "output_len": n_out, "range_ratio": 0.0,
                        "ignore_eos": True, "request_rate": "inf", "reference_model": "Llama-3-8B"}
            if k < len(cb_counts) and cb_counts[k] > 0 and not self.out_of_time(f"{name} cb"):
                n = cb_counts[k]
                self.run_generate_batch(self.random_prompts(n, n_in, k), n_out,
                                        dict(workload, num_prompts=n))
            if k < len(st_counts) and st_counts[k] > 0 and not self.out_of_time(f"{name} static"):
                n = st_counts[k]
                bs = min(n, a.static_batch)
                samples, duration = self.run_static(self.random_prompts(n, n_in, 100 + k), n_out, bs)
                self.write("transformers generate", "transformers_static",
                           dict(workload, num_prompts=n), {"static_batch_size": bs}, samples,
                           duration, [f"static batches of {bs}, one after another"])

    def run_generate_batch(self, prompts, out_len, workload):
        gen = self.transformers.GenerationConfig(max_new_tokens=out_len, do_sample=False,
                                                 eos_token_id=-1, pad_token_id=0)
        self.sync()
        wall0 = time.perf_counter()
        results = self.model.generate_batch(inputs=prompts, generation_config=gen,
                                            record_timestamps=True, progress_bar=False)
        self.sync()
        wall = time.perf_counter() - wall0
        outs = list(results.values())
        if len(outs) != len(prompts) or any(o.error for o in outs):
            raise RuntimeError(f"generate_batch returned {len(outs)} of {len(prompts)} results "
                               f"(errors: {[o.error for o in outs if o.error][:3]})")
        t0 = min(o.created_time for o in outs)
        samples = []
        for o in outs:
            ts = [t - t0 for t in (o.timestamps or [])]
            end = ts[-1] if ts else o.lifespan[1] - t0
            samples.append(bench_schema.Sample(o.created_time - t0, ts, end, len(o.prompt_ids),
                                               len(o.generated_tokens), out_len))
        duration = max(s.end_s for s in samples)
        self.write("transformers generate_batch", "transformers_cb", workload,
                   {"generate_batch_wall_s": wall}, samples, duration,
                   ["continuous batching (generate_batch), default settings; duration from the "
                    "first request's creation to the last token (the call's setup excluded)"])

    def w4(self):
        prompts = [p["token_ids"] for p in json.load(open(W4_PROMPTS))["prompts"]]
        for b in (4, 8, 16, 32):
            if self.out_of_time(f"W4 batch {b}"):
                return
            samples, duration = self.run_static(prompts[:b], 128, b)
            workload = {"preset": "W4", "name": f"W4 batch {b}", "file_stem": f"W4-batch{b}",
                        "dataset": "w4_chat_prompts", "num_prompts": b, "output_len": 128,
                        "ignore_eos": True, "request_rate": "inf",
                        "reference_model": "Llama-3.2-3B"}
            self.write("transformers", "transformers", workload, {"static_batch_size": b},
                       samples, duration, ["one static batch: wall time of model.generate"])

    def w5(self):
        if self.out_of_time("W5"):
            return
        n = self.args.w5_repeats
        samples = []
        clock = 0.0
        for k in range(n):
            start, times, end, produced, lens = self.generate_static(
                self.random_prompts(1, 128, 500 + k), 256)
            samples.append(bench_schema.Sample(clock, [clock + t - start for t in times],
                                               clock + end - start, lens[0], produced, 256))
            clock += end - start
        workload = {"preset": "W5", "name": "W5 batch 1 (128,256)", "file_stem": "W5-batch1",
                    "dataset": "random", "num_prompts": n, "input_len": 128, "output_len": 256,
                    "ignore_eos": True, "request_rate": "inf", "max_concurrency": 1,
                    "reference_model": "Llama-3-8B"}
        self.write("transformers", "transformers", workload, {"batch_size": 1}, samples, clock,
                   ["batch 1, requests one after another"])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write-config", nargs=2, metavar=("SHAPE", "DIR"),
                    help="only write SHAPE's config.json into DIR (for kite --load-format dummy)")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="llama-3-8b")
    ap.add_argument("--workloads", default="W1,W5", help="comma list of W1, W4, W5")
    ap.add_argument("--out", default="results")
    ap.add_argument("--work", default="/tmp/kite-peers", help="where config.json files go")
    ap.add_argument("--attn", default="sdpa", help="attn_implementation (sdpa, eager, ...)")
    ap.add_argument("--device", default="cuda", help="torch device (cpu only for testing)")
    ap.add_argument("--cb-prompts", default="256,32,0,0",
                    help="W1 generate_batch requests per dataset (128,128),(2048,128),"
                         "(128,2048),(2048,2048); 0 skips")
    ap.add_argument("--static-prompts", default="64,16,0,0",
                    help="W1 static-batch requests per dataset; 0 skips")
    ap.add_argument("--static-batch", type=int, default=64, help="W1 static batch size")
    ap.add_argument("--w5-repeats", type=int, default=3)
    ap.add_argument("--time-budget", type=float, default=0,
                    help="seconds; workloads not started by then are skipped (0: no limit)")
    ap.add_argument("--save-detailed", action="store_true", help="keep per-token gaps")
    args = ap.parse_args()
    if args.write_config:
        shape, path = args.write_config
        if shape not in SHAPES:
            ap.error(f"unknown shape {shape}; known: {', '.join(sorted(SHAPES))}")
        print(write_config(shape, path))
        return
    peer = Peer(args)
    peer.warmup()
    for w in [w.strip() for w in args.workloads.split(",") if w.strip()]:
        if w == "W1":
            peer.w1()
        elif w == "W4":
            peer.w4()
        elif w == "W5":
            peer.w5()
        else:
            ap.error(f"unknown workload {w} (W1, W4 or W5)")


if __name__ == "__main__":
    main()
