"""The model's tokenizer and chat template, as the engine uses them (LLM.get_tokenizer()).

The methods follow Hugging Face's tokenizers (encode, decode, batch_decode, __call__,
apply_chat_template) so code written against AutoTokenizer keeps working; everything runs in
kite's C++ tokenizer, which matches Hugging Face token for token.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Union

from . import _core

Conversation = List[Dict[str, Any]]


def _is_conversation_batch(conversation: Any) -> bool:
    return (isinstance(conversation, (list, tuple)) and len(conversation) > 0
            and isinstance(conversation[0], (list, tuple)))


def render_chat(engine: "_core.Engine", conversation: Conversation, *,
                add_generation_prompt: bool, chat_template: Optional[str],
                tools: Optional[List[Dict[str, Any]]],
                template_kwargs: Optional[Dict[str, Any]]) -> str:
    """One conversation through the engine's chat template."""
    if not isinstance(conversation, (list, tuple)):
        raise TypeError(f"a conversation must be a list of messages, got {type(conversation)!r}")
    for i, message in enumerate(conversation):
        if not isinstance(message, dict):
            raise TypeError(f"message {i} must be a dict with 'role' and 'content', "
                            f"got {type(message)!r}")
    return engine.apply_chat_template(
        json.dumps(list(conversation), ensure_ascii=False),
        add_generation_prompt=add_generation_prompt,
        chat_template=chat_template,
        tools_json=json.dumps(tools, ensure_ascii=False) if tools else "",
        extra_kwargs_json=json.dumps(template_kwargs, ensure_ascii=False)
        if template_kwargs else "")


def _config_token(tokenizer_dir: Optional[str], key: str) -> Optional[str]:
    """tokenizer_config.json's `key` ("eos_token", ...) as text, if the directory has one."""
    if not tokenizer_dir:
        return None
    try:
        with open(os.path.join(tokenizer_dir, "tokenizer_config.json"), encoding="utf-8") as f:
            value = json.load(f).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


class Tokenizer:
    """Tokenizer of a loaded model (returned by LLM.get_tokenizer()).

    tokenizer_dir: where tokenizer_config.json may name the eos/bos tokens (Hugging Face's
    eos_token_id is that token, which can differ from the model's first EOS id).
    """

    def __init__(self, engine: "_core.Engine", tokenizer_dir: Optional[str] = None) -> None:
        self._engine = engine
        info = engine.model_info
        self._vocab_size = info.vocab_size
        self._eos_token_ids = list(info.eos_token_ids)
        self._has_chat_template = info.has_chat_template
        self._eos_token_id = self._special_id(tokenizer_dir, "eos_token")
        if self._eos_token_id is None and self._eos_token_ids:
            self._eos_token_id = self._eos_token_ids[0]
        self._bos_token_id = self._special_id(tokenizer_dir, "bos_token")
        if self._bos_token_id is None:
            self._bos_token_id = info.bos_token_id

    def _special_id(self, tokenizer_dir: Optional[str], key: str) -> Optional[int]:
        text = _config_token(tokenizer_dir, key)
        if text is None:
            return None
        try:
            ids = self._engine.tokenize(text, False)
        except (ValueError, RuntimeError):
            return None
        return ids[0] if len(ids) == 1 else None

    # ---- ids and text -----------------------------------------------------------------------

    def encode(self, text: str, add_special_tokens: bool = True, **kwargs: Any) -> List[int]:
        """Token ids of `text` (with BOS etc. as the tokenizer's config says, unless
        add_special_tokens=False)."""
        if kwargs:
            raise TypeError(f"unsupported arguments: {', '.join(sorted(kwargs))}")
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text)!r}")
        return list(self._engine.tokenize(text, add_special_tokens))

    def decode(self, token_ids: Union[int, Sequence[int]], skip_special_tokens: bool = False,
               **kwargs: Any) -> str:
        """Text of `token_ids` (Hugging Face's default keeps special tokens)."""
        if kwargs:
            raise TypeError(f"unsupported arguments: {', '.join(sorted(kwargs))}")
        ids = [token_ids] if isinstance(token_ids, int) else [int(t) for t in token_ids]
        return self._engine.detokenize(ids, skip_special_tokens)

    def batch_decode(self, sequences: Sequence[Sequence[int]], skip_special_tokens: bool = False,
                     **kwargs: Any) -> List[str]:
        return [self.decode(s, skip_special_tokens, **kwargs) for s in sequences]

    def __call__(self, text: Union[str, List[str]], add_special_tokens: bool = True,
                 **kwargs: Any) -> Dict[str, Any]:
        """{"input_ids": ids} (or a list of id lists for a list of texts)."""
        if isinstance(text, str):
            return {"input_ids": self.encode(text, add_special_tokens, **kwargs)}
        return {"input_ids": [self.encode(t, add_special_tokens, **kwargs) for t in text]}

    # ---- chat -------------------------------------------------------------------------------

    def apply_chat_template(
        self,
        conversation: Union[Conversation, List[Conversation]],
        tools: Optional[List[Dict[str, Any]]] = None,
        chat_template: Optional[str] = None,
        add_generation_prompt: bool = False,
        tokenize: bool = True,
        return_dict: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Renders a conversation (or a list of them) with the chat template.

        As in Hugging Face: tokenize=True returns token ids (the template's own special tokens,
        no extra BOS), tokenize=False the text; return_dict=True wraps ids in
        {"input_ids": ...}. Other keyword arguments become template variables.
        """
        for unsupported in ("return_tensors", "padding", "truncation", "max_length",
                            "continue_final_message", "documents"):
            if kwargs.get(unsupported):
                raise NotImplementedError(f"apply_chat_template: {unsupported} is not supported")
            kwargs.pop(unsupported, None)
        kwargs.pop("tokenizer_kwargs", None)
        if _is_conversation_batch(conversation):
            return [self.apply_chat_template(c, tools=tools, chat_template=chat_template,
                                             add_generation_prompt=add_generation_prompt,
                                             tokenize=tokenize, return_dict=return_dict,
                                             **kwargs)
                    for c in conversation]
        text = render_chat(self._engine, conversation,
                           add_generation_prompt=add_generation_prompt,
                           chat_template=chat_template, tools=tools, template_kwargs=kwargs)
        if not tokenize:
            return text
        ids = self.encode(text, add_special_tokens=False)
        return {"input_ids": ids} if return_dict else ids

    # ---- special tokens and sizes -----------------------------------------------------------

    @property
    def eos_token_id(self) -> Optional[int]:
        """The tokenizer's end-of-sequence token (tokenizer_config.json's eos_token, else the
        model's first EOS id); eos_token_ids lists every id that ends generation."""
        return self._eos_token_id

    @property
    def eos_token_ids(self) -> List[int]:
        return list(self._eos_token_ids)

    @property
    def bos_token_id(self) -> Optional[int]:
        return self._bos_token_id

    @property
    def eos_token(self) -> Optional[str]:
        eos = self.eos_token_id
        return None if eos is None else self.decode([eos])

    @property
    def bos_token(self) -> Optional[str]:
        bos = self._bos_token_id
        return None if bos is None else self.decode([bos])

    @property
    def pad_token_id(self) -> Optional[int]:
        return self.eos_token_id

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def __len__(self) -> int:
        return self._vocab_size

    @property
    def has_chat_template(self) -> bool:
        """Whether the model ships a chat template."""
        return self._has_chat_template

    def __repr__(self) -> str:
        return (f"kite.Tokenizer(vocab_size={self._vocab_size}, eos_token_ids="
                f"{self._eos_token_ids}, bos_token_id={self._bos_token_id})")
