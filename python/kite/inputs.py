"""Prompt forms LLM.generate accepts (vLLM's): a string, a list of token ids, a dict
{"prompt": str} or {"prompt_token_ids": [...]}, or a list of any of these."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Union

PromptType = Union[str, Sequence[int], dict]


@dataclass
class Prompt:
    """One normalised prompt: text (tokenized by the engine) or token ids."""

    text: Optional[str] = None
    token_ids: Optional[List[int]] = None
    add_special_tokens: bool = True


def _token_ids(value: Any, where: str) -> List[int]:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{where} must be a list of token ids, got {type(value)!r}")
    ids = []
    for t in value:
        if isinstance(t, bool):
            raise TypeError(f"{where} must hold integers, got {t!r}")
        try:
            ids.append(operator.index(t))
        except TypeError:
            raise TypeError(f"{where} must hold integers, got {t!r}") from None
    return ids


def _one(p: Any, where: str) -> Prompt:
    if isinstance(p, str):
        return Prompt(text=p)
    if isinstance(p, dict):
        if "prompt_token_ids" in p:
            text = p.get("prompt")
            return Prompt(text=text if isinstance(text, str) else None,
                          token_ids=_token_ids(p["prompt_token_ids"],
                                               f"{where}['prompt_token_ids']"))
        if "prompt" in p:
            if not isinstance(p["prompt"], str):
                raise TypeError(f"{where}['prompt'] must be a string, got {type(p['prompt'])!r}")
            return Prompt(text=p["prompt"])
        raise TypeError(f"{where} must have a 'prompt' or 'prompt_token_ids' key, "
                        f"got keys {sorted(p)}")
    if _is_int_sequence(p):
        return Prompt(token_ids=_token_ids(p, where))
    raise TypeError(f"{where} must be a string, a list of token ids or a dict with 'prompt' or "
                    f"'prompt_token_ids', got {type(p)!r}")


def _is_int(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    try:
        operator.index(x)
        return True
    except TypeError:
        return False


def _is_int_sequence(p: Any) -> bool:
    if isinstance(p, (str, bytes, dict)):
        return False
    try:
        items = list(p)
    except TypeError:
        return False
    return len(items) > 0 and all(_is_int(x) for x in items)


def parse_prompts(prompts: Any) -> List[Prompt]:
    """Normalises `prompts` (one prompt or a batch) into a list."""
    if isinstance(prompts, (str, dict)):
        return [_one(prompts, "prompt")]
    if _is_int_sequence(prompts):  # one prompt as token ids
        return [_one(prompts, "prompt")]
    try:
        items = list(prompts)
    except TypeError:
        raise TypeError(f"prompts must be a string, token ids, a dict or a list of them, "
                        f"got {type(prompts)!r}") from None
    return [_one(p, f"prompts[{i}]") for i, p in enumerate(items)]
