"""Attention maps of real models, and the same attention recomputed by hand.

One concept a file:
  forward.py: `compute_attention`: one forward pass with `output_attentions=True`, returned
     as a plain `AttentionResult` (tokens + a [layers, heads, seq, seq] array); tokens.py
     turns ids into readable axis labels.
  heads.py: summaries of those maps: `head_stats` (entropy, distance, a label per head),
     `rollout` (Abnar & Zuidema 2020) and `drop_special`.
  manual.py: teaching code: `manual_attention` rebuilds one head's attention from the
     model's own weights with small numpy functions (`split_heads`,
     `rope_cos_sin`, `apply_rope`, `scaled_scores`, `softmax`), and (positions.py) the position
     encodings of Vaswani et al. (2017) and RoPE (Su et al. 2021) for plotting.

Models come from the shared cache and are shared by every session: nothing here
modifies them (no hooks of our own, no training mode, no weight or config edits).
They must be loaded with `variant="eager"`: the fused attention kernels never
materialise the attention matrix.

Notes (how it works, what is left out, measured figures): docs/attention.md.
"""

from backends.attention.forward import (
    AttentionResult,
    ForwardPass,
    attention_from_forward,
    compute_attention,
    forward_pass,
    is_decoder,
    tokenize,
)
from backends.attention.heads import LABELS, HeadStats, drop_special, head_stats, rollout
from backends.attention.manual import (
    ManualAttention,
    apply_rope,
    bert_qk,
    llama_qk,
    manual_attention,
    rope_cos_sin,
    scaled_scores,
    softmax,
    split_heads,
)
from backends.attention.positions import rope_rotation_demo, sinusoidal_encoding
from backends.attention.tokens import MAX_TOKEN_CHARS, readable_tokens, special_mask

__all__ = [
    "LABELS",
    "MAX_TOKEN_CHARS",
    "AttentionResult",
    "ForwardPass",
    "HeadStats",
    "ManualAttention",
    "apply_rope",
    "attention_from_forward",
    "bert_qk",
    "compute_attention",
    "drop_special",
    "forward_pass",
    "head_stats",
    "is_decoder",
    "llama_qk",
    "manual_attention",
    "readable_tokens",
    "rollout",
    "rope_cos_sin",
    "rope_rotation_demo",
    "scaled_scores",
    "sinusoidal_encoding",
    "softmax",
    "special_mask",
    "split_heads",
    "tokenize",
]
