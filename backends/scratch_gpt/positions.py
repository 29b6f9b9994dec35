"""Where each token sits: learned position embeddings (GPT-2), fixed sinusoids ("Attention Is All
You Need") added to the token embeddings, or rotary embeddings (RoPE) that turn queries and keys
inside attention (GPT-NeoX, LLaMA)."""

from __future__ import annotations

import torch
from torch import nn


class LearnedPositions(nn.Module):
    """One trained vector per position, added to the token embedding."""

    def __init__(self, block_size: int, n_embd: int):
        super().__init__()
        self.table = nn.Embedding(block_size, n_embd)

    def forward(self, t: int) -> torch.Tensor:
        return self.table.weight[:t]


def sinusoid_table(block_size: int, n_embd: int) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d))."""
    pos = torch.arange(block_size, dtype=torch.float32)[:, None]
    i = torch.arange(0, n_embd, 2, dtype=torch.float32)
    angle = pos / torch.pow(10000.0, i / n_embd)
    table = torch.zeros(block_size, n_embd)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : n_embd // 2])
    return table


class SinusoidalPositions(nn.Module):
    """Fixed sinusoids, nothing to learn; a buffer, so they are saved with the weights."""

    def __init__(self, block_size: int, n_embd: int):
        super().__init__()
        self.register_buffer("table", sinusoid_table(block_size, n_embd))

    def forward(self, t: int) -> torch.Tensor:
        return self.table[:t]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Rotary(nn.Module):
    """RoPE: rotate each pair (x_i, x_{i+d/2}) of a query or key by the angle pos * theta^(-2i/d).

    The dot product of a rotated query and key then depends only on their distance. Halves, not
    interleaved pairs, as GPT-NeoX and LLaMA do, so the exported model loads in transformers.
    """

    def __init__(self, head_size: int, block_size: int, theta: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_size, 2, dtype=torch.float32) / head_size))
        angles = torch.outer(torch.arange(block_size, dtype=torch.float32), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = q.shape[-2]
        cos, sin = self.cos[:t], self.sin[:t]
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
