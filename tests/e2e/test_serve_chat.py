"""`kite serve` /v1/chat/completions on model directories of the Llama-3.1 and Qwen3 families
(their real tokenizers and chat templates, tiny dummy weights): the prompt the engine sees is
exactly `transformers`' apply_chat_template — shown through /tokenize with messages, through
usage.prompt_tokens, and through the prompt token ids the engine reports (return_token_ids)."""

import json

import pytest
from openai import OpenAI

transformers = pytest.importorskip("transformers")

CONVERSATIONS = [
    [{"role": "user", "content": "Hello! Who are you?"}],
    [{"role": "system", "content": "You are a terse assistant."},
     {"role": "user", "content": "Name three colours."},
     {"role": "assistant", "content": "Red, green, blue."},
     {"role": "user", "content": "And three more? Ünïcödé 🙂 too."}],
]


@pytest.fixture(scope="module")
def hf_tokenizers():
    return {}


def hf_tokenizer(server, cache):
    if server.family not in cache:
        cache[server.family] = transformers.AutoTokenizer.from_pretrained(server.model_dir)
    return cache[server.family]


def hf_ids(tok, messages, **kw):
    out = tok.apply_chat_template(messages, tokenize=True, **kw)
    if isinstance(out, dict) or hasattr(out, "input_ids"):
        out = out["input_ids"]
    return list(out)


@pytest.mark.parametrize("conv", range(len(CONVERSATIONS)))
def test_tokenize_messages_equals_apply_chat_template(chat_server, hf_tokenizers, conv):
    tok = hf_tokenizer(chat_server, hf_tokenizers)
    messages = CONVERSATIONS[conv]
    s, _, body = chat_server.post("/tokenize", {"messages": messages})
    assert s == 200, body
    assert json.loads(body)["tokens"] == hf_ids(tok, messages, add_generation_prompt=True)
    s, _, body = chat_server.post("/tokenize", {"messages": messages,
                                                "add_generation_prompt": False})
    assert json.loads(body)["tokens"] == hf_ids(tok, messages, add_generation_prompt=False)


def test_continue_final_message_and_template_kwargs(chat_server, hf_tokenizers):
    tok = hf_tokenizer(chat_server, hf_tokenizers)
    messages = [{"role": "user", "content": "Write a haiku."},
                {"role": "assistant", "content": "Autumn moon rises"}]
    s, _, body = chat_server.post("/tokenize", {"messages": messages,
                                                "continue_final_message": True})
    assert s == 200, body
    assert json.loads(body)["tokens"] == hf_ids(tok, messages, continue_final_message=True)
    if chat_server.family == "qwen3":
        user = messages[:1]
        s, _, body = chat_server.post("/tokenize", {
            "messages": user, "chat_template_kwargs": {"enable_thinking": False}})
        assert json.loads(body)["tokens"] == hf_ids(tok, user, add_generation_prompt=True,
                                                    enable_thinking=False)
        assert json.loads(body)["tokens"] != hf_ids(tok, user, add_generation_prompt=True)


def test_chat_completion_prompt_is_the_template(chat_server, hf_tokenizers):
    tok = hf_tokenizer(chat_server, hf_tokenizers)
    client = OpenAI(base_url=chat_server.url + "/v1", api_key="x", max_retries=0)
    model = client.models.list().data[0]
    assert model.model_extra["has_chat_template"] is True
    messages = CONVERSATIONS[1]
    want = hf_ids(tok, messages, add_generation_prompt=True)
    r = client.chat.completions.create(model=model.id, messages=messages, max_tokens=6,
                                       temperature=0.7, seed=5,
                                       extra_body={"return_token_ids": True, "ignore_eos": True})
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model_extra["prompt_token_ids"] == want
    assert r.usage.prompt_tokens == len(want)
    (choice,) = r.choices
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "length"
    assert r.usage.completion_tokens == len(choice.model_extra["token_ids"]) == 6
    assert choice.message.content == tok.decode(choice.model_extra["token_ids"],
                                                skip_special_tokens=True)
    # max_completion_tokens is the newer name of the same limit.
    r2 = client.chat.completions.create(model=model.id, messages=messages,
                                        max_completion_tokens=3, extra_body={"ignore_eos": True})
    assert r2.usage.completion_tokens == 3


def test_chat_template_override(chat_server, hf_tokenizers):
    tok = hf_tokenizer(chat_server, hf_tokenizers)
    template = ("{% for m in messages %}<<{{ m['role'] }}>> {{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}<<assistant>>{% endif %}")
    messages = CONVERSATIONS[0]
    client = OpenAI(base_url=chat_server.url + "/v1", api_key="x", max_retries=0)
    r = client.chat.completions.create(model=client.models.list().data[0].id,
                                       messages=messages, max_tokens=2,
                                       extra_body={"chat_template": template,
                                                   "return_token_ids": True})
    want = hf_ids(tok, messages, chat_template=template, add_generation_prompt=True)
    assert r.model_extra["prompt_token_ids"] == want


def test_streamed_chat(chat_server, hf_tokenizers):
    tok = hf_tokenizer(chat_server, hf_tokenizers)
    client = OpenAI(base_url=chat_server.url + "/v1", api_key="x", max_retries=0)
    name = client.models.list().data[0].id
    messages = CONVERSATIONS[0]
    args = dict(model=name, messages=messages, max_tokens=8, temperature=0.9, seed=42,
                extra_body={"ignore_eos": True})
    whole = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(**args, stream=True, n=2,
                                                 stream_options={"include_usage": True}))
    *body, last = chunks
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert last.choices == [] and last.usage.completion_tokens == 16
    assert last.usage.prompt_tokens == len(hf_ids(tok, messages, add_generation_prompt=True))
    # Each choice opens with the assistant role and ends once with "length".
    firsts = [c.choices[0] for c in body[:2]]
    assert sorted(f.index for f in firsts) == [0, 1]
    assert all(f.delta.role == "assistant" and f.delta.content == "" for f in firsts)
    finishes = [c.choices[0] for c in body if c.choices[0].finish_reason]
    assert sorted((f.index, f.finish_reason) for f in finishes) == [(0, "length"), (1, "length")]
    # Choice 0 with the same seed is the whole answer (seeded per request, not per batch).
    text0 = "".join(c.choices[0].delta.content or "" for c in body if c.choices[0].index == 0)
    assert text0 == whole.choices[0].message.content


def test_chat_logprobs(chat_server):
    client = OpenAI(base_url=chat_server.url + "/v1", api_key="x", max_retries=0)
    name = client.models.list().data[0].id
    r = client.chat.completions.create(model=name, messages=CONVERSATIONS[0], max_tokens=5,
                                       temperature=0, logprobs=True, top_logprobs=3,
                                       extra_body={"ignore_eos": True})
    content = r.choices[0].logprobs.content
    assert len(content) == 5
    for entry in content:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-4)
        assert entry.bytes and all(0 <= b < 256 for b in entry.bytes)
