"""A draft model for assisted generation, built from the big model's own pretrained parts.

No smaller SmolLM2 sharing its tokenizer is available offline, so the stand-in is SmolLM2's FIRST n
decoder layers + its final norm + its tied output head ("early exit"): a real `LlamaForCausalLM` whose
modules ARE the cached model's modules (the same parameter tensors, no copy), built on the meta device
so nothing is allocated. The cached model is not touched: no config edit, no hook, no mode change.
Its guesses are worse than a separately trained small model's would be; the page says which it is.

Measured on this machine (2 prompts of the lookup set, 24 tokens, k = 3, 1 thread, a busy machine): the
acceptance rate was 0.8% for 4 layers, 0% for 8, 0.8% for 16 and 20, 15% for 24, 34% for 27, and every
depth was slower than plain greedy (x0.2 to x0.47; 24 layers x0.38/x0.45, the best by a hair, hence the
default). Skipping middle layers instead of the last ones did no better (top-1 agreement with the full
model, teacher-forced: first 24 layers 44%, layers 0-10 + 19-29 17%, every other layer 0%). A 135M model
needs nearly all its layers; speculative decoding pays here with prompt lookup, not with this draft.
"""

from __future__ import annotations

import copy

import torch

DRAFT_LAYERS = (4, 8, 16, 24, 27)  # candidates the page offers (of SmolLM2-135M's 30)


def layer_draft(loaded, n_layers: int):
    """A LlamaForCausalLM running the first `n_layers` layers of `loaded.model`, sharing its weights."""
    from transformers import AutoModelForCausalLM

    base = loaded.model
    total = base.config.num_hidden_layers
    if not 1 <= n_layers < total:
        raise ValueError(f"n_layers={n_layers!r} is invalid: a draft keeps 1 to {total - 1} of the {total} layers.")
    config = copy.deepcopy(base.config)
    config.num_hidden_layers = n_layers
    if getattr(config, "layer_types", None):
        config.layer_types = list(config.layer_types[:n_layers])
    with torch.device("meta"):
        draft = AutoModelForCausalLM.from_config(config)
    inner, src = draft.model, base.model
    inner.embed_tokens = src.embed_tokens
    inner.layers = torch.nn.ModuleList(list(src.layers[:n_layers]))  # the same modules: layer_idx 0..n-1
    inner.norm = src.norm
    inner.rotary_emb = src.rotary_emb
    draft.lm_head = base.lm_head
    draft.generation_config = copy.deepcopy(base.generation_config)
    # Only the new wrapper objects get their mode set; the shared modules keep theirs (eval).
    draft.training = inner.training = False
    left = [name for name, t in [*draft.named_parameters(), *draft.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"The draft model has tensors left on the meta device: {left}")
    return draft


def shares_weights(draft, loaded) -> bool:
    """Every draft parameter is one of the cached model's tensors (same storage)."""
    base = {p.data_ptr() for p in loaded.model.parameters()}
    return all(p.data_ptr() in base for p in draft.parameters())
