"""Fixtures for the `kite serve` e2e tests: servers are real subprocesses on loopback."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kite_server import KITE, TINY, KiteServer, make_chat_model_dir  # noqa: E402

needs_kite = pytest.mark.skipif(not os.path.exists(KITE), reason=f"no kite binary at {KITE}")

# The shared TinyStories server: a small KV budget keeps RSS readings meaningful.
TINY_ARGS = ["--kv-cache-memory", "128MiB", "--served-model-name", "tiny", "tinystories"]


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory):
    if not os.path.exists(KITE):
        pytest.skip(f"no kite binary at {KITE}")
    server = KiteServer(TINY, *TINY_ARGS, log_dir=str(tmp_path_factory.mktemp("tiny-log")),
                        name="tiny").start()
    yield server
    code = server.stop()
    assert code == 0, server.log()[-4000:]


@pytest.fixture(scope="session")
def chat_model_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("chat-models")
    return {family: make_chat_model_dir(family, str(base / family))
            for family in ("llama3.1", "qwen3")}


@pytest.fixture(scope="session", params=["llama3.1", "qwen3"])
def chat_server(request, chat_model_dirs, tmp_path_factory):
    if not os.path.exists(KITE):
        pytest.skip(f"no kite binary at {KITE}")
    family = request.param
    server = KiteServer(chat_model_dirs[family], "--load-format", "dummy", "--max-model-len",
                        "2048", "--kv-cache-memory", "64MiB", "--seed", "1",
                        "--trust-request-chat-template",
                        log_dir=str(tmp_path_factory.mktemp(f"{family}-log")),
                        name=family).start()
    server.family = family
    server.model_dir = chat_model_dirs[family]
    yield server
    code = server.stop()
    assert code == 0, server.log()[-4000:]
