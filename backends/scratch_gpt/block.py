"""One transformer block, pre-norm as in GPT-2: x + attention(norm(x)), then x + MLP(norm(x))."""

from __future__ import annotations

from torch import nn

from .attention import CausalSelfAttention
from .config import GPTConfig
from .mlp import MLP


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, return_weights: bool = False):
        if return_weights:
            a, weights = self.attn(self.ln_1(x), return_weights=True)
            x = x + a
            return x + self.mlp(self.ln_2(x)), weights
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))
