"""Cross-attention, written out: how a decoder reads the encoder's output.

Self-attention takes queries, keys and values from the same sequence. Cross-attention takes the
queries from the decoder (what each output position is looking for) and the keys and values from
the encoder's output (what each input position offers). Nothing is causal here: every output
position may look at every input character; only padded input positions are hidden.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import GPTConfig


class CrossAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.c_q = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)  # queries from the decoder
        self.c_kv = nn.Linear(config.n_embd, 2 * config.n_embd, bias=config.bias)  # keys, values from the encoder
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def split_heads(self, z: torch.Tensor) -> torch.Tensor:
        b, t, c = z.shape
        return z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)  # (b, heads, t, head size)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor | None = None,
        return_weights: bool = False,
    ):
        """x (b, t_out, c) from the decoder, memory (b, t_in, c) from the encoder, memory_mask (b, t_in) True
        for real input characters. Returns (b, t_out, c), and the weights (b, heads, t_out, t_in) if asked."""
        b, t, c = x.shape
        q = self.split_heads(self.c_q(x))
        k, v = (self.split_heads(z) for z in self.c_kv(memory).split(self.n_embd, dim=2))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))  # (b, h, t_out, t_in)
        if memory_mask is not None:
            scores = scores.masked_fill(~memory_mask[:, None, None, :], float("-inf"))  # padding is not input
        weights = F.softmax(scores, dim=-1)  # each output position's weights over the input sum to 1
        y = self.attn_dropout(weights) @ v  # (b, h, t_out, head size)
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        y = self.resid_dropout(self.c_proj(y))
        return (y, weights) if return_weights else y
