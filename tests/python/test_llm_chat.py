"""LLM.chat and LLM.get_tokenizer() against Hugging Face transformers on the same directory
(the real Llama-3 tokenizer, Llama-3.2-3B-Instruct's chat template)."""

import kite
import pytest

CONVERSATIONS = [
    [{"role": "system", "content": "You are a helpful assistant. Respond in two sentences."},
     {"role": "user", "content": "What is the capital of Norway?"}],
    [{"role": "user", "content": "Hello!"},
     {"role": "assistant", "content": "Hi. How can I help?"},
     {"role": "user", "content": "Tell me a joke — with ümlauts and 😀."}],
]
TEXTS = ["Hello, world!", "  leading spaces and\ttabs\n", "ümlaut 😀 中文", "<|eot_id|> special",
         "a" * 300]


@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chat_template_matches_transformers(llama3_llm, hf_llama3_tokenizer,
                                            add_generation_prompt):
    tok = llama3_llm.get_tokenizer()
    for conv in CONVERSATIONS:
        want = hf_llama3_tokenizer.apply_chat_template(
            conv, tokenize=False, add_generation_prompt=add_generation_prompt)
        assert tok.apply_chat_template(
            conv, tokenize=False, add_generation_prompt=add_generation_prompt) == want
        want_ids = hf_llama3_tokenizer.apply_chat_template(
            conv, tokenize=True, add_generation_prompt=add_generation_prompt)
        if hasattr(want_ids, "keys"):  # transformers 5 returns a BatchEncoding (a mapping)
            want_ids = want_ids["input_ids"]
        assert tok.apply_chat_template(
            conv, add_generation_prompt=add_generation_prompt) == list(want_ids)
    # A batch of conversations gives a list.
    assert len(tok.apply_chat_template(CONVERSATIONS, tokenize=False)) == 2


def test_tokenizer_matches_transformers(llama3_llm, hf_llama3_tokenizer):
    tok = llama3_llm.get_tokenizer()
    for text in TEXTS:
        for special in (True, False):
            ids = tok.encode(text, add_special_tokens=special)
            assert ids == hf_llama3_tokenizer.encode(text, add_special_tokens=special)
            for skip in (True, False):
                assert tok.decode(ids, skip_special_tokens=skip) == hf_llama3_tokenizer.decode(
                    ids, skip_special_tokens=skip)
    assert tok("Hi")["input_ids"] == hf_llama3_tokenizer("Hi")["input_ids"]
    assert tok.bos_token_id == hf_llama3_tokenizer.bos_token_id == 128000
    assert tok.bos_token == hf_llama3_tokenizer.bos_token == "<|begin_of_text|>"
    assert tok.eos_token_id == hf_llama3_tokenizer.eos_token_id == 128009
    assert tok.eos_token == hf_llama3_tokenizer.eos_token == "<|eot_id|>"
    assert set(tok.eos_token_ids) == {128001, 128008, 128009}
    assert len(tok) == tok.vocab_size == 128256
    assert tok.has_chat_template


def test_chat_generates_from_the_rendered_conversation(llama3_llm, hf_llama3_tokenizer):
    params = kite.SamplingParams(temperature=0, max_tokens=6)
    outs = llama3_llm.chat(CONVERSATIONS, params, use_tqdm=False)
    assert len(outs) == 2
    for conv, out in zip(CONVERSATIONS, outs):
        text = hf_llama3_tokenizer.apply_chat_template(conv, tokenize=False,
                                                       add_generation_prompt=True)
        assert out.prompt == text
        # The template wrote BOS; the prompt is tokenized without adding another.
        assert out.prompt_token_ids == hf_llama3_tokenizer.encode(text, add_special_tokens=False)
        assert out.prompt_token_ids.count(128000) == 1
        same = llama3_llm.generate({"prompt_token_ids": out.prompt_token_ids}, params,
                                   use_tqdm=False)
        assert same[0].outputs[0].token_ids == out.outputs[0].token_ids
    # One conversation (not a list of them) gives one output.
    assert len(llama3_llm.chat(CONVERSATIONS[0], params, use_tqdm=False)) == 1


def test_chat_template_override_tools_and_kwargs(llama3_llm):
    template = ("{% for m in messages %}[{{ m['role'] }}|{{ m['content'] }}]{% endfor %}"
                "{% if tools %}tools={{ tools | length }}{% endif %}{{ extra | default('') }}"
                "{% if add_generation_prompt %}>{% endif %}")
    outs = llama3_llm.chat(CONVERSATIONS[0], kite.SamplingParams(max_tokens=1), use_tqdm=False,
                           chat_template=template,
                           tools=[{"type": "function", "function": {"name": "f"}}],
                           chat_template_kwargs={"extra": "!"})
    assert outs[0].prompt == ("[system|You are a helpful assistant. Respond in two sentences.]"
                              "[user|What is the capital of Norway?]tools=1!>")


def test_chat_errors(llama3_llm, tiny_llm):
    with pytest.raises(TypeError, match="message 0 must be a dict"):
        llama3_llm.chat(["hello"], use_tqdm=False)
    with pytest.raises(NotImplementedError, match="continue_final_message"):
        llama3_llm.chat(CONVERSATIONS[0], continue_final_message=True)
    with pytest.raises(ValueError):
        llama3_llm.chat(CONVERSATIONS[0], chat_template="{% for %}", use_tqdm=False)
