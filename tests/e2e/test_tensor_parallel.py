"""Tensor parallelism on the CPU backend over MPI (docs/parallel.md): `mpirun -np N kite generate
... --tensor-parallel-size N` gives one rank's greedy tokens, token for token, on the shipped
models and on dummy models with awkward head counts (KV heads replicated, a vocabulary no rank
count divides); bad sizes fail on every rank; a rank that dies or hangs mid-run ends every rank
with an error; `kite generate|serve` started without mpirun start their ranks under it; pipeline
stages with micro-batches in flight give one rank's tokens on steps that mix prefill chunks and
decodes. Each run waits on process exit (a generous timeout), never on the clock."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KITE = os.environ.get("KITE_BIN", os.path.join(ROOT, "build", "bin", "kite"))
DATA = os.path.join(ROOT, "tests", "data")
TINY = os.path.join(DATA, "models", "tinystories-656k")
STORIES = os.path.join(DATA, "models", "stories260k", "stories260K.gguf")
Q8 = os.path.join(DATA, "models", "tinystories-656k-q8_0.gguf")
MPIRUN = shutil.which("mpirun")

pytestmark = [
    pytest.mark.skipif(not os.path.exists(KITE), reason=f"no kite binary at {KITE}"),
    pytest.mark.skipif(MPIRUN is None, reason="no mpirun (apt install openmpi-bin)"),
]

PROMPT = ["--prompt-ids", "1,5,9,200,31,7", "--max-tokens", "24", "--ignore-eos", "--print-ids"]
WAIT_S = 120  # a bound on process exit, far above what any run here takes


def mpirun_args(n, env=()):
    # Root (CI containers) needs --allow-run-as-root; CI machines have fewer cores than ranks.
    args = [MPIRUN, "-np", str(n), "--oversubscribe"]
    if os.geteuid() == 0:
        args.append("--allow-run-as-root")
    for name in env:
        args += ["-x", name]
    return args


def run(cmd, env=None):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT_S, env=full_env)


def generate(model, *extra, tp=1, pp=1, env=None):
    cmd = [KITE, "generate", model, "--device", "cpu", *extra]
    if tp * pp > 1:
        cmd = mpirun_args(tp * pp, env or {}) + cmd + ["--tensor-parallel-size", str(tp),
                                                      "--pipeline-parallel-size", str(pp)]
    return run(cmd, env)


def tokens(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return [int(t) for t in result.stdout.strip().split(",")]


def dummy_model(tmp_path, base, **overrides):
    """A --load-format dummy model: `base`'s published config with small, awkward sizes."""
    with open(os.path.join(DATA, "configs", base, "config.json")) as f:
        config = json.load(f)
    config.update(dict(num_hidden_layers=2, max_position_embeddings=512, bos_token_id=1,
                       eos_token_id=2), **overrides)
    d = tmp_path / base
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config))
    return str(d)


@pytest.mark.parametrize("model", [TINY, STORIES, Q8], ids=["safetensors", "gguf-f32", "gguf-q8_0"])
def test_tp2_pp2_and_both_equal_one_rank(model):
    """TP 2, PP 2 (stories260K's 5 layers split 3 + 2) and TP 2 x PP 2 on 4 ranks."""
    args = PROMPT if model == TINY else PROMPT[2:]
    one = tokens(generate(model, *args))
    assert tokens(generate(model, *args, tp=2)) == one
    assert tokens(generate(model, *args, pp=2)) == one
    assert tokens(generate(model, *args, tp=2, pp=2)) == one


def test_fp8_kv_cache_split_equals_one_rank():
    """--kv-cache-dtype fp8: each rank's FP8 cache of its KV heads / its stage's layers."""
    args = [*PROMPT, "--kv-cache-dtype", "fp8"]
    one = tokens(generate(TINY, *args))
    assert tokens(generate(TINY, *args, tp=2)) == one
    assert tokens(generate(TINY, *args, pp=2)) == one


# Qwen2 (q/k/v biases, untied LM head): 12 query heads over 2 KV heads, so 4 ranks replicate each
# KV head on 2 ranks; vocab 1001 leaves the last rank a shorter shard (padded logits).
QWEN2_AWKWARD = dict(hidden_size=96, num_attention_heads=12, num_key_value_heads=2,
                     intermediate_size=200, vocab_size=1001, tie_word_embeddings=False)
# Qwen3 (per-head q/k norms, explicit head_dim): 6 query heads over 2 KV heads, vocab 777.
QWEN3_AWKWARD = dict(hidden_size=64, num_attention_heads=6, num_key_value_heads=2, head_dim=16,
                     intermediate_size=96, vocab_size=777, tie_word_embeddings=True)


# Phi-3 stores q/k/v and gate/up fused in one tensor each: the rank's rows are cut inside it.
PHI3_SMALL = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=4,
                  intermediate_size=96, vocab_size=500)
# Qwen3-MoE: pipeline stages only (tensor parallelism of experts is refused, below).
MOE_SMALL = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                 intermediate_size=96, moe_intermediate_size=32, num_experts=4,
                 num_experts_per_tok=2, vocab_size=513)


@pytest.mark.parametrize("base,overrides,sizes", [
    ("qwen2.5-0.5b", QWEN2_AWKWARD, ((2, 1), (4, 1), (2, 2))),
    ("qwen3-0.6b", dict(QWEN3_AWKWARD, num_hidden_layers=3), ((2, 1), (1, 3))),
    ("phi-3-mini-4k", PHI3_SMALL, ((2, 1),)),
    ("qwen3-30b-a3b", MOE_SMALL, ((1, 2),)),
], ids=["qwen2-12q-2kv-vocab1001", "qwen3-6q-2kv-3layers", "phi3-fused-qkv", "qwen3-moe"])
def test_awkward_dummy_models_equal_one_rank(tmp_path, base, overrides, sizes):
    model = dummy_model(tmp_path, base, **overrides)
    one = tokens(generate(model, "--load-format", "dummy", *PROMPT))
    for tp, pp in sizes:
        got = tokens(generate(model, "--load-format", "dummy", *PROMPT, tp=tp, pp=pp))
        assert got == one, (tp, pp)


# Five sequences of 3 to 61 prompt tokens and a 16-token step budget: the long prompts prefill in
# chunks in the same steps as the short ones' decodes, and requests finish at different steps.
MIXED_PROMPTS = [[1, 5, 9, 200, 31, 7], [1, *range(100, 160)], [1, 44, 45], [1, *range(300, 337)],
                 [1, 7, 7, 7, 7]]


def mixed_input(tmp_path):
    inp = tmp_path / "mixed.jsonl"
    if not inp.exists():
        inp.write_text("".join(json.dumps({"id": f"r{i}", "prompt_token_ids": p,
                                           "max_tokens": 10 + 3 * i, "temperature": 0,
                                           "ignore_eos": True}) + "\n"
                               for i, p in enumerate(MIXED_PROMPTS)))
    return str(inp)


def generate_mixed(tmp_path, model, *extra, tp=1, pp=1, micro=None):
    """`kite generate --input` of MIXED_PROMPTS (greedy): each request's token ids, and stderr."""
    out = tmp_path / f"out-tp{tp}-pp{pp}-m{micro}.jsonl"
    args = ["--input", mixed_input(tmp_path), "--output", str(out), "--max-num-batched-tokens",
            "16", "--no-progress", *extra]
    if micro is not None:
        args += ["--pipeline-micro-batches", str(micro)]
    r = generate(model, *args, tp=tp, pp=pp)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(out) as f:
        return [[o["token_ids"] for o in json.loads(line)["outputs"]] for line in f], r.stderr


def micro_batches_per_step(stderr, pp):
    """The last stage's count at exit: (steps, micro-batches)."""
    m = re.search(rf"pipeline stage {pp} of {pp}: (\d+) steps in (\d+) micro-batches", stderr)
    assert m, stderr[-3000:]
    return int(m[1]), int(m[2])


@pytest.mark.parametrize("model", ["tiny", "dummy"])
def test_pp2_micro_batches_of_mixed_steps_equal_one_rank(tmp_path, model):
    """PP 2 with 2 micro-batches, with 7 (more than the 5 sequences: one sequence each), with the
    default (the number of stages) and with 1 (the whole batch), and TP 2 x PP 2 on 4 ranks with
    3: one rank's tokens, request for request, on the shipped model and on a dummy Qwen2 (12
    query heads over 2 KV heads, vocab 1001) of 3 layers split 2 + 1."""
    extra = []
    if model == "tiny":
        path = TINY
    else:
        path = dummy_model(tmp_path, "qwen2.5-0.5b", **dict(QWEN2_AWKWARD, num_hidden_layers=3))
        extra = ["--load-format", "dummy"]
    one, _ = generate_mixed(tmp_path, path, *extra)
    assert [len(t[0]) for t in one] == [10 + 3 * i for i in range(len(MIXED_PROMPTS))]
    for micro in (2, 7, None, 1):
        got, err = generate_mixed(tmp_path, path, *extra, pp=2, micro=micro)
        assert got == one, micro
        steps, parts = micro_batches_per_step(err, 2)
        if micro == 1:
            assert parts == steps
        else:  # every step of several sequences was cut
            assert steps < parts <= steps * min(micro or 2, len(MIXED_PROMPTS)), (micro, err[-2000:])
    got, err = generate_mixed(tmp_path, path, *extra, tp=2, pp=2, micro=3)
    assert got == one
    steps, parts = micro_batches_per_step(err, 2)
    assert steps < parts


def test_stage_hung_between_micro_batches_times_out_every_rank(tmp_path):
    """The last stage stops answering at its 5th step, while stage 0 hands it micro-batches:
    rank 0's send or receive outlives KITE_COLLECTIVE_TIMEOUT_S and its watchdog ends it."""
    env = {"KITE_TEST_FAIL_RANK_AT_STEP": "1:5:hang", "KITE_COLLECTIVE_TIMEOUT_S": "2"}
    r = generate(TINY, "--input", mixed_input(tmp_path), "--output", str(tmp_path / "out.jsonl"),
                 "--max-num-batched-tokens", "16", "--no-progress", "--pipeline-micro-batches",
                 "2", pp=2, env=env)
    assert r.returncode != 0
    assert "kite: rank 0: MPI_" in r.stderr and "did not complete within its timeout" in r.stderr, \
        r.stderr[-3000:]


def test_bad_micro_batch_counts_are_refused():
    """--pipeline-micro-batches below 1 is a usage error; with one stage a valid count is
    accepted and changes nothing."""
    for bad in ("0", "-2"):
        r = run([KITE, "generate", TINY, "--device", "cpu", *PROMPT,
                 "--pipeline-micro-batches", bad])
        assert r.returncode != 0
        assert "--pipeline-micro-batches: must be an integer >= 1" in r.stderr, r.stderr
    assert tokens(generate(TINY, *PROMPT, "--pipeline-micro-batches", "3")) == \
        tokens(generate(TINY, *PROMPT))


def test_expert_parallelism_is_refused_with_a_clear_error():
    """vLLM's --enable-expert-parallel is a usage error that says what kite does instead, on
    every command that builds an engine, before anything loads."""
    for cmd in (["generate", TINY, "--device", "cpu", *PROMPT], ["serve", TINY, "--device", "cpu"],
                ["bench", "throughput", TINY, "--device", "cpu"]):
        r = run([KITE, *cmd, "--enable-expert-parallel"])
        assert r.returncode != 0, cmd
        assert "--enable-expert-parallel: expert parallelism is not implemented" in r.stderr, \
            r.stderr
        assert "--pipeline-parallel-size" in r.stderr


def assert_every_rank_says(result, n, text):
    assert result.returncode != 0
    for rank in range(n):
        assert f"rank {rank} of {n}: " in result.stderr and text in result.stderr, \
            result.stderr[-3000:]


def test_sizes_that_do_not_divide_fail_on_every_rank(tmp_path):
    model = dummy_model(tmp_path, "qwen3-0.6b", **QWEN3_AWKWARD)
    # 4 ranks: 6 query heads do not split.
    r = generate(model, "--load-format", "dummy", *PROMPT, tp=4)
    assert_every_rank_says(r, 4, "does not divide the model's 6 attention heads")
    # stories260K: 3 ranks split neither its 4 KV heads nor... its 8 query heads first.
    r = generate(STORIES, *PROMPT[2:], tp=3)
    assert_every_rank_says(r, 3, "does not divide the model's 8 attention heads")


def test_tp_of_moe_is_refused_on_every_rank(tmp_path):
    model = dummy_model(tmp_path, "qwen3-30b-a3b", **MOE_SMALL)
    r = generate(model, "--load-format", "dummy", *PROMPT, tp=2)
    assert_every_rank_says(r, 2, "tensor parallelism of mixture-of-experts models is not")


def test_more_stages_than_layers_fail_on_every_rank(tmp_path):
    r = generate(TINY, *PROMPT, pp=3)  # 2 layers
    assert_every_rank_says(r, 3, "pipeline_parallel_size 3 exceeds the model's 2 layers")


def test_kv_heads_that_do_not_split_fail_on_every_rank(tmp_path):
    model = dummy_model(tmp_path, "qwen3-0.6b", **dict(QWEN3_AWKWARD, num_attention_heads=12,
                                                     num_key_value_heads=3))
    r = generate(model, "--load-format", "dummy", *PROMPT, tp=2)
    assert_every_rank_says(r, 2, "neither divides the model's 3 KV heads")


def test_world_size_other_than_tp_fails_on_every_rank():
    cmd = mpirun_args(3) + [KITE, "generate", TINY, "--device", "cpu", *PROMPT,
                           "--tensor-parallel-size", "2"]
    assert_every_rank_says(run(cmd), 3, "the MPI world has 3 ranks but tensor_parallel_size 2")
    cmd = mpirun_args(2) + [KITE, "generate", TINY, "--device", "cpu", *PROMPT]
    assert_every_rank_says(run(cmd), 2, "the MPI world has 2 ranks but tensor_parallel_size 1")
    cmd = mpirun_args(2) + [KITE, "generate", TINY, "--device", "cpu", *PROMPT,
                           "--tensor-parallel-size", "2", "--pipeline-parallel-size", "2"]
    assert_every_rank_says(run(cmd), 2, "needs 4 (mpirun -np 4)")


def test_pp_on_cuda_is_refused_on_every_rank():
    """Pipeline stages on the CUDA backend are not built yet: every rank refuses before loading
    (in any build)."""
    cmd = mpirun_args(2) + [KITE, "generate", TINY, "--device", "cuda", *PROMPT,
                           "--pipeline-parallel-size", "2"]
    assert_every_rank_says(run(cmd), 2, "pipeline parallelism is not implemented yet on the CUDA")


def test_tp_on_cuda_without_cuda_fails_on_every_rank():
    backends = run([KITE, "version"]).stdout
    if "cuda" in backends:
        pytest.skip("this kite has the CUDA backend: TP on CUDA needs several GPUs")
    cmd = mpirun_args(2) + [KITE, "generate", TINY, "--device", "cuda", *PROMPT,
                           "--tensor-parallel-size", "2"]
    assert_every_rank_says(run(cmd), 2, "no CUDA backend")


def test_one_rank_under_mpirun_on_cuda_without_cuda_is_an_error():
    """`mpirun -np 1 kite ... --device cuda` takes the CUDA worker path; a build without CUDA
    says so and exits non-zero (a CUDA build runs it: scripts/gpu-check.sh tp1)."""
    backends = run([KITE, "version"]).stdout
    if "cuda" in backends:
        pytest.skip("this kite has the CUDA backend: gpu-check.sh tp1 runs this on a GPU")
    cmd = mpirun_args(1) + [KITE, "generate", TINY, "--device", "cuda", *PROMPT]
    r = run(cmd)
    assert r.returncode != 0
    assert "no CUDA backend" in r.stderr, r.stderr[-3000:]


def test_ranks_of_different_builds_are_refused_on_every_rank():
    """Two ranks that report different builds (KITE_TEST_BUILD_ID stands in for a node with
    another kite binary; mpirun's MPMD form gives each its own environment)."""
    cmd = [KITE, "generate", TINY, "--device", "cpu", *PROMPT, "--tensor-parallel-size", "2"]
    args = mpirun_args(1)
    full = args + ["-x", "KITE_TEST_BUILD_ID=kite-a", *cmd, ":", "-np", "1", "-x",
                   "KITE_TEST_BUILD_ID=kite-b", *cmd]
    r = run(full)
    assert r.returncode != 0
    assert "rank 0 of 2: failed_precondition: rank 1 runs kite kite-b but this rank runs kite " \
           "kite-a" in r.stderr, r.stderr[-3000:]
    assert "rank 1 of 2: failed_precondition: rank 0 runs kite kite-a but this rank runs kite " \
           "kite-b" in r.stderr, r.stderr[-3000:]


def test_generate_without_mpirun_starts_its_ranks():
    """`kite generate ... --tensor-parallel-size 2` run directly re-executes itself under
    `mpirun -np 2` (docs/parallel.md): one rank's tokens; mpirun's failure is the exit status."""
    one = tokens(generate(TINY, *PROMPT))
    cmd = [KITE, "generate", TINY, "--device", "cpu", *PROMPT]
    assert tokens(run(cmd + ["--tensor-parallel-size", "2"])) == one
    assert tokens(run(cmd + ["--pipeline-parallel-size", "2"])) == one
    r = run([KITE, "generate", STORIES, "--device", "cpu", *PROMPT[2:],
             "--tensor-parallel-size", "3"])
    assert_every_rank_says(r, 3, "does not divide the model's 8 attention heads")


def test_without_mpirun_on_path_is_a_clear_error():
    r = run([KITE, "generate", TINY, "--device", "cpu", *PROMPT, "--tensor-parallel-size", "2"],
            env={"PATH": "/nonexistent"})
    assert r.returncode != 0
    assert "no mpirun is on PATH (install Open MPI: apt install openmpi-bin)" in r.stderr, \
        r.stderr


def test_rank_killed_mid_run_ends_every_rank():
    """Rank 1 kills itself (SIGKILL) at its 5th step: mpirun ends rank 0, which says why, and
    the job exits non-zero, without the full output."""
    env = {"KITE_TEST_FAIL_RANK_AT_STEP": "1:5:kill"}
    r = generate(TINY, *PROMPT, tp=2, env=env)
    assert r.returncode != 0
    assert r.stdout.strip() == ""
    assert "rank 0 of 2: terminated by the MPI launcher" in r.stderr, r.stderr[-3000:]


def test_rank_hung_mid_run_times_out_every_rank():
    """Rank 1 stops answering at its 5th step: rank 0's collective outlives
    KITE_COLLECTIVE_TIMEOUT_S, its watchdog ends it with a message, and mpirun ends rank 1."""
    env = {"KITE_TEST_FAIL_RANK_AT_STEP": "1:5:hang", "KITE_COLLECTIVE_TIMEOUT_S": "2"}
    r = generate(TINY, *PROMPT, tp=2, env=env)
    assert r.returncode != 0
    assert "kite: rank 0: MPI_" in r.stderr and "did not complete within its timeout" in r.stderr, \
        r.stderr[-3000:]
    assert "rank 1 of 2: terminated by the MPI launcher" in r.stderr, r.stderr[-3000:]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVE_PROMPT = "Once upon a time"


@pytest.fixture(scope="module")
def one_rank_text():
    one = run([KITE, "generate", TINY, "--device", "cpu", "--prompt", SERVE_PROMPT,
               "--max-tokens", "16"])
    assert one.returncode == 0, one.stderr
    return one.stdout.rstrip("\n")


@pytest.mark.parametrize("launch,sizes", [
    ("mpirun", ["--tensor-parallel-size", "2"]),
    ("mpirun", ["--pipeline-parallel-size", "2"]),
    ("self", ["--tensor-parallel-size", "2"]),
], ids=["mpirun-tp2", "mpirun-pp2", "self-launched-tp2"])
def test_serve_answers_the_openai_client_as_one_rank(tmp_path, one_rank_text, launch, sizes):
    """`kite serve ... --tensor-parallel-size 2` (or PP 2), under mpirun or started directly
    (kite re-executes itself under mpirun): rank 0 serves HTTP; a greedy completion through the
    official openai client is the one-rank `kite generate` text; SIGTERM ends every rank."""
    import openai
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    cmd = [KITE, "serve", TINY, "--device", "cpu", *sizes, "--host", "127.0.0.1", "--port",
           str(port), "--kv-cache-memory", "64MiB", "--served-model-name", "tiny"]
    if launch == "mpirun":
        cmd = mpirun_args(2) + cmd
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none",
                               max_retries=0, timeout=30)
        for _ in range(600):  # until the server answers (or the job died)
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                client.models.list()
                break
            except (openai.APIConnectionError, openai.InternalServerError):  # not up / loading
                try:
                    proc.wait(0.1)
                except subprocess.TimeoutExpired:
                    pass
        done = client.completions.create(model="tiny", prompt=SERVE_PROMPT, max_tokens=16,
                                         temperature=0)
        assert done.choices[0].text == one_rank_text
    finally:
        proc.send_signal(signal.SIGTERM)  # to mpirun (a self-launched kite became mpirun)
        proc.wait(WAIT_S)
        log.close()
    assert processes_with_arg(str(port)) == [], "a rank outlived the job"


def processes_with_arg(arg):
    """The pids whose command line has `arg` (here: a server's port)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if arg.encode() in args and b"serve" in args:
            found.append(int(pid))
    return found


@pytest.mark.parametrize("tp,pp", [(2, 1), (1, 2)])
def test_bench_throughput_over_ranks_matches_one_rank(tmp_path, tp, pp):
    # `kite bench throughput` started without mpirun starts its ranks as generate does; the same
    # token-id prompts give every request its full output on every layout (the result's
    # token_check counts them), and the result records the layout.
    def bench(out, *sizes):
        cmd = [KITE, "bench", "throughput", TINY, "--device", "cpu", "--num-prompts", "6",
               "--random-input-len", "20", "--random-output-len", "12", "--ignore-eos",
               "--no-progress", "--result-dir", str(out), *sizes]
        result = run(cmd)
        assert result.returncode == 0, result.stderr[-3000:]
        with open(out / "kite-throughput.json") as f:
            return json.load(f)

    one = bench(tmp_path / "one")
    split = bench(tmp_path / "split", "--tensor-parallel-size", str(tp),
                  "--pipeline-parallel-size", str(pp))
    for r in (one, split):
        assert r["metrics"]["completed"] == 6 and r["metrics"]["failed"] == 0
        assert r["metrics"]["total_output_tokens"] == 6 * 12
        assert r["token_check"]["output_mismatches"] == 0
    assert split["config"]["tensor_parallel_size"] == tp
    assert split["config"]["pipeline_parallel_size"] == pp
    assert one["config"]["pipeline_parallel_size"] == 1
    assert split["config"]["pipeline_micro_batches"] == pp  # the default: one per stage
    assert one["config"]["pipeline_micro_batches"] == 1


def test_bench_w1_preset_over_ranks_shares_one_engine(tmp_path):
    # W1 makes one engine per dataset on one rank; over several ranks (which load the model once)
    # its datasets share one engine, sized for the longest.
    model = dummy_model(tmp_path, "qwen2.5-0.5b",
                        **dict(QWEN2_AWKWARD, max_position_embeddings=4096))
    result = run([KITE, "bench", "throughput", model, "--load-format", "dummy", "--device", "cpu",
                  "--tensor-parallel-size", "2", "--workload", "W1", "--preset-prompts", "2,1,0,0",
                  "--no-progress", "--result-dir", str(tmp_path / "out")])
    assert result.returncode == 0, result.stderr[-3000:]
    for name, n in (("kite-W1-128x128.json", 2), ("kite-W1-2048x128.json", 1)):
        with open(tmp_path / "out" / name) as f:
            assert json.load(f)["metrics"]["completed"] == n


def test_bench_startup_launches_a_server_of_several_ranks(tmp_path):
    # `kite bench startup MODEL -- --tensor-parallel-size 2` spawns `kite serve`, which starts its
    # ranks under mpirun (replacing itself, so the spawned pid is mpirun's): the server answers
    # and its footprint is the whole process tree's. Counting mpirun alone (tens of MB) would
    # read below one rank's server; the ranks together read above it.
    def startup(name, *serve_flags):
        out = tmp_path / f"{name}.json"
        cmd = [KITE, "bench", "startup", TINY, "--no-progress", "--output-json", str(out),
               "--server-log", str(tmp_path / f"{name}.log"), "--", "--device", "cpu", *serve_flags]
        result = run(cmd)
        assert result.returncode == 0, result.stderr[-3000:]
        with open(out) as f:
            return json.load(f)["startup"]

    one = startup("one")
    two = startup("two", "--tensor-parallel-size", "2")
    assert (tmp_path / "two.log").read_text().count("] loaded ") == 2  # one load per rank
    assert two["first_request_ttft_ms"] > 0
    assert two["peak_rss_bytes"] > one["peak_rss_bytes"] > 0
