"""Attention maps of real models, and the same attention recomputed by hand.

Three parts, top to bottom:
  1. `compute_attention`: one forward pass with `output_attentions=True`, returned
     as a plain `AttentionResult` (tokens + a [layers, heads, seq, seq] array).
  2. Summaries of those maps: `head_stats` (entropy, distance, a label per head),
     `rollout` (Abnar & Zuidema 2020) and `drop_special`.
  3. Teaching code: `manual_attention` rebuilds one head's attention from the
     model's own weights with small numpy functions (`split_heads`,
     `rope_cos_sin`, `apply_rope`, `scaled_scores`, `softmax`), and the position
     encodings of Vaswani et al. (2017) and RoPE (Su et al. 2021) for plotting.

Models come from the shared cache and are shared by every session: nothing here
modifies them (no hooks of our own, no training mode, no weight or config edits).
They must be loaded with `variant="eager"`: the fused attention kernels never
materialise the attention matrix.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

# Thresholds of the head labels (fractions of attention, or of the maximum entropy).
SAME_TOKEN = 0.5
PREVIOUS_TOKEN = 0.5
FIRST_TOKEN = 0.5
BROAD = 0.8
LABELS = ("same-token", "previous-token", "first-token / sink", "broad", "mixed")
MAX_TOKEN_CHARS = 12


# ---------------------------------------------------------------------------
# 1. Attention maps from one forward pass
# ---------------------------------------------------------------------------


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


def _base_model(loaded) -> torch.nn.Module:
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
    with torch.inference_mode():
        out = _base_model(loaded)(
            **inputs, output_attentions=True, output_hidden_states=hidden_states, use_cache=False
        )
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


def special_mask(tokenizer, ids: list[int]) -> np.ndarray:
    """True for structural tokens ([CLS], [SEP], BOS, EOS, padding); [UNK] and [MASK] count as content."""
    content = {getattr(tokenizer, "unk_token_id", None), getattr(tokenizer, "mask_token_id", None)}
    special = set(tokenizer.all_special_ids) - content
    return np.isin(np.asarray(ids), list(special)) if special else np.zeros(len(ids), dtype=bool)


@functools.cache
def _byte_of_char() -> dict[str, int]:
    """Byte-level BPE writes each byte as a printable character; this maps the character back.

    Printable Latin-1 bytes stand for themselves; the others (space, control bytes...) were
    moved to code points 256, 257, ... in byte order (so a space became 'Ġ', a newline 'Ċ').
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {chr(b): b for b in printable}
    moved = [b for b in range(256) if b not in set(printable)]
    table.update({chr(256 + n): b for n, b in enumerate(moved)})
    return table


def _is_byte_level(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and "ByteLevel" in repr(backend.decoder)


def _utf8_length(lead: int) -> int:
    """How many bytes the UTF-8 character starting with this byte takes."""
    return 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


_PART = "₁₂₃₄"


def _byte_level_labels(pieces: list[str]) -> list[str]:
    """Decode byte-level BPE pieces. A character split over several tokens (common for Chinese)
    is shown on each of them with a part number: 我₁ 我₂. A stray byte shows as \\xNN."""
    table = _byte_of_char()
    raw = [bytes(table[c] for c in p) if p and all(c in table for c in p) else p.encode() for p in pieces]
    data = b"".join(raw)
    chars, i = [], 0  # (start, end, text) for each character of the whole text
    while i < len(data):
        n = _utf8_length(data[i])
        try:
            text = data[i : i + n].decode("utf-8")
        except UnicodeDecodeError:
            n, text = 1, f"\\x{data[i]:02x}"
        chars.append((i, i + n, text))
        i += n
    labels, start, first, parts_seen = [], 0, 0, {}
    for token in raw:
        end = start + len(token)
        while first < len(chars) and chars[first][1] <= start:
            first += 1
        label, c = "", first
        while c < len(chars) and chars[c][0] < end:
            cs, ce, text = chars[c]
            if start <= cs and ce <= end:
                label += text
            else:  # only part of this character's bytes are in this token
                parts_seen[cs] = parts_seen.get(cs, 0) + 1
                label += text + _PART[min(parts_seen[cs], 4) - 1]
            c += 1
        labels.append(label)
        start = end
    return labels


def readable_tokens(tokenizer, ids: list[int], max_chars: int = MAX_TOKEN_CHARS) -> list[str]:
    """Short labels: bytes decoded, spaces as '␣', newlines as '↵', split characters as 我₁ 我₂."""
    pieces = [str(p) for p in tokenizer.convert_ids_to_tokens(ids)]
    if _is_byte_level(tokenizer):
        pieces = _byte_level_labels(pieces)
    out = []
    for piece in pieces:
        piece = piece.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍")
        out.append(piece if len(piece) <= max_chars else piece[: max_chars - 1] + "…")
    return out


# ---------------------------------------------------------------------------
# 2. Summaries: per-head statistics, rollout, special tokens
# ---------------------------------------------------------------------------


@dataclass
class HeadStats:
    """Arrays of shape [layers, heads], averaged over query rows."""

    entropy: np.ndarray  # bits
    normalized_entropy: np.ndarray  # entropy / log2(number of keys the row may see), 0..1
    mean_distance: np.ndarray  # sum_j p_ij |i - j|, in tokens
    previous_token: np.ndarray  # attention on j = i - 1
    first_token: np.ndarray  # attention on j = 0
    same_token: np.ndarray  # attention on j = i
    dominant_share: np.ndarray  # largest single weight of a row
    labels: list[list[str]]


def _looks_causal(attn: np.ndarray) -> bool:
    upper = np.triu(np.ones(attn.shape[-2:], dtype=bool), k=1)
    return bool(np.all(np.abs(attn[..., upper]) < 1e-6))


def head_stats(
    attn: AttentionResult | np.ndarray, special_mask: np.ndarray | None = None, is_causal: bool | None = None
) -> HeadStats:
    """Entropy, distance and a rule-based label for every head.

    Rows of special tokens (`special_mask`) and rows that can see only one key (the
    first row of a causal map) are left out of the averages.
    """
    if isinstance(attn, AttentionResult):
        is_causal = attn.is_causal if is_causal is None else is_causal
        attn = attn.attentions
    attn = np.asarray(attn, dtype=np.float32)
    if attn.ndim != 4:
        raise ValueError(f"Expected attentions of shape [layers, heads, seq, seq], got {attn.shape}.")
    if is_causal is None:
        is_causal = _looks_causal(attn)
    n_layers, n_heads, seq, _ = attn.shape
    pos = np.arange(seq)
    n_keys = pos + 1 if is_causal else np.full(seq, seq)
    rows = n_keys > 1
    if special_mask is not None:
        rows &= ~np.asarray(special_mask, dtype=bool)
    if not rows.any():  # a single token: nothing better to average over
        rows = np.ones(seq, dtype=bool)
    later = rows & (pos >= 1)
    if not later.any():
        later = rows
    max_bits = np.log2(np.maximum(n_keys, 2))
    distance = np.abs(pos[:, None] - pos[None, :]).astype(np.float32)

    def row_mean(x, which):  # [heads, seq] -> [heads], mean over the chosen rows
        return x[:, which].mean(axis=1)

    stats = {k: np.zeros((n_layers, n_heads), np.float32) for k in
             ("entropy", "normalized_entropy", "mean_distance", "previous_token", "first_token", "same_token",
              "dominant_share")}
    prev = np.zeros((n_heads, seq), np.float32)
    for layer in range(n_layers):  # one layer at a time keeps the temporaries small
        p = attn[layer]
        log_p = np.log2(p, out=np.zeros_like(p), where=p > 0)
        bits = -(p * log_p).sum(axis=-1)  # [heads, seq]
        prev[:, 1:] = p[:, pos[1:], pos[:-1]]
        stats["entropy"][layer] = row_mean(bits, rows)
        stats["normalized_entropy"][layer] = row_mean(bits / max_bits, rows)
        stats["mean_distance"][layer] = row_mean(np.einsum("hij,ij->hi", p, distance), rows)
        stats["previous_token"][layer] = row_mean(prev, later)
        stats["first_token"][layer] = row_mean(p[:, :, 0], later)
        stats["same_token"][layer] = row_mean(p[:, pos, pos], rows)
        stats["dominant_share"][layer] = row_mean(p.max(axis=-1), rows)
    labels = [[_label(stats, layer, head) for head in range(n_heads)] for layer in range(n_layers)]
    return HeadStats(**stats, labels=labels)


def _label(stats: dict[str, np.ndarray], layer: int, head: int) -> str:
    if stats["same_token"][layer, head] > SAME_TOKEN:
        return "same-token"
    if stats["previous_token"][layer, head] > PREVIOUS_TOKEN:
        return "previous-token"
    if stats["first_token"][layer, head] > FIRST_TOKEN:
        return "first-token / sink"
    if stats["normalized_entropy"][layer, head] > BROAD:
        return "broad"
    return "mixed"


def _normalize_rows(m: np.ndarray) -> np.ndarray:
    """Rows divided by their sums; rows that sum to zero stay zero."""
    sums = m.sum(axis=-1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)


def rollout(attentions: AttentionResult | np.ndarray, residual: bool = True) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): how much each output position draws on each input token.

    Average the heads, add the identity for the residual connection, renormalise the rows,
    then multiply the layers: R = A_L ... A_2 A_1. Returns [seq, seq]; rows sum to 1.
    """
    if isinstance(attentions, AttentionResult):
        attentions = attentions.attentions
    a = np.asarray(attentions, dtype=np.float64)
    if a.ndim == 4:
        a = a.mean(axis=1)  # [layers, seq, seq]
    if a.ndim != 3:
        raise ValueError(f"Expected [layers, heads, seq, seq] or [layers, seq, seq], got {a.shape}.")
    eye = np.eye(a.shape[-1])
    result = eye
    for layer in a:
        step = _normalize_rows(layer + eye if residual else layer)
        result = step @ result
    return result.astype(np.float32)


def drop_special(attn: np.ndarray, special_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove special-token rows and columns, then renormalise rows to sum to 1.

    Works on [seq, seq] or [..., seq, seq]. Returns (matrix, kept_index) where kept_index
    holds the original positions of the rows/columns kept.
    """
    attn = np.asarray(attn, dtype=np.float32)
    kept = np.flatnonzero(~np.asarray(special_mask, dtype=bool))
    sub = attn[..., kept[:, None], kept[None, :]]
    return _normalize_rows(sub), kept


# ---------------------------------------------------------------------------
# 3. Attention by hand, from the model's own weights
# ---------------------------------------------------------------------------


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
    return _normalize_rows(e)


def _bert_qk(base, x: np.ndarray, layer: int, head: int):
    attn = base.encoder.layer[layer].attention.self
    n_heads = base.config.num_attention_heads
    q = split_heads(linear(x, attn.query), n_heads)[head]
    k = split_heads(linear(x, attn.key), n_heads)[head]
    return q, k, head


def _llama_qk(base, x: np.ndarray, layer: int, head: int):
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


def _rope_theta(cfg) -> float:
    params = getattr(cfg, "rope_parameters", None) or {}
    return float(params.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))


def _architecture(loaded) -> str:
    base = _base_model(loaded)
    if hasattr(base, "encoder") and hasattr(getattr(base.encoder, "layer", None), "__getitem__"):
        if hasattr(base.encoder.layer[0].attention.self, "query"):
            return "bert"
    layers = getattr(base, "layers", None)
    if layers is not None and hasattr(layers[0], "input_layernorm") and hasattr(layers[0].self_attn, "q_proj"):
        cfg = base.config
        rope_type = (getattr(cfg, "rope_parameters", None) or {}).get("rope_type", "default")
        if rope_type == "default" and not hasattr(layers[0].self_attn, "q_norm"):
            return "llama"
    raise NotImplementedError(
        f"Hand-written attention covers BERT-style encoders and LLaMA-style decoders with plain RoPE; "
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
    qk = _bert_qk if arch == "bert" else _llama_qk
    q, k, kv_head = qk(_base_model(loaded), x, layer, head)

    seq = x.shape[0]
    mask = np.repeat(forward.inputs["attention_mask"][0].cpu().numpy().astype(bool)[None, :], seq, axis=0)
    if is_decoder(loaded):
        mask &= np.tril(np.ones((seq, seq), dtype=bool))  # a token never looks ahead
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


# ---------------------------------------------------------------------------
# Position encodings, for plots
# ---------------------------------------------------------------------------


def sinusoidal_encoding(n_positions: int, d_model: int) -> np.ndarray:
    """Vaswani et al. (2017): PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(same)."""
    pos = np.arange(n_positions)[:, None]
    rates = 1.0 / 10000 ** (np.arange(0, d_model, 2) / d_model)  # [ceil(d/2)]
    pe = np.zeros((n_positions, d_model))
    pe[:, 0::2] = np.sin(pos * rates)
    pe[:, 1::2] = np.cos(pos * rates[: d_model // 2])
    return pe.astype(np.float32)


def rope_rotation_demo(positions, head_dim: int, theta: float, pair_index: int) -> np.ndarray:
    """Where RoPE sends the unit vector (1, 0) of one frequency pair, at each position.

    Uses the same `rope_cos_sin` and `apply_rope` as the attention code. Returns [n, 2]:
    the pair (dim `pair_index`, dim `pair_index + head_dim/2`) after rotation; its angle is
    position * theta^(-2 * pair_index / head_dim).
    """
    half = head_dim // 2
    if not 0 <= pair_index < half:
        raise ValueError(f"pair_index must be in 0..{half - 1}, got {pair_index}.")
    positions = np.asarray(positions, dtype=np.float64).reshape(-1)
    x = np.zeros((len(positions), head_dim))
    x[:, pair_index] = 1.0
    cos, sin = rope_cos_sin(positions, head_dim, theta)
    rotated = apply_rope(x, cos, sin)
    return rotated[:, [pair_index, pair_index + half]]
