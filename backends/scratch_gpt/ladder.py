"""The ladder: ever richer models of the next token, each scored on every token of the validation split.

bigram (a table of counts: how often each token follows each other one, fit in closed form, not
trained) -> MLP (the last few tokens, embedded and concatenated, Bengio et al. 2003) -> one
attention layer -> the full GPT. Each takes (ids, targets) and returns (logits, loss) like GPT.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import replace

import torch
from torch import nn
from torch.nn import functional as F

from .config import GPTConfig
from .model import GPT, init_weights

RUNGS = ("bigram", "mlp", "one_layer", "full")
K_GRID = tuple(10 ** (e / 4) for e in range(-12, 1))  # add-k candidates: 0.001, 0.0018, ... 0.56, 1


def _loss(logits, targets):
    return None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


class CountBigram(nn.Module):
    """P(next = b | current = a) = (count(a, b) + k) / (count(a) + k * V): the maximum-likelihood table
    of the training pairs with add-k smoothing. Nothing is trained: `fit` counts.

    `counts[a, b]` is how often token b follows token a in the training ids (a V x V table);
    `k` is added to every cell so that a pair never seen keeps a small probability.
    """

    def __init__(self, counts: torch.Tensor, k: float):
        super().__init__()
        self.k = float(k)
        self.register_buffer("counts", counts.float())
        self.register_buffer("totals", counts.sum(1).float())  # count(a): pairs that start with a

    @classmethod
    def fit(cls, ids: torch.Tensor, vocab_size: int, k: float | None = None) -> CountBigram:
        """Count every pair (ids[i], ids[i + 1]); k=None picks it by leave-one-out (`leave_one_out_k`)."""
        pairs, n = torch.unique(ids[:-1] * vocab_size + ids[1:], return_counts=True)
        counts = torch.zeros(vocab_size * vocab_size)
        counts[pairs] = n.float()
        counts = counts.view(vocab_size, vocab_size)
        return cls(counts, leave_one_out_k(counts) if k is None else k)

    @property
    def vocab_size(self) -> int:
        return self.counts.shape[0]

    def forward(self, idx, targets=None):
        v, k = self.vocab_size, self.k
        logits = torch.log(self.counts[idx] + k) - torch.log(self.totals[idx] + k * v).unsqueeze(-1)  # log P
        return logits, _loss(logits, targets)

    def top_table(self, n: int) -> tuple[list[int], list[list[int]]]:
        """The n most frequent tokens (as the current token) and the counts among them, most frequent first."""
        top = torch.argsort(self.totals, descending=True, stable=True)[:n]
        return top.tolist(), self.counts[top][:, top].long().tolist()


def leave_one_out_k(counts: torch.Tensor, grid: tuple[float, ...] = K_GRID) -> float:
    """The k of `grid` whose table best predicts each training pair from all the other pairs.

    Taking one pair (a, b) out lowers count(a, b) and count(a) by one, so its leave-one-out
    probability is (count(a, b) - 1 + k) / (count(a) - 1 + k V): no pass over the text per k,
    and the validation split is never looked at.
    """
    v = counts.shape[0]
    seen = counts > 0
    c = counts[seen].double()
    rows = counts.sum(1, keepdim=True).double().expand_as(counts)[seen]
    scores = [(c * torch.log((c - 1 + k) / (rows - 1 + k * v))).sum().item() for k in grid]
    return grid[max(range(len(grid)), key=scores.__getitem__)]


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
    """A trained rung, freshly initialised (the bigram is not trained: `CountBigram.fit`)."""
    if rung == "mlp":  # as wide as the GPT's feed-forward layer; 8 characters of n_embd / 4 each
        model = ContextMLP(config.vocab_size, min(8, config.block_size), max(1, config.n_embd // 4), 4 * config.n_embd)
        init_weights(model, 1, generator)
        return model
    if rung == "one_layer":
        return GPT(replace(config, n_layer=1), generator)
    if rung == "full":
        return GPT(config, generator)
    if rung == "bigram":
        return CountBigram(torch.zeros(config.vocab_size, config.vocab_size), 1.0)  # uniform until fit
    raise ValueError(f"Unknown rung {rung!r}; expected one of {', '.join(RUNGS)}.")


@torch.no_grad()
def exact_loss(model: nn.Module, data: torch.Tensor, block_size: int, batch_size: int = 16, turn=nullcontext):
    """Mean loss over every target of `data`, each scored once: windows of block_size side by side
    (a token sees the ones before it in its window), not a sample of random windows."""
    n = len(data) - 1  # targets: data[1:]
    whole = n // block_size * block_size
    x, y = data[:whole].view(-1, block_size), data[1 : whole + 1].view(-1, block_size)
    batches = [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    if whole < n:
        batches.append((data[whole:n].unsqueeze(0), data[whole + 1 :].unsqueeze(0)))
    was_training = model.training
    model.eval()
    total = 0.0
    for xb, yb in batches:
        with turn():
            logits, _ = model(xb)
            total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), yb.reshape(-1), reduction="sum").item()
    model.train(was_training)
    return total / n if n > 0 else math.nan
