"""What every variant is: a spec (name, bits, whether it runs here, how to build it, its code) and
a runner (logits for quality; prefill and one decode step for speed).

One file per format or library holds the specs of that family (torch_variants, torchao_variants,
onnx_variant, gguf_variant, bnb_variant); catalog.py lists them all.
"""

from __future__ import annotations

import functools
import inspect
import io
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch


class VariantUnavailable(RuntimeError):
    """This variant cannot run on this machine (missing package, kernel or device); the reason is the message."""


@dataclass(frozen=True)
class VariantSpec:
    key: str
    label: str
    family: str  # "torch" | "torchao" | "onnx" | "gguf" | "bitsandbytes"
    bits: float  # bits per weight of the quantized linear layers (scales included where the format fixes them)
    build: Callable[..., Built]  # build(base_model, device, workdir) -> Built, on a copy: never touches base_model
    available: Callable[[str], str | None]  # device -> None when it runs, else the reason
    snippet: str  # the same variant as plain library code, for the "show the code" expander
    int8: bool = False  # counts for the best-int8 speed-up
    # the real bits per weight of the whole file for this model (GGUF: llama.cpp's per-tensor types), or None
    file_bits: Callable[[torch.nn.Module], float] | None = None
    # on the CPU it runs only when picked: the page's list and bench/quantization.py's `all` leave it out
    # (bitsandbytes, ~20 s a row there, and torchao's dynamic int8, ~30 s: the slowest; issue 33)
    cpu_opt_in: bool = False


class Runner:
    """Runs one variant. Subclasses: TorchRunner here, OrtRunner in onnx_variant."""

    kv_cache = True  # False: each decode step recomputes the whole sequence
    speed_note = ""  # shown in the row when the speed is not the format's own

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        """(1, T) token ids -> (1, T, vocab) float32 logits."""
        raise NotImplementedError

    def quality_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """The logits of the perplexity pass: the same numbers as `logits` (to float32 rounding),
        possibly through a faster kernel (TorchRunner's fast_fp32)."""
        return self.logits(ids)

    def start(self, ids: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """Prefill: (state for the next step, float32 logits of the last position)."""
        raise NotImplementedError

    def step(self, state: Any, token: int) -> tuple[Any, torch.Tensor]:
        """One decode step from `state` with the new token."""
        raise NotImplementedError

    def close(self) -> None:
        """Free what the runner holds (the model copy, an inference session)."""


class TorchRunner(Runner):
    """fast_fp32=True (only for a private float32 copy: fp32, GGUF dequantized): the perplexity pass
    runs its nn.Linear layers through oneDNN (see onednn_linears); speed is always the plain model's."""

    def __init__(self, model: torch.nn.Module, speed_note: str = "", fast_fp32: bool = False):
        self.model = model
        self.speed_note = speed_note
        self.fast_fp32 = fast_fp32
        self.device = next(model.parameters()).device

    @torch.inference_mode()
    def logits(self, ids):
        return self.model(input_ids=ids.to(self.device), use_cache=False).logits.float().cpu()

    def quality_logits(self, ids):
        if not self.fast_fp32:
            return self.logits(ids)
        with onednn_linears(self.model):
            return self.logits(ids)

    @torch.inference_mode()
    def start(self, ids):
        """The output head runs for the last position only (`logits_to_keep=1`, as `generate` does):
        the prefill speed is the model's, not 128 unused rows of 49,152 logits."""
        last = {"logits_to_keep": 1} if _keeps_logits(self.model) else {}
        out = self.model(input_ids=ids.to(self.device), use_cache=True, **last)
        return out.past_key_values, out.logits[0, -1].float().cpu()

    @torch.inference_mode()
    def step(self, state, token):
        ids = torch.tensor([[token]], device=self.device)
        out = self.model(input_ids=ids, past_key_values=state, use_cache=True)
        return out.past_key_values, out.logits[0, -1].float().cpu()

    def close(self):
        self.model = None


def _keeps_logits(model: torch.nn.Module) -> bool:
    """Whether the model's forward takes `logits_to_keep` (transformers' causal LMs do)."""
    return "logits_to_keep" in inspect.signature(model.forward).parameters


@functools.cache
def _onednn_linear() -> Callable | None:
    """oneDNN's float32 linear (`torch.ops.mkldnn._linear_pointwise`, the op Inductor fuses into), when
    this torch has it and it agrees with F.linear on a probe; else None.

    Why: PyTorch's float32 matmuls go to MKL's sgemm, which on this AMD CPU runs its AVX2 path
    (~100 GFLOP/s per core measured) while oneDNN uses AVX-512 (~220): SmolLM2's 1024-token
    forward pass went from 499 to 810 tokens/s on two threads, the same logits to 2e-4.
    """
    op = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None
    if op is None:
        return None
    try:
        x, w, b = torch.randn(2, 3, 64), torch.randn(48, 64), torch.randn(48)
        with torch.inference_mode():
            ok = torch.allclose(op(x, w, b, "none", [], ""), torch.nn.functional.linear(x, w, b), atol=1e-4)
    except (RuntimeError, TypeError):
        return None
    return op if ok else None


def _onednn_forward(module: torch.nn.Linear, op, x: torch.Tensor) -> torch.Tensor:
    return op(x, module.weight, module.bias, "none", [], "")


@contextmanager
def onednn_linears(model: torch.nn.Module):
    """Inside the block, the plain float32 CPU nn.Linear layers of `model` run through oneDNN.

    It sets each layer's own `forward` for the block and removes it after: use it on a private copy
    only (a model the cache shares is seen by every session). Layers that are not plain float32
    tensors (torchao's subclasses, bitsandbytes' modules) are left alone.
    """
    op = _onednn_linear()
    patched = []
    if op is not None:
        for module in model.modules():
            weight = getattr(module, "weight", None)
            if (
                type(module) is torch.nn.Linear
                and type(weight.data) is torch.Tensor
                and weight.dtype == torch.float32
                and weight.device.type == "cpu"
            ):
                module.forward = functools.partial(_onednn_forward, module, op)
                patched.append(module)
    try:
        yield len(patched)
    finally:
        for module in patched:
            del module.forward


@dataclass
class Built:
    runner: Runner
    mem_bytes: int  # weights as held in memory by this variant
    disk_bytes: int  # the variant's own serialized file(s)
    quantize_s: float  # conversion time (export + quantize where there is one)
    load_s: float  # copy / deserialize / open-session time
    note: str = ""
    model: torch.nn.Module | None = None  # a torch copy that can be kept in the session
    measures_speed: bool = True  # False: quality only (GGUF dequantized into fp32)
    details: dict = field(default_factory=dict)
    decode_bytes: int | None = None  # weight bytes one decoded token reads (decode_read_bytes)
    bits: float | None = None  # bits per weight of the whole file, when the format's nominal bits are not it
    weight_error: float | None = None  # relative RMSE of the quantized matrices against the baseline's


def torch_built(
    model: torch.nn.Module, quantize_s: float, load_s: float, note: str = "", fast_fp32: bool = False
) -> Built:
    """A torch copy measured: weight bytes in memory, its torch.save size, a runner over it."""
    return Built(
        TorchRunner(model, fast_fp32=fast_fp32),
        state_bytes(model),
        serialized_bytes(model),
        quantize_s,
        load_s,
        note,
        model,
        decode_bytes=decode_read_bytes(model),
    )


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes a tensor really holds: quantized tensor subclasses (torchao) count their inner tensors."""
    if hasattr(t, "__tensor_flatten__") and type(t) is not torch.Tensor and type(t) is not torch.nn.Parameter:
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n)) for n in names)
    if t.is_quantized:
        return t.numel() * t.element_size() + 8 * (
            t.q_per_channel_scales().numel()
            if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
            else 1
        )
    return t.numel() * t.element_size()


def _key(t: torch.Tensor):
    try:
        return t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape)
    except (RuntimeError, NotImplementedError, TypeError):
        return id(t)


def state_bytes(model: torch.nn.Module) -> int:
    """Weight bytes in memory over the state dict, tied weights once (fbgemm's packed weights included)."""
    seen, total = set(), 0
    for value in model.state_dict().values():
        items = value if isinstance(value, (tuple, list)) else (value,)
        for t in items:
            if not isinstance(t, torch.Tensor):
                continue
            k = _key(t)
            if k in seen:
                continue
            seen.add(k)
            total += tensor_bytes(t)
    return total


def decode_read_bytes(model: torch.nn.Module) -> int:
    """Weight bytes one decoded token reads: every weight once (state_bytes), except the input
    embedding table, of which it reads one row. With tied embeddings (SmolLM2) the output head reads
    the whole matrix anyway, so the row comes on top; when the two are separate tensors (untied, or
    the head quantized while the table stays float) the table counts as one row."""
    total = state_bytes(model)
    table, head = embedding_weights(model)
    if table is None:
        return total
    tied = isinstance(head, torch.Tensor) and _key(head) == _key(table)
    return one_row_read(total, tensor_bytes(table), table.shape[0], tied)


def embedding_weights(model: torch.nn.Module) -> tuple[torch.Tensor | None, object]:
    """(the input embedding table, the output head's weight: a tensor, or whatever a quantized head holds)."""
    table = getattr(model.get_input_embeddings(), "weight", None) if hasattr(model, "get_input_embeddings") else None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(table, torch.Tensor) or table.ndim != 2:
        return None, None
    return table, getattr(head, "weight", None)


def one_row_read(total: int, table_bytes: int, rows: int, tied: bool) -> int:
    """`total` weight bytes, with the input embedding table (`table_bytes` over `rows` rows) read as one
    row: on top when the output head reads the whole (tied) matrix anyway, instead of it otherwise."""
    row = table_bytes // rows
    return total + row if tied else total - table_bytes + row


def serialized_bytes(model: torch.nn.Module) -> int:
    """Size of `torch.save(model.state_dict())`: what the variant takes on disk in PyTorch's format."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started
