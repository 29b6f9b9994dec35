"""Quantizers written out by hand, to read: int8 absmax and zero-point, per tensor / channel / group,
GGUF's 32-weight block formats (Q8_0 and Q4_0 down to their bytes; Q4_1, Q5_0 and Q5_1 as values read
back), a table of every block format's error on one matrix (with Q4_K from kquants.py), and where the
"how it works" tab takes its matrix from (a model's stack of layers, its weight matrices).

They are checked against the libraries in tests/backends/test_quantization_teaching.py and
test_quantization_how.py: our Q8_0 and Q4_0 bytes and every block format's values read back equal the
`gguf` package's, our int8 per-channel weights equal torchao's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backends.quantization import kquants as K

GRANULARITIES = ("tensor", "channel", "group32", "group64", "group128")
BLOCK = 32  # values per GGUF Q8_0 / Q4_0 block


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """Round to nearest, ties away from zero (C's roundf, which ggml uses), not torch's ties-to-even."""
    a = x.abs()
    whole = torch.floor(a)
    return torch.sign(x) * (whole + (a - whole >= 0.5).to(x.dtype))


@dataclass(frozen=True)
class Quantized:
    """Integer codes, the scale (and zero point) per group, and what they decode back to."""

    q: torch.Tensor  # int8 / uint8 codes, the weight's shape
    scale: torch.Tensor  # one per group
    zero_point: torch.Tensor | None
    dequantized: torch.Tensor
    granularity: str
    symmetric: bool

    def error(self, w: torch.Tensor) -> torch.Tensor:
        return self.dequantized - w

    def rmse(self, w: torch.Tensor) -> float:
        return float(self.error(w).pow(2).mean().sqrt())

    @property
    def scales(self) -> int:
        return self.scale.numel()


def _groups(w: torch.Tensor, granularity: str) -> torch.Tensor:
    """w (out, in) viewed as rows of one quantization group each."""
    if granularity == "tensor":
        return w.reshape(1, -1)
    if granularity == "channel":  # one scale per output row, as torchao's PerRow / PerAxis(0)
        return w.reshape(w.shape[0], -1)
    if granularity.startswith("group"):
        size = int(granularity[5:])
        if w.shape[-1] % size:
            raise ValueError(f"group size {size} does not divide the row length {w.shape[-1]}.")
        return w.reshape(-1, size)
    raise ValueError(f"Unknown granularity {granularity!r}; expected one of {', '.join(GRANULARITIES)}.")


def quantize_int8(
    w: torch.Tensor, granularity: str = "channel", symmetric: bool = True, half_range: float = 127.0
) -> Quantized:
    """8-bit codes for a weight matrix.

    Symmetric (absmax): scale = max|w| / 127, q = round(w / scale) in [-127, 127], zero maps to 0.
    (torchao divides by 127.5, half of the 255 steps from -128 to 127: pass half_range=127.5.)
    Asymmetric (zero point): scale = (max - min) / 255, zero_point = round(-min / scale) - 128,
    q = round(w / scale) + zero_point in [-128, 127]; uses all 256 codes when w is lopsided.
    """
    w = w.detach().float()
    rows = _groups(w, granularity)
    if symmetric:
        scale = rows.abs().amax(dim=1, keepdim=True) / half_range
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        q = torch.clamp(torch.round(rows / scale), -128 if half_range > 127 else -127, 127)
        deq = q * scale
        zero = None
    else:
        lo = torch.minimum(rows.amin(dim=1, keepdim=True), torch.zeros(1))
        hi = torch.maximum(rows.amax(dim=1, keepdim=True), torch.zeros(1))
        scale = (hi - lo) / 255
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        zero = torch.clamp(torch.round(-lo / scale) - 128, -128, 127)
        q = torch.clamp(torch.round(rows / scale) + zero, -128, 127)
        deq = (q - zero) * scale
        zero = zero.flatten()
    return Quantized(
        q.to(torch.int8).reshape(w.shape), scale.flatten(), zero, deq.reshape(w.shape), granularity, symmetric
    )


def error_grid(error: torch.Tensor, cells: tuple[int, int] = (48, 48)) -> np.ndarray:
    """Mean |error| pooled onto a small grid, for a heatmap of where a scheme loses precision."""
    e = error.abs()[None, None]
    pooled = torch.nn.functional.adaptive_avg_pool2d(e, (min(cells[0], e.shape[2]), min(cells[1], e.shape[3])))
    return pooled[0, 0].numpy()


def fitting_granularities(w: torch.Tensor) -> tuple[str, ...]:
    """The granularities this matrix can use: a group size must divide its rows (576 = 4.5 x 128)."""
    return tuple(g for g in GRANULARITIES if not g.startswith("group") or w.shape[-1] % int(g[5:]) == 0)


def granularity_table(w: torch.Tensor) -> list[dict]:
    """RMSE, max error and the scales' own cost for each granularity that fits, symmetric and asymmetric."""
    rows = []
    for g in fitting_granularities(w):
        for symmetric in (True, False):
            qz = quantize_int8(w, g, symmetric)
            err = qz.error(w.float())
            extra = qz.scales * (2 if symmetric else 3)  # fp16 scale (+ int8 zero point) per group
            rows.append(
                {
                    "granularity": g,
                    "symmetric": symmetric,
                    "scales": qz.scales,
                    "rmse": qz.rmse(w),
                    "max_error": float(err.abs().max()),
                    "bits_per_weight": 8 + 8 * extra / w.numel(),
                }
            )
    return rows


def weight_stats(w: torch.Tensor, sigmas: float = 6.0) -> dict:
    """What makes a matrix hard to quantize: its spread and the few large outliers that set absmax."""
    w = w.detach().float().flatten()
    std = float(w.std())
    outliers = int((w.abs() > sigmas * std).sum())
    return {
        "numel": w.numel(),
        "mean": float(w.mean()),
        "std": std,
        "absmax": float(w.abs().max()),
        "absmax_over_std": float(w.abs().max()) / std if std else 0.0,
        "outliers": outliers,
        "outlier_share": outliers / w.numel(),
        "sigmas": sigmas,
    }


# --- GGUF blocks: 32 weights share one float16 scale ------------------------------------------


def _blocks(x) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(-1)
    if x.numel() % BLOCK:
        raise ValueError(f"{x.numel()} values are not a whole number of {BLOCK}-value blocks.")
    return x.reshape(-1, BLOCK)


def _fp16_bytes(d: torch.Tensor) -> np.ndarray:
    return d.to(torch.float16).numpy().view(np.uint8).reshape(-1, 2)


def q8_0(x) -> np.ndarray:
    """GGUF Q8_0: per 32 values, d = max|x| / 127 as float16, then 32 int8 codes round(x / d).

    34 bytes per block (8.5 bits per weight). Like ggml, x is multiplied by 1/d in float32 and
    rounded half away from zero, so the bytes equal llama.cpp's.
    """
    b = _blocks(x)
    d = b.abs().amax(dim=1, keepdim=True) / 127
    inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
    q = round_half_away(b * inv).to(torch.int8)
    return np.concatenate([_fp16_bytes(d), q.numpy().view(np.uint8)], axis=1)


def q4_0(x) -> np.ndarray:
    """GGUF Q4_0: per 32 values, d = (the value with the largest magnitude) / -8 as float16, codes
    q = trunc(x / d + 8.5) clipped to 0..15 (so x ~ d * (q - 8)), two codes per byte: values 0-15
    in the low nibbles, 16-31 in the high nibbles. 18 bytes per block (4.5 bits per weight).
    """
    b = _blocks(x)
    idx = b.abs().argmax(dim=1, keepdim=True)
    d = torch.gather(b, 1, idx) / -8
    inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
    q = torch.clamp(torch.trunc(b * inv + 8.5), 0, 15).to(torch.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    return np.concatenate([_fp16_bytes(d), packed.numpy()], axis=1)


@dataclass(frozen=True)
class Block:
    """One GGUF block taken apart."""

    kind: str
    scale: float
    codes: list[int]  # the integers as stored (Q4_0: 0..15)
    values: list[float]  # what they decode to
    original: list[float]
    nbytes: int


def decode_block(kind: str, raw: np.ndarray, original=None) -> Block:
    """Read one Q8_0 / Q4_0 block's bytes back: scale, codes and the values they stand for."""
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1)
    d = float(raw[:2].view(np.float16)[0])
    if kind == "Q8_0":
        codes = raw[2:].view(np.int8).astype(int).tolist()
        values = [d * c for c in codes]
    elif kind == "Q4_0":
        low, high = raw[2:] & 0x0F, raw[2:] >> 4
        codes = np.concatenate([low, high]).astype(int).tolist()
        values = [d * (c - 8) for c in codes]
    else:
        raise ValueError(f"Unknown block kind {kind!r}; expected Q8_0 or Q4_0.")
    orig = [] if original is None else np.asarray(original, dtype=np.float32).reshape(-1).tolist()
    return Block(kind, d, codes, values, orig, raw.size)


def dequantize_blocks(kind: str, raw: np.ndarray) -> np.ndarray:
    """All blocks of a tensor back to float32 (our own reading of the format)."""
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1, 34 if kind == "Q8_0" else 18)
    d = raw[:, :2].copy().view(np.float16).astype(np.float32)
    if kind == "Q8_0":
        return (raw[:, 2:].copy().view(np.int8).astype(np.float32) * d).reshape(-1)
    codes = np.concatenate([raw[:, 2:] & 0x0F, raw[:, 2:] >> 4], axis=1).astype(np.float32) - 8
    return (codes * d).reshape(-1)


# --- Every block format on one matrix ------------------------------------------------------------

# Weights per block and bytes per block, as GGUF stores them (gguf.constants.GGML_QUANT_SIZES).
FORMATS = {
    "Q8_0": (32, 34),
    "Q5_1": (32, 24),
    "Q5_0": (32, 22),
    "Q4_1": (32, 20),
    "Q4_K": (256, 144),
    "Q4_0": (32, 18),
}


def _half(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float16).to(torch.float32)


def round_trip(kind: str, x) -> np.ndarray:
    """x in one of GGUF's 32-weight block formats and read back (float32, x's shape; ggml's rounding).

    Q8_0 and Q4_0 go through their bytes (q8_0, q4_0). Q5_0: d = (the value of largest magnitude) / -16,
    q = trunc(x / d + 16.5) in 0..31, x ~ d (q - 16). Q4_1 / Q5_1: d = (max - min) / 15 (31),
    q = trunc((x - min) / d + 0.5), x ~ d q + min: one more number per block, the minimum, so the 16 (32)
    levels span the block's range instead of a range symmetric around zero. d and min are float16.
    """
    shape = np.shape(x)
    if kind in ("Q8_0", "Q4_0"):
        return dequantize_blocks(kind, (q8_0 if kind == "Q8_0" else q4_0)(x)).reshape(shape)
    b = _blocks(x)
    if kind == "Q5_0":
        d = torch.gather(b, 1, b.abs().argmax(dim=1, keepdim=True)) / -16
        inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
        out = _half(d) * (torch.clamp(torch.trunc(b * inv + 16.5), 0, 31) - 16)
    elif kind in ("Q4_1", "Q5_1"):
        top = 15 if kind == "Q4_1" else 31
        low = b.amin(dim=1, keepdim=True)
        d = (b.amax(dim=1, keepdim=True) - low) / top
        inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
        out = _half(d) * torch.clamp(torch.trunc((b - low) * inv + 0.5), 0, top) + _half(low)
    else:
        raise ValueError(f"Unknown block format {kind!r}; expected one of {', '.join(FORMATS)}.")
    return out.numpy().reshape(shape)


def format_table(w: torch.Tensor) -> list[dict]:
    """Each GGUF block format on w (out, in): bits per weight, RMSE and max error of the values read
    back, and the RMSE as a multiple of Q4_0's. Rows of w must be a multiple of 32 weights (a block never
    spans two rows); Q4_K is left out unless they are a multiple of 256."""
    x = w.detach().float().cpu().numpy()
    if x.shape[-1] % BLOCK:
        raise ValueError(f"GGUF blocks need rows of a multiple of {BLOCK} weights; these rows have {x.shape[-1]}.")
    rows = []
    for kind, (weights, nbytes) in FORMATS.items():
        if kind == "Q4_K":
            if not K.supports(x.shape[-1]):
                continue
            back = K.dequantize_q4_k(K.quantize_q4_k(x), x.shape[-1])
        else:
            back = round_trip(kind, x)
        err = (back - x).astype(np.float64)
        rows.append(
            {
                "format": kind,
                "bits_per_weight": 8 * nbytes / weights,
                "rmse": float(np.sqrt((err**2).mean())),
                "max_error": float(np.abs(err).max()),
            }
        )
    q4_0 = next(r["rmse"] for r in rows if r["format"] == "Q4_0")
    for r in rows:
        r["vs_q4_0"] = r["rmse"] / q4_0 if q4_0 else float("nan")
    return rows


# --- Where the matrix comes from ------------------------------------------------------------------

PREFERRED = ("output.dense", "mlp.down_proj", "mlp.c_proj")  # the FFN's second matrix: rows of 4 x hidden


def _is_matrix(m: torch.nn.Module) -> bool:
    """nn.Linear, or GPT-2's Conv1D (a linear layer that stores its weight transposed)."""
    weight = getattr(m, "weight", None)
    return isinstance(m, torch.nn.Linear) or (type(m).__name__ == "Conv1D" and weight is not None and weight.ndim == 2)


def matrix_names(block: torch.nn.Module) -> list[str]:
    """The weight matrices of one layer (attention and MLP projections), by module name."""
    return [name for name, m in block.named_modules() if name and _is_matrix(m)]


def layer_stack(model: torch.nn.Module) -> torch.nn.ModuleList | None:
    """The model's repeated layers (Llama's model.layers, BERT's encoder.layer, GPT-2's transformer.h):
    the first ModuleList whose first entry holds weight matrices; None when there is none."""
    for _, m in model.named_modules():
        if isinstance(m, torch.nn.ModuleList) and len(m) and matrix_names(m[0]):
            return m
    return None


def default_matrix(block: torch.nn.Module) -> str:
    """The FFN's down-projection when the layer has one, else the first matrix whose rows hold a whole
    Q4_K super-block (a multiple of 256 weights), else the first matrix."""
    names = matrix_names(block)
    for name in PREFERRED:
        if name in names:
            return name
    return next((n for n in names if K.supports(matrix(block, n).shape[1])), names[0])


def matrix(block: torch.nn.Module, name: str) -> torch.Tensor:
    """A float32 CPU copy of one weight matrix, one output channel per row (Conv1D's is transposed back)."""
    m = block.get_submodule(name)
    w = m.weight.detach()
    return (w if isinstance(m, torch.nn.Linear) else w.t()).float().cpu().clone(memory_format=torch.contiguous_format)
