"""`kite generate` end to end: the README's command on the shipped TinyStories model, checked
against the float64 oracle (greedy ids) and Hugging Face `tokenizers` (prompt ids and text), and
the CLI's errors. KITE_BIN points at the binary (scripts/test.sh sets it)."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KITE = os.environ.get("KITE_BIN", os.path.join(ROOT, "build", "bin", "kite"))
TINY = os.path.join(ROOT, "tests", "data", "models", "tinystories-656k")
STORIES = os.path.join(ROOT, "tests", "data", "models", "stories260k", "stories260K.gguf")
Q8 = os.path.join(ROOT, "tests", "data", "models", "tinystories-656k-q8_0.gguf")
sys.path.insert(0, os.path.join(ROOT, "tests", "conformance", "model"))

import llama_oracle  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(KITE), reason=f"no kite binary at {KITE}")


def kite(*args):
    return subprocess.run([KITE, "generate", *args], capture_output=True, text=True, timeout=120)


def test_readme_command_matches_oracle_and_tokenizers():
    tok = Tokenizer.from_file(os.path.join(TINY, "tokenizer.json"))
    prompt = tok.encode("Once upon a time").ids
    steps = 32
    text = kite(TINY, "--prompt", "Once upon a time", "--max-tokens", str(steps))
    assert text.returncode == 0, text.stderr
    ids = kite(TINY, "--prompt-ids", ",".join(map(str, prompt)), "--max-tokens", str(steps),
               "--print-ids")
    assert ids.returncode == 0, ids.stderr
    out = [int(t) for t in ids.stdout.strip().split(",")]
    assert len(out) == steps  # TinyStories does not reach EOS this early
    # Greedy ids: every one is the oracle's argmax after the prompt and the ids before it.
    logits = llama_oracle.Model(TINY).forward(prompt + out[:-1])
    assert [int(r.argmax()) for r in logits[len(prompt) - 1:]] == out
    # Text: the tokenizer's decode of those ids.
    assert text.stdout.rstrip("\n") == tok.decode(out, skip_special_tokens=True)


def golden_text():
    md = open(os.path.join(os.path.dirname(STORIES), "GOLDEN.md")).read()
    return re.search(r"```\n(.*?)\n```", md, re.S).group(1)


def test_gguf_golden_text_with_its_embedded_tokenizer():
    """stories260K.gguf from BOS, greedy: kite decodes with the vocabulary embedded in the GGUF
    and prints the publisher's text (GOLDEN.md, 256 tokens) exactly."""
    r = kite(STORIES, "--max-tokens", "300", "--ignore-eos")
    assert r.returncode == 0, r.stderr
    golden = golden_text()
    assert r.stdout.startswith(golden), (r.stdout[:300], golden[:300])
    ids = kite(STORIES, "--max-tokens", "8", "--print-ids")
    assert [int(t) for t in ids.stdout.strip().split(",")] == [403, 407, 261, 378, 432, 383, 286,
                                                                261]


def test_gguf_text_prompt_uses_the_embedded_tokenizer():
    """A text prompt on stories260K.gguf: the prompt is encoded with the GGUF's vocabulary
    (SentencePiece, as tok512.model does) and the continuation is the golden text's."""
    r = kite(STORIES, "--prompt", "Once upon a time, there was a little girl named Lily.",
             "--max-tokens", "24")
    assert r.returncode == 0, r.stderr
    golden = golden_text()
    rest = golden[len("Once upon a time, there was a little girl named Lily."):]
    assert rest.startswith(r.stdout.rstrip("\n")) and len(r.stdout.strip()) > 40, r.stdout


def test_tokenizer_flag_takes_a_gguf_vocabulary():
    """--tokenizer X.gguf: the F32 TinyStories model with the vocabulary embedded in its Q8_0
    GGUF prints what it prints with its own tokenizer.json."""
    args = ["--prompt", "Lily and her mom went to the park", "--max-tokens", "24"]
    own = kite(TINY, *args)
    borrowed = kite(TINY, "--tokenizer", Q8, *args)
    assert own.returncode == 0 and borrowed.returncode == 0, borrowed.stderr
    assert borrowed.stdout == own.stdout and len(own.stdout.strip()) > 20


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def test_q8_0_gguf_text_prompts_match_the_f32_model(tmp_path):
    """The Q8_0 GGUF of TinyStories with text prompts: its embedded vocabulary encodes every
    prompt exactly as the model's tokenizer.json (Hugging Face tokenizers), its text is the
    tokenizers decode of its ids, and its greedy continuations stay close to the F32 model's
    (quantised: agreement rate reported, asserted loosely)."""
    tok = Tokenizer.from_file(os.path.join(TINY, "tokenizer.json"))
    prompts = ["Once upon a time", "Tom had a big red ball.", "The little cat was sad",
               "Lily and her mom went to the park. They saw a dog", "One day, a bird flew"]
    rows = [{"prompt": p, "max_tokens": 32, "temperature": 0} for p in prompts]
    inp, q8_out, f32_out = (str(tmp_path / n) for n in ("in.jsonl", "q8.jsonl", "f32.jsonl"))
    write_jsonl(inp, rows)
    for model, out in ((Q8, q8_out), (TINY, f32_out)):
        r = kite(model, "--input", inp, "--output", out, "--no-progress")
        assert r.returncode == 0, r.stderr
    q8 = [json.loads(line) for line in open(q8_out)]
    f32 = [json.loads(line) for line in open(f32_out)]
    agree = total = 0
    for p, a, b in zip(prompts, q8, f32):
        assert a["prompt_token_ids"] == tok.encode(p).ids, (p, a["prompt_token_ids"])
        ids = a["outputs"][0]["token_ids"]
        whole = tok.decode(a["prompt_token_ids"] + ids, skip_special_tokens=True)
        assert whole.endswith(a["outputs"][0]["text"]), (whole, a["outputs"][0]["text"])
        ref = b["outputs"][0]["token_ids"]
        # Free-running greedy: count the positions before the first divergence.
        same = 0
        while same < min(len(ids), len(ref)) and ids[same] == ref[same]:
            same += 1
        agree += same
        total += len(ref)
    print(f"q8_0 vs f32 greedy: {agree}/{total} tokens before the first divergence")
    assert agree >= total // 4, (agree, total)


def test_sampling_is_reproducible_with_a_seed():
    a = kite(TINY, "--prompt", "The cat", "--temperature", "0.8", "--seed", "7", "--print-ids")
    b = kite(TINY, "--prompt", "The cat", "--temperature", "0.8", "--seed", "7", "--print-ids")
    c = kite(TINY, "--prompt", "The cat", "--temperature", "0.8", "--seed", "8", "--print-ids")
    assert a.returncode == 0 and b.returncode == 0 and c.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    assert a.stdout != c.stdout


@pytest.mark.parametrize("args,message", [
    (["/nonexistent"], "not_found: no such model path: /nonexistent"),
    ([TINY, "--prompt-ids", "1,99999"], "token id 99999 is outside the vocabulary [0, 2048)"),
    ([TINY, "--prompt-ids", "1,x"], "--prompt-ids: 'x' is not a token id"),
    ([TINY, "--prompt", "a", "--prompt-ids", "1"], "give either --prompt or --prompt-ids"),
    ([TINY, "--temperature", "-1"], "temperature must be >= 0"),
    ([TINY, "--top-p", "0"], "top_p must be in (0, 1], got 0"),
    ([TINY, "--top-k", "-3"], "top_k must be -1 or 0 (disabled) or at least 1, got -3"),
    ([TINY, "--max-tokens", "0"], "max_tokens must be at least 1, got 0"),
    ([TINY, "--n", "0"], "n must be in [1, "),
    ([TINY, "--prompt-ids", ",".join(["5"] * 600)],
     "out_of_range: prompt has 600 tokens, which leaves no room for output within "
     "max_model_len 512"),
    ([TINY, "--max-model-len", "8", "--prompt", "Once upon a time, there was a little girl"],
     "which leaves no room for output within max_model_len 8"),
    ([TINY, "--load-format", "gguf"], "expected a .gguf file"),
])
def test_errors_are_messages_and_exit_1(args, message):
    r = kite(*args)
    assert r.returncode == 1
    assert message in r.stderr, r.stderr
    assert "kite generate: error:" in r.stderr


def copy_model(tmp_path):
    d = tmp_path / "model"
    shutil.copytree(TINY, d)
    return d


@pytest.mark.parametrize("damage,message", [
    ("truncate", "data_loss"),
    ("header", "data_loss: "),
    ("config", "malformed JSON"),
    ("no-weights", "not_found: no model.safetensors or model.safetensors.index.json"),
])
def test_corrupt_model_files_are_messages_and_exit_1(tmp_path, damage, message):
    d = copy_model(tmp_path)
    weights = d / "model.safetensors"
    if damage == "truncate":  # cut the file in the middle of the tensor data
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "header":  # a header length far past the end of the file
        data = bytearray(weights.read_bytes())
        data[0:8] = (1 << 40).to_bytes(8, "little")
        weights.write_bytes(bytes(data))
    elif damage == "config":
        (d / "config.json").write_text('{"architectures": ["LlamaForCausalLM"], ')
    else:
        weights.unlink()
    r = kite(str(d), "--prompt", "Once upon a time")
    assert r.returncode == 1
    assert message in r.stderr, r.stderr
    assert "kite generate: error:" in r.stderr and "Traceback" not in r.stderr


def test_text_prompt_without_a_tokenizer_is_an_error(tmp_path):
    d = copy_model(tmp_path)
    (d / "tokenizer.json").unlink()
    r = kite(str(d), "--prompt", "Once")
    assert r.returncode == 1
    assert "has no tokenizer kite can read" in r.stderr, r.stderr
    ids = kite(str(d), "--prompt-ids", "1,80,147", "--max-tokens", "4")
    assert ids.returncode == 0, ids.stderr
    assert len(ids.stdout.strip().split(",")) == 4
