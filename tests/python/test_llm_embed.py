"""LLM.embed (vLLM's shape: one EmbeddingRequestOutput per prompt, `.outputs.embedding`) on tiny
random-weight Qwen3 embedding models (tests/conformance/model/embed_models.py) against the
float64 numpy oracle's final hidden state, pooled and L2-normalised; Matryoshka dimensions; the
runner check both ways."""

import os
import sys

import kite
import numpy as np
import pytest

from conftest import ROOT, TINY

sys.path.insert(0, os.path.join(ROOT, "tests", "conformance", "model"))
import embed_models  # noqa: E402

TOL = 2e-5


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return embed_models.make_embedding_model(str(tmp_path_factory.mktemp("emb") / "last"),
                                             pooling="lasttoken", matryoshka=True)


@pytest.fixture(scope="module")
def llm(model_dir):
    llm = kite.LLM(model_dir, runner="pooling", max_model_len=64, max_num_batched_tokens=16,
                   kv_cache_memory_bytes=8 << 20)
    yield llm
    llm.shutdown()


def test_embed_matches_the_oracle(llm, model_dir):
    oracle = embed_models.oracle(model_dir)
    tok = llm.get_tokenizer()
    prompts = ["Once upon a time", "The cat sat on the mat, and the dog sat on the log.", "a"]
    # A 16-token step budget splits the long prompt over chunks batched with the others.
    out = llm.embed(prompts + [{"prompt_token_ids": [5, 6, 7]}], use_tqdm=False)
    assert len(out) == 4
    for o, p in zip(out, prompts + [None]):
        ids = tok.encode(p) if p is not None else [5, 6, 7]
        assert o.finished and o.prompt_token_ids == ids and o.prompt == p
        ref = embed_models.reference_embedding(oracle, ids)
        got = np.asarray(o.outputs.embedding)
        assert o.outputs.hidden_size == embed_models.HIDDEN
        assert np.max(np.abs(got - ref)) < TOL


def test_dimensions(llm, model_dir):
    oracle = embed_models.oracle(model_dir)
    out = llm.embed([[9, 10, 11]], kite.PoolingParams(dimensions=8), use_tqdm=False)[0]
    ref = embed_models.reference_embedding(oracle, [9, 10, 11], dimensions=8)
    assert len(out.outputs.embedding) == 8
    assert np.max(np.abs(np.asarray(out.outputs.embedding) - ref)) < TOL
    with pytest.raises(ValueError, match="dimensions"):
        llm.embed("x", kite.PoolingParams(dimensions=64), use_tqdm=False)


def test_runner_is_checked_both_ways(llm, tiny_llm):
    with pytest.raises(ValueError, match="embeddings"):
        llm.generate("x", kite.SamplingParams(max_tokens=2), use_tqdm=False)
    with pytest.raises(ValueError, match="pooling"):
        tiny_llm.embed("x", use_tqdm=False)


def test_too_long_prompt_is_refused(llm):
    with pytest.raises(ValueError, match="maximum context length"):
        llm.embed([[3] * 65], use_tqdm=False)
    assert len(llm.embed([[3] * 64], use_tqdm=False)[0].outputs.embedding) == embed_models.HIDDEN
