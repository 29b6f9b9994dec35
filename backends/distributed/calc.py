"""Memory per rank for training a decoder: parameters, gradients, optimizer state and activations,
for DDP (every rank a full replica) and ZeRO stages 1-3 (FSDP shards optimizer state, then
gradients, then parameters across the ranks).

Bytes per parameter (Rajbhandari et al. 2020, "ZeRO", section 3.1), AdamW with its two states:
  fp32:          4 (weights) + 4 (gradients) + 8 (exp_avg, exp_avg_sq)
  bf16 mixed:    2 (bf16 weights) + 2 (bf16 gradients) + 12 (fp32 master copy + two fp32 states)
DDP keeps all of it on every rank; ZeRO-1 divides the optimizer part by N ranks, ZeRO-2 also the
gradients, ZeRO-3 (FSDP's full sharding) also the weights.

Activations (bytes autograd keeps for the backward pass, no recomputation), per micro-batch b and
sequence s, hidden h, a heads, L layers, vocabulary V, element size e:
- our GPT (derived from its saved tensors, and checked against them in the tests):
    per layer  e*b*s*(16h + 4) + e*b*a*s^2 + s^2 (the causal mask as bools)
      = layer-norm inputs 2h and their mean/rstd 4, linear inputs h (qkv) + h (proj) + h (fc) + 4h
        (proj), the q, k, v copies 3h, the GELU input 4h, the softmax output a*s per token
    head       e*b*s*(2h + 2 + V) + 16*b*s (token ids and targets, int64) + e (the loss)
- a Llama-style preset: Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
  Transformer Models"), 34*s*b*h + 5*a*s^2*b bytes per layer in 16-bit, times e/2, plus the
  logits the loss keeps in fp32 (4*b*s*V). An estimate: their count assumes a GELU MLP of 4h and
  dropout masks, Llama has SwiGLU and no dropout; it does not know about FlashAttention (which keeps
  no s^2 term).
Not counted: temporary buffers (the all-gathered layer FSDP holds during its forward and backward,
DDP's communication buckets when gradients are not bucket views), the allocator's slack, the
CUDA context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STRATEGIES = ("ddp", "zero1", "zero2", "zero3")
DTYPES = ("fp32", "bf16")
# dtype -> bytes per parameter of (weights, gradients, optimizer state incl. master weights)
BYTES_PER_PARAM = {"fp32": (4, 4, 8), "bf16": (2, 2, 12)}
ACT_BYTES = {"fp32": 4, "bf16": 2}


@dataclass(frozen=True)
class ModelShape:
    """A decoder's published shape. kind "llama" (RMSNorm, GQA, SwiGLU, no biases) or "gpt" (ours)."""

    name: str
    n_layer: int
    hidden: int
    n_head: int
    n_kv_head: int
    intermediate: int
    vocab: int
    seq: int  # the sequence length to assume by default
    tied: bool = False  # output head shares the embedding
    kind: str = "llama"
    bias: bool = True  # gpt only
    block_size: int = 0  # gpt only: learned position table rows

    def __post_init__(self):
        for name in ("n_layer", "hidden", "n_head", "n_kv_head", "intermediate", "vocab", "seq"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")
        if self.hidden % self.n_head or self.n_head % self.n_kv_head:
            raise ValueError("hidden must divide by the heads, and the heads by the key/value heads.")


# Published configs (config.json on the Hugging Face hub).
PRESETS = {
    "smollm2-135m": ModelShape("SmolLM2-135M", 30, 576, 9, 3, 1536, 49152, 2048, tied=True),
    "llama2-7b": ModelShape("Llama-2-7B", 32, 4096, 32, 32, 11008, 32000, 4096),
    "llama2-13b": ModelShape("Llama-2-13B", 40, 5120, 40, 40, 13824, 32000, 4096),
    "llama2-70b": ModelShape("Llama-2-70B", 80, 8192, 64, 8, 28672, 32000, 4096),
    "llama3-8b": ModelShape("Llama-3-8B", 32, 4096, 32, 8, 14336, 128256, 8192),
    "llama3-70b": ModelShape("Llama-3-70B", 80, 8192, 64, 8, 28672, 128256, 8192),
}


def gpt_shape(config, name: str = "scratch GPT") -> ModelShape:
    """Our scratch GPT (a backends.scratch_gpt GPTConfig with learned positions) as a ModelShape."""
    return ModelShape(
        name,
        config.n_layer,
        config.n_embd,
        config.n_head,
        config.n_head,
        4 * config.n_embd,
        config.vocab_size,
        config.block_size,
        tied=True,
        kind="gpt",
        bias=config.bias,
        block_size=config.block_size if config.positions == "learned" else 0,
    )


def param_shapes(m: ModelShape) -> list[tuple[int, ...]]:
    """Every parameter tensor's shape, in the order the model registers them (a tied head counts once)."""
    h, i = m.hidden, m.intermediate
    if m.kind == "gpt":
        b = m.bias
        shapes = [(m.vocab, h)] + ([(m.block_size, h)] if m.block_size else [])
        for _ in range(m.n_layer):
            shapes += [(h,)] + [(h,)] * b  # ln_1
            shapes += [(3 * h, h)] + [(3 * h,)] * b + [(h, h)] + [(h,)] * b  # attention
            shapes += [(h,)] + [(h,)] * b  # ln_2
            shapes += [(i, h)] + [(i,)] * b + [(h, i)] + [(h,)] * b  # MLP
        return shapes + [(h,)] + [(h,)] * b  # ln_f
    kv = m.n_kv_head * (h // m.n_head)
    shapes = [(m.vocab, h)]
    for _ in range(m.n_layer):
        shapes += [(h, h), (kv, h), (kv, h), (h, h), (i, h), (i, h), (h, i), (h,), (h,)]
    shapes += [(h,)]
    return shapes if m.tied else [*shapes, (m.vocab, h)]


def param_count(m: ModelShape) -> int:
    return sum(math.prod(s) for s in param_shapes(m))


def shard_rows(rows: int, world: int, rank: int) -> int:
    """Rows of a dim-0 shard on `rank`: torch.chunk's split, as FSDP2 uses (chunks of ceil(rows/world))."""
    chunk = -(-rows // world)
    return max(0, min(chunk, rows - rank * chunk))


def local_numel(shapes: list[tuple[int, ...]], world: int, rank: int) -> int:
    """Elements this rank holds when every tensor is sharded on its first dimension."""
    return sum(shard_rows(s[0], world, rank) * math.prod(s[1:]) for s in shapes)


def activation_bytes(m: ModelShape, micro_batch: int, seq: int, dtype: str = "fp32") -> int:
    """Bytes saved for backward by one forward pass of `micro_batch` sequences of `seq` tokens (module doc)."""
    e, b, s, h, a = ACT_BYTES[dtype], micro_batch, seq, m.hidden, m.n_head
    if m.kind == "gpt":
        layer = e * b * s * (16 * h + 4) + e * b * a * s * s + s * s
        return m.n_layer * layer + e * b * s * (2 * h + 2 + m.vocab) + 16 * b * s + e
    layer = (34 * s * b * h + 5 * a * s * s * b) * e // 2
    return m.n_layer * layer + 4 * b * s * m.vocab


@dataclass(frozen=True)
class MemoryEstimate:
    params: int
    grads: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer + self.activations

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("params", "grads", "optimizer", "activations")} | {"total": self.total}


def memory_per_rank(
    m: ModelShape,
    ranks: int,
    strategy: str = "ddp",
    dtype: str = "fp32",
    micro_batch: int = 1,
    seq: int | None = None,
    rank: int | None = None,
) -> MemoryEstimate:
    """Bytes one rank holds while training `m` on `ranks` ranks with `strategy` (STRATEGIES) and `dtype`.

    micro_batch: sequences per rank per step. rank=None divides evenly (P / N, what a plan needs);
    a rank number counts that rank's real shards (torch.chunk's uneven split, and AdamW's step
    counter, one fp32 scalar per parameter tensor), which is what the run measures.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}.")
    if dtype not in DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}.")
    if ranks < 1 or micro_batch < 1:
        raise ValueError("ranks and micro_batch must be at least 1.")
    w, g, o = BYTES_PER_PARAM[dtype]
    shapes = param_shapes(m)
    full = sum(math.prod(s) for s in shapes)
    if rank is None:
        shard = full / ranks
        steps = 0
    else:
        shard = local_numel(shapes, ranks, rank)
        steps = 4 * len(shapes)
    level = STRATEGIES.index(strategy)  # ddp 0, zero1 1 (optimizer), zero2 2 (+grads), zero3 3 (+params)
    return MemoryEstimate(
        params=round(w * (shard if level >= 3 else full)),
        grads=round(g * (shard if level >= 2 else full)),
        optimizer=round(o * (shard if level >= 1 else full)) + steps,
        activations=activation_bytes(m, micro_batch, seq or m.seq, dtype),
    )
