"""Position encodings, for plots: the sinusoids of Vaswani et al. (2017) and RoPE (Su et al. 2021)."""

from __future__ import annotations

import numpy as np

from backends.attention.manual import apply_rope, rope_cos_sin


def sinusoidal_encoding(n_positions: int, d_model: int) -> np.ndarray:
    """Vaswani et al. (2017): PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(same)."""
    pos = np.arange(n_positions)[:, None]
    rates = 1.0 / 10000 ** (np.arange(0, d_model, 2) / d_model)  # [ceil(d/2)]
    pe = np.zeros((n_positions, d_model))
    pe[:, 0::2] = np.sin(pos * rates)
    pe[:, 1::2] = np.cos(pos * rates[: d_model // 2])
    return pe.astype(np.float32)


def rope_rotation_demo(positions, head_dim: int, theta: float, pair_index: int) -> np.ndarray:
    """Where RoPE sends the unit vector (1, 0) of one frequency pair, at each position.

    Uses the same `rope_cos_sin` and `apply_rope` as the attention code. Returns [n, 2]:
    the pair (dim `pair_index`, dim `pair_index + head_dim/2`) after rotation; its angle is
    position * theta^(-2 * pair_index / head_dim).
    """
    half = head_dim // 2
    if not 0 <= pair_index < half:
        raise ValueError(f"pair_index must be in 0..{half - 1}, got {pair_index}.")
    positions = np.asarray(positions, dtype=np.float64).reshape(-1)
    x = np.zeros((len(positions), head_dim))
    x[:, pair_index] = 1.0
    cos, sin = rope_cos_sin(positions, head_dim, theta)
    rotated = apply_rope(x, cos, sin)
    return rotated[:, [pair_index, pair_index + half]]
