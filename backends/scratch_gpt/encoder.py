"""An encoder trained with masked language modelling (BERT): the GPT's parts, two changes.

1. Attention sees both ways: `Block(config, causal=False)`, every token attends to every other.
2. The targets are hidden tokens, not next tokens: `mask_tokens` picks 15% of the positions, shows
   [MASK] (80%), a random character (10%) or the character itself (10%) there, and the loss is
   counted at those positions only (labels -100 elsewhere).

BERT is post-norm (the original Transformer's order): x = norm(x + attention(x)), then
x = norm(x + MLP(x)), with a norm right after the embeddings. GPT-2's Block is pre-norm; the encoder
uses the same Block's parts in BERT's order (`post_norm`), so the exported model is a real
transformers `BertForMaskedLM` computing the same numbers. The head is BERT's: dense, GELU,
norm, then the word embeddings (tied) plus a bias.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .block import Block
from .config import GPTConfig
from .data import CharTokenizer
from .model import init_weights
from .positions import LearnedPositions, SinusoidalPositions

IGNORE = -100  # label of a position the loss skips (PyTorch's and transformers' convention)


class MaskedVocab:
    """The character tokenizer plus BERT's [PAD] and [MASK], appended: every character keeps its id."""

    kind = "char+mask"

    def __init__(self, chars: CharTokenizer):
        self.chars = chars
        self.pad_id, self.mask_id = chars.vocab_size, chars.vocab_size + 1
        self.itos = [*chars.itos, "[PAD]", "[MASK]"]

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def unknown(self, text: str) -> list[str]:
        return self.chars.unknown(text)

    def encode(self, text: str) -> list[int]:
        return self.chars.encode(text)

    def decode(self, ids) -> str:
        return "".join(self.itos[i] for i in ids)


def mask_tokens(
    ids: torch.Tensor, vocab: MaskedVocab, generator: torch.Generator, p: float = 0.15
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption: (inputs, labels). Each position is chosen with probability p; a chosen one
    becomes [MASK] (80%), a random character (10%) or stays (10%); labels are the original ids there,
    -100 everywhere else."""
    chosen = torch.rand(ids.shape, generator=generator) < p
    labels = torch.where(chosen, ids, IGNORE)
    roll = torch.rand(ids.shape, generator=generator)
    noise = torch.randint(1, max(2, vocab.chars.vocab_size), ids.shape, generator=generator)  # any character, not UNK
    inputs = torch.where(chosen & (roll < 0.8), vocab.mask_id, ids)
    inputs = torch.where(chosen & (roll >= 0.8) & (roll < 0.9), noise, inputs)
    return inputs, labels


def post_norm(block: Block, x: torch.Tensor, pad_mask: torch.Tensor | None = None):
    """BERT's order with the Block's parts: norm after each residual sum. Returns (x, attention weights)."""
    a, weights = block.attn(x, return_weights=True, pad_mask=pad_mask)
    x = block.ln_1(x + a)
    return block.ln_2(x + block.mlp(x)), weights


class MLMHead(nn.Module):
    """BERT's prediction head: dense, GELU, norm, then scores against the (tied) word embeddings."""

    def __init__(self, config: GPTConfig, wte: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(config.n_embd, config.n_embd)
        self.gelu = nn.GELU()
        self.norm = nn.LayerNorm(config.n_embd)
        self.decoder = nn.Linear(config.n_embd, config.vocab_size)
        self.decoder.weight = wte.weight

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(self.gelu(self.dense(h))))


class Encoder(nn.Module):
    def __init__(self, config: GPTConfig, generator: torch.Generator | None = None):
        super().__init__()
        if config.positions == "rope":
            raise ValueError("The encoder takes learned or sinusoidal positions (BERT's are learned), not rope.")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        positions = LearnedPositions if config.positions == "learned" else SinusoidalPositions
        self.wpe = positions(config.block_size, config.n_embd)
        self.ln_e = nn.LayerNorm(config.n_embd, bias=config.bias)  # post-norm: the norm comes first
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config, causal=False) for _ in range(config.n_layer))
        self.head = MLMHead(config, self.wte)
        init_weights(self, config.n_layer, generator)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def hidden(self, idx: torch.Tensor, pad_mask: torch.Tensor | None = None, weights: list | None = None):
        """The last layer's vectors, one per position; each layer's attention appended to `weights` if given."""
        t = idx.shape[1]
        if t > self.config.block_size:
            raise ValueError(f"Sequence of {t} tokens is longer than the context ({self.config.block_size}).")
        x = self.drop(self.ln_e(self.wte(idx) + self.wpe(t)))
        for block in self.h:
            x, w = post_norm(block, x, pad_mask)
            if weights is not None:
                weights.append(w)
        return x

    def forward(self, idx: torch.Tensor, labels: torch.Tensor | None = None, pad_mask: torch.Tensor | None = None):
        """(logits, loss). Without labels: logits at every position. With labels: the loss on the
        masked positions, and the logits of those positions only (the head runs on nothing else)."""
        h = self.hidden(idx, pad_mask)
        if labels is None:
            return self.head(h), None
        picked = labels != IGNORE
        logits = self.head(h[picked])
        return logits, F.cross_entropy(logits, labels[picked])
