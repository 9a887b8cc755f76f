"""Beam search in vLLM's shape (vllm.beam_search): `LLM.beam_search(prompts, BeamSearchParams)`.

The algorithm is vLLM's: every step runs each live beam as a one-token request at the beams'
temperature with `logprobs = 2 * beam_width`, extends it by each of those tokens
(cum_logprob += the token's log-probability), moves extensions ending in EOS to the finished
list (unless ignore_eos) and keeps the `beam_width` most likely of the rest. At the end the live
beams join the finished ones, which are ranked by `cum_logprob / len(tokens) ** length_penalty`
(tokens include the prompt; a final EOS is not counted) and the best `beam_width` returned.
Beams share their prompt's (and common prefix's) KV blocks through the prefix cache, so the
LLM should run with enable_prefix_caching (the default). Deterministic: at temperature 0 the
log-probabilities are the model's, and ties keep the engine's order (stable sorts).
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .outputs import Logprob

MAX_BEAM_WIDTH = 64  # 2 * beam_width log-probabilities per step must stay within max_logprobs


@dataclass
class BeamSearchParams:
    beam_width: int
    max_tokens: int
    ignore_eos: bool = False
    temperature: float = 0.0
    length_penalty: float = 1.0
    include_stop_str_in_output: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.beam_width, int) or not 1 <= self.beam_width <= MAX_BEAM_WIDTH // 2:
            raise ValueError(f"beam_width must be an integer in [1, {MAX_BEAM_WIDTH // 2}], got "
                             f"{self.beam_width!r}")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {self.max_tokens!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")


@dataclass
class BeamSearchSequence:
    """One beam: the prompt's tokens and the generated ones."""
    tokens: List[int]
    logprobs: List[Dict[int, Logprob]] = field(default_factory=list)
    cum_logprob: float = 0.0
    text: Optional[str] = None
    finish_reason: Optional[str] = None
    stop_reason: Optional[int] = None


@dataclass
class BeamSearchOutput:
    sequences: List[BeamSearchSequence]


def get_beam_search_score(tokens: List[int], cumulative_logprob: float,
                          eos_token_id: Optional[int], length_penalty: float = 1.0) -> float:
    """vLLM's ranking of finished beams (length includes the prompt; a final EOS is not counted)."""
    seq_len = len(tokens)
    if eos_token_id is not None and tokens and tokens[-1] == eos_token_id:
        seq_len -= 1
    return cumulative_logprob / (seq_len ** length_penalty)
