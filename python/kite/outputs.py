"""What LLM.generate and LLM.chat return (vLLM's RequestOutput / CompletionOutput shapes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Union


@dataclass
class Logprob:
    """The log-probability of one token (natural log), its rank among all tokens (1 = most
    likely) and its text."""

    logprob: float
    rank: Optional[int] = None
    decoded_token: Optional[str] = None


# One entry per token: {token id: Logprob}. The chosen token comes first, then the top-k.
SampleLogprobs = List[Dict[int, Logprob]]
# The same for the prompt; the first prompt token has no logprob (None).
PromptLogprobs = List[Optional[Dict[int, Logprob]]]


@dataclass
class CompletionOutput:
    """One output (choice) of a request.

    finish_reason is "stop" (EOS, a stop string or a stop token), "length" (max_tokens or the
    context) or "abort"; stop_reason is the stop string or stop token id that ended it (None
    for EOS and "length").
    """

    index: int
    text: str
    token_ids: List[int]
    cumulative_logprob: Optional[float]
    logprobs: Optional[SampleLogprobs]
    finish_reason: Optional[str] = None
    stop_reason: Union[int, str, None] = None

    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass
class RequestMetrics:
    """Timestamps in seconds of time.time(); None when the event did not happen."""

    arrival_time: Optional[float]
    first_scheduled_time: Optional[float]
    first_token_time: Optional[float]
    last_token_time: Optional[float]
    finished_time: Optional[float]
    num_prompt_tokens: int = 0
    num_generation_tokens: int = 0
    num_cached_tokens: int = 0
    num_preemptions: int = 0

    @property
    def time_to_first_token(self) -> Optional[float]:
        """Seconds from arrival to the first output token."""
        if self.arrival_time is None or self.first_token_time is None:
            return None
        return self.first_token_time - self.arrival_time


@dataclass
class RequestOutput:
    """The outputs of one prompt.

    prompt is the prompt text (None when the prompt was given as token ids),
    prompt_token_ids the tokens the model saw, outputs the n completions in index order.
    """

    request_id: str
    prompt: Optional[str]
    prompt_token_ids: List[int]
    prompt_logprobs: Optional[PromptLogprobs]
    outputs: List[CompletionOutput]
    finished: bool
    metrics: Optional[RequestMetrics] = None
    num_cached_tokens: Optional[int] = None


@dataclass
class PoolingParams:
    """Parameters of an embedding request (vLLM's PoolingParams).

    dimensions: keep the first `dimensions` values and normalise again (Matryoshka); only for
        models whose config.json sets is_matryoshka or matryoshka_dimensions. None: all.
    """

    dimensions: Optional[int] = None


@dataclass
class EmbeddingOutput:
    """One prompt's embedding: pooled final hidden states, L2-normalised."""

    embedding: List[float]

    @property
    def hidden_size(self) -> int:
        return len(self.embedding)


@dataclass
class EmbeddingRequestOutput:
    """What LLM.embed returns per prompt (vLLM's EmbeddingRequestOutput)."""

    request_id: str
    outputs: EmbeddingOutput
    prompt_token_ids: List[int]
    finished: bool
    prompt: Optional[str] = None
