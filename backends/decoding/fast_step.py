"""One forward pass of a Llama-type model written out by hand, for the token loop's speed.

`model(input_ids=..., past_key_values=DynamicCache)` spends most of a decode step around the
arithmetic, not in it: building the attention mask, the cache's bookkeeping, rotary tables
recomputed per call, module calls and output records. This file runs the same arithmetic (the
same torch kernels, in the same order, on the model's own weight tensors: nothing copied,
nothing changed) with the keys and values in buffers allocated ahead and the rotary angles
computed once per cache, so one decode step is ~215 matrix-vector products and little else.

`FastCache` is one sequence's state (one row: greedy and sampling loops; beam search keeps
transformers' cache, which it reorders). `supports_fast(model)` says when the hand-written
pass is the model's own computation; other models keep `model(...)`. Nothing here is shared
between loops but read-only weight tensors, so any number of threads may decode at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FIRST_CAPACITY = 256  # positions a new cache holds before it grows (doubling)


def supports_fast(model) -> bool:
    """True when `model` is a plain Llama decoder this pass reproduces: default RoPE, SiLU MLP, RMSNorm,
    no biases, no sliding window, no attention scaling or tensor-parallel slicing, CPU tensors."""
    if type(model).__name__ != "LlamaForCausalLM" or model.training:
        return False
    cfg = model.config
    rope = getattr(cfg, "rope_parameters", None) or {}
    rotary = getattr(model.model, "rotary_emb", None)
    return (
        rope.get("rope_type", "default") == "default"
        and getattr(rotary, "attention_scaling", None) == 1.0
        and not getattr(cfg, "attention_bias", False)
        and not getattr(cfg, "mlp_bias", False)
        and getattr(cfg, "hidden_act", None) == "silu"
        and getattr(cfg, "pretraining_tp", 1) == 1
        and getattr(cfg, "sliding_window", None) is None
        and model.lm_head.weight.device.type == "cpu"
    )


class LlamaWeights:
    """References to a Llama model's own parameters, in the order one pass reads them (no copies)."""

    def __init__(self, model):
        cfg, inner = model.config, model.model
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.eps = float(cfg.rms_norm_eps)
        self.embed = inner.embed_tokens.weight
        self.norm = inner.norm.weight
        self.head = model.lm_head.weight
        self.inv_freq = inner.rotary_emb.inv_freq
        self.layers = []
        for layer in inner.layers[: cfg.num_hidden_layers]:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append(
                (
                    layer.input_layernorm.weight,
                    attn.q_proj.weight,
                    attn.k_proj.weight,
                    attn.v_proj.weight,
                    attn.o_proj.weight,
                    layer.post_attention_layernorm.weight,
                    mlp.gate_proj.weight,
                    mlp.up_proj.weight,
                    mlp.down_proj.weight,
                )
            )


class FastCache:
    """Keys and values of one sequence, in buffers [layers, kv_heads, capacity, head_dim] grown by doubling,
    and the rotary cos/sin for every position they can hold."""

    def __init__(self, model, capacity: int = FIRST_CAPACITY, split: bool = False):
        self.weights = LlamaWeights(model)
        self.split = split  # decode steps' large matrix-vector products as two halves (see split_linear)
        self.length = 0
        self.limit = getattr(model.config, "max_position_embeddings", None) or 1 << 30
        self.keys = self.values = self.cos = self.sin = None
        self.capacity = 0
        self.grow(min(capacity, self.limit))

    def get_seq_length(self) -> int:  # the name transformers' caches use
        return self.length

    def grow(self, capacity: int) -> None:
        w = self.weights
        dtype = w.embed.dtype
        shape = (len(w.layers), w.kv_heads, capacity, w.head_dim)
        keys, values = torch.zeros(shape, dtype=dtype), torch.zeros(shape, dtype=dtype)
        if self.length:
            keys[:, :, : self.length] = self.keys[:, :, : self.length]
            values[:, :, : self.length] = self.values[:, :, : self.length]
        self.keys, self.values, self.capacity = keys, values, capacity
        # As LlamaRotaryEmbedding computes them: float positions times inv_freq, both halves, cos and sin.
        freqs = torch.arange(capacity, dtype=torch.float)[:, None] * w.inv_freq.float()[None, :]
        angles = torch.cat((freqs, freqs), dim=-1)
        self.cos, self.sin = angles.cos().to(dtype), angles.sin().to(dtype)

    def reserve(self, new: int) -> None:
        needed = self.length + new
        if needed > self.capacity:
            self.grow(max(needed, min(2 * self.capacity, max(self.limit, needed))))


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """LlamaRMSNorm's weight * (x * rsqrt(mean(x^2) + eps)) as one fused operator (six in transformers)."""
    return F.rms_norm(x, weight.shape, weight, eps)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


SPLIT_MIN = 600_000  # weights with fewer numbers stay one product (SmolLM2: the MLP's three and the head split)


def split_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x @ weight.T for one row, computed as a batch of two half-matrix products (`torch.bmm` over a view:
    no copy). PyTorch runs one matrix-vector product on one thread; a batch of two runs on two, so both
    cores read the weights. The sums are the same numbers added in another order: the result differs
    from F.linear in the last bits (up to ~6e-5 on SmolLM2's logits, as transformers' own StaticCache differs
    from its DynamicCache), and the greedy tokens are the same (tests/backends/test_inference_fast.py)."""
    rows = weight.shape[0]
    if x.shape[0] != 1 or weight.numel() < SPLIT_MIN or rows % 2 or not weight.is_contiguous():
        return F.linear(x, weight)
    halves = weight.view(2, rows // 2, weight.shape[1])
    return torch.bmm(halves, x.t().expand(2, -1, 1)).reshape(1, rows)


def fast_logits(cache: FastCache, new_ids: torch.Tensor) -> torch.Tensor:
    """Scores for the token after `new_ids` ([1, new]) given what `cache` holds; appends to the cache.

    The same operations as transformers' LlamaForCausalLM with its SDPA attention, on one row."""
    if new_ids.dim() != 2 or new_ids.shape[0] != 1:
        raise ValueError(f"FastCache holds one sequence: new_ids must be [1, new], got {tuple(new_ids.shape)}.")
    w, n = cache.weights, new_ids.shape[1]
    cache.reserve(n)
    start, end = cache.length, cache.length + n
    heads, kv_heads, dim = w.heads, w.kv_heads, w.head_dim
    cos, sin = cache.cos[start:end], cache.sin[start:end]
    # A chunk after earlier tokens needs its own mask (is_causal aligns to the top left corner).
    mask = None
    if n > 1 and start:
        mask = torch.ones(n, end, dtype=torch.bool).tril(diagonal=start)
    causal = n > 1 and not start
    lin = split_linear if cache.split and n == 1 else F.linear
    x = F.embedding(new_ids, w.embed)[0]  # [new, hidden]
    for i, (ln1, wq, wk, wv, wo, ln2, wg, wu, wd) in enumerate(w.layers):
        h = rms_norm(x, ln1, w.eps)
        q = rotate(F.linear(h, wq).view(n, heads, dim).transpose(0, 1), cos, sin)
        k = rotate(F.linear(h, wk).view(n, kv_heads, dim).transpose(0, 1), cos, sin)
        cache.keys[i, :, start:end] = k
        cache.values[i, :, start:end] = F.linear(h, wv).view(n, kv_heads, dim).transpose(0, 1)
        att = F.scaled_dot_product_attention(
            q[None],
            cache.keys[i, None, :, :end],
            cache.values[i, None, :, :end],
            attn_mask=mask,
            is_causal=causal,
            scale=w.scaling,
            enable_gqa=True,
        )
        att = att[0].transpose(0, 1).reshape(n, heads * dim)
        x = x + F.linear(att, wo)
        h = rms_norm(x, ln2, w.eps)
        x = x + lin(F.silu(lin(h, wg)) * lin(h, wu), wd)
    cache.length = end
    return lin(rms_norm(x[-1:], w.norm, w.eps), w.head)  # [1, vocab]
