"""SamplingParams: how one prompt is decoded (vLLM's offline API, same names and defaults).

Values are checked by the engine's own validator (C++ ``SamplingParams::validate``, the one the
HTTP server uses), so a bad value raises ``ValueError`` with the same message everywhere.
"""

from __future__ import annotations

import copy
import operator
from typing import Any, Dict, List, Optional, Union

from . import _core

# Larger than any context: "generate until the context is full" (vLLM's max_tokens=None).
_UNLIMITED_TOKENS = 1 << 62

_FIELDS = (
    "n", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty",
    "frequency_penalty", "seed", "stop", "stop_token_ids", "ignore_eos", "max_tokens",
    "min_tokens", "logprobs", "prompt_logprobs", "skip_special_tokens",
    "spaces_between_special_tokens", "include_stop_str_in_output", "logit_bias",
)


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None


def _optional_int(name: str, value: Any) -> Optional[int]:
    return None if value is None else _int(name, value)


def _float(name: str, value: Any) -> float:
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


class SamplingParams:
    """Sampling parameters for text generation (vLLM's ``SamplingParams``).

    Args:
        n: number of outputs (choices) per prompt.
        temperature: randomness; 0 means greedy.
        top_p: nucleus sampling mass, in (0, 1].
        top_k: keep only the k most likely tokens; 0 or -1 disables it.
        min_p: drop tokens less likely than min_p times the most likely one, in [0, 1].
        repetition_penalty: > 0; > 1 discourages tokens already in the prompt or output.
        presence_penalty / frequency_penalty: in [-2, 2], on tokens already generated.
        seed: per-request random seed; outputs are reproducible whatever else runs.
        stop: string(s) that end an output (not included unless include_stop_str_in_output).
        stop_token_ids: token ids that end an output (besides EOS); they are included.
        ignore_eos: keep generating after EOS.
        max_tokens: most tokens per output; None = until the context is full.
        min_tokens: EOS and stop_token_ids are banned until this many tokens.
        logprobs: number of top log-probabilities to return per output token (0 = only the
            chosen token's); None = none.
        prompt_logprobs: the same for prompt tokens.
        skip_special_tokens: drop special tokens from the output text.
        spaces_between_special_tokens: put spaces between special tokens in the text.
        include_stop_str_in_output: keep the matched stop string in the text.
        logit_bias: {token id: bias in [-100, 100]} added to the logits.
    """

    def __init__(
        self,
        *,
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        min_p: float = 0.0,
        repetition_penalty: float = 1.0,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        seed: Optional[int] = None,
        stop: Optional[Union[str, List[str]]] = None,
        stop_token_ids: Optional[List[int]] = None,
        ignore_eos: bool = False,
        max_tokens: Optional[int] = 16,
        min_tokens: int = 0,
        logprobs: Optional[int] = None,
        prompt_logprobs: Optional[int] = None,
        skip_special_tokens: bool = True,
        spaces_between_special_tokens: bool = True,
        include_stop_str_in_output: bool = False,
        logit_bias: Optional[Dict[int, float]] = None,
    ) -> None:
        self.n = n
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.min_p = min_p
        self.repetition_penalty = repetition_penalty
        self.presence_penalty = presence_penalty
        self.frequency_penalty = frequency_penalty
        self.seed = seed
        # As vLLM: stop and stop_token_ids are lists from here on.
        self.stop = [stop] if isinstance(stop, str) else list(stop) if stop is not None else []
        self.stop_token_ids = list(stop_token_ids) if stop_token_ids is not None else []
        self.ignore_eos = ignore_eos
        self.max_tokens = max_tokens
        self.min_tokens = min_tokens
        self.logprobs = logprobs
        self.prompt_logprobs = prompt_logprobs
        self.skip_special_tokens = skip_special_tokens
        self.spaces_between_special_tokens = spaces_between_special_tokens
        self.include_stop_str_in_output = include_stop_str_in_output
        self.logit_bias = logit_bias
        self._to_core().validate(0)

    # ---- conversion -------------------------------------------------------------------------

    def _to_core(self) -> "_core.SamplingParams":
        """The C++ struct for these values (types checked here, ranges by the engine)."""
        p = _core.SamplingParams()
        p.n = _int("n", self.n)
        p.temperature = _float("temperature", self.temperature)
        p.top_p = _float("top_p", self.top_p)
        p.top_k = _int("top_k", self.top_k)
        p.min_p = _float("min_p", self.min_p)
        p.repetition_penalty = _float("repetition_penalty", self.repetition_penalty)
        p.presence_penalty = _float("presence_penalty", self.presence_penalty)
        p.frequency_penalty = _float("frequency_penalty", self.frequency_penalty)
        if self.seed is not None:
            seed = _int("seed", self.seed)
            if seed < 0 or seed >= 1 << 64:
                raise ValueError(f"seed must be in [0, 2**64), got {seed}")
            p.seed = seed
        stop = self.stop
        if stop is None:
            stop = []
        elif isinstance(stop, str):
            stop = [stop]
        elif not all(isinstance(s, str) for s in stop):
            raise TypeError(f"stop must be a string or a list of strings, got {stop!r}")
        p.stop = list(stop)
        p.stop_token_ids = [_int("stop_token_ids", t) for t in (self.stop_token_ids or [])]
        p.ignore_eos = _bool("ignore_eos", self.ignore_eos)
        max_tokens = self.max_tokens
        p.max_tokens = _UNLIMITED_TOKENS if max_tokens is None else _int("max_tokens", max_tokens)
        p.min_tokens = _int("min_tokens", self.min_tokens)
        p.logprobs = _optional_int("logprobs", self.logprobs)
        p.prompt_logprobs = _optional_int("prompt_logprobs", self.prompt_logprobs)
        p.skip_special_tokens = _bool("skip_special_tokens", self.skip_special_tokens)
        p.spaces_between_special_tokens = _bool(
            "spaces_between_special_tokens", self.spaces_between_special_tokens)
        p.include_stop_str_in_output = _bool(
            "include_stop_str_in_output", self.include_stop_str_in_output)
        bias = self.logit_bias or {}
        if not isinstance(bias, dict):
            raise TypeError(f"logit_bias must be a dict of token id to bias, got {bias!r}")
        p.logit_bias = [(_int("logit_bias", t), _float("logit_bias", b)) for t, b in bias.items()]
        return p

    @classmethod
    def _from_core(cls, p: "_core.SamplingParams") -> "SamplingParams":
        return cls(
            n=p.n, temperature=p.temperature, top_p=p.top_p, top_k=p.top_k, min_p=p.min_p,
            repetition_penalty=p.repetition_penalty, presence_penalty=p.presence_penalty,
            frequency_penalty=p.frequency_penalty, seed=p.seed, stop=list(p.stop),
            stop_token_ids=list(p.stop_token_ids), ignore_eos=p.ignore_eos,
            max_tokens=None if p.max_tokens >= _UNLIMITED_TOKENS else p.max_tokens,
            min_tokens=p.min_tokens, logprobs=p.logprobs, prompt_logprobs=p.prompt_logprobs,
            skip_special_tokens=p.skip_special_tokens,
            spaces_between_special_tokens=p.spaces_between_special_tokens,
            include_stop_str_in_output=p.include_stop_str_in_output,
            logit_bias=dict(p.logit_bias) or None)

    # ---- conveniences (as vLLM's) -----------------------------------------------------------

    @property
    def sampling_type(self) -> str:
        """"greedy", "random_seed" or "random"."""
        if _float("temperature", self.temperature) < 1e-5:
            return "greedy"
        return "random" if self.seed is None else "random_seed"

    def clone(self) -> "SamplingParams":
        return copy.deepcopy(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SamplingParams):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _FIELDS)

    def __repr__(self) -> str:
        return "SamplingParams(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in _FIELDS) + ")"
