"""The held-out text every variant is scored on (assets/texts/, see its NOTICE.md), and the prompts."""

from __future__ import annotations

from functools import lru_cache

import torch

from backends.core.paths import ASSETS

TEXT_FILE = ASSETS / "texts" / "areopagitica.txt"
TEXT_NAME = "Milton, Areopagitica (1644), public domain"
# The prompt whose greedy continuation every row shows, and the prompt decode speed is measured from.
PROMPT = "The invention of the printing press changed Europe because"


@lru_cache(maxsize=1)
def held_out_text() -> str:
    return TEXT_FILE.read_text(encoding="utf-8")


def token_slice(tokenizer, n_tokens: int, text: str | None = None) -> torch.Tensor:
    """The first `n_tokens` tokens of the text (the whole text when shorter), as a (1, n) tensor."""
    if n_tokens < 2:
        raise ValueError(f"the perplexity slice needs at least 2 tokens, got {n_tokens}.")
    body = held_out_text() if text is None else text
    if not body.strip():
        raise ValueError("the text to score is empty.")
    ids = tokenizer(body, add_special_tokens=False)["input_ids"][:n_tokens]
    if len(ids) < 2:
        raise ValueError(f"the text gives only {len(ids)} token(s); at least 2 are needed.")
    return torch.tensor([ids], dtype=torch.long)


def prompt_ids(tokenizer, prompt: str = PROMPT) -> torch.Tensor:
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"the prompt {prompt!r} gives no tokens.")
    return torch.tensor([ids], dtype=torch.long)
