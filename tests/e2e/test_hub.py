"""Hugging Face Hub ids (src/hub): kite against a local Hub (hub_server.py) that speaks the real
routes and headers, sharing the cache with huggingface_hub both ways, resuming cut downloads,
catching corrupt blobs and explaining 401/403/404/no-network."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from hub_server import LocalHub, Repo, git_blob_sha1, read_dir
from kite_server import DATA, KITE, TINY

pytestmark = pytest.mark.skipif(not os.path.exists(KITE), reason=f"no kite binary at {KITE}")

REPO = "kite-test/tinystories-656k"
PROMPT = "Once upon a time"


@pytest.fixture(scope="module")
def hub():
    hub = LocalHub().start()
    files = read_dir(TINY)
    files["README.md"] = b"# tinystories-656k\n"
    hub.add(Repo(REPO, files, revisions=None))
    tagged = Repo("kite-test/tagged", files)
    tagged.revisions = {"main": tagged.commit, "v1": "1" * 40}
    hub.add(tagged)
    hub.add(Repo("kite-test/private", files, private=True))
    hub.add(Repo("kite-test/gated", files, gated=True))
    with open(os.path.join(DATA, "models", "tinystories-656k-q8_0.gguf"), "rb") as f:
        gguf = f.read()
    hub.add(Repo("kite-test/tinystories-gguf", {
        "tinystories-656k.Q8_0.gguf": gguf,
        "tinystories-656k.F16.gguf": gguf + b"unused",  # never downloaded
        "README.md": b"GGUF\n"}))
    yield hub
    hub.stop()


def env_for(hub, cache, **extra):
    env = dict(os.environ)
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HF_HOME"):
        env.pop(k, None)
    env.update({"HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": str(cache),
                "HF_HUB_DISABLE_TELEMETRY": "1", "KITE_LOG_LEVEL": "info"})
    env.update(extra)
    return env


def kite_generate(model, env, *args):
    return subprocess.run([KITE, "generate", model, "--prompt", PROMPT, "--max-tokens", "12",
                           "--no-progress", *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def reference_text():
    r = subprocess.run([KITE, "generate", TINY, "--prompt", PROMPT, "--max-tokens", "12"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def hf(env, code):
    """Runs huggingface_hub / transformers in a fresh interpreter (they read the environment
    at import); returns its stdout."""
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def repo_dir(cache, repo_id):
    return os.path.join(cache, "models--" + repo_id.replace("/", "--"))


def test_kite_download_is_a_huggingface_hub_cache(hub, tmp_path, reference_text):
    cache = tmp_path / "hub"
    r = kite_generate(REPO, env_for(hub, cache))
    assert r.returncode == 0, r.stderr
    assert r.stdout == reference_text
    files = hub.repos[REPO].files
    commit = hub.repos[REPO].commit
    rd = repo_dir(str(cache), REPO)
    with open(os.path.join(rd, "refs", "main")) as f:
        assert f.read() == commit  # no newline, as huggingface_hub writes it
    snap = os.path.join(rd, "snapshots", commit)
    # Only what a load needs: no README.md, no special_tokens_map.json.
    assert sorted(os.listdir(snap)) == ["config.json", "generation_config.json",
                                        "model.safetensors", "tokenizer.json",
                                        "tokenizer_config.json"]
    for name in os.listdir(snap):
        link = os.readlink(os.path.join(snap, name))
        data = files[name]
        etag = (hashlib.sha256(data).hexdigest() if name.endswith(".safetensors")
                else git_blob_sha1(data))
        assert link == os.path.join("..", "..", "blobs", etag)
        with open(os.path.join(snap, name), "rb") as f:
            assert f.read() == data
    # huggingface_hub and transformers find it, offline.
    out = hf(env_for(hub, cache, HF_HUB_OFFLINE="1"), f"""
import huggingface_hub, transformers
p = huggingface_hub.hf_hub_download({REPO!r}, "model.safetensors")
print(p)
print(huggingface_hub.snapshot_download({REPO!r}, allow_patterns=["*.json", "*.safetensors"]))
tok = transformers.AutoTokenizer.from_pretrained({REPO!r})
cfg = transformers.AutoConfig.from_pretrained({REPO!r})
print(tok({PROMPT!r})["input_ids"], cfg.model_type)
""")
    lines = out.strip().splitlines()
    assert lines[0] == os.path.join(snap, "model.safetensors")
    assert lines[1] == snap
    assert lines[2].endswith("llama")
    # A second run finds everything cached: one API call, no file requests.
    before = len(hub.requests)
    r = kite_generate(REPO, env_for(hub, cache))
    assert r.returncode == 0 and r.stdout == reference_text, r.stderr
    new = hub.requests[before:]
    assert [x[2] for x in new] == [f"/api/models/{REPO}/revision/main"], new


def test_huggingface_hub_download_loads_offline(hub, tmp_path, reference_text):
    cache = tmp_path / "hub"
    snap = hf(env_for(hub, cache),
              f"import huggingface_hub; print(huggingface_hub.snapshot_download({REPO!r}))")
    assert os.path.isdir(snap.strip())
    before = len(hub.requests)
    r = kite_generate(REPO, env_for(hub, cache, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == reference_text
    assert hub.requests[before:] == []  # offline: not one request
    # Online, everything is there already: no file is fetched again.
    r = kite_generate(REPO, env_for(hub, cache))
    assert r.returncode == 0, r.stderr
    assert not [x for x in hub.requests[before:] if x[0] == "blob" or x[1] == "GET" and
                "/resolve/" in x[2]]


def test_resume_after_cut_connection(hub, tmp_path, reference_text):
    cache = tmp_path / "hub"
    data = hub.repos[REPO].files["model.safetensors"]
    sha = hashlib.sha256(data).hexdigest()
    hub.cut_after[sha] = len(data) // 3
    before = len(hub.blob_requests(sha))
    r = kite_generate(REPO, env_for(hub, cache))
    assert r.returncode == 0, r.stderr
    assert r.stdout == reference_text
    gets = hub.blob_requests(sha)[before:]
    assert [g[3] for g in gets] == [None, f"bytes={len(data) // 3}-"], gets
    assert "resuming" in r.stderr


def test_resume_from_an_earlier_partial_download(hub, tmp_path, reference_text):
    cache = tmp_path / "hub"
    data = hub.repos[REPO].files["model.safetensors"]
    sha = hashlib.sha256(data).hexdigest()
    blobs = os.path.join(repo_dir(str(cache), REPO), "blobs")
    os.makedirs(blobs)
    with open(os.path.join(blobs, sha + ".incomplete"), "wb") as f:
        f.write(data[:5000])
    before = len(hub.blob_requests(sha))
    r = kite_generate(REPO, env_for(hub, cache))
    assert r.returncode == 0, r.stderr
    assert r.stdout == reference_text
    assert [g[3] for g in hub.blob_requests(sha)[before:]] == ["bytes=5000-"]
    assert not os.path.exists(os.path.join(blobs, sha + ".incomplete"))


def test_corrupt_blob_is_detected_and_deleted(hub, tmp_path):
    cache = tmp_path / "hub"
    data = hub.repos[REPO].files["model.safetensors"]
    sha = hashlib.sha256(data).hexdigest()
    hub.corrupt.add(sha)
    try:
        r = kite_generate(REPO, env_for(hub, cache))
    finally:
        hub.corrupt.discard(sha)
    assert r.returncode != 0
    assert "corrupt" in r.stderr and sha in r.stderr, r.stderr
    blobs = os.path.join(repo_dir(str(cache), REPO), "blobs")
    assert not os.path.exists(os.path.join(blobs, sha))
    assert not os.path.exists(os.path.join(blobs, sha + ".incomplete"))
    # A resumed download whose earlier part is corrupt is caught too.
    os.makedirs(blobs, exist_ok=True)
    with open(os.path.join(blobs, sha + ".incomplete"), "wb") as f:
        f.write(b"\0" * 4000)
    r = kite_generate(REPO, env_for(hub, cache))
    assert r.returncode != 0 and "corrupt" in r.stderr, r.stderr
    r = kite_generate(REPO, env_for(hub, cache))  # the bad part was deleted: now it works
    assert r.returncode == 0, r.stderr


def test_gguf_by_quant_tag_downloads_one_file(hub, tmp_path, reference_text):
    cache = tmp_path / "hub"
    repo = "kite-test/tinystories-gguf"
    r = kite_generate(repo + ":Q8_0", env_for(hub, cache))
    assert r.returncode == 0, r.stderr
    local = subprocess.run([KITE, "generate", os.path.join(DATA, "models",
                                                           "tinystories-656k-q8_0.gguf"),
                            "--prompt", PROMPT, "--max-tokens", "12"],
                           capture_output=True, text=True, timeout=300)
    assert r.stdout == local.stdout
    snap = os.path.join(repo_dir(str(cache), repo), "snapshots", hub.repos[repo].commit)
    assert os.listdir(snap) == ["tinystories-656k.Q8_0.gguf"]
    # Several GGUF files and no tag that matches: the error lists them.
    r = kite_generate(repo + ":Q5_K_M", env_for(hub, cache))
    assert r.returncode != 0
    assert "tinystories-656k.F16.gguf" in r.stderr and "Q5_K_M" in r.stderr, r.stderr
    # By file name, offline from the cache.
    r = kite_generate(repo + "/tinystories-656k.Q8_0.gguf", env_for(hub, cache, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0 and r.stdout == local.stdout, r.stderr


def test_revision_and_refs(hub, tmp_path, reference_text):
    cache = tmp_path / "hub"
    r = kite_generate("kite-test/tagged", env_for(hub, cache), "--revision", "v1")
    assert r.returncode == 0, r.stderr
    rd = repo_dir(str(cache), "kite-test/tagged")
    with open(os.path.join(rd, "refs", "v1")) as f:
        assert f.read() == "1" * 40
    assert os.listdir(os.path.join(rd, "snapshots")) == ["1" * 40]
    r = kite_generate("kite-test/tagged", env_for(hub, cache), "--revision", "nope")
    assert r.returncode != 0 and "revision nope not found" in r.stderr, r.stderr


def test_errors_say_what_to_do(hub, tmp_path):
    cache = tmp_path / "hub"
    env = env_for(hub, cache)
    r = kite_generate("kite-test/private", env)
    assert r.returncode != 0 and "HF_TOKEN" in r.stderr and "HTTP 401" in r.stderr, r.stderr
    r = kite_generate("kite-test/private", env_for(hub, cache, HF_TOKEN=LocalHub.TOKEN))
    assert r.returncode == 0, r.stderr
    # The token goes to the Hub, never to the blob host.
    assert not [x for x in hub.requests if x[0] == "blob" and x[4] is not None]
    r = kite_generate("kite-test/gated", env)
    assert r.returncode != 0 and "gated" in r.stderr, r.stderr
    assert f"{hub.endpoint}/kite-test/gated" in r.stderr and "HTTP 403" in r.stderr
    r = kite_generate("kite-test/gated", env_for(hub, cache, HF_TOKEN="hf_wrong"))
    assert r.returncode != 0 and "refused HF_TOKEN" in r.stderr, r.stderr
    r = kite_generate("kite-test/no-such-model", env)
    assert r.returncode != 0 and "not a model on" in r.stderr, r.stderr
    # No network and nothing cached.
    dead = env_for(hub, tmp_path / "empty", HF_ENDPOINT="http://127.0.0.1:9")
    r = kite_generate(REPO, dead)
    assert r.returncode != 0 and "cannot be reached" in r.stderr, r.stderr
    # No network, but cached: used, with a warning.
    r = kite_generate(REPO, dict(env, HF_ENDPOINT="http://127.0.0.1:9"))
    assert r.returncode != 0 or "using the cached snapshot" in r.stderr
    ok = kite_generate(REPO, env)
    assert ok.returncode == 0, ok.stderr
    r = kite_generate(REPO, dict(env, HF_ENDPOINT="http://127.0.0.1:9"))
    assert r.returncode == 0 and "using the cached snapshot" in r.stderr, r.stderr
    # Offline and not cached.
    r = kite_generate("kite-test/gated", env_for(hub, cache, HF_HUB_OFFLINE="1"))
    assert r.returncode != 0 and "HF_HUB_OFFLINE" in r.stderr, r.stderr


def test_sharded_checkpoint_downloads_the_index_shards(hub, tmp_path, reference_text):
    from safetensors.numpy import load_file, save_file
    tensors = load_file(os.path.join(TINY, "model.safetensors"))
    names = sorted(tensors)
    files = {k: v for k, v in read_dir(TINY).items() if k != "model.safetensors"}
    weight_map = {}
    for i, part in enumerate((names[: len(names) // 2], names[len(names) // 2:])):
        shard = f"model-0000{i + 1}-of-00002.safetensors"
        path = tmp_path / shard
        save_file({n: tensors[n] for n in part}, str(path), metadata={"format": "pt"})
        files[shard] = path.read_bytes()
        weight_map.update({n: shard for n in part})
    files["model.safetensors.index.json"] = json.dumps(
        {"metadata": {}, "weight_map": weight_map}).encode()
    files["model-00003-of-00003.safetensors"] = b"not listed in the index"
    hub.add(Repo("kite-test/sharded", files))
    cache = tmp_path / "hub"
    r = kite_generate("kite-test/sharded", env_for(hub, cache))
    assert r.returncode == 0, r.stderr
    assert r.stdout == reference_text
    snap = os.path.join(repo_dir(str(cache), "kite-test/sharded"), "snapshots",
                        hub.repos["kite-test/sharded"].commit)
    assert "model-00003-of-00003.safetensors" not in os.listdir(snap)
    assert {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
            "model.safetensors.index.json"} <= set(os.listdir(snap))


def test_serve_tokenizer_and_python_take_hub_ids(hub, tmp_path, reference_text):
    cache = tmp_path / "hub"
    env = env_for(hub, cache)
    # --tokenizer as a hub id (tokenizer files only).
    r = kite_generate(TINY, env, "--tokenizer", "kite-test/tagged")
    assert r.returncode == 0 and r.stdout == reference_text, r.stderr
    snap = os.path.join(repo_dir(str(cache), "kite-test/tagged"), "snapshots",
                        hub.repos["kite-test/tagged"].commit)
    assert sorted(os.listdir(snap)) == ["tokenizer.json", "tokenizer_config.json"]
    # The Python package: kite.LLM(hub id).
    package = os.path.join(os.path.dirname(os.path.dirname(KITE)), "python")
    if not os.path.isdir(os.path.join(package, "kite")):
        pytest.skip(f"no Python package built at {package}")
    out = hf(dict(env, PYTHONPATH=package), f"""
from kite import LLM, SamplingParams
llm = LLM({REPO!r}, seed=0)
out = llm.generate([{PROMPT!r}], SamplingParams(temperature=0, max_tokens=12), use_tqdm=False)
print("TEXT", repr(out[0].outputs[0].text))
print("EOS", llm.get_tokenizer().eos_token)
""")
    lines = [x.split(" ", 1)[1] for x in out.splitlines() if x.startswith(("TEXT ", "EOS "))]
    assert eval(lines[0]) + "\n" == reference_text
    assert lines[1] == "<|end_story|>"  # tokenizer_config.json found in the snapshot


def test_progress_bar_on_a_terminal(hub, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    env = env_for(hub, tmp_path / "hub")
    child = pexpect.spawn(KITE, ["generate", REPO, "--prompt", PROMPT, "--max-tokens", "4"],
                          env=env, encoding="utf-8", timeout=120)
    # The last redraw of the bar: every byte of the five files, on one line.
    child.expect(r"kite-test/tinystories-656k\s+100% [\d.]+ \w?B/[\d.]+ \w?B\s+[\d.]+ \w?B/s\s+5/5 files")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
