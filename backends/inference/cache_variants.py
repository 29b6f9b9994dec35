"""Dynamic vs static KV cache on the loaded model: the same greedy decode with transformers' DynamicCache
(grows by concatenation every token) and StaticCache (allocated once for prompt + new tokens, written in
place; built for torch.compile and CUDA graphs, neither of which is used here, so on this CPU it mostly
shows the price of attending over the whole preallocated length with a mask).

Both loops are plain greedy (argmax) decoding; tests/backends/test_inference_cache.py holds their tokens
equal to model.generate's. Per-token times are wall-clock on a shared CPU: compare them within one run.
"""

from __future__ import annotations

import statistics
import time
from contextlib import nullcontext

import torch

from backends.inference.kv_memory import cache_bytes, kv_formula_bytes
from backends.inference.long_text import text_ids

PROMPT_TOKENS = 128
NEW_TOKENS = 32


def make_cache(kind: str, config, max_len: int):
    from transformers import DynamicCache, StaticCache

    if kind == "dynamic":
        return DynamicCache(config=config)
    if kind == "static":
        return StaticCache(config=config, max_cache_len=max_len)
    raise ValueError(f"unknown cache kind {kind!r}: dynamic or static.")


def greedy_decode(model, ids: torch.Tensor, new_tokens: int, kind: str = "dynamic") -> dict:
    """Prefill `ids`, then `new_tokens` greedy steps through a `kind` cache. Returns the new token ids, each
    decode step's milliseconds, the prefill's, and the cache's bytes at the end."""
    cache = make_cache(kind, model.config, ids.shape[1] + new_tokens)
    tokens, step_ms = [], []
    with torch.inference_mode():
        start = time.perf_counter()
        logits = model(ids, past_key_values=cache, use_cache=True).logits
        prefill_ms = (time.perf_counter() - start) * 1000
        for i in range(new_tokens):
            nxt = logits[:, -1:].argmax(-1)
            tokens.append(int(nxt))
            if i == new_tokens - 1:
                break
            start = time.perf_counter()
            logits = model(nxt, past_key_values=cache, use_cache=True).logits
            step_ms.append((time.perf_counter() - start) * 1000)
    return {"tokens": tokens, "step_ms": step_ms, "prefill_ms": prefill_ms, "cache_bytes": cache_bytes(cache)}


def dynamic_vs_static(
    loaded, prompt_tokens: int = PROMPT_TOKENS, new_tokens: int = NEW_TOKENS, text=None, turn=nullcontext
) -> dict:
    """Both caches on the same prompt (the long text's first `prompt_tokens` tokens). For each: the greedy
    tokens, median ms per decode step, prefill ms, bytes held at the end (static: its whole preallocation),
    and the formula's bytes for the tokens actually in the cache."""
    model = loaded.model
    ids = text_ids(loaded.tokenizer, prompt_tokens, text)
    used = ids.shape[1] + new_tokens - 1  # the last token is chosen, never fed back
    nbytes = next(model.parameters()).element_size()
    rows = {}
    for kind in ("dynamic", "static"):
        with turn():
            run = greedy_decode(model, ids, new_tokens, kind)
        run["ms_per_token"] = statistics.median(run["step_ms"]) if run["step_ms"] else float("nan")
        run["formula_bytes"] = kv_formula_bytes(model.config, used, nbytes)
        run["text"] = loaded.tokenizer.decode(run["tokens"])
        rows[kind] = run
    rows["same_tokens"] = rows["dynamic"]["tokens"] == rows["static"]["tokens"]
    rows["prompt_tokens"], rows["new_tokens"] = ids.shape[1], new_tokens
    return rows
