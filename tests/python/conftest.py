"""Fixtures of the Python package tests (tests/python).

The package under test is the build tree's (<build>/python: kite/*.py, _core, libkite.so, made
with -DKITE_PYTHON=ON, which the ci preset sets); KITE_PYTHON_PATH overrides it, and without it
the build is found next to KITE_BIN (<build>/bin/kite). test_pip_install.py checks the
`pip install .` route separately.
"""

import glob
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "tests", "data", "models", "tinystories-656k")


def _package_dir():
    if os.environ.get("KITE_PYTHON_PATH"):
        return os.environ["KITE_PYTHON_PATH"]
    kite_bin = os.environ.get("KITE_BIN")
    build = (os.path.dirname(os.path.dirname(os.path.abspath(kite_bin))) if kite_bin
             else os.path.join(ROOT, "build"))
    return os.path.join(build, "python")


PACKAGE_DIR = _package_dir()
BUILT = bool(glob.glob(os.path.join(PACKAGE_DIR, "kite", "_core*.so")))
sys.path.insert(0, PACKAGE_DIR)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def pytest_report_header(config):
    state = "built" if BUILT else "NOT BUILT: configure with -DKITE_PYTHON=ON (the ci preset does)"
    return f"kite python package: {PACKAGE_DIR} ({state})"


@pytest.fixture(scope="session")
def tiny_llm():
    """TinyStories-656K (shipped, real weights and tokenizer) on the CPU backend."""
    import kite

    llm = kite.LLM(TINY, seed=0)
    yield llm
    llm.shutdown()


@pytest.fixture(scope="session")
def llama3_dir(tmp_path_factory):
    """A tiny random-weight model with the real Llama-3 tokenizer and Llama-3.2-3B-Instruct's
    chat template."""
    import tiny_llama3

    return tiny_llama3.make_model_dir(str(tmp_path_factory.mktemp("tiny-llama3")))


@pytest.fixture(scope="session")
def llama3_llm(llama3_dir):
    import kite

    llm = kite.LLM(llama3_dir, max_model_len=2048, max_num_seqs=16)
    yield llm
    llm.shutdown()


@pytest.fixture(scope="session")
def hf_llama3_tokenizer(llama3_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(llama3_dir)
