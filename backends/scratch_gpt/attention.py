"""Self-attention written out: project to queries, keys and values, split into heads, score every
pair, hide what a position may not see, softmax, mix the values, project back.

The one difference between a decoder (GPT) and an encoder (BERT) is here: `causal=True` hides the
future (each token sees itself and the tokens before it), `causal=False` lets every token see every
other. A padding mask hides padded keys in either case.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import GPTConfig
from .positions import Rotary


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, causal: bool = True):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.causal = causal
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.rotary = (
            Rotary(config.head_size, config.block_size, config.rope_theta) if config.positions == "rope" else None
        )
        mask = torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, config.block_size, config.block_size), persistent=False)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys, values of shape (batch, heads, time, head size), RoPE applied."""
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        if self.rotary is not None:
            q, k = self.rotary(q, k)
        return q, k, v

    def forward(self, x: torch.Tensor, return_weights: bool = False, pad_mask: torch.Tensor | None = None):
        """`pad_mask` (batch, time), True for real tokens: padded keys get no attention."""
        b, t, c = x.shape
        q, k, v = self.heads(x)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))  # (b, h, t, t)
        if self.causal:
            scores = scores.masked_fill(~self.mask[:, :, :t, :t], float("-inf"))  # no peeking at later tokens
        if pad_mask is not None:
            scores = scores.masked_fill(~pad_mask[:, None, None, :], float("-inf"))
        weights = F.softmax(scores, dim=-1)
        y = self.attn_dropout(weights) @ v  # (b, h, t, head size)
        y = y.transpose(1, 2).contiguous().view(b, t, c)  # heads side by side again
        y = self.resid_dropout(self.c_proj(y))
        return (y, weights) if return_weights else y
