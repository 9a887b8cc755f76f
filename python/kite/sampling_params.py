"""SamplingParams: how one prompt is decoded (vLLM's offline API, same names and defaults).

Values are checked by the HTTP server's own request parser and then ``SamplingParams::validate``
(both C++, through kite._core.parse_sampling_params), so a bad value raises ``ValueError`` (a
wrong type ``TypeError``) with exactly the message ``kite serve`` answers the same value with.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
from dataclasses import dataclass, fields as dataclass_fields
from typing import Any, Dict, List, Optional, Union

from . import _core

# Larger than any context: "generate until the context is full" (vLLM's max_tokens=None).
_UNLIMITED_TOKENS = 1 << 62

# Also the /v1/completions sampling fields they are checked as, under the same names.
_FIELDS = (
    "n", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty",
    "frequency_penalty", "seed", "stop", "stop_token_ids", "ignore_eos", "max_tokens",
    "min_tokens", "logprobs", "prompt_logprobs", "skip_special_tokens",
    "spaces_between_special_tokens", "include_stop_str_in_output", "logit_bias",
)


def _json_value(name: str, value: Any) -> Any:
    """`value` as JSON data for the server's parser, which judges it (types included).

    Python numbers of any kind (numpy's too) become JSON numbers; values JSON cannot hold are
    refused here with messages in the server's form."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"'{name}' must be a finite number, got {x}")
        return x
    if isinstance(value, dict):
        return {str(_json_value(name, k)): _json_value(name, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(f"{name}[{i}]", v) for i, v in enumerate(value)]
    raise TypeError(f"'{name}' must be a JSON-like value (number, string, boolean, list or "
                    f"dict), got {type(value).__name__}")


@dataclass
class StructuredOutputsParams:
    """A constraint on the output (vLLM's ``StructuredOutputsParams``): set exactly one of
    ``json`` (a JSON schema: dict, JSON string, or a pydantic model class), ``regex``,
    ``choice`` (list of strings), ``grammar`` (EBNF) or ``json_object=True``. The engine compiles
    it with xgrammar and masks every token that would leave it."""

    json: Optional[Union[str, Dict[str, Any], type]] = None
    regex: Optional[str] = None
    choice: Optional[List[str]] = None
    grammar: Optional[str] = None
    json_object: Optional[bool] = None
    disable_any_whitespace: bool = False
    disable_fallback: bool = False
    disable_additional_properties: bool = False
    whitespace_pattern: Optional[str] = None
    structural_tag: Optional[str] = None

    def _as_fields(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for f in dataclass_fields(self):
            v = getattr(self, f.name)
            if v is None or v is False:
                continue
            if f.name == "json" and isinstance(v, type) and hasattr(v, "model_json_schema"):
                v = v.model_json_schema()  # a pydantic model class
            out[f.name] = v
        return out


@dataclass
class GuidedDecodingParams(StructuredOutputsParams):
    """vLLM's older name for the same constraint (``SamplingParams(guided_decoding=...)``);
    ``backend`` may be None, "auto" or "xgrammar"."""

    backend: Optional[str] = None

    def _as_fields(self) -> Dict[str, Any]:
        out = super()._as_fields()
        backend = out.pop("backend", None)
        if backend not in (None, "auto", "xgrammar"):
            raise ValueError(f"guided_decoding backend must be 'xgrammar' or 'auto', got "
                             f"{backend!r}")
        return out


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
        structured_outputs: a StructuredOutputsParams constraint (JSON schema, regex, choice,
            grammar); guided_decoding: the same as vLLM's older GuidedDecodingParams.
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
        structured_outputs: Optional[StructuredOutputsParams] = None,
        guided_decoding: Optional[StructuredOutputsParams] = None,
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
        # (Other types are kept as they are, for the check below to name.)
        self.stop = ([] if stop is None else [stop] if isinstance(stop, str)
                     else list(stop) if isinstance(stop, (list, tuple)) else stop)
        self.stop_token_ids = ([] if stop_token_ids is None else list(stop_token_ids)
                               if isinstance(stop_token_ids, (list, tuple)) else stop_token_ids)
        self.ignore_eos = ignore_eos
        self.max_tokens = max_tokens
        self.min_tokens = min_tokens
        self.logprobs = logprobs
        self.prompt_logprobs = prompt_logprobs
        self.skip_special_tokens = skip_special_tokens
        self.spaces_between_special_tokens = spaces_between_special_tokens
        self.include_stop_str_in_output = include_stop_str_in_output
        self.logit_bias = logit_bias
        if structured_outputs is not None and guided_decoding is not None:
            raise ValueError("give either structured_outputs or guided_decoding, not both")
        for name, v in (("structured_outputs", structured_outputs),
                        ("guided_decoding", guided_decoding)):
            if v is not None and not isinstance(v, StructuredOutputsParams):
                raise TypeError(f"'{name}' must be a StructuredOutputsParams or "
                                f"GuidedDecodingParams, got {type(v).__name__}")
        self.structured_outputs = structured_outputs if structured_outputs is not None \
            else guided_decoding
        self.guided_decoding = self.structured_outputs
        self._to_core(stop=stop)

    # ---- conversion -------------------------------------------------------------------------

    def _to_core(self, vocab_size: int = 0, **given: Any) -> "_core.SamplingParams":
        """The C++ struct for these values, checked as the server checks a request's (token ids
        against `vocab_size` when it is known). `given` overrides fields with the values as
        the caller wrote them (stop="" is reported as the server reports it, not as [""])."""
        fields = {f: _json_value(f, given.get(f, getattr(self, f))) for f in _FIELDS}
        if self.structured_outputs is not None:
            fields["structured_outputs"] = _json_value("structured_outputs",
                                                       self.structured_outputs._as_fields())
        defaults = _core.SamplingParams()
        if fields["max_tokens"] is None:  # absent for the parser: the default is "unlimited"
            defaults.max_tokens = _UNLIMITED_TOKENS
        return _core.parse_sampling_params(json.dumps(fields), vocab_size, defaults)

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
        if self.temperature < 1e-5:
            return "greedy"
        return "random" if self.seed is None else "random_seed"

    def clone(self) -> "SamplingParams":
        return copy.deepcopy(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SamplingParams):
            return NotImplemented
        return (all(getattr(self, f) == getattr(other, f) for f in _FIELDS)
                and self.structured_outputs == other.structured_outputs)

    def __repr__(self) -> str:
        return "SamplingParams(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in _FIELDS) + ")"
