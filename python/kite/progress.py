"""The "Processed prompts" progress bar of LLM.generate: tqdm when it is installed, else a
small built-in bar on stderr (kite has no hard dependency on tqdm)."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional, Union

UseTqdm = Union[bool, Callable[..., Any]]


class _TextBar:
    """A minimal tqdm look-alike: total, update(n), set_postfix_str(s), close()."""

    def __init__(self, total: int, desc: str, stream=None, min_interval: float = 0.1) -> None:
        self.total = total
        self.n = 0
        self.desc = desc
        self.postfix = ""
        self._stream = stream if stream is not None else sys.stderr
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._min_interval = min_interval
        self._closed = False
        self._draw(force=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        self._draw(force=self.n >= self.total)

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        self.postfix = s

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self._min_interval:
            return
        self._last_draw = now
        width = 20
        filled = width * self.n // self.total if self.total else width
        elapsed = now - self._start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        line = (f"{self.desc}: {100 * self.n // max(self.total, 1):3d}%|"
                f"{'#' * filled}{' ' * (width - filled)}| {self.n}/{self.total} "
                f"[{elapsed:.1f}s, {rate:.2f}it/s" + (f", {self.postfix}" if self.postfix else "")
                + "]")
        self._stream.write("\r" + line)
        self._stream.flush()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._draw(force=True)
            self._stream.write("\n")
            self._stream.flush()


def _tqdm_class() -> Optional[Callable[..., Any]]:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class ProgressBar:
    """Counts finished requests and shows token speeds like vLLM's bar.

    use_tqdm: True (tqdm if importable, else the built-in bar), False (nothing), or a callable
    with tqdm's signature that makes the bar.
    """

    def __init__(self, total: int, use_tqdm: UseTqdm) -> None:
        self._bar = None
        self._start = time.monotonic()
        if not use_tqdm or total == 0:
            return
        make = use_tqdm if callable(use_tqdm) else (_tqdm_class() or _TextBar)
        postfix = "est. speed input: 0.00 toks/s, output: 0.00 toks/s"
        if make is _TextBar:
            self._bar = _TextBar(total=total, desc="Processed prompts")
            self._bar.set_postfix_str(postfix)
        else:
            self._bar = make(total=total, desc="Processed prompts", dynamic_ncols=True,
                             postfix=postfix)

    def update(self, finished: int, prompt_tokens: int, output_tokens: int) -> None:
        if self._bar is None or finished == 0:
            return
        elapsed = max(time.monotonic() - self._start, 1e-9)
        self._bar.set_postfix_str(
            f"est. speed input: {prompt_tokens / elapsed:.2f} toks/s, "
            f"output: {output_tokens / elapsed:.2f} toks/s", refresh=False)
        self._bar.update(finished)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
