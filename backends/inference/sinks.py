"""Sliding window vs attention sinks (StreamingLLM, Xiao et al. 2023) on a text longer than the window.

A rolling cache keeps at most `window` tokens: `window` drops the oldest; `sinks` keeps the first `n_sink`
tokens for good and rolls the other `window - n_sink` (the same cache budget). transformers 5 removed
SinkCache, so this is written here, and cheaply: a rolling cache that keeps each key at its original
position is exactly one forward pass with a 4D attention mask, a causal band of `window` tokens (sinks: of
`window - n_sink` tokens) plus the first `n_sink` columns (why: the note below).

Equivalence note. With a rolling cache, token i's key/value at layer l were computed when token i was
processed, from the keys/values the cache held *then* (its own window). In one masked pass, token i's
layer-l key/value come from its hidden state at layer l-1, which attended over the same window. So the
masked pass and the token-by-token rolling cache see identical inputs at every layer; positions stay the
original ones (RoPE on absolute positions, all within SmolLM2's 8,192 trained positions).
tests/backends/test_inference_cache.py checks this against a true token-by-token rolling DynamicCache.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch

from backends.inference.long_text import text_ids


def band_mask(n: int, window: int, n_sink: int = 0) -> torch.Tensor:
    """(1, 1, n, n) bool mask: query i sees keys j <= i with i - j < window - n_sink, plus j < n_sink."""
    if window < 1 or n_sink < 0 or n_sink >= window:
        raise ValueError(f"need 0 <= sinks < window, got window={window}, sinks={n_sink}.")
    i = torch.arange(n).unsqueeze(1)
    j = torch.arange(n).unsqueeze(0)
    causal = j <= i
    recent = (i - j) < (window - n_sink)
    sink = j < n_sink
    return (causal & (recent | sink)).view(1, 1, n, n)


def token_losses(model, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Next-token cross-entropy at positions 1..n-1 (nats), one forward pass; `mask` a (1,1,n,n) bool mask."""
    with torch.inference_mode():
        if mask is None:
            logits = model(ids).logits
        else:
            positions = torch.arange(ids.shape[1]).unsqueeze(0)
            logits = model(ids, attention_mask=mask, position_ids=positions).logits
    return torch.nn.functional.cross_entropy(logits[0, :-1].float(), ids[0, 1:], reduction="none")


def window_sinks_ppl(
    loaded, text: str | None = None, window: int = 256, sinks: int = 4, n_tokens=None, turn=nullcontext
) -> dict:
    """Perplexity of the text with full attention, a `window`-token rolling cache, and `sinks` sink tokens +
    a rolling `window - sinks`. Also each variant's per-token losses (for the chart) and the number of
    tokens scored. Three forward passes over the text, each inside `turn()`."""
    ids = text_ids(loaded.tokenizer, n_tokens, text)
    n = ids.shape[1]
    masks = {"full": None, "window": band_mask(n, window, 0), "sinks": band_mask(n, window, sinks)}
    losses = {}
    for key, mask in masks.items():
        with turn():
            losses[key] = token_losses(loaded.model, ids, mask)
    out = {k: math.exp(v.mean().item()) for k, v in losses.items()}
    # past the window only: where the variants differ at all
    past = slice(window, None)
    out.update({f"{k}_past_window": math.exp(v[past].mean().item()) for k, v in losses.items()})
    out.update(losses={k: v.tolist() for k, v in losses.items()}, n_tokens=n, window=window, sinks=sinks)
    return out
