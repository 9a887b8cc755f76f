"""`kite generate MODEL --input prompts.jsonl --output out.jsonl` end to end on the shipped
TinyStories model. KITE_BIN points at the binary (scripts/test.sh sets it).

Writes 1,000 requests (text prompts, token-id prompts, chat messages, greedy and seeded
sampling, n > 1, stop strings, logprobs, and a few invalid lines), runs kite, and checks that the
output has one well-formed JSON object per input line, in input order, with valid finish
reasons, that invalid lines carry an error naming the problem, that every text equals the
Hugging Face `tokenizers` decode of its token ids (with stop strings cut where they matched),
and that kite printed its throughput / TTFT / TPOT summary. Timing values are not asserted.
"""

import json
import os
import random
import subprocess

import pytest
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KITE = os.environ.get("KITE_BIN", os.path.join(ROOT, "build", "bin", "kite"))
TINY = os.path.join(ROOT, "tests", "data", "models", "tinystories-656k")

pytestmark = pytest.mark.skipif(not os.path.exists(KITE), reason=f"no kite binary at {KITE}")

N = 1000
OPENINGS = [
    "Once upon a time", "Tom had a big red ball", "The little cat was sad",
    "Lily and her mom went to the park", "One day, a bird flew into the garden",
    "There was a boy named Ben who loved trucks", "The sun was hot and the sky was blue",
]


def make_requests(rng, tok):
    reqs = []
    for i in range(N):
        kind = i % 10
        r = {"id": f"req-{i}", "max_tokens": rng.randint(1, 48)}
        if kind == 7:
            r["prompt_token_ids"] = tok.encode(rng.choice(OPENINGS)).ids
        elif kind == 8:
            r["messages"] = [{"role": "user", "content": rng.choice(OPENINGS)}]
        else:
            text = rng.choice(OPENINGS)
            if kind == 3:  # long prompts: several sentences
                text = ". ".join(rng.choice(OPENINGS) for _ in range(rng.randint(5, 12)))
            r["prompt"] = text
        if i % 3 == 0:
            r["temperature"] = 0
        else:
            r["temperature"] = rng.choice([0.7, 1.0])
            r["seed"] = i
            r["top_p"] = rng.choice([1.0, 0.9])
        if i % 13 == 0:
            r["n"] = 2
        if i % 17 == 0:
            r["stop"] = ["."]
        if i % 19 == 0:
            r["logprobs"] = 2
        reqs.append(r)
    # Bad lines: each must come back as an error, in place.
    reqs[100] = {"id": "bad-temperature", "prompt": "hi", "temperature": -1}
    reqs[200] = {"id": "bad-field", "prompt": "hi", "max_tokenz": 3}
    reqs[300] = {"id": "bad-token", "prompt_token_ids": [1, 99999]}
    reqs[400] = {"id": "empty", "prompt": ""}
    return reqs


def test_offline_batch_of_1000_prompts(tmp_path):
    workdir = str(tmp_path)
    tok = Tokenizer.from_file(os.path.join(TINY, "tokenizer.json"))
    rng = random.Random(1234)
    reqs = make_requests(rng, tok)
    inp = os.path.join(workdir, "prompts.jsonl")
    out = os.path.join(workdir, "out.jsonl")
    with open(inp, "w") as f:
        for r in reqs:
            f.write(json.dumps(r) + "\n")
        f.write("{not json\n")  # line 1001: malformed
    if os.path.exists(out):
        os.remove(out)
    # TinyStories has no chat template: "messages" lines use this one.
    template = os.path.join(workdir, "template.jinja")
    with open(template, "w") as f:
        f.write("{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}")
    proc = subprocess.run(
        [KITE, "generate", TINY, "--input", inp, "--output", out, "--threads", "2",
         "--chat-template", template, "--no-progress"],
        capture_output=True, text=True, timeout=540)
    print(proc.stdout)
    # The bad lines make the run exit 1, after writing everything.
    assert proc.returncode == 1, f"exit status {proc.returncode}"
    assert "5 of 1001 requests failed" in proc.stderr, proc.stderr[-500:]
    for needle in ("throughput:", "output tok/s", "TTFT (ms):", "TPOT (ms):", "requests: 1001",
                   "prefix cache hit rate:", "tokens computed:"):
        assert needle in proc.stdout, f"summary lacks {needle!r}"

    lines = open(out).read().splitlines()
    assert len(lines) == N + 1, f"{len(lines)} output lines"
    errors = {"bad-temperature": "temperature", "bad-field": "max_tokenz",
              "bad-token": "outside the vocabulary", "empty": "empty", "1000": "JSON"}
    checked_text = stopped = 0
    for i, line in enumerate(lines):
        o = json.loads(line)
        assert o["index"] == i, (i, o["index"])
        rid = reqs[i]["id"] if i < N else "1000"
        assert o["id"] == rid, (i, o["id"])
        if rid in errors:
            assert errors[rid] in o["error"], o["error"]
            continue
        assert "error" not in o, o
        r = reqs[i]
        outs = o["outputs"]
        assert len(outs) == r.get("n", 1)
        assert o["prompt_token_ids"], o
        assert o["metrics"]["num_prompt_tokens"] == len(o["prompt_token_ids"])
        for c, ch in enumerate(outs):
            assert ch["index"] == c
            assert ch["finish_reason"] in ("stop", "length"), ch["finish_reason"]
            ids = ch["token_ids"]
            assert 1 <= len(ids) <= r["max_tokens"]
            if ch["finish_reason"] == "length" and ch["stop_reason"] is None:
                assert len(ids) == r["max_tokens"], (i, len(ids))
            # The text continues the prompt (as vLLM's does): decode prompt + output and drop
            # the prompt's own text, so a leading space the tokenizer would strip stays.
            prompt_ids = o["prompt_token_ids"]
            prompt_text = tok.decode(prompt_ids, skip_special_tokens=True)
            whole = tok.decode(prompt_ids + ids, skip_special_tokens=True)
            assert whole.startswith(prompt_text), (prompt_text, whole)
            text = whole[len(prompt_text):]
            if ch["stop_reason"] == ".":
                stopped += 1
                assert text.startswith(ch["text"]) and text[len(ch["text"]):].startswith("."), (
                    text, ch["text"])
            else:
                assert ch["text"] == text, (i, ch["text"], text)
            checked_text += 1
            if "logprobs" in r:
                assert len(ch["logprobs"]) == len(ids)
                for e, t in zip(ch["logprobs"], ids):
                    assert e["token_id"] == t and e["logprob"] <= 0 and e["rank"] >= 1
                    assert len(e["top"]) == 2
        if "messages" in r:  # the template renders BOS + the content, tokenized as is
            want = tok.encode("<|start_story|>" + r["messages"][0]["content"],
                              add_special_tokens=False).ids
            assert o["prompt_token_ids"] == want, (o["prompt_token_ids"], want)
    assert checked_text > 900 and stopped > 0, (checked_text, stopped)
    print(f"ok: {len(lines)} lines, {checked_text} texts equal tokenizers' decode, "
          f"{stopped} stopped at a stop string")
