"""The feed-forward part of a block: widen 4x, GELU, narrow back. Applied to each position alone.
(A mixture of experts, moe.py, uses narrower ones: `hidden` sets the width.)"""

from __future__ import annotations

from torch import nn

from .config import GPTConfig


class MLP(nn.Module):
    def __init__(self, config: GPTConfig, hidden: int | None = None):
        super().__init__()
        hidden = hidden or 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.gelu = nn.GELU()  # the exact erf form ("gelu" in transformers' configs)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))
