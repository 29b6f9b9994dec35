"""A quantized KV cache: transformers' HQQ cache layer (`HQQQuantizedLayer`, the `hqq` package, Apache-2.0,
runs on CPU), appended to instead of re-quantized.

Design (transformers', after KIVI): the newest tokens stay in full precision in a residual of at most
`residual_length` tokens; when it fills, it is quantized. We quantize per token: axis 1 with a group of one
head's `head_dim` numbers (64 for SmolLM2), so every (layer, K or V, KV head, token) gets its own asymmetric
int8/int4 grid with a float32 scale and zero point; HQQ also refines each group's zero point
(half-quadratic optimisation) rather than plain min/max. Bytes per group: head_dim x bits / 8 + 2 x 4,
against head_dim x 4 in float32: int8 is 3.56x smaller than float32, int4 6.4x (the scale and zero cost
1 bit a number at head_dim 64).

The one change to transformers' `QuantizedCache`: it dequantizes the whole cache and quantizes it all again
each time the residual fills (its groups may span tokens). With per-token groups that only re-rounds tokens
already quantized and costs time growing with the square of the text, so `AppendQuantizedLayer` quantizes
each full residual alone and keeps the quantized pieces in a list; every token is quantized exactly once.

Perplexity is scored by decoding the text through the cache `chunk` tokens at a time (chunk =
residual_length): each chunk's queries see every earlier chunk dequantized from the cache and their own chunk
in full precision, as a decoding model sees its residual. The float32 reference goes through a DynamicCache
the same way.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
from transformers.cache_utils import Cache, HQQQuantizedLayer

from backends.inference.kv_memory import cache_bytes, kv_formula_bytes, kv_shape
from backends.inference.long_text import text_ids

CHUNK = 64


class AppendQuantizedLayer(HQQQuantizedLayer):
    """transformers' HQQ layer whose full residual is quantized alone and appended (see the module docstring)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pieces: list[tuple] = []  # (quantized keys, quantized values), oldest first

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        self.cumulative_length += key_states.shape[-2]
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.pieces.append(self.quantize_pair(key_states, value_states))
            return key_states, value_states
        old_keys = [self._dequantize(k) for k, _ in self.pieces]
        old_values = [self._dequantize(v) for _, v in self.pieces]
        keys = torch.cat([*old_keys, self.keys, key_states], dim=-2)
        values = torch.cat([*old_values, self.values, value_states], dim=-2)
        residual = self.keys.shape[-2] if self.keys.dim() == 4 else 0
        if residual + key_states.shape[-2] >= self.residual_length:
            fresh_keys = torch.cat([self.keys, key_states], dim=-2) if residual else key_states
            fresh_values = torch.cat([self.values, value_states], dim=-2) if residual else value_states
            self.pieces.append(self.quantize_pair(fresh_keys, fresh_values))
            self.keys = torch.tensor([], dtype=key_states.dtype, device=key_states.device)
            self.values = torch.tensor([], dtype=key_states.dtype, device=key_states.device)
        else:
            self.keys = torch.cat([self.keys, key_states], dim=-2)
            self.values = torch.cat([self.values, value_states], dim=-2)
        return keys, values

    def quantize_pair(self, keys: torch.Tensor, values: torch.Tensor) -> tuple:
        return self._quantize(keys.contiguous(), axis=self.axis_key), self._quantize(
            values.contiguous(), self.axis_value
        )


def quantized_cache(config, bits: int, residual_length: int = CHUNK) -> Cache:
    """A cache of `AppendQuantizedLayer`s, per-token groups of head_dim numbers, int`bits`."""
    shape = kv_shape(config)
    kwargs = {"nbits": bits, "axis_key": 1, "axis_value": 1, "q_group_size": shape.head_dim}
    return Cache(layers=[AppendQuantizedLayer(residual_length=residual_length, **kwargs) for _ in range(shape.layers)])


def quantized_bytes(cache) -> int:
    """Bytes a quantized cache holds: packed integers, scales and zero points, plus the float residual."""
    total = cache_bytes(cache)  # the full-precision residual (keys/values)
    for layer in cache.layers:
        for pair in layer.pieces:
            for q, meta in pair:
                total += q.nbytes + meta["scale"].nbytes + meta["zero"].nbytes
    return total


def expected_ratio(bits: int, head_dim: int, dtype_bytes: int = 4) -> float:
    """Quantized bytes / full-precision bytes with one float32 scale and zero point per head_dim group."""
    return (head_dim * bits / 8 + 2 * 4) / (head_dim * dtype_bytes)


def chunked_losses(
    model, ids: torch.Tensor, cache, chunk: int, on_chunk=None, should_stop=None, turn=nullcontext
) -> torch.Tensor:
    """Next-token losses (nats) for positions 1..n-1, feeding `ids` through `cache` `chunk` tokens at a time
    (each chunk inside `turn()`, e.g. a compute-queue turn)."""
    n = ids.shape[1]
    losses = []
    with torch.inference_mode():
        for start in range(0, n - 1, chunk):
            piece = ids[:, start : min(start + chunk, n - 1)]
            with turn():
                logits = model(piece, past_key_values=cache, use_cache=True).logits
            targets = ids[0, start + 1 : start + 1 + piece.shape[1]]
            losses.append(torch.nn.functional.cross_entropy(logits[0].float(), targets, reduction="none"))
            if on_chunk is not None:
                on_chunk(start + piece.shape[1], n - 1)
            if should_stop is not None and should_stop():
                break
    return torch.cat(losses)


def quantized_cache_ppl(
    loaded,
    text: str | None = None,
    bits: int = 4,
    chunk: int = CHUNK,
    n_tokens=None,
    on_chunk=None,
    should_stop=None,
    turn=nullcontext,
    reference: dict | None = None,
) -> dict:
    """Perplexity of the text decoded through a float cache and through an int`bits` quantized cache, and each
    cache's bytes at the end. `delta` = q_ppl - fp_ppl. `reference`: an earlier result on the same text and
    chunk, whose float pass is reused instead of run again."""
    from transformers import DynamicCache

    model = loaded.model
    ids = text_ids(loaded.tokenizer, n_tokens, text)
    if reference is not None and reference["n_tokens"] == ids.shape[1] and reference["chunk"] == chunk:
        fp, fp_bytes = torch.tensor(reference["fp_losses"]), reference["fp_bytes"]
    else:
        fp_cache = DynamicCache(config=model.config)
        fp = chunked_losses(model, ids, fp_cache, chunk, should_stop=should_stop, turn=turn)
        fp_bytes = cache_bytes(fp_cache)
    q_cache = quantized_cache(model.config, bits, chunk)
    q = chunked_losses(model, ids, q_cache, chunk, on_chunk, should_stop, turn)
    fp_ppl, q_ppl = math.exp(fp.mean().item()), math.exp(q.mean().item())
    shape = kv_shape(model.config)
    nbytes = next(model.parameters()).element_size()
    return {
        "bits": bits,
        "n_tokens": ids.shape[1],
        "chunk": chunk,
        "fp_ppl": fp_ppl,
        "q_ppl": q_ppl,
        "delta": q_ppl - fp_ppl,
        "fp_bytes": fp_bytes,
        "q_bytes": quantized_bytes(q_cache),
        "cached_tokens": q_cache.get_seq_length(),
        "formula_bytes": kv_formula_bytes(model.config, q_cache.get_seq_length(), nbytes),
        "expected_ratio": expected_ratio(bits, shape.head_dim, nbytes),
        "fp_losses": fp.tolist(),
        "q_losses": q.tolist(),
    }
