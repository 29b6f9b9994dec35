"""The whole GPT: token embedding (+ positions), a stack of blocks, a final norm, and a head that
shares the embedding's weights and scores every token of the vocabulary as the next one."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .block import Block
from .config import GPTConfig
from .positions import LearnedPositions, SinusoidalPositions


def init_weights(model: nn.Module, n_layer: int, generator: torch.Generator | None = None) -> None:
    """GPT-2's initialisation: N(0, 0.02), zero biases, residual projections scaled down by depth.

    A generator of the run's own (not the process-wide seed) keeps runs reproducible while
    other sessions draw random numbers at the same time.
    """
    for name, p in model.named_parameters():
        if p.dim() == 1:
            if name.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.ones_(p)  # LayerNorm weights
        else:
            std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else 0.02
            nn.init.normal_(p, mean=0.0, std=std, generator=generator)


@dataclass
class Inspection:
    """One prompt through the model: attention weights per layer (heads, t, t) and the next-token probabilities."""

    attentions: list[torch.Tensor]
    next_probs: torch.Tensor  # (vocab,)


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.positions == "learned":
            self.wpe = LearnedPositions(config.block_size, config.n_embd)
        elif config.positions == "sinusoidal":
            self.wpe = SinusoidalPositions(config.block_size, config.n_embd)
        else:
            self.wpe = None  # RoPE lives inside attention
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017), as GPT-2
        init_weights(self, config.n_layer, generator)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the tied head counts once

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.config.block_size:
            raise ValueError(f"Sequence of {t} tokens is longer than the context ({self.config.block_size}).")
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(t)
        return self.drop(x)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.embed(idx)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    @torch.no_grad()
    def inspect(self, idx: torch.Tensor) -> Inspection:
        """Attention maps of every layer and the next-token distribution for one prompt (batch of 1)."""
        x = self.embed(idx[:, -self.config.block_size :])
        maps = []
        for block in self.h:
            x, weights = block(x, return_weights=True)
            maps.append(weights[0])
        logits = self.lm_head(self.ln_f(x))
        return Inspection(maps, F.softmax(logits[0, -1], dim=-1))

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample one token at a time, feeding the last block_size tokens back in."""
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.config.block_size :])
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = float("-inf")
            probs = F.softmax(logits, dim=-1)
            idx = torch.cat((idx, torch.multinomial(probs, 1, generator=generator)), dim=1)
        return idx
