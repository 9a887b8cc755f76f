"""LLM: offline batch inference on the kite engine, shaped like vLLM's ``vllm.LLM``."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from . import _core
from .inputs import Prompt, PromptType, parse_prompts
from .outputs import (CompletionOutput, EmbeddingOutput, EmbeddingRequestOutput, Logprob,
                      PoolingParams, RequestMetrics, RequestOutput)
from .progress import ProgressBar, UseTqdm
from .sampling_params import SamplingParams
from .tokenizer import Conversation, Tokenizer, _is_conversation_batch, render_chat

# How long one wait for finished requests may block before Python runs again: the bound on how
# late Ctrl-C is noticed and the progress bar's refresh period.
_WAIT_MS = 100

# EngineConfig fields LLM(...) takes as keyword arguments besides its named ones.
_ENGINE_KWARGS = (
    "served_model_name", "max_num_batched_tokens", "block_size", "kv_cache_memory_bytes",
    "kv_cache_dtype", "enable_chunked_prefill", "scheduling_policy", "max_waiting_requests",
    "enforce_eager", "num_threads", "revision", "tokenizer_revision", "download_dir", "runner",
)

_DTYPE_ALIASES = {"half": "float16", "float": "float32", "bf16": "bfloat16", "fp16": "float16",
                  "fp32": "float32"}


def _dtype_name(dtype: Any) -> str:
    """"auto", "bfloat16", ...; torch dtypes (torch.bfloat16) are accepted by name."""
    name = str(dtype)
    if name.startswith("torch."):
        name = name[len("torch."):]
    return _DTYPE_ALIASES.get(name, name)


class LLM:
    """A model loaded into the kite engine, for offline batch generation.

    Args:
        model: a Hugging Face model directory (config.json, *.safetensors, tokenizer.json), a
            .gguf file, or a Hugging Face Hub id ("org/name", "org/name:Q4_K_M") resolved in the
            Hugging Face cache and downloaded if missing (HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE).
        tokenizer: a directory with tokenizer.json or a Hub id, when it is not the model's.
        dtype: "auto" (the checkpoint's), "bfloat16", "float16" or "float32".
        max_model_len: context length (prompt + output); default: the model's.
        max_num_seqs: most sequences per engine step.
        gpu_memory_utilization: fraction of GPU memory for weights, activations and KV cache.
        tensor_parallel_size: ranks to split the model over; only 1 in kite.LLM (a ValueError
            otherwise): several ranks run through `kite serve` / `kite generate`, which start
            them under mpirun themselves (docs/parallel.md).
        enable_prefix_caching: reuse the KV cache of shared prompt prefixes.
        seed: seeds requests that set no seed of their own (None: a random seed).
        load_format: "auto", "safetensors", "gguf" or "dummy" (random weights, for benchmarks).
        device: "auto", "cpu" or "cuda".
        **kwargs: other engine settings: served_model_name, max_num_batched_tokens, block_size,
            kv_cache_memory_bytes, kv_cache_dtype, enable_chunked_prefill, scheduling_policy,
            max_waiting_requests, enforce_eager, num_threads, revision, tokenizer_revision,
            download_dir (the Hub cache folder), runner ("generate", or "pooling" for an
            embedding model served through LLM.embed; vLLM's older task="embed" is taken
            too). trust_remote_code is accepted
            and ignored (kite never runs code from a model).
    """

    def __init__(
        self,
        model: Union[str, os.PathLike],
        tokenizer: Optional[Union[str, os.PathLike]] = None,
        dtype: Any = "auto",
        max_model_len: Optional[int] = None,
        max_num_seqs: Optional[int] = None,
        gpu_memory_utilization: float = 0.9,
        tensor_parallel_size: int = 1,
        enable_prefix_caching: bool = True,
        seed: Optional[int] = 0,
        load_format: str = "auto",
        device: str = "auto",
        **kwargs: Any,
    ) -> None:
        kwargs.pop("trust_remote_code", None)
        task = kwargs.pop("task", None)  # vLLM's older spelling of runner="pooling"
        if task is not None:
            if task not in ("embed", "generate"):
                raise ValueError(f"task={task!r}: kite serves 'generate' and 'embed'")
            kwargs.setdefault("runner", "pooling" if task == "embed" else "generate")
        tokenizer_mode = kwargs.pop("tokenizer_mode", "auto")
        if tokenizer_mode != "auto":
            raise NotImplementedError(f"tokenizer_mode={tokenizer_mode!r}: only 'auto' exists")
        quantization = kwargs.pop("quantization", None)
        if quantization not in (None, "fp8"):
            raise ValueError(f"quantization={quantization!r}: kite supports 'fp8' (FP8 weights "
                             "with per-channel scales made at load); FP8 checkpoints and GGUF "
                             "files are read in their own format without it")
        pipeline_parallel_size = int(kwargs.pop("pipeline_parallel_size", 1))  # vLLM's kwarg
        if kwargs.pop("enable_expert_parallel", False):  # vLLM's kwarg
            raise ValueError("enable_expert_parallel=True: expert parallelism is not implemented "
                             "in kite: every rank that holds a mixture-of-experts layer holds all "
                             "its experts (docs/parallel.md)")
        if int(tensor_parallel_size) != 1 or pipeline_parallel_size != 1:
            # The engine runs in this process; its ranks would have to be processes of one MPI
            # world with it, which only `kite serve` / `kite generate` set up (docs/parallel.md).
            raise ValueError(
                f"kite.LLM runs one rank; for tensor_parallel_size={tensor_parallel_size} x "
                f"pipeline_parallel_size={pipeline_parallel_size} start `kite serve MODEL "
                f"--tensor-parallel-size {tensor_parallel_size} --pipeline-parallel-size "
                f"{pipeline_parallel_size}` (it starts its ranks under mpirun) and use the "
                "openai client, or run `kite generate MODEL --input requests.jsonl --output "
                "out.jsonl` with the same sizes (docs/parallel.md)")
        unknown = sorted(set(kwargs) - set(_ENGINE_KWARGS))
        if unknown:
            raise TypeError(f"LLM() got unexpected keyword arguments: {', '.join(unknown)} "
                            f"(engine settings: {', '.join(_ENGINE_KWARGS)})")

        config = _core.EngineConfig()
        config.model = os.fspath(model)
        if tokenizer is not None:
            config.tokenizer = os.fspath(tokenizer)
        config.dtype = _dtype_name(dtype)
        config.quantization = quantization or ""
        config.max_model_len = 0 if max_model_len is None else int(max_model_len)
        if max_num_seqs is not None:
            config.max_num_seqs = int(max_num_seqs)
        config.gpu_memory_utilization = float(gpu_memory_utilization)
        config.tensor_parallel_size = int(tensor_parallel_size)
        config.enable_prefix_caching = bool(enable_prefix_caching)
        config.seed = int.from_bytes(os.urandom(8), "little") if seed is None else int(seed)
        config.load_format = load_format
        config.device = device
        for name, value in kwargs.items():
            setattr(config, name, value)

        self._engine = _core.Engine(config)  # loads the model (the GIL is released meanwhile)
        self._vocab_size = self._engine.model_info.vocab_size
        info = self._engine.model_info  # paths after Hub ids were resolved
        tokenizer_path = info.tokenizer_path or info.model_path
        self._tokenizer_dir = (tokenizer_path if os.path.isdir(tokenizer_path)
                               else os.path.dirname(tokenizer_path))
        self._request_counter = itertools.count()
        self._tokenizer: Optional[Tokenizer] = None
        self._token_text: Dict[int, str] = {}  # logprob token texts, decoded once

    # ---- generation -------------------------------------------------------------------------

    def generate(
        self,
        prompts: Union[PromptType, Sequence[PromptType]],
        sampling_params: Optional[Union[SamplingParams, Sequence[SamplingParams]]] = None,
        use_tqdm: UseTqdm = True,
        lora_request: Any = None,
        priority: Optional[List[int]] = None,
    ) -> List[RequestOutput]:
        """Generates completions for `prompts`; returns one RequestOutput per prompt, in order.

        prompts: a string, token ids, {"prompt": ...} / {"prompt_token_ids": ...}, or a list
        of these. sampling_params: one for all prompts, or one per prompt; None uses the
        model's defaults (generation_config.json). The call blocks until every request is
        done; Ctrl-C aborts them and raises KeyboardInterrupt.
        """
        if lora_request is not None:
            raise NotImplementedError("LoRA adapters are not supported")
        parsed = parse_prompts(prompts)
        return self._run(parsed, sampling_params, use_tqdm, priority)

    def chat(
        self,
        messages: Union[Conversation, List[Conversation]],
        sampling_params: Optional[Union[SamplingParams, Sequence[SamplingParams]]] = None,
        use_tqdm: UseTqdm = True,
        lora_request: Any = None,
        chat_template: Optional[str] = None,
        chat_template_content_format: str = "auto",
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: Optional[List[Dict[str, Any]]] = None,
        chat_template_kwargs: Optional[Dict[str, Any]] = None,
    ) -> List[RequestOutput]:
        """Generates replies to one conversation or a list of them.

        Each conversation (a list of {"role", "content"} messages) goes through the chat
        template (the model's, or `chat_template`), with `tools` and `chat_template_kwargs`
        given to the template; the rendered text is the RequestOutput's prompt.
        """
        if lora_request is not None:
            raise NotImplementedError("LoRA adapters are not supported")
        if continue_final_message:
            raise NotImplementedError("continue_final_message is not supported")
        if chat_template_content_format != "auto":
            raise NotImplementedError(
                "chat_template_content_format: messages are given to the template as they are "
                "('auto')")
        conversations = messages if _is_conversation_batch(messages) else [messages]
        prompts = [
            Prompt(text=render_chat(self._engine, c, add_generation_prompt=add_generation_prompt,
                                    chat_template=chat_template, tools=tools,
                                    template_kwargs=chat_template_kwargs),
                   add_special_tokens=False)  # the template wrote BOS itself
            for c in conversations
        ]
        return self._run(prompts, sampling_params, use_tqdm, None)

    def _run(self, prompts: List[Prompt], sampling_params: Any, use_tqdm: UseTqdm,
             priority: Optional[List[int]]) -> List[RequestOutput]:
        params = self._params_per_prompt(sampling_params, len(prompts))
        if priority is not None and len(priority) != len(prompts):
            raise ValueError("The lengths of prompts and priority must be the same.")
        core_params = {}
        for p in params:
            if id(p) not in core_params:
                core_params[id(p)] = p._to_core(self._vocab_size)

        def add_all(batch):
            for i, (prompt, p) in enumerate(zip(prompts, params)):
                batch.add(prompt.token_ids if prompt.token_ids is not None else prompt.text,
                          core_params[id(p)], prompt.add_special_tokens,
                          str(next(self._request_counter)),
                          0 if priority is None else int(priority[i]))

        batch = self._run_batch(add_all, use_tqdm)
        return [self._request_output(batch.result(i), prompts[i], params[i])
                for i in range(len(batch))]

    def _run_batch(self, add_all: Callable[[Any], None], use_tqdm: Any) -> Any:
        """Submits a batch's requests (add_all(batch)), waits for all of them without the GIL
        behind the progress bar, and raises the first request error; returns the batch."""
        batch = _core.Batch(self._engine)
        try:
            add_all(batch)
            bar = ProgressBar(len(batch), use_tqdm)
            try:
                while batch.num_finished < len(batch):
                    finished = batch.wait(_WAIT_MS)  # without the GIL
                    bar.update(finished, batch.num_prompt_tokens, batch.num_output_tokens)
            finally:
                bar.close()
        except BaseException:
            # Ctrl-C, a rejected prompt, a failing progress bar: nothing may keep running.
            batch.abort_unfinished()
            while batch.num_finished < len(batch):
                batch.wait(_WAIT_MS)
            raise
        batch.raise_first_error()
        return batch

    def _params_per_prompt(self, sampling_params: Any, count: int) -> List[SamplingParams]:
        if sampling_params is None:
            return [self.get_default_sampling_params()] * count
        if isinstance(sampling_params, SamplingParams):
            return [sampling_params] * count
        if isinstance(sampling_params, (list, tuple)):
            if len(sampling_params) != count:
                raise ValueError("The lengths of prompts and sampling_params must be the same.")
            for p in sampling_params:
                if not isinstance(p, SamplingParams):
                    raise TypeError(f"sampling_params must hold SamplingParams, got {type(p)!r}")
            return list(sampling_params)
        raise TypeError("sampling_params must be a SamplingParams or a list of them, "
                        f"got {type(sampling_params)!r}")

    # ---- outputs ----------------------------------------------------------------------------

    def _token_str(self, token_id: int) -> str:
        text = self._token_text.get(token_id)
        if text is None:
            text = self._engine.detokenize([token_id], False)
            self._token_text[token_id] = text
        return text

    def _logprob_dict(self, entry: "_core.LogprobEntry") -> Dict[int, Logprob]:
        """{chosen token: Logprob, then the top tokens by rank} (vLLM's order)."""
        d = {entry.token_id: Logprob(entry.logprob, entry.rank, self._token_str(entry.token_id))}
        for rank, t in enumerate(entry.top, start=1):
            if t.token_id not in d:
                d[t.token_id] = Logprob(t.logprob, rank, self._token_str(t.token_id))
        return d

    def _request_output(self, r: "_core.RequestResult", prompt: Prompt,
                        params: SamplingParams) -> RequestOutput:
        outputs = []
        for c in r.choices:
            logprobs = None
            cumulative = None
            if params.logprobs is not None:
                entries = c.logprobs
                logprobs = [self._logprob_dict(e) for e in entries]
                cumulative = float(sum(e.logprob for e in entries))
            outputs.append(CompletionOutput(
                index=c.index, text=c.text, token_ids=list(c.token_ids),
                cumulative_logprob=cumulative, logprobs=logprobs,
                finish_reason=c.finish_reason, stop_reason=c.stop_reason))
        prompt_logprobs = None
        if params.prompt_logprobs is not None:
            entries = r.prompt_logprobs
            prompt_logprobs = [None] + [self._logprob_dict(e) for e in entries[1:]]
        m = r.metrics
        to_wall = time.time() - time.monotonic()

        def wall(t: Optional[float]) -> Optional[float]:
            return None if t is None else t + to_wall

        metrics = RequestMetrics(
            arrival_time=wall(m.arrival_time), first_scheduled_time=wall(m.first_scheduled_time),
            first_token_time=wall(m.first_token_time), last_token_time=wall(m.last_token_time),
            finished_time=wall(m.finished_time), num_prompt_tokens=m.num_prompt_tokens,
            num_generation_tokens=m.num_generation_tokens, num_cached_tokens=m.num_cached_tokens,
            num_preemptions=m.num_preemptions)
        return RequestOutput(
            request_id=r.request_id, prompt=prompt.text, prompt_token_ids=list(r.prompt_token_ids),
            prompt_logprobs=prompt_logprobs, outputs=outputs, finished=r.finished,
            metrics=metrics, num_cached_tokens=m.num_cached_tokens)

    # ---- embeddings -------------------------------------------------------------------------

    def embed(
        self,
        prompts: Union[PromptType, Sequence[PromptType]],
        pooling_params: Optional[Union[PoolingParams, Sequence[PoolingParams]]] = None,
        use_tqdm: UseTqdm = True,
        lora_request: Any = None,
    ) -> List[EmbeddingRequestOutput]:
        """Embeds each prompt (vLLM's LLM.embed; needs LLM(..., runner="pooling")).

        prompts: strings, token ids, {"prompt": ...} or {"prompt_token_ids": ...}. Each prompt
        is prefilled (batched with the others by the engine's scheduler), its final hidden
        states pooled as the model's pooling config says (last token by default) and
        L2-normalised. Returns one EmbeddingRequestOutput per prompt, in order, whose
        `outputs.embedding` is a list of floats.
        """
        if lora_request is not None:
            raise NotImplementedError("LoRA adapters are not supported")
        parsed = parse_prompts(prompts)
        if pooling_params is None or isinstance(pooling_params, PoolingParams):
            per_prompt = [pooling_params or PoolingParams()] * len(parsed)
        else:
            per_prompt = list(pooling_params)
            if len(per_prompt) != len(parsed):
                raise ValueError("The lengths of prompts and pooling_params must be the same.")
        def add_all(batch):
            for prompt, p in zip(parsed, per_prompt):
                batch.add_embedding(
                    prompt.token_ids if prompt.token_ids is not None else prompt.text,
                    int(p.dimensions or 0), prompt.add_special_tokens,
                    str(next(self._request_counter)))

        batch = self._run_batch(add_all, use_tqdm)
        out = []
        for i, prompt in enumerate(parsed):
            r = batch.result(i)
            out.append(EmbeddingRequestOutput(
                request_id=r.request_id, outputs=EmbeddingOutput(list(r.embedding)),
                prompt_token_ids=list(r.prompt_token_ids), finished=r.finished,
                prompt=prompt.text))
        return out

    # ---- model, tokenizer, engine -----------------------------------------------------------

    def beam_search(self, prompts: Sequence[PromptType], params: "BeamSearchParams",
                    lora_request: Any = None, use_tqdm: bool = False) -> List["BeamSearchOutput"]:
        """Beam search over each prompt (vLLM's LLM.beam_search; see kite/beam_search.py).

        prompts: strings, token ids, {"prompt": ...} or {"prompt_token_ids": ...}. Returns one
        BeamSearchOutput per prompt whose `sequences` are the best `beam_width` beams, best
        first, each with its tokens (prompt included), per-step logprobs, cum_logprob and text.
        """
        from .beam_search import BeamSearchOutput, BeamSearchSequence, get_beam_search_score

        if lora_request is not None:
            raise NotImplementedError("LoRA adapters are not supported")
        parsed = parse_prompts(prompts)
        tokenizer = self.get_tokenizer()
        eos_ids = list(self._engine.model_info.eos_token_ids)
        eos = eos_ids[0] if eos_ids else None
        width = params.beam_width
        step_params = SamplingParams(logprobs=2 * width, max_tokens=1,
                                     temperature=params.temperature, ignore_eos=True)

        def score(beam: BeamSearchSequence) -> float:
            return get_beam_search_score(beam.tokens, beam.cum_logprob, eos,
                                         params.length_penalty)

        live: List[List[BeamSearchSequence]] = []
        finished: List[List[BeamSearchSequence]] = []
        for p in parsed:
            ids = (list(p.token_ids) if p.token_ids is not None
                   else tokenizer.encode(p.text, add_special_tokens=True))
            live.append([BeamSearchSequence(tokens=ids)])
            finished.append([])
        for _ in range(params.max_tokens):
            beams = [(i, b) for i, group in enumerate(live) for b in group]
            if not beams:
                break
            outs = self.generate([{"prompt_token_ids": b.tokens} for _, b in beams], step_params,
                                 use_tqdm=False)
            extended: List[List[BeamSearchSequence]] = [[] for _ in live]
            for (i, beam), out in zip(beams, outs):
                step = out.outputs[0].logprobs[0]
                for token_id, lp in step.items():
                    new = BeamSearchSequence(tokens=beam.tokens + [token_id],
                                             logprobs=beam.logprobs + [step],
                                             cum_logprob=beam.cum_logprob + lp.logprob)
                    if token_id in eos_ids and not params.ignore_eos:
                        new.finish_reason = "stop"
                        finished[i].append(new)
                    else:
                        extended[i].append(new)
            for i, group in enumerate(extended):
                live[i] = sorted(group, key=lambda b: b.cum_logprob, reverse=True)[:width]
        results = []
        for group, done in zip(live, finished):
            for b in group:
                b.finish_reason = "length"
            best = sorted(done + group, key=score, reverse=True)[:width]
            for b in best:
                b.text = tokenizer.decode(b.tokens, skip_special_tokens=True)
            results.append(BeamSearchOutput(sequences=best))
        return results

    def get_tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(self._engine, self._tokenizer_dir)
        return self._tokenizer

    def get_default_sampling_params(self) -> SamplingParams:
        """The model's generation_config.json defaults (vLLM's behaviour when
        sampling_params is None)."""
        return SamplingParams._from_core(self._engine.model_info.default_sampling)

    @property
    def model_info(self) -> "_core.ModelInfo":
        """Architecture, backend, max_model_len, vocab_size, eos/bos ids, KV blocks."""
        return self._engine.model_info

    def stats(self) -> "_core.EngineStats":
        """Engine counters: running/waiting requests, KV usage, prefix-cache hits, tokens."""
        return self._engine.stats()

    def shutdown(self, timeout_s: float = 0.0) -> None:
        """Stops the engine and frees the model (also done when the LLM is garbage-collected)."""
        self._engine.shutdown(int(timeout_s * 1000))

    def __enter__(self) -> "LLM":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        if self._engine.is_shut_down:
            return "kite.LLM(shut down)"
        info = self._engine.model_info
        return (f"kite.LLM(model={info.served_model_name!r}, architecture={info.architecture!r}, "
                f"backend={info.backend!r}, max_model_len={info.max_model_len})")
