"""The KV cache against its formula: bytes = layers x 2 (K and V) x KV heads x head dim x bytes per element
x tokens (x batch). Grouped-query attention enters through the KV heads (SmolLM2-135M: 9 query heads share
3 KV heads, so the cache is 3x smaller than with multi-head attention).

`measured_cache_bytes` counts what a real transformers DynamicCache holds after a forward pass (the nbytes
of every layer's key and value tensors), on the loaded model itself; `cache_growth` does it as a prompt
grows, chunk by chunk into one cache. `crossover_tokens` is the context at which the cache outgrows the
weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from backends.inference.long_text import text_ids


@dataclass(frozen=True)
class KVShape:
    layers: int
    kv_heads: int
    head_dim: int
    query_heads: int

    @property
    def per_token_elements(self) -> int:
        """Cached numbers per token: 2 (K, V) x layers x KV heads x head dim."""
        return 2 * self.layers * self.kv_heads * self.head_dim


def kv_shape(config) -> KVShape:
    """The cache's dimensions from any transformers-like config (or a model_configs.ModelShape)."""
    if hasattr(config, "get_text_config"):
        config = config.get_text_config(decoder=True)
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return KVShape(config.num_hidden_layers, kv, head_dim, heads)


def kv_formula_bytes(config, tokens: int, dtype_bytes: float = 4, batch: int = 1) -> float:
    """layers x 2 x KV heads x head dim x bytes per element x tokens x batch."""
    return kv_shape(config).per_token_elements * dtype_bytes * tokens * batch


def cache_bytes(cache) -> int:
    """Bytes held by a transformers cache's key and value tensors (all layers)."""
    total = 0
    for layer in cache.layers:
        for tensor in (layer.keys, layer.values):
            if tensor is not None:
                total += tensor.nbytes
    return total


def element_bytes(model) -> int:
    return next(model.parameters()).element_size()


def measured_cache_bytes(loaded, tokens: int, text: str | None = None) -> int:
    """One forward pass of `tokens` tokens of the long text into a fresh DynamicCache; the bytes it holds."""
    from transformers import DynamicCache

    ids = text_ids(loaded.tokenizer, tokens, text, min_tokens=1)
    cache = DynamicCache(config=loaded.model.config)
    with torch.inference_mode():
        loaded.model(ids, past_key_values=cache, use_cache=True)
    return cache_bytes(cache)


def cache_growth(loaded, max_tokens: int = 1024, step: int = 64, text: str | None = None, on_step=None) -> list[dict]:
    """The prompt fed `step` tokens at a time into one DynamicCache; after each chunk, the tokens so far, the
    bytes measured and the formula's bytes. `on_step(rows)` is called after each chunk (for a live chart)."""
    from transformers import DynamicCache

    model = loaded.model
    ids = text_ids(loaded.tokenizer, max_tokens, text, min_tokens=1)
    cache = DynamicCache(config=model.config)
    nbytes = element_bytes(model)
    rows: list[dict] = []
    with torch.inference_mode():
        for start in range(0, ids.shape[1], step):
            model(ids[:, start : start + step], past_key_values=cache, use_cache=True)
            n = cache.get_seq_length()
            rows.append(
                {"tokens": n, "measured": cache_bytes(cache), "formula": kv_formula_bytes(model.config, n, nbytes)}
            )
            if on_step is not None:
                on_step(rows)
    return rows


def kv_formula_error(loaded, tokens: int = 256) -> float:
    """|measured - formula| / formula after a `tokens`-token forward pass (0.0 when the formula is exact)."""
    formula = kv_formula_bytes(loaded.model.config, tokens, element_bytes(loaded.model))
    return abs(measured_cache_bytes(loaded, tokens) - formula) / formula


def weights_bytes(params: int, dtype_bytes: float) -> float:
    return params * dtype_bytes


def crossover_tokens(config, params: int, weight_bytes: float, cache_bytes_per_element: float, batch: int = 1) -> int:
    """The smallest context (tokens per sequence) at which the cache's bytes reach the weights' bytes."""
    per_token = kv_formula_bytes(config, 1, cache_bytes_per_element, batch)
    return math.ceil(weights_bytes(params, weight_bytes) / per_token)


def loaded_weight_bytes(loaded) -> int:
    """Bytes of the loaded model's parameters as held in memory (tied embeddings counted once)."""
    seen, total = set(), 0
    for p in loaded.model.parameters():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.nbytes
    return total


def loaded_params(loaded) -> int:
    return sum(p.numel() for p in loaded.model.parameters())
