"""An encoder-decoder (seq2seq) from the GPT's parts, pre-norm throughout.

The encoder is the GPT's block with `causal=False`: every input character sees every other. The
decoder block is the GPT's block with one more step in the middle, cross-attention, where each
output position reads the encoder's output:

    x = x + self_attention(norm(x))            causal, as in the GPT
    x = x + cross_attention(norm(x), memory)   queries from here, keys and values from the encoder
    x = x + mlp(norm(x))

One token embedding serves the input, the decoder's input and (tied) the output head. Id 0 is
padding: padded input characters are hidden from attention and padded targets add no loss.

When the output side uses only some of the tokens (pinyin letters, not Chinese characters),
`only_output(ids)` gives every other token a fixed logit bias of -inf: the model never predicts them,
and (more important) the loss no longer pushes their tied embedding rows, the input characters, all
towards the same direction at every step, which Adam would turn into full-size steps for every row.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .attention import CausalSelfAttention
from .block import Block
from .config import GPTConfig
from .cross_attention import CrossAttention
from .mlp import MLP
from .model import init_weights
from .positions import LearnedPositions

PAD_ID = 0


class DecoderBlock(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, causal=True)
        self.ln_cross = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.cross = CrossAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, memory, memory_mask=None, return_weights: bool = False):
        x = x + self.attn(self.ln_1(x))
        a, weights = self.cross(self.ln_cross(x), memory, memory_mask, return_weights=True)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return (x, weights) if return_weights else x


class Seq2Seq(nn.Module):
    def __init__(self, config: GPTConfig, generator: torch.Generator | None = None):
        super().__init__()
        if config.positions != "learned":
            raise ValueError(f"The seq2seq model uses learned positions, not {config.positions!r}.")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # shared: input, decoder input, output head
        self.enc_pos = LearnedPositions(config.block_size, config.n_embd)
        self.dec_pos = LearnedPositions(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.encoder = nn.ModuleList(Block(config, causal=False) for _ in range(config.n_layer))
        self.enc_ln = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.decoder = nn.ModuleList(DecoderBlock(config) for _ in range(config.n_layer))
        self.dec_ln = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        self.register_buffer("logits_bias", torch.zeros(config.vocab_size))  # 0, or -inf: never an output
        init_weights(self, config.n_layer, generator)

    def only_output(self, ids) -> None:
        """Allow only these token ids as outputs (logit bias 0); every other id gets -inf."""
        self.logits_bias.fill_(float("-inf"))
        self.logits_bias[list(ids)] = 0.0

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _check(self, ids: torch.Tensor) -> None:
        if ids.shape[1] > self.config.block_size:
            raise ValueError(f"{ids.shape[1]} tokens is longer than the context ({self.config.block_size}).")

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        """src (b, t_in) ids, src_mask (b, t_in) True for real characters -> memory (b, t_in, c)."""
        self._check(src)
        x = self.drop(self.wte(src) + self.enc_pos(src.shape[1]))
        for block in self.encoder:
            x = block(x, pad_mask=src_mask)
        return self.enc_ln(x)

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor, return_weights: bool = False):
        """tgt (b, t_out) decoder input ids -> logits (b, t_out, vocab); with return_weights also the
        cross-attention weights of every layer, each (b, heads, t_out, t_in)."""
        self._check(tgt)
        x = self.drop(self.wte(tgt) + self.dec_pos(tgt.shape[1]))
        maps = []
        for block in self.decoder:
            x, weights = block(x, memory, src_mask, return_weights=True)
            maps.append(weights)
        logits = self.lm_head(self.dec_ln(x)) + self.logits_bias
        return (logits, maps) if return_weights else logits

    def forward(self, src: torch.Tensor, tgt: torch.Tensor, targets: torch.Tensor | None = None):
        """Teacher forcing: tgt is [BOS] + output, targets is output + [EOS]; padding (id 0) adds no loss."""
        src_mask = src != PAD_ID
        logits = self.decode(tgt, self.encode(src, src_mask), src_mask)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=PAD_ID)
        return logits, loss
