"""A mixture of experts in place of the block's MLP (Switch Transformer, Mixtral).

A router scores each token against n experts (a linear layer, softmax); the token goes to its top k,
and the output is their MLP outputs mixed by the router's probabilities, renormalised over those k.
Each token pays for k experts while the layer holds n: with experts 1/k as wide as the dense MLP,
the compute per token (the active parameters) matches a dense GPT while the total grows n/k times.

A router left alone sends most tokens to a few experts; Switch Transformer's load-balancing loss,
n * sum_i f_i * P_i (f_i the share of routed tokens expert i got, P_i its mean router probability),
is 1 when the load is even and grows as it tilts; training adds coef times it to the loss.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn
from torch.nn import functional as F

from .block import Block
from .config import GPTConfig
from .mlp import MLP
from .model import GPT, init_weights


def balance_loss(probs: torch.Tensor, chosen: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Switch Transformer's auxiliary loss: n * sum_i f_i * P_i, for probs (tokens, n) and chosen (tokens, k)."""
    f = torch.bincount(chosen.flatten(), minlength=n_experts).float() / chosen.numel()  # share of routed slots
    return n_experts * (f * probs.mean(dim=0)).sum()  # gradient flows through P_i (f counts, no gradient)


class MoE(nn.Module):
    def __init__(self, config: GPTConfig, n_experts: int = 4, top_k: int = 2, hidden: int | None = None):
        super().__init__()
        if not 1 <= top_k <= n_experts:
            raise ValueError(f"top_k must be between 1 and n_experts ({n_experts}), got {top_k}.")
        self.n_experts, self.top_k = n_experts, top_k
        hidden = hidden or 4 * config.n_embd // top_k  # k experts together as wide as the dense MLP
        self.router = nn.Linear(config.n_embd, n_experts, bias=False)
        self.experts = nn.ModuleList(MLP(config, hidden) for _ in range(n_experts))
        self.aux_loss = torch.zeros(())
        self.last_experts: torch.Tensor | None = None  # (batch, time, k) expert ids of the last forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        flat = x.reshape(-1, c)
        probs = F.softmax(self.router(flat), dim=-1)  # (tokens, n)
        top_p, chosen = probs.topk(self.top_k, dim=-1)  # (tokens, k)
        weights = top_p / top_p.sum(dim=-1, keepdim=True)  # renormalised over the k chosen
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            token, slot = (chosen == e).nonzero(as_tuple=True)  # the tokens that picked expert e
            if len(token):
                out.index_add_(0, token, weights[token, slot, None] * expert(flat[token]))
        self.aux_loss = balance_loss(probs, chosen, self.n_experts)
        self.last_experts = chosen.detach().view(b, t, self.top_k)
        return out.view(b, t, c)


class MoEGPT(GPT):
    """The GPT with a MoE in every block; in training the loss adds coef * the layers' mean balance loss
    (evaluation reports the language-model loss alone, comparable with a dense GPT's)."""

    def __init__(self, config: GPTConfig, n_experts=4, top_k=2, hidden=None, aux_coef=0.01, generator=None):
        super().__init__(replace(config, n_layer=1))  # embeddings and head; the blocks are replaced below
        self.config, self.aux_coef = config, aux_coef
        self.h = nn.ModuleList(Block(config, mlp=MoE(config, n_experts, top_k, hidden)) for _ in range(config.n_layer))
        init_weights(self, config.n_layer, generator)

    def aux_loss(self) -> torch.Tensor:
        return torch.stack([block.mlp.aux_loss for block in self.h]).mean()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits, loss = super().forward(idx, targets)
        if loss is not None and self.training and self.aux_coef:
            loss = loss + self.aux_coef * self.aux_loss()
        return logits, loss

    def active_params(self) -> int:
        """Parameters one token goes through: all but the experts it skips (n - k of each layer's)."""
        skipped = sum(
            (block.mlp.n_experts - block.mlp.top_k) * sum(p.numel() for p in block.mlp.experts[0].parameters())
            for block in self.h
        )
        return self.num_params() - skipped


def moe_gpt(
    config: GPTConfig,
    n_experts: int = 4,
    top_k: int = 2,
    generator: torch.Generator | None = None,
    hidden: int | None = None,
    aux_coef: float = 0.01,
) -> MoEGPT:
    """A GPT whose blocks are `Block(config, mlp=MoE(...))`."""
    return MoEGPT(config, n_experts, top_k, hidden, aux_coef, generator)
