"""POST /v1/embeddings through `kite serve --runner pooling` with the official openai client, on
tiny random-weight Qwen3 embedding models written here (tests/conformance/model/embed_models.py:
the Qwen3-Embedding layout, last-token or mean pooling from sentence-transformers' files): every
embedding equals the float64 numpy oracle's final hidden state pooled and L2-normalised, within
float32 tolerance; float and base64 encodings, batches, token-id inputs, Matryoshka dimensions,
usage. Bad input and the wrong runner are OpenAI-style 400s."""

import base64
import json
import os
import sys

import numpy as np
import pytest

from kite_server import KITE, ROOT, KiteServer

openai = pytest.importorskip("openai")
tokenizers = pytest.importorskip("tokenizers")
sys.path.insert(0, os.path.join(ROOT, "tests", "conformance", "model"))
import embed_models  # noqa: E402

TOL = 2e-5  # float32 forward of a 2-layer model vs the float64 oracle, on unit vectors
TEXTS = ["The cat sat on the mat.", "Once upon a time", "a"]


def start(model_dir, log_dir, name, step_tokens=64):
    if not os.path.exists(KITE):
        pytest.skip(f"no kite binary at {KITE}")
    return KiteServer(model_dir, "--runner", "pooling", "--served-model-name", "emb",
                      "--kv-cache-memory", "16MiB", "--max-model-len", "64",
                      "--max-num-batched-tokens", str(step_tokens), log_dir=log_dir,
                      name=name).start()


@pytest.fixture(scope="module")
def last_server(tmp_path_factory):
    d = embed_models.make_embedding_model(str(tmp_path_factory.mktemp("emb") / "last"),
                                          pooling="lasttoken", matryoshka=[8, 16, 32])
    server = start(d, str(tmp_path_factory.mktemp("last-log")), "emb-last")
    server.model_dir = d
    server.oracle = embed_models.oracle(d)
    yield server
    assert server.stop() == 0, server.log()[-4000:]


@pytest.fixture(scope="module")
def mean_server(tmp_path_factory):
    d = embed_models.make_embedding_model(str(tmp_path_factory.mktemp("emb") / "mean"),
                                          pooling="mean")
    # 16 tokens per step: longer inputs are pooled over several prefill chunks.
    server = start(d, str(tmp_path_factory.mktemp("mean-log")), "emb-mean", step_tokens=16)
    server.model_dir = d
    server.oracle = embed_models.oracle(d)
    yield server
    assert server.stop() == 0, server.log()[-4000:]


def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=60)


def encode(server, text):
    tok = tokenizers.Tokenizer.from_file(os.path.join(server.model_dir, "tokenizer.json"))
    return tok.encode(text).ids


def assert_close(got, want):
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape
    assert abs(np.linalg.norm(got) - 1.0) < 1e-5
    assert np.max(np.abs(got - want)) < TOL, np.max(np.abs(got - want))


def test_batch_of_texts_matches_the_oracle(last_server):
    r = client(last_server).embeddings.create(model="emb", input=TEXTS, encoding_format="float")
    assert r.object == "list" and r.model == "emb"
    assert [d.index for d in r.data] == [0, 1, 2]
    total = 0
    for text, d in zip(TEXTS, r.data):
        ids = encode(last_server, text)
        total += len(ids)
        assert d.object == "embedding"
        assert_close(d.embedding, embed_models.reference_embedding(last_server.oracle, ids))
    assert r.usage.prompt_tokens == total and r.usage.total_tokens == total
    # Prefill-only requests: every KV block is freed when they finish.
    m = last_server.wait_idle()
    assert m["kite:kv_cache_blocks_used"] == 0 and m["kite:num_requests_running"] == 0


def test_base64_is_little_endian_float32_of_the_same_vector(last_server):
    c = client(last_server)
    floats = c.embeddings.create(model="emb", input=TEXTS[0],
                                 encoding_format="float").data[0].embedding
    b64 = c.embeddings.create(model="emb", input=TEXTS[0],
                              encoding_format="base64").data[0].embedding
    assert isinstance(b64, str)
    decoded = np.frombuffer(base64.b64decode(b64), dtype="<f4")
    assert decoded.tolist() == [np.float32(x).item() for x in floats]
    # Without encoding_format the client asks for base64 and decodes it itself.
    default = c.embeddings.create(model="emb", input=TEXTS[0]).data[0].embedding
    assert default == decoded.tolist()


def test_token_id_inputs(last_server):
    ids = [[5, 17, 300, 2000], [9]]
    c = client(last_server)
    r = c.embeddings.create(model="emb", input=ids)
    for one, d in zip(ids, r.data):
        assert_close(d.embedding, embed_models.reference_embedding(last_server.oracle, one))
    single = c.embeddings.create(model="emb", input=ids[0])
    assert single.data[0].embedding == r.data[0].embedding  # batching does not change a row
    assert r.usage.prompt_tokens == 5


def test_matryoshka_dimensions(last_server):
    ids = encode(last_server, TEXTS[1])
    r = client(last_server).embeddings.create(model="emb", input=TEXTS[1], dimensions=16)
    assert len(r.data[0].embedding) == 16
    assert_close(r.data[0].embedding,
                 embed_models.reference_embedding(last_server.oracle, ids, dimensions=16))


def test_mean_pooling_matches_the_oracle(mean_server):
    texts = TEXTS + ["word " * 20]  # 41 tokens: three prefill chunks
    r = client(mean_server).embeddings.create(model="emb", input=texts)
    for text, d in zip(texts, r.data):
        ids = encode(mean_server, text)
        assert_close(d.embedding, embed_models.reference_embedding(mean_server.oracle, ids, "mean"))


def error_of(server, body):
    status, _, raw = server.post("/v1/embeddings", body)
    return status, json.loads(raw)["error"]


@pytest.mark.parametrize("body,param", [
    ({"model": "emb", "input": ""}, "input"),
    ({"model": "emb", "input": []}, "input"),
    ({"model": "emb"}, "input"),
    ({"model": "emb", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "emb", "input": "x", "dimensions": 0}, "dimensions"),
    ({"model": "emb", "input": "x", "dimensions": 12}, "dimensions"),  # not a listed size
    ({"model": "emb", "input": [[1, 2], [99999]]}, "input[1][0]"),
    ({"model": "emb", "input": "x", "stream": True}, "stream"),
])
def test_bad_input_is_a_400(last_server, body, param):
    status, err = error_of(last_server, body)
    assert status == 400, err
    assert err["type"] == "invalid_request_error" and err["param"] == param, err


def test_too_long_input_is_a_400(last_server):
    status, err = error_of(last_server, {"model": "emb", "input": [7] * 65})
    assert status == 400 and err["code"] == "context_length_exceeded", err
    ok, _, _ = last_server.post("/v1/embeddings", {"model": "emb", "input": [7] * 64})
    assert ok == 200  # max_model_len tokens fit: nothing is generated after them


def test_dimensions_without_matryoshka_is_a_400(mean_server):
    status, err = error_of(mean_server, {"model": "emb", "input": "x", "dimensions": 16})
    assert status == 400 and err["param"] == "dimensions" and "matryoshka" in err["message"], err


def test_generation_on_a_pooling_server_is_a_400(last_server):
    with pytest.raises(openai.BadRequestError):
        client(last_server).completions.create(model="emb", prompt="x", max_tokens=2)


def test_embeddings_on_a_generation_server_is_a_400(tiny_server):
    status, _, raw = tiny_server.post("/v1/embeddings", {"model": "tiny", "input": "x"})
    err = json.loads(raw)["error"]
    assert status == 400 and "does not support Embeddings API" in err["message"], err
    assert tiny_server.wait_idle()["kite:kv_cache_blocks_used"] == 0
