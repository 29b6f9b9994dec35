"""Attention maps from one forward pass with `output_attentions=True`, as a plain
`AttentionResult` (tokens + a [layers, heads, seq, seq] array). Models must be loaded with
`variant="eager"`: the fused attention kernels never materialise the attention matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backends.attention.tokens import readable_tokens, special_mask
from backends.core.scheduler import shared_scheduler


@dataclass
class AttentionResult:
    tokens: list[str]  # readable labels, one per position
    token_ids: list[int]
    special_mask: np.ndarray  # bool [seq]: [CLS], [SEP], BOS, EOS, padding...
    segment_ids: np.ndarray | None  # int [seq], 0/1 for a sentence pair, else None
    attentions: np.ndarray  # float32 [layers, heads, seq, seq]; row = query, column = key
    is_causal: bool
    n_input_tokens: int  # tokens before truncation
    truncated: bool
    model_key: str

    @property
    def n_layers(self) -> int:
        return self.attentions.shape[0]

    @property
    def n_heads(self) -> int:
        return self.attentions.shape[1]


@dataclass
class ForwardPass:
    """One tokenized input and the model's outputs for it (reusable by `manual_attention`)."""

    text: str
    text_pair: str | None
    inputs: dict[str, torch.Tensor]  # input_ids, attention_mask (and token_type_ids for encoders)
    n_input_tokens: int
    truncated: bool
    attentions: tuple[torch.Tensor, ...]  # per layer [1, heads, seq, seq]
    hidden_states: tuple[torch.Tensor, ...] | None  # [0] = embeddings = input of layer 0


def is_decoder(loaded) -> bool:
    return loaded.kind == "causal-lm"


def base_model(loaded) -> torch.nn.Module:
    """The transformer without its head: for a causal LM this skips the 49k-wide logits."""
    return getattr(loaded.model, "base_model", loaded.model)


def _check_text(value: str | None, name: str) -> None:
    if value is None or not str(value).strip():
        raise ValueError(f"The {name} is empty ({value!r}): type at least one word to see its attention.")


def _max_positions(loaded) -> int | None:
    return getattr(loaded.model.config, "max_position_embeddings", None)


def tokenize(loaded, text: str, text_pair: str | None = None, max_tokens: int = 512):
    """Tokenize (a sentence pair only for encoders); cut to `max_tokens` and the model's position limit.

    Returns (inputs, n_input_tokens, truncated).
    """
    _check_text(text, "text")
    if text_pair is not None:
        if is_decoder(loaded):
            raise ValueError(
                f"{loaded.key.model!r} is a decoder (causal LM): sentence pairs are an encoder feature. "
                "Pass text_pair=None, or pick an encoder such as all-MiniLM-L6-v2."
            )
        _check_text(text_pair, "second sentence (text_pair)")
    if int(max_tokens) < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens!r}.")
    limit = int(max_tokens)
    if _max_positions(loaded):
        limit = min(limit, _max_positions(loaded))
    tok = loaded.tokenizer
    batch = tok(text, text_pair, return_tensors="pt", verbose=False)
    n_input = int(batch["input_ids"].shape[1])
    truncated = n_input > limit
    if truncated:
        batch = tok(text, text_pair, return_tensors="pt", truncation=True, max_length=limit)
    keep = ("input_ids", "attention_mask") + (() if is_decoder(loaded) else ("token_type_ids",))
    device = next(loaded.model.parameters()).device
    inputs = {k: batch[k].to(device) for k in keep if k in batch}
    return inputs, n_input, truncated


def _require_eager(loaded) -> None:
    impl = getattr(loaded.model.config, "_attn_implementation", "eager")
    if impl != "eager":
        raise ValueError(
            f"{loaded.key.model!r} was loaded with {impl!r} attention, which never builds the attention matrix. "
            "Load it with shared_cache().get(name, variant='eager')."
        )


def forward_pass(
    loaded, text: str, text_pair: str | None = None, max_tokens: int = 512, hidden_states: bool = False
) -> ForwardPass:
    """Tokenize and run the base model once, keeping attentions (and hidden states if asked)."""
    _require_eager(loaded)
    inputs, n_input, truncated = tokenize(loaded, text, text_pair, max_tokens)
    with torch.inference_mode(), shared_scheduler().turn("attention"):
        out = base_model(loaded)(**inputs, output_attentions=True, output_hidden_states=hidden_states, use_cache=False)
    attentions = tuple(out.attentions or ())
    n_layers = loaded.model.config.num_hidden_layers
    if len(attentions) != n_layers:
        raise RuntimeError(f"Expected {n_layers} attention maps from {loaded.key.model!r}, got {len(attentions)}.")
    return ForwardPass(
        text=text,
        text_pair=text_pair,
        inputs=inputs,
        n_input_tokens=n_input,
        truncated=truncated,
        attentions=attentions,
        hidden_states=tuple(out.hidden_states) if hidden_states else None,
    )


def compute_attention(loaded, text: str, text_pair: str | None = None, max_tokens: int = 512) -> AttentionResult:
    """Every layer's and head's attention for `text` (and `text_pair`, encoders only)."""
    return attention_from_forward(loaded, forward_pass(loaded, text, text_pair, max_tokens))


def attention_from_forward(loaded, forward: ForwardPass) -> AttentionResult:
    """The `AttentionResult` of a forward pass already run (e.g. one kept for `manual_attention`).

    The per-layer maps are copied once into one [layers, heads, seq, seq] array, and
    `forward.attentions` is re-pointed at views of it, so a kept ForwardPass and its
    result share that memory instead of holding two copies.
    """
    stacked = torch.cat([a.float() for a in forward.attentions], dim=0).cpu()  # [1, H, S, S] each -> [L, H, S, S]
    forward.attentions = tuple(stacked[i : i + 1] for i in range(stacked.shape[0]))
    ids = forward.inputs["input_ids"][0].tolist()
    segments = None
    if forward.text_pair is not None and "token_type_ids" in forward.inputs:
        segments = forward.inputs["token_type_ids"][0].cpu().numpy().astype(np.int64)
    return AttentionResult(
        tokens=readable_tokens(loaded.tokenizer, ids),
        token_ids=ids,
        special_mask=special_mask(loaded.tokenizer, ids),
        segment_ids=segments,
        attentions=stacked.numpy(),  # shares memory with `stacked`: no second copy
        is_causal=is_decoder(loaded),
        n_input_tokens=forward.n_input_tokens,
        truncated=forward.truncated,
        model_key=loaded.key.model,
    )
