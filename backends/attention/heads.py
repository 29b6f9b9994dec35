"""Summaries of attention maps: per-head statistics and labels (entropy, distance,
same/previous/first token), attention rollout (Abnar & Zuidema 2020), and dropping special tokens."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends.attention.forward import AttentionResult

# Thresholds of the head labels (fractions of attention, or of the maximum entropy).
SAME_TOKEN = 0.5
PREVIOUS_TOKEN = 0.5
FIRST_TOKEN = 0.5
BROAD = 0.8
LABELS = ("same-token", "previous-token", "first-token / sink", "broad", "mixed")


@dataclass
class HeadStats:
    """Arrays of shape [layers, heads], averaged over query rows."""

    entropy: np.ndarray  # bits
    normalized_entropy: np.ndarray  # entropy / log2(number of keys the row may see), 0..1
    mean_distance: np.ndarray  # sum_j p_ij |i - j|, in tokens
    previous_token: np.ndarray  # attention on j = i - 1
    first_token: np.ndarray  # attention on j = 0
    same_token: np.ndarray  # attention on j = i
    dominant_share: np.ndarray  # largest single weight of a row
    labels: list[list[str]]


def _looks_causal(attn: np.ndarray) -> bool:
    upper = np.triu(np.ones(attn.shape[-2:], dtype=bool), k=1)
    return bool(np.all(np.abs(attn[..., upper]) < 1e-6))


def head_stats(
    attn: AttentionResult | np.ndarray, special_mask: np.ndarray | None = None, is_causal: bool | None = None
) -> HeadStats:
    """Entropy, distance and a rule-based label for every head.

    Rows of special tokens (`special_mask`) and rows that can see only one key (the
    first row of a causal map) are left out of the averages.
    """
    if isinstance(attn, AttentionResult):
        is_causal = attn.is_causal if is_causal is None else is_causal
        attn = attn.attentions
    attn = np.asarray(attn, dtype=np.float32)
    if attn.ndim != 4:
        raise ValueError(f"Expected attentions of shape [layers, heads, seq, seq], got {attn.shape}.")
    if is_causal is None:
        is_causal = _looks_causal(attn)
    n_layers, n_heads, seq, _ = attn.shape
    pos = np.arange(seq)
    n_keys = pos + 1 if is_causal else np.full(seq, seq)
    rows = n_keys > 1
    if special_mask is not None:
        rows &= ~np.asarray(special_mask, dtype=bool)
    if not rows.any():  # a single token: nothing better to average over
        rows = np.ones(seq, dtype=bool)
    later = rows & (pos >= 1)
    if not later.any():
        later = rows
    max_bits = np.log2(np.maximum(n_keys, 2))
    distance = np.abs(pos[:, None] - pos[None, :]).astype(np.float32)

    def row_mean(x, which):  # [heads, seq] -> [heads], mean over the chosen rows
        return x[:, which].mean(axis=1)

    stats = {
        k: np.zeros((n_layers, n_heads), np.float32)
        for k in (
            "entropy",
            "normalized_entropy",
            "mean_distance",
            "previous_token",
            "first_token",
            "same_token",
            "dominant_share",
        )
    }
    prev = np.zeros((n_heads, seq), np.float32)
    for layer in range(n_layers):  # one layer at a time keeps the temporaries small
        p = attn[layer]
        log_p = np.log2(p, out=np.zeros_like(p), where=p > 0)
        bits = -(p * log_p).sum(axis=-1)  # [heads, seq]
        prev[:, 1:] = p[:, pos[1:], pos[:-1]]
        stats["entropy"][layer] = row_mean(bits, rows)
        stats["normalized_entropy"][layer] = row_mean(bits / max_bits, rows)
        stats["mean_distance"][layer] = row_mean(np.einsum("hij,ij->hi", p, distance), rows)
        stats["previous_token"][layer] = row_mean(prev, later)
        stats["first_token"][layer] = row_mean(p[:, :, 0], later)
        stats["same_token"][layer] = row_mean(p[:, pos, pos], rows)
        stats["dominant_share"][layer] = row_mean(p.max(axis=-1), rows)
    labels = [[_label(stats, layer, head) for head in range(n_heads)] for layer in range(n_layers)]
    return HeadStats(**stats, labels=labels)


def _label(stats: dict[str, np.ndarray], layer: int, head: int) -> str:
    if stats["same_token"][layer, head] > SAME_TOKEN:
        return "same-token"
    if stats["previous_token"][layer, head] > PREVIOUS_TOKEN:
        return "previous-token"
    if stats["first_token"][layer, head] > FIRST_TOKEN:
        return "first-token / sink"
    if stats["normalized_entropy"][layer, head] > BROAD:
        return "broad"
    return "mixed"


def normalize_rows(m: np.ndarray) -> np.ndarray:
    """Rows divided by their sums; rows that sum to zero stay zero."""
    sums = m.sum(axis=-1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)


def rollout(attentions: AttentionResult | np.ndarray, residual: bool = True) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): how much each output position draws on each input token.

    Average the heads, add the identity for the residual connection, renormalise the rows,
    then multiply the layers: R = A_L ... A_2 A_1. Returns [seq, seq]; rows sum to 1.
    """
    if isinstance(attentions, AttentionResult):
        attentions = attentions.attentions
    a = np.asarray(attentions, dtype=np.float64)
    if a.ndim == 4:
        a = a.mean(axis=1)  # [layers, seq, seq]
    if a.ndim != 3:
        raise ValueError(f"Expected [layers, heads, seq, seq] or [layers, seq, seq], got {a.shape}.")
    eye = np.eye(a.shape[-1])
    result = eye
    for layer in a:
        step = normalize_rows(layer + eye if residual else layer)
        result = step @ result
    return result.astype(np.float32)


def drop_special(attn: np.ndarray, special_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove special-token rows and columns, then renormalise rows to sum to 1.

    Works on [seq, seq] or [..., seq, seq]. Returns (matrix, kept_index) where kept_index
    holds the original positions of the rows/columns kept.
    """
    attn = np.asarray(attn, dtype=np.float32)
    kept = np.flatnonzero(~np.asarray(special_mask, dtype=bool))
    sub = attn[..., kept[:, None], kept[None, :]]
    return normalize_rows(sub), kept
