"""The long English text the memory tab measures on: assets/corpus/english.txt (see its README.md),
about 1,500 SmolLM2 tokens, so a run past a 256-token window stays inside the 8,192 trained positions."""

from __future__ import annotations

from functools import lru_cache

import torch

from backends.core.paths import ASSETS

LONG_TEXT_FILE = ASSETS / "corpus" / "english.txt"


@lru_cache(maxsize=1)
def long_text() -> str:
    return LONG_TEXT_FILE.read_text(encoding="utf-8")


def text_ids(tokenizer, n_tokens: int | None = None, text: str | None = None, min_tokens: int = 2) -> torch.Tensor:
    """The first `n_tokens` tokens of the text (all of it when None), as a (1, n) tensor. A shorter text is
    repeated (with a blank line between copies) until it is long enough (perplexity needs `min_tokens` = 2)."""
    body = long_text() if text is None else text
    if not body.strip():
        raise ValueError("the text is empty.")
    ids = tokenizer(body, add_special_tokens=False)["input_ids"]
    if n_tokens is not None:
        gap = tokenizer("\n\n", add_special_tokens=False)["input_ids"]
        while len(ids) < n_tokens:
            ids = ids + gap + ids
        ids = ids[:n_tokens]
    if len(ids) < min_tokens:
        raise ValueError(f"the text gives only {len(ids)} token(s); at least {min_tokens} are needed.")
    return torch.tensor([ids], dtype=torch.long)
