"""Attention by hand: one head rebuilt from the model's own weights with small numpy functions
(`split_heads`, `rope_cos_sin`, `apply_rope`, `scaled_scores`, `softmax`), compared with the
model's own map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backends.attention.forward import ForwardPass, base_model, forward_pass, is_decoder
from backends.attention.heads import normalize_rows
from backends.attention.tokens import readable_tokens


@dataclass
class ManualAttention:
    tokens: list[str]
    layer: int
    head: int
    kv_head: int  # the key/value head this query head shares (grouped-query attention)
    q: np.ndarray  # [seq, d_head] (after RoPE for rotary models)
    k: np.ndarray  # [seq, d_head]
    scores: np.ndarray  # q k^T / sqrt(d_head), before masking
    mask: np.ndarray  # bool [seq, seq]: True = this query may look at this key
    probs: np.ndarray  # softmax of the masked scores
    model_probs: np.ndarray  # the model's own attention for this layer and head
    max_abs_diff: float


def weights(t: torch.Tensor) -> np.ndarray:
    """A model tensor as a read-only float32 numpy array (no copy for float32 models)."""
    a = t.detach().cpu().float().numpy()
    a.flags.writeable = False  # shared model: look, never touch
    return a


def linear(x: np.ndarray, layer: torch.nn.Linear) -> np.ndarray:
    """y = x W^T + b, with the weights of one of the model's Linear layers."""
    y = x @ weights(layer.weight).T
    if layer.bias is not None:
        y = y + weights(layer.bias)
    return y


def rms_norm(x: np.ndarray, norm: torch.nn.Module) -> np.ndarray:
    """LLaMA's RMSNorm: divide by the root mean square of the vector, then scale."""
    return x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + norm.variance_epsilon) * weights(norm.weight)


def split_heads(x: np.ndarray, n_heads: int) -> np.ndarray:
    """[seq, n_heads * d_head] -> [n_heads, seq, d_head]: each head owns a slice of the vector."""
    seq, width = x.shape
    return x.reshape(seq, n_heads, width // n_heads).transpose(1, 0, 2)


def rope_cos_sin(positions: np.ndarray, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Cos and sin of RoPE's angles: position * theta^(-2i/d) for each pair i of dimensions."""
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2) / head_dim)  # [d/2], fast to slow
    angles = np.outer(positions, inv_freq)  # [seq, d/2]
    angles = np.concatenate([angles, angles], axis=-1)  # dims i and i + d/2 form a pair
    return np.cos(angles), np.sin(angles)


def rotate_half(x: np.ndarray) -> np.ndarray:
    """(x1, x2) -> (-x2, x1), the 90-degree turn of every (i, i + d/2) pair."""
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate each pair of dimensions by its angle: [x1, x2] -> [x1 cos - x2 sin, x2 cos + x1 sin]."""
    return x * cos + rotate_half(x) * sin


def scaled_scores(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """How well each query matches each key: q k^T / sqrt(d_head)."""
    return q @ k.T / np.sqrt(q.shape[-1])


def softmax(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Softmax over the keys a query may see; masked keys get exactly 0."""
    s = np.where(mask, scores, -np.inf)
    top = s.max(axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(top), top, 0.0))
    return normalize_rows(e)


def bert_qk(base, x: np.ndarray, layer: int, head: int):
    attn = base.encoder.layer[layer].attention.self
    n_heads = base.config.num_attention_heads
    q = split_heads(linear(x, attn.query), n_heads)[head]
    k = split_heads(linear(x, attn.key), n_heads)[head]
    return q, k, head


def llama_qk(base, x: np.ndarray, layer: int, head: int):
    cfg = base.config
    block = base.layers[layer]
    n_heads, n_kv = cfg.num_attention_heads, getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads
    kv_head = head // (n_heads // n_kv)  # grouped-query attention: several query heads share one key head
    x = rms_norm(x, block.input_layernorm)
    q = split_heads(linear(x, block.self_attn.q_proj), n_heads)[head]
    k = split_heads(linear(x, block.self_attn.k_proj), n_kv)[kv_head]
    cos, sin = rope_cos_sin(np.arange(x.shape[0]), head_dim, _rope_theta(cfg))
    return apply_rope(q, cos, sin), apply_rope(k, cos, sin), kv_head


def gemma_rms_norm(x: np.ndarray, norm: torch.nn.Module) -> np.ndarray:
    """Gemma's RMSNorm: the same division, then a scale of (1 + weight) (its weights are stored minus 1)."""
    return x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + norm.eps) * (1.0 + weights(norm.weight))


def gemma3_qk(base, x: np.ndarray, layer: int, head: int):
    """Gemma 3: LLaMA's steps plus an RMSNorm on each head's query and key (QK-norm) before RoPE, and
    RoPE's base per layer kind (10,000 on sliding-window layers, 1,000,000 on the global ones)."""
    cfg = base.config
    block = base.layers[layer]
    attn = block.self_attn
    n_heads, n_kv, head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    kv_head = head // (n_heads // n_kv)
    x = gemma_rms_norm(x, block.input_layernorm)
    q = gemma_rms_norm(split_heads(linear(x, attn.q_proj), n_heads)[head], attn.q_norm)
    k = gemma_rms_norm(split_heads(linear(x, attn.k_proj), n_kv)[kv_head], attn.k_norm)
    theta = float(cfg.rope_parameters[cfg.layer_types[layer]]["rope_theta"])
    cos, sin = rope_cos_sin(np.arange(x.shape[0]), head_dim, theta)
    return apply_rope(q, cos, sin), apply_rope(k, cos, sin), kv_head


def sliding_window(loaded, layer: int) -> int | None:
    """The keys a query of this layer may reach back to (Gemma 3's local layers: 512), None when unlimited."""
    cfg = loaded.model.config
    kinds = getattr(cfg, "layer_types", None)
    if kinds and kinds[layer] == "sliding_attention":
        return int(cfg.sliding_window)
    return None


def _rope_theta(cfg) -> float:
    params = getattr(cfg, "rope_parameters", None) or {}
    return float(params.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))


def _architecture(loaded) -> str:
    base = base_model(loaded)
    if (
        hasattr(base, "encoder")
        and hasattr(getattr(base.encoder, "layer", None), "__getitem__")
        and hasattr(base.encoder.layer[0].attention.self, "query")
    ):
        return "bert"
    layers = getattr(base, "layers", None)
    if layers is not None and hasattr(layers[0], "input_layernorm") and hasattr(layers[0].self_attn, "q_proj"):
        cfg = base.config
        rope_type = (getattr(cfg, "rope_parameters", None) or {}).get("rope_type", "default")
        if rope_type == "default" and not hasattr(layers[0].self_attn, "q_norm"):
            return "llama"
        if (
            getattr(cfg, "model_type", "") == "gemma3_text"
            and cfg.query_pre_attn_scalar == cfg.head_dim  # so q k^T / sqrt(d_head) is its scaling
            and getattr(cfg, "attn_logit_softcapping", None) is None
            and all(p.get("rope_type", "default") == "default" for p in cfg.rope_parameters.values())
        ):
            return "gemma3"
    raise NotImplementedError(
        f"Hand-written attention covers BERT-style encoders, LLaMA-style decoders with plain RoPE and Gemma 3; "
        f"{type(loaded.model).__name__} ({loaded.key.model!r}) is neither."
    )


def manual_attention(
    loaded,
    text: str,
    layer: int,
    head: int,
    text_pair: str | None = None,
    max_tokens: int = 512,
    forward: ForwardPass | None = None,
) -> ManualAttention:
    """One head's attention recomputed by hand and compared with the model's own.

    Pass `forward=forward_pass(loaded, text, text_pair, hidden_states=True)` to reuse one
    forward pass for many (layer, head) pairs.
    """
    arch = _architecture(loaded)
    cfg = loaded.model.config
    if not 0 <= layer < cfg.num_hidden_layers:
        raise ValueError(f"layer must be in 0..{cfg.num_hidden_layers - 1}, got {layer}.")
    if not 0 <= head < cfg.num_attention_heads:
        raise ValueError(f"head must be in 0..{cfg.num_attention_heads - 1}, got {head}.")
    if forward is None:
        forward = forward_pass(loaded, text, text_pair, max_tokens, hidden_states=True)
    elif forward.hidden_states is None or (forward.text, forward.text_pair) != (text, text_pair):
        raise ValueError("`forward` must come from forward_pass(..., hidden_states=True) on the same text.")

    # The input of layer `layer` is hidden_states[layer] ([0] is the embedding output).
    x = forward.hidden_states[layer][0].detach().float().cpu().numpy()  # [seq, hidden]
    qk = {"bert": bert_qk, "llama": llama_qk, "gemma3": gemma3_qk}[arch]
    q, k, kv_head = qk(base_model(loaded), x, layer, head)

    seq = x.shape[0]
    mask = np.repeat(forward.inputs["attention_mask"][0].cpu().numpy().astype(bool)[None, :], seq, axis=0)
    if is_decoder(loaded):
        mask &= np.tril(np.ones((seq, seq), dtype=bool))  # a token never looks ahead
    window = sliding_window(loaded, layer)
    if window is not None:  # a local layer: a query sees only the last `window` keys, itself included
        mask &= np.triu(np.ones((seq, seq), dtype=bool), k=-(window - 1))
    scores = scaled_scores(q, k)
    probs = softmax(scores, mask)
    model_probs = forward.attentions[layer][0, head].float().cpu().numpy()
    ids = forward.inputs["input_ids"][0].tolist()
    return ManualAttention(
        tokens=readable_tokens(loaded.tokenizer, ids),
        layer=layer,
        head=head,
        kv_head=kv_head,
        q=q.astype(np.float32),
        k=k.astype(np.float32),
        scores=scores.astype(np.float32),
        mask=mask,
        probs=probs.astype(np.float32),
        model_probs=model_probs,
        max_abs_diff=float(np.abs(probs - model_probs).max()),
    )
