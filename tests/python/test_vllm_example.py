"""The offline-inference script of the vLLM-vs-Hugging-Face study runs on kite with only its
imports and model path edited.

The test reads the script (tests/data/examples/vllm_offline_example.py, a verbatim copy),
applies exactly these textual edits and executes the result:
  - `from vllm import LLM, SamplingParams` -> `from kite import LLM, SamplingParams`
  - `import torch` dropped when torch is not installed (the script never uses it)
  - MODEL_NAME = a local Llama-3-shaped model directory (tiny_llama3.py: the real Llama-3
    tokenizer, the chat template of Llama-3.2-3B-Instruct, the study's model, and random
    weights in model.safetensors)
The script itself runs transformers' AutoTokenizer on that directory to render the prompts.
"""

import difflib
import importlib.util
import os

import kite
import pytest

from conftest import ROOT

EXAMPLE = os.path.join(ROOT, "tests", "data", "examples", "vllm_offline_example.py")
SHARED_EXAMPLE = os.path.join(os.environ.get("KITE_SHARED_DIR", os.path.join(ROOT, "..", "shared")),
                              "examples", "vllm_offline_example.py")


def edit_script(source, model_dir):
    """The script with only the import, torch and MODEL_NAME lines edited."""
    lines = source.split("\n")
    edited = []
    for line in lines:
        if line == "from vllm import LLM, SamplingParams":
            line = "from kite import LLM, SamplingParams"
        elif line == "import torch" and importlib.util.find_spec("torch") is None:
            continue
        elif line.startswith("MODEL_NAME = "):
            line = f"MODEL_NAME = {model_dir!r}"
        edited.append(line)
    return "\n".join(edited)


def test_copy_is_verbatim():
    if not os.path.exists(SHARED_EXAMPLE):
        pytest.skip(f"the shared folder is absent ({SHARED_EXAMPLE}); the copy is what runs")
    with open(EXAMPLE, "rb") as a, open(SHARED_EXAMPLE, "rb") as b:
        assert a.read() == b.read()


def test_study_script_runs_with_only_imports_and_model_path_edited(llama3_dir):
    with open(EXAMPLE) as f:
        source = f.read()
    script = edit_script(source, llama3_dir)

    # Only the intended lines differ.
    changed = [l for l in difflib.ndiff(source.split("\n"), script.split("\n"))
               if l.startswith(("- ", "+ "))]
    removed = sorted(l[2:] for l in changed if l.startswith("- "))
    added = sorted(l[2:] for l in changed if l.startswith("+ "))
    expect_removed = ["MODEL_NAME = \"meta-llama/Llama-3.2-3B-Instruct\"",
                      "from vllm import LLM, SamplingParams"]
    if importlib.util.find_spec("torch") is None:
        expect_removed.append("import torch")
    assert removed == sorted(expect_removed)
    assert added == sorted([f"MODEL_NAME = {llama3_dir!r}", "from kite import LLM, SamplingParams"])

    namespace = {"__name__": "__main__", "__file__": EXAMPLE}
    exec(compile(script, EXAMPLE, "exec"), namespace)

    outputs = namespace["outputs"]
    rendered = namespace["rendered_prompts"]
    hf_tokenizer = namespace["tokenizer"]
    assert isinstance(namespace["llm"], kite.LLM)
    assert len(outputs) == 4
    for i, out in enumerate(outputs):
        assert isinstance(out, kite.RequestOutput)
        assert out.finished
        assert out.prompt == rendered[i]  # input order kept
        # The text prompt is tokenized as vLLM does: with special tokens (so BOS twice, since
        # the rendered template starts with one), exactly as transformers tokenizes it.
        assert out.prompt_token_ids == hf_tokenizer(rendered[i])["input_ids"]
        assert out.prompt_token_ids[:2] == [128000, 128000]
        assert len(out.outputs) == 1
        completion = out.outputs[0]
        assert isinstance(completion, kite.CompletionOutput)
        assert completion.text  # random weights: random tokens, but text all the same
        assert 0 < len(completion.token_ids) <= 128
        assert completion.finish_reason in ("stop", "length")
        if completion.finish_reason == "length":
            assert len(completion.token_ids) == 128
        # The text is the tokenizer's decoding of the tokens (special tokens skipped).
        assert completion.text == hf_tokenizer.decode(completion.token_ids,
                                                      skip_special_tokens=True)
    # kite renders the same chat template identically.
    kite_tokenizer = namespace["llm"].get_tokenizer()
    for messages, text in zip(namespace["messages_batch"], rendered):
        assert kite_tokenizer.apply_chat_template(messages, tokenize=False) == text
    namespace["llm"].shutdown()
