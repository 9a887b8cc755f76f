"""LLM's behaviour around the generation itself: prompt forms, errors as exceptions with the
engine's message, Ctrl-C aborting the batch, the GIL released while the engine runs, the
progress bar, shutdown."""

import io
import signal
import threading
import time

import kite
import kite.progress
import pytest

from conftest import TINY

GREEDY = kite.SamplingParams(temperature=0, max_tokens=8)


def ids_of(outputs):
    return [o.outputs[0].token_ids for o in outputs]


def test_prompt_forms_give_the_same_tokens(tiny_llm):
    ids = tiny_llm.get_tokenizer().encode("Once upon a time")
    forms = [
        "Once upon a time",
        {"prompt": "Once upon a time"},
        ids,
        {"prompt_token_ids": ids},
    ]
    single = [tiny_llm.generate(f, GREEDY, use_tqdm=False) for f in forms]
    for out in single:
        assert len(out) == 1
        assert out[0].prompt_token_ids == ids
    assert len({tuple(o[0].outputs[0].token_ids) for o in single}) == 1
    assert single[0][0].prompt == "Once upon a time"
    assert single[2][0].prompt is None
    batch = tiny_llm.generate(forms, GREEDY, use_tqdm=False)
    assert ids_of(batch) == [o[0].outputs[0].token_ids for o in single]
    assert tiny_llm.generate([], GREEDY, use_tqdm=False) == []


@pytest.mark.parametrize("prompts,error,message", [
    (5, TypeError, "prompts must be a string, token ids, a dict or a list of them"),
    ([["a"]], TypeError, r"prompts\[0\] must be a string, a list of token ids or a dict"),
    ({"text": "a"}, TypeError, "prompt must have a 'prompt' or 'prompt_token_ids' key"),
    ({"prompt_token_ids": [1, "x"]}, TypeError, "must hold integers, got 'x'"),
    ("", ValueError, "^prompt must not be empty$"),
    ([1, 99999], ValueError,
     r"^prompt token 1: token id 99999 is outside the vocabulary \[0, 2048\)$"),
    ([1] * 600, ValueError, "^prompt has 600 tokens, which leaves no room for output within "
                            "max_model_len 512$"),
])
def test_bad_prompts(tiny_llm, prompts, error, message):
    with pytest.raises(error, match=message):
        tiny_llm.generate(prompts, GREEDY, use_tqdm=False)


def test_sampling_params_list_must_match(tiny_llm):
    with pytest.raises(ValueError, match="The lengths of prompts and sampling_params must be the "
                                         "same."):
        tiny_llm.generate(["a", "b"], [GREEDY], use_tqdm=False)
    with pytest.raises(TypeError, match="sampling_params must be a SamplingParams"):
        tiny_llm.generate("a", {"temperature": 0}, use_tqdm=False)


def test_a_rejected_prompt_aborts_the_ones_before_it(tiny_llm):
    before = tiny_llm.stats()
    long = kite.SamplingParams(temperature=0, max_tokens=400, ignore_eos=True)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tiny_llm.generate(["Once", "Twice", [99999]], long, use_tqdm=False)
    after = tiny_llm.stats()
    assert after.requests_aborted_total - before.requests_aborted_total == 2
    assert after.num_running == 0 and after.num_waiting == 0
    # The LLM is still usable.
    assert len(tiny_llm.generate("Once", GREEDY, use_tqdm=False)[0].outputs[0].token_ids) == 8


def test_engine_creation_errors():
    with pytest.raises(FileNotFoundError, match="/nonexistent"):
        kite.LLM("/nonexistent/model")
    with pytest.raises(ValueError, match=r"max_model_len \(100000\) exceeds the model's "
                                         r"max_position_embeddings \(512\)"):
        kite.LLM(TINY, max_model_len=100000)
    with pytest.raises(kite.EngineError) as e:
        kite.LLM(TINY, kv_cache_memory_bytes=1024)
    assert e.value.code == "resource_exhausted"
    assert str(e.value) == ("a KV cache budget of 1024 bytes holds 0 blocks of 16 tokens "
                            "(16384 bytes each); at least 2 are needed")
    assert isinstance(e.value, RuntimeError)
    with pytest.raises(TypeError, match="unexpected keyword arguments: bogus"):
        kite.LLM(TINY, bogus=1)
    with pytest.raises(ValueError, match=r"kite.LLM runs one rank; for tensor_parallel_size=2 x "
                                         r"pipeline_parallel_size=1 start `kite serve MODEL "
                                         r"--tensor-parallel-size 2 --pipeline-parallel-size 1`"):
        kite.LLM(TINY, tensor_parallel_size=2)
    with pytest.raises(ValueError, match="pipeline_parallel_size=2"):
        kite.LLM(TINY, pipeline_parallel_size=2)
    with pytest.raises(ValueError, match="expert parallelism is not implemented"):
        kite.LLM(TINY, enable_expert_parallel=True)
    with kite.LLM(TINY, enable_expert_parallel=False):  # vLLM's default: accepted
        pass


def test_ctrl_c_aborts_the_batch_and_reraises(llama3_llm):
    """SIGINT (Ctrl-C) during generate: every unfinished request of the batch is aborted (none
    keeps running), KeyboardInterrupt propagates, and the LLM keeps working.

    Deterministic: the signal is raised from inside generate (by the progress bar, when the
    one-token request of the batch finishes), so the seven long requests are still running; and
    it is raised in the main thread itself (signal.raise_signal: the handler runs before it
    returns). Python turns SIGINT into KeyboardInterrupt only if the process did not start with
    SIGINT ignored, as a command started in the background by a shell without job control does
    (`(cmd &)`): the test installs Python's handler for its own duration."""
    before = llama3_llm.stats()
    short = kite.SamplingParams(temperature=0.8, seed=1, max_tokens=1, ignore_eos=True)
    long = kite.SamplingParams(temperature=0.8, seed=1, max_tokens=1500, ignore_eos=True)
    prompts = [f"Story {i}:" for i in range(8)]

    class CtrlCBar:
        def __init__(self, **kwargs):
            pass

        def set_postfix_str(self, s, refresh=True):
            pass

        def update(self, n):
            signal.raise_signal(signal.SIGINT)  # KeyboardInterrupt from here, in the main thread
            raise AssertionError("SIGINT did not raise KeyboardInterrupt")

        def close(self):
            pass

    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            llama3_llm.generate(prompts, [short] + [long] * 7, use_tqdm=CtrlCBar)
    finally:
        signal.signal(signal.SIGINT, inherited)
    # The engine publishes its counters after the step that ended the requests: wait for them.
    deadline = time.monotonic() + 60
    after = llama3_llm.stats()
    while (after.requests_finished_total - before.requests_finished_total < 8
           and time.monotonic() < deadline):
        time.sleep(0.01)
        after = llama3_llm.stats()
    assert after.num_running == 0 and after.num_waiting == 0
    assert after.requests_finished_total - before.requests_finished_total == 8  # all ended,
    assert after.requests_aborted_total - before.requests_aborted_total == 7  # 7 by the abort
    assert after.generation_tokens_total - before.generation_tokens_total < 1 + 7 * 1500
    out = llama3_llm.generate("Once", GREEDY, use_tqdm=False)
    assert len(out[0].outputs[0].token_ids) == 8


def test_the_gil_is_released_while_waiting(llama3_llm):
    """Another Python thread runs while the engine works for Batch.wait (if wait held the GIL,
    the main thread could only run after it returned)."""
    from kite import _core

    params = kite.SamplingParams(temperature=0, max_tokens=1500, ignore_eos=True)._to_core()
    batch = _core.Batch(llama3_llm._engine)
    batch.add([128000, 9906], params, True, "gil-test", 0)
    entered = threading.Event()
    result = {}

    def waiter():
        entered.set()
        result["finished"] = batch.wait(120_000)
        result["exit"] = time.monotonic()

    t = threading.Thread(target=waiter)
    t.start()
    entered.wait()
    x = 0
    for i in range(100_000):  # pure Python work: needs the GIL
        x += i
    python_done = time.monotonic()
    still_waiting = t.is_alive()
    llama3_llm._engine.abort("gil-test")
    t.join()
    assert result["finished"] == 1
    assert still_waiting and python_done < result["exit"]


def test_progress_bar_tqdm_callable(tiny_llm):
    made = []

    class Bar:
        def __init__(self, total, desc, **kwargs):
            self.total, self.desc, self.n, self.closed = total, desc, 0, False
            made.append(self)

        def update(self, n):
            self.n += n

        def set_postfix_str(self, s, refresh=True):
            self.postfix = s

        def close(self):
            self.closed = True

    tiny_llm.generate(["a", "b", "c"], GREEDY, use_tqdm=Bar)
    assert len(made) == 1
    bar = made[0]
    assert (bar.total, bar.n, bar.desc, bar.closed) == (3, 3, "Processed prompts", True)
    assert bar.postfix.startswith("est. speed input: ")


def test_builtin_progress_bar_without_tqdm(tiny_llm, monkeypatch, capsys):
    monkeypatch.setattr(kite.progress, "_tqdm_class", lambda: None)
    tiny_llm.generate(["a", "b", "c", "d"], GREEDY)  # use_tqdm=True by default
    err = capsys.readouterr().err
    last = err.rstrip("\n").split("\r")[-1]
    assert last.startswith("Processed prompts: 100%|####################| 4/4 [")
    assert "est. speed input: " in last and "output: " in last


def test_text_bar_alone():
    stream = io.StringIO()
    bar = kite.progress._TextBar(total=2, desc="X", stream=stream, min_interval=0)
    bar.update(1)
    bar.close()
    lines = stream.getvalue().split("\r")
    assert lines[-1].startswith("X:  50%|##########          | 1/2 [")  # tqdm's layout


def test_shutdown_then_use_raises():
    llm = kite.LLM(TINY)
    assert "tinystories-656k" in repr(llm)
    llm.shutdown()
    assert repr(llm) == "kite.LLM(shut down)"
    with pytest.raises(RuntimeError, match="shut down"):
        llm.generate("Once", GREEDY, use_tqdm=False)
    llm.shutdown()  # idempotent
    with kite.LLM(TINY) as scoped:
        assert len(scoped.generate("Once", GREEDY, use_tqdm=False)) == 1
