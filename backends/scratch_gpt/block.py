"""One transformer block, pre-norm as in GPT-2: x + attention(norm(x)), then x + MLP(norm(x)).

The same block serves the three families: `causal=False` for an encoder, and `mlp` swaps the
feed-forward layer (a mixture of experts, moe.py, is one)."""

from __future__ import annotations

from torch import nn

from .attention import CausalSelfAttention
from .config import GPTConfig
from .mlp import MLP


class Block(nn.Module):
    def __init__(self, config: GPTConfig, causal: bool = True, mlp: nn.Module | None = None):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, causal=causal)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = mlp if mlp is not None else MLP(config)

    def forward(self, x, return_weights: bool = False, pad_mask=None):
        if return_weights:
            a, weights = self.attn(self.ln_1(x), return_weights=True, pad_mask=pad_mask)
            x = x + a
            return x + self.mlp(self.ln_2(x)), weights
        x = x + self.attn(self.ln_1(x), pad_mask=pad_mask)
        return x + self.mlp(self.ln_2(x))
