"""The ladder: ever richer models of the next character, trained on the same batches.

bigram (a table: this character -> the next) -> MLP (the last few characters, embedded and
concatenated, Bengio et al. 2003) -> one attention layer -> the full GPT. Each takes
(ids, targets) and returns (logits, loss) like GPT, so one training loop serves all.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn
from torch.nn import functional as F

from .config import GPTConfig
from .model import GPT, init_weights

RUNGS = ("bigram", "mlp", "one_layer", "full")


def _loss(logits, targets):
    return None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


class Bigram(nn.Module):
    """logits of the next character = one row of a vocab x vocab table, picked by the current character."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx, targets=None):
        logits = self.table(idx)
        return logits, _loss(logits, targets)


class ContextMLP(nn.Module):
    """The last `context` characters (zeros before the start), embedded, concatenated, one tanh layer."""

    def __init__(self, vocab_size: int, context: int = 8, n_embd: int = 32, hidden: int = 512):
        super().__init__()
        self.context = context
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.hidden = nn.Linear(context * n_embd, hidden)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, idx, targets=None):
        b, t = idx.shape
        x = F.pad(self.wte(idx), (0, 0, self.context - 1, 0))  # (b, context-1+t, d)
        windows = x.unfold(1, self.context, 1)  # (b, t, d, context)
        windows = windows.transpose(2, 3).reshape(b, t, -1)  # oldest character first
        logits = self.out(torch.tanh(self.hidden(windows)))
        return logits, _loss(logits, targets)


def build(rung: str, config: GPTConfig, generator: torch.Generator | None = None) -> nn.Module:
    if rung == "bigram":
        model = Bigram(config.vocab_size)
    elif rung == "mlp":
        model = ContextMLP(config.vocab_size, context=min(8, config.block_size))
    elif rung == "one_layer":
        return GPT(replace(config, n_layer=1), generator)
    elif rung == "full":
        return GPT(config, generator)
    else:
        raise ValueError(f"Unknown rung {rung!r}; expected one of {', '.join(RUNGS)}.")
    init_weights(model, 1, generator)
    if rung == "bigram":
        nn.init.zeros_(model.table.weight)  # start from uniform: the loss starts at log(vocab)
    return model
