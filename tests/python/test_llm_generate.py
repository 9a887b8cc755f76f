"""LLM.generate on the shipped TinyStories model: the same outputs as the C++ CLI
(`kite generate`, KITE_BIN) for the same prompts, parameters and seeds; input order kept; n > 1;
stop strings and stop tokens; seeds independent of the batch."""

import json
import os
import subprocess

import kite
import pytest

from conftest import ROOT, TINY

KITE = os.environ.get("KITE_BIN", os.path.join(ROOT, "build", "bin", "kite"))

# (prompt, sampling fields): greedy, seeded sampling with every processing step, unseeded
# sampling (seeds come from the engine's generator, seeded by --seed / LLM(seed=...)), n > 1,
# stop strings, stop tokens, logprobs, token-id prompts.
REQUESTS = [
    ({"prompt": "Once upon a time"}, {"temperature": 0, "max_tokens": 24}),
    ({"prompt": "The little dog"}, {"temperature": 0.8, "top_p": 0.9, "seed": 7,
                                    "max_tokens": 24}),
    ({"prompt_token_ids": [1, 80, 147, 201]}, {"temperature": 1.0, "top_k": 20, "seed": 3,
                                                "max_tokens": 20, "n": 3}),
    ({"prompt": "Lily had a"}, {"temperature": 0.7, "min_p": 0.05, "repetition_penalty": 1.2,
                                "presence_penalty": 0.5, "frequency_penalty": 0.3, "seed": 11,
                                "max_tokens": 24}),
    ({"prompt": "One day, Tom"}, {"temperature": 0, "max_tokens": 60, "stop": ["."],
                                  "include_stop_str_in_output": True}),
    ({"prompt": "The sun"}, {"temperature": 0, "max_tokens": 60, "stop": [" the", "!"]}),
    ({"prompt": "Once"}, {"temperature": 0.9, "max_tokens": 16}),
    ({"prompt": "Sara"}, {"temperature": 0.6, "seed": 99, "max_tokens": 12, "logprobs": 3,
                          "min_tokens": 4}),
    ({"prompt": "A big"}, {"temperature": 0, "max_tokens": 30, "stop_token_ids": [13]}),
    ({"prompt": "They"}, {"temperature": 1.2, "max_tokens": 8, "n": 2}),
]


def python_params(fields):
    return kite.SamplingParams(**fields)


def run_cli(tmp_path, requests):
    src = tmp_path / "in.jsonl"
    dst = tmp_path / "out.jsonl"
    with open(src, "w") as f:
        for prompt, fields in requests:
            f.write(json.dumps({**prompt, **fields}) + "\n")
    r = subprocess.run([KITE, "generate", TINY, "--input", str(src), "--output", str(dst),
                        "--no-progress", "--seed", "0"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    with open(dst) as f:
        return [json.loads(line) for line in f]


def python_prompt(prompt):
    return prompt if "prompt_token_ids" in prompt else prompt["prompt"]


def test_outputs_equal_the_clis(tmp_path):
    cli = run_cli(tmp_path, REQUESTS)
    llm = kite.LLM(TINY, seed=0)  # the same engine seed as --seed 0
    outs = llm.generate([python_prompt(p) for p, _ in REQUESTS],
                        [python_params(f) for _, f in REQUESTS], use_tqdm=False)
    llm.shutdown()
    assert len(cli) == len(outs) == len(REQUESTS)
    for i, (want, got) in enumerate(zip(cli, outs)):
        assert want["index"] == i and "error" not in want, want
        assert got.prompt_token_ids == want["prompt_token_ids"]
        assert len(got.outputs) == len(want["outputs"]) == REQUESTS[i][1].get("n", 1)
        for c, w in zip(got.outputs, want["outputs"]):
            assert c.index == w["index"]
            assert c.token_ids == w["token_ids"], i
            assert c.text == w["text"]
            assert c.finish_reason == w["finish_reason"]
            assert c.stop_reason == w["stop_reason"]
            if "logprobs" in w:
                assert len(c.logprobs) == len(w["logprobs"])
                for entry, we in zip(c.logprobs, w["logprobs"]):
                    assert list(entry)[0] == we["token_id"]
                    assert entry[we["token_id"]].logprob == we["logprob"]
                    assert entry[we["token_id"]].rank == we["rank"]
                    top = sorted((lp.rank, t) for t, lp in entry.items() if lp.rank <= 3)
                    assert [t for _, t in top] == [t["token_id"] for t in we["top"]]
    # What the requests were for.
    assert outs[4].outputs[0].finish_reason == "stop" and outs[4].outputs[0].text.endswith(".")
    assert outs[4].outputs[0].stop_reason == "."
    assert outs[8].outputs[0].stop_reason in (13, None)


def test_single_prompt_matches_cli_text(tmp_path):
    r = subprocess.run([KITE, "generate", TINY, "--prompt", "Once upon a time", "--max-tokens",
                        "32", "--temperature", "0"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    llm_out = kite.LLM(TINY).generate("Once upon a time",
                                      kite.SamplingParams(temperature=0, max_tokens=32),
                                      use_tqdm=False)
    assert r.stdout.rstrip("\n") == llm_out[0].outputs[0].text


def test_order_is_input_order_whatever_finishes_first(tiny_llm):
    prompts = [f"Story number {i}." for i in range(12)]
    params = [kite.SamplingParams(temperature=0, max_tokens=40 - 3 * i, ignore_eos=True)
              for i in range(12)]  # the last prompts finish first
    outs = tiny_llm.generate(prompts, params, use_tqdm=False)
    assert [o.prompt for o in outs] == prompts
    assert [len(o.outputs[0].token_ids) for o in outs] == [40 - 3 * i for i in range(12)]
    ids = [int(o.request_id) for o in outs]
    assert ids == sorted(ids) and len(set(ids)) == 12


def test_n_choices_are_the_seeded_single_choices(tiny_llm):
    """Choice c of a request with seed s samples as a single-choice request with seed s + c."""
    n3 = tiny_llm.generate("The cat", kite.SamplingParams(n=3, temperature=1.0, seed=40,
                                                          max_tokens=16), use_tqdm=False)[0]
    assert [c.index for c in n3.outputs] == [0, 1, 2]
    singles = tiny_llm.generate(["The cat"] * 3,
                                [kite.SamplingParams(temperature=1.0, seed=40 + c, max_tokens=16)
                                 for c in range(3)], use_tqdm=False)
    assert [c.token_ids for c in n3.outputs] == [s.outputs[0].token_ids for s in singles]
    assert len({tuple(c.token_ids) for c in n3.outputs}) > 1  # they do differ
    greedy = tiny_llm.generate("The cat", kite.SamplingParams(n=4, temperature=0, max_tokens=8),
                               use_tqdm=False)[0]
    assert len({tuple(c.token_ids) for c in greedy.outputs}) == 1


def test_seeded_outputs_do_not_depend_on_the_batch(tiny_llm):
    p = kite.SamplingParams(temperature=0.9, seed=1234, max_tokens=20)
    alone = tiny_llm.generate("Tim and Sue", p, use_tqdm=False)[0].outputs[0].token_ids
    crowd = tiny_llm.generate(["Once", "Tim and Sue", "The big red ball", "A"] * 3,
                              [kite.SamplingParams(temperature=0.7, max_tokens=30), p,
                               kite.SamplingParams(temperature=0, max_tokens=5), p] * 3,
                              use_tqdm=False)
    for i in (1, 5, 9):
        assert crowd[i].outputs[0].token_ids == alone


def test_max_tokens_none_runs_to_the_context(tiny_llm):
    out = tiny_llm.generate([1, 80], kite.SamplingParams(temperature=0, max_tokens=None,
                                                         ignore_eos=True), use_tqdm=False)[0]
    assert len(out.outputs[0].token_ids) == 512 - 2
    assert out.outputs[0].finish_reason == "length"


def test_default_sampling_params_come_from_generation_config(llama3_llm):
    d = llama3_llm.get_default_sampling_params()
    assert (d.temperature, d.top_p) == (0.6, 0.9)  # tiny_llama3.GENERATION_CONFIG


def test_concurrent_generate_calls(tiny_llm):
    import threading

    p = kite.SamplingParams(temperature=0.8, seed=5, max_tokens=24)
    want = tiny_llm.generate(["Ann", "Ben", "Cat"], p, use_tqdm=False)
    results = {}

    def worker(k):
        results[k] = tiny_llm.generate(["Ann", "Ben", "Cat"], p, use_tqdm=False)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert [o.outputs[0].token_ids for o in results[k]] == \
            [o.outputs[0].token_ids for o in want]


@pytest.mark.parametrize("prompt", ["Once upon a time", [1, 80, 147]])
def test_prompt_logprobs_length(tiny_llm, prompt):
    out = tiny_llm.generate(prompt, kite.SamplingParams(max_tokens=2, prompt_logprobs=0),
                            use_tqdm=False)[0]
    assert len(out.prompt_logprobs) == len(out.prompt_token_ids)
    assert out.prompt_logprobs[0] is None
    assert all(list(d) == [t] for d, t in zip(out.prompt_logprobs[1:], out.prompt_token_ids[1:]))


def test_quantization_fp8_matches_the_cli(tmp_path):
    # --quantization fp8: per-channel FP8 weights made at load; the CPU computes with them.
    llm = kite.LLM(TINY, quantization="fp8", device="cpu")
    params = kite.SamplingParams(temperature=0, max_tokens=24)
    out = llm.generate([{"prompt_token_ids": [1, 80, 147, 201]}], params)[0].outputs[0]
    cli = subprocess.run([KITE, "generate", TINY, "--device", "cpu", "--quantization", "fp8",
                          "--prompt-ids", "1,80,147,201", "--max-tokens", "24", "--temperature",
                          "0", "--print-ids", "--no-progress"],
                         capture_output=True, text=True, check=True)
    assert [int(t) for t in cli.stdout.strip().split(",")] == list(out.token_ids)
    with pytest.raises(ValueError, match="supports 'fp8'"):
        kite.LLM(TINY, quantization="awq")


def _with_kv_scales(src, dst, scales):
    """A copy of the model folder `src` in `dst` whose model.safetensors also holds `scales`
    ({name: numpy array}), written with numpy the way safetensors lays tensors out."""
    import shutil

    import numpy as np

    os.makedirs(dst, exist_ok=True)
    for name in os.listdir(src):
        if name != "model.safetensors":
            shutil.copy(os.path.join(src, name), dst)
    with open(os.path.join(src, "model.safetensors"), "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    codes = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int32): "I32"}
    for name, arr in scales.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": codes[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(dst, "model.safetensors"), "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + data)
    return dst


def test_kv_cache_dtype_fp8(tmp_path):
    # --kv-cache-dtype fp8 (vLLM's spelling; fp8_e4m3 the same): E4M3 bytes with per-layer scales,
    # 1 byte per element, so a fixed KV budget holds 4x the float32 cache's blocks.
    import numpy as np

    budget = 1 << 20
    params = kite.SamplingParams(temperature=0, max_tokens=24)
    prompt = [{"prompt_token_ids": [1, 80, 147, 201]}]
    f32 = kite.LLM(TINY, device="cpu", kv_cache_memory_bytes=budget)
    fp8 = kite.LLM(TINY, device="cpu", kv_cache_memory_bytes=budget, kv_cache_dtype="fp8")
    assert f32.model_info.kv_cache_dtype == "float32"
    assert fp8.model_info.kv_cache_dtype == "fp8_e4m3"
    assert fp8.model_info.num_kv_blocks == 4 * f32.model_info.num_kv_blocks
    assert fp8.model_info.kv_cache_bytes == f32.model_info.kv_cache_bytes
    out = fp8.generate(prompt, params, use_tqdm=False)[0].outputs[0]
    ref = f32.generate(prompt, params, use_tqdm=False)[0].outputs[0]
    assert out.token_ids[0] == ref.token_ids[0]  # later tokens may part at near-ties
    cli = subprocess.run([KITE, "generate", TINY, "--device", "cpu", "--kv-cache-dtype", "fp8_e4m3",
                          "--kv-cache-memory", str(budget), "--prompt-ids", "1,80,147,201",
                          "--max-tokens", "24", "--temperature", "0", "--print-ids",
                          "--no-progress"],
                         capture_output=True, text=True, check=True)
    assert [int(t) for t in cli.stdout.strip().split(",")] == list(out.token_ids)

    # Scales from the checkpoint: 1.0 written out changes nothing; others change the logprobs.
    logprob_params = kite.SamplingParams(max_tokens=1, prompt_logprobs=0)
    ids = [1, 80, 147, 201, 300, 42, 7, 1000, 33]

    def prompt_logprobs(llm):
        got = llm.generate([{"prompt_token_ids": ids}], logprob_params, use_tqdm=False)[0]
        return [next(iter(d.values())).logprob for d in got.prompt_logprobs[1:]]

    base = prompt_logprobs(fp8)
    ones = {f"model.layers.{i}.self_attn.{kv}_scale": np.array(1.0, np.float32)
            for i in range(2) for kv in "kv"}
    same = kite.LLM(_with_kv_scales(TINY, tmp_path / "ones", ones), device="cpu",
                    kv_cache_dtype="fp8")
    assert prompt_logprobs(same) == base
    other = {"model.layers.0.self_attn.k_proj.output_scale": np.array([0.05], np.float16),
             "model.layers.1.self_attn.v_scale": np.array(0.03, np.float32)}
    scaled = kite.LLM(_with_kv_scales(TINY, tmp_path / "scaled", other), device="cpu",
                      kv_cache_dtype="fp8")
    assert prompt_logprobs(scaled) != base
    # Without an FP8 cache the scales are not read (vLLM's behaviour).
    assert kite.LLM(str(tmp_path / "scaled"), device="cpu").model_info.kv_cache_dtype == "float32"

    # Bad input: a bad scale names its tensor; fp8_e5m2 and unknown names are clear errors.
    bad = {"model.layers.1.self_attn.v_scale": np.array(-1.0, np.float32)}
    with pytest.raises(ValueError, match=r"model\.layers\.1\.self_attn\.v_scale"):
        kite.LLM(_with_kv_scales(TINY, tmp_path / "bad", bad), device="cpu", kv_cache_dtype="fp8")
    wrong = {"model.layers.0.self_attn.k_scale": np.array([1, 2], np.int32)}
    with pytest.raises(ValueError, match=r"model\.layers\.0\.self_attn\.k_scale"):
        kite.LLM(_with_kv_scales(TINY, tmp_path / "wrong", wrong), device="cpu",
                 kv_cache_dtype="fp8")
    with pytest.raises(NotImplementedError, match="fp8_e5m2"):
        kite.LLM(TINY, device="cpu", kv_cache_dtype="fp8_e5m2")
    with pytest.raises(ValueError, match="fp8_e4m3"):
        kite.LLM(TINY, device="cpu", kv_cache_dtype="int8")
