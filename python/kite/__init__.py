"""kite: offline batch inference on the kite engine, with vLLM's API.

    from kite import LLM, SamplingParams
    llm = LLM(model="path/to/model")
    outputs = llm.generate(["Hello, my name is"], SamplingParams(temperature=0.8, max_tokens=32))
    print(outputs[0].outputs[0].text)
"""

from ._core import EngineError, version_string
from .beam_search import BeamSearchOutput, BeamSearchParams, BeamSearchSequence
from .llm import LLM
from .outputs import (CompletionOutput, EmbeddingOutput, EmbeddingRequestOutput, Logprob,
                      PoolingParams, RequestMetrics, RequestOutput)
from .sampling_params import GuidedDecodingParams, SamplingParams, StructuredOutputsParams
from .tokenizer import Tokenizer

__version__ = version_string().split()[1]

__all__ = [
    "LLM",
    "SamplingParams",
    "BeamSearchParams",
    "BeamSearchOutput",
    "BeamSearchSequence",
    "StructuredOutputsParams",
    "GuidedDecodingParams",
    "RequestOutput",
    "PoolingParams",
    "EmbeddingOutput",
    "EmbeddingRequestOutput",
    "CompletionOutput",
    "Logprob",
    "RequestMetrics",
    "Tokenizer",
    "EngineError",
    "__version__",
]
