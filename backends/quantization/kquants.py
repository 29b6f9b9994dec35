"""GGUF's Q4_K and Q6_K, encoded here: the `gguf` package (0.19) decodes K-quants but has no K-quant encoder.

A Q4_K super-block holds 256 weights in 144 bytes (4.5 bits per weight):

    d, dmin       2 x float16   the super-block's scale of scales and scale of minimums
    scales        12 bytes      eight 6-bit sub-block scales and eight 6-bit sub-block minimums
    qs            128 bytes     256 unsigned 4-bit values, two per byte

and a weight in sub-block j (32 weights) decodes to `d * sc[j] * q - dmin * m[j]`.

The encoder, written for this app: each sub-block's scale and minimum start from its range and are
refined by least squares on the chosen 4-bit values (a few rounds, kept only where the error drops);
the 6-bit scales and minimums are then rounded against the super-block's float16 `d` and `dmin`, and
the 4-bit values are chosen once more with the rounded scales. llama.cpp's own encoder
(`make_qkx2_quants`) searches the scale on a grid instead, so its blocks differ slightly; the format
is the same, and `gguf.quants.dequantize` reads these bytes back (tested).

A Q6_K super-block holds 256 weights in 210 bytes (6.5625 bits per weight): 256 6-bit values split
into their low 4 bits (`ql`, 128 bytes) and high 2 bits (`qh`, 64 bytes), sixteen signed 8-bit scales
(one per 16 weights) and a float16 `d`; a weight of sub-block j decodes to `d * scales[j] * (q - 32)`.
llama.cpp's Q4_K_M file uses it for the attention-value and MLP down-projection matrices of its
"use more bits" layers (llama_types.py). Our encoder: per 16 weights, the scale that maps the
largest |weight| to -32 is tried at 7 nearby values and refined by least squares, the best kept;
the sixteen scales are then rounded to int8 against `d` and the values chosen once more.

llama.cpp only writes K-quants for rows whose length is a multiple of 256; other tensors fall back
(Q4_K -> Q5_0, Q6_K -> Q8_0, llama-quant.cpp's `tensor_type_fallback`). `FALLBACK` names those
formats; llama_types applies them.
"""

from __future__ import annotations

import numpy as np
import torch

QK_K = 256  # weights per super-block
SUB = 32  # weights per sub-block
BLOCK_BYTES = 144
Q6_BLOCK_BYTES = 210
FALLBACK = {"Q4_K": "Q5_0", "Q6_K": "Q8_0"}  # llama.cpp's format for a tensor whose rows are not a multiple of 256


def supports(cols: int) -> bool:
    return cols % QK_K == 0


def _fit(x: torch.Tensor, scale: torch.Tensor, low: torch.Tensor, rounds: int = 4):
    """Per sub-block (rows of x, 32 weights): scale and minimum of x ~ scale * q - low with q in 0..15,
    refined by least squares on q. Returns (scale >= 0, low >= 0)."""

    def error(s, m):
        q = ((x + m[:, None]) / s.clamp(min=1e-30)[:, None]).round().clamp(0, 15)
        return ((s[:, None] * q - m[:, None] - x) ** 2).sum(-1), q

    best, q = error(scale, low)
    n = x.shape[-1]
    for _ in range(rounds):
        sq, sqq, sx, sqx = q.sum(-1), (q * q).sum(-1), x.sum(-1), (q * x).sum(-1)
        det = n * sqq - sq * sq
        ok = det > 0
        s_new = torch.where(ok, (n * sqx - sq * sx) / det.clamp(min=1e-30), scale)
        m_new = torch.where(ok, (s_new * sq - sx) / n, low)  # x = s*q - m  =>  m = (s*sum q - sum x) / n
        negative = m_new < 0  # the format's minimum is subtracted and non-negative: refit through 0
        s_new = torch.where(negative, sqx / sqq.clamp(min=1e-30), s_new)
        m_new = m_new.clamp(min=0)
        s_new = s_new.clamp(min=0)
        err, q_new = error(s_new, m_new)
        better = err < best
        scale, low = torch.where(better, s_new, scale), torch.where(better, m_new, low)
        best = torch.where(better, err, best)
        q = torch.where(better[:, None], q_new, q)
    return scale, low


def _half(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float16).to(torch.float32)


def quantize_q4_k(weights: np.ndarray) -> np.ndarray:
    """(rows, cols) float weights, cols a multiple of 256 -> (rows, cols / 256 * 144) uint8 Q4_K blocks."""
    rows, cols = weights.shape
    if not supports(cols):
        raise ValueError(f"Q4_K needs rows of a multiple of {QK_K} weights; this tensor's rows have {cols}.")
    x = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32)).reshape(-1, SUB)
    low = (-x.amin(-1)).clamp(min=0)
    scale = (x.amax(-1) + low) / 15
    scale, low = _fit(x, scale, low)
    scale, low = scale.reshape(-1, 8), low.reshape(-1, 8)  # per super-block: 8 sub-blocks

    d = _half(scale.amax(-1) / 63)
    dmin = _half(low.amax(-1) / 63)
    sc = torch.where(d[:, None] > 0, scale / d.clamp(min=1e-30)[:, None], 0).round().clamp(0, 63)
    m = torch.where(dmin[:, None] > 0, low / dmin.clamp(min=1e-30)[:, None], 0).round().clamp(0, 63)
    step = (d[:, None] * sc).reshape(-1, 1)
    offset = (dmin[:, None] * m).reshape(-1, 1)
    q = torch.where(step > 0, (x + offset) / step.clamp(min=1e-30), 0).round().clamp(0, 15)
    q = q.to(torch.uint8).reshape(-1, 4, 2, SUB)  # sub-blocks 2j (low nibbles) and 2j+1 (high) share 32 bytes

    sc, m = sc.to(torch.uint8), m.to(torch.uint8)
    packed = torch.cat(
        [
            (sc[:, :4] & 0x3F) | ((sc[:, 4:] >> 4) << 6),  # bytes 0-3: scales 0-3, top bits of scales 4-7
            (m[:, :4] & 0x3F) | ((m[:, 4:] >> 4) << 6),  # bytes 4-7: minimums 0-3, top bits of minimums 4-7
            (sc[:, 4:] & 0x0F) | ((m[:, 4:] & 0x0F) << 4),  # bytes 8-11: low bits of scales and minimums 4-7
        ],
        dim=-1,
    )
    qs = (q[:, :, 0] | (q[:, :, 1] << 4)).reshape(-1, 128)
    head = torch.stack([d, dmin], -1).to(torch.float16).numpy().view(np.uint8)  # (blocks, 4)
    blocks = np.concatenate([head, packed.numpy(), qs.numpy()], axis=-1)
    return blocks.reshape(rows, cols // QK_K * BLOCK_BYTES)


def _fit_signed(x: torch.Tensor, levels: int = 32, tries: int = 3) -> torch.Tensor:
    """Per row of x (16 weights): the scale s of x ~ s * q, q in -levels..levels-1, with the smallest
    squared error among the scales that send the largest |x| to -levels + k / 10 (k = -tries..tries),
    each refined once by least squares on its q."""
    big = x.gather(-1, x.abs().argmax(-1, keepdim=True)).squeeze(-1)  # signed: the largest |weight|
    best_s = torch.zeros_like(big)
    best_err = (x * x).sum(-1)  # s = 0 decodes to all zeros
    for k in range(-tries, tries + 1):
        s = big / -(levels + k / 10)
        for refine in (False, True):
            safe = torch.where(s != 0, s, 1.0)
            q = (x / safe[:, None]).round().clamp(-levels, levels - 1)
            q = torch.where(s[:, None] != 0, q, 0)
            if refine:
                sqq = (q * q).sum(-1)
                s = torch.where(sqq > 0, (q * x).sum(-1) / sqq.clamp(min=1e-30), s)
                q = (x / torch.where(s != 0, s, 1.0)[:, None]).round().clamp(-levels, levels - 1)
                q = torch.where(s[:, None] != 0, q, 0)
            err = ((s[:, None] * q - x) ** 2).sum(-1)
            better = err < best_err
            best_s, best_err = torch.where(better, s, best_s), torch.where(better, err, best_err)
    return best_s


def quantize_q6_k(weights: np.ndarray) -> np.ndarray:
    """(rows, cols) float weights, cols a multiple of 256 -> (rows, cols / 256 * 210) uint8 Q6_K blocks."""
    rows, cols = weights.shape
    if not supports(cols):
        raise ValueError(f"Q6_K needs rows of a multiple of {QK_K} weights; this tensor's rows have {cols}.")
    x = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32)).reshape(-1, 16)
    scale = _fit_signed(x).reshape(-1, 16)  # per super-block: 16 sub-blocks of 16
    big = scale.gather(-1, scale.abs().argmax(-1, keepdim=True)).squeeze(-1)
    d = _half(torch.where(big != 0, big / -128, 0))  # the largest |scale| becomes -128
    sc = torch.where(d[:, None] != 0, scale / torch.where(d != 0, d, 1.0)[:, None], 0).round().clamp(-128, 127)
    step = (d[:, None] * sc).reshape(-1, 1)
    q = torch.where(step != 0, x / torch.where(step != 0, step, 1.0), 0).round().clamp(-32, 31)
    L = (q + 32).to(torch.uint8).reshape(-1, 2, 4, 32)  # per half (128 weights): four runs of 32
    low = L & 0x0F
    ql = torch.stack([low[:, :, 0] | (low[:, :, 2] << 4), low[:, :, 1] | (low[:, :, 3] << 4)], 2)
    qh = (L[:, :, 0] >> 4) | ((L[:, :, 1] >> 4) << 2) | ((L[:, :, 2] >> 4) << 4) | ((L[:, :, 3] >> 4) << 6)
    blocks = np.concatenate(
        [
            ql.reshape(-1, 128).numpy(),
            qh.reshape(-1, 64).numpy(),
            sc.to(torch.int8).numpy().view(np.uint8),
            d.to(torch.float16).numpy().view(np.uint8).reshape(-1, 2),
        ],
        axis=-1,
    )
    return blocks.reshape(rows, cols // QK_K * Q6_BLOCK_BYTES)


def _scales_mins(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(blocks, 12) packed bytes -> the eight 6-bit scales and the eight 6-bit minimums per block."""
    s = packed.to(torch.int32)
    sc = torch.cat([s[:, 0:4] & 0x3F, (s[:, 8:12] & 0x0F) | ((s[:, 0:4] >> 6) << 4)], -1)
    m = torch.cat([s[:, 4:8] & 0x3F, (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)], -1)
    return sc, m


def dequantize_q4_k(blocks: np.ndarray, cols: int) -> np.ndarray:
    """Our own reading of the bytes (the parity test compares it with gguf's)."""
    b = torch.from_numpy(np.ascontiguousarray(blocks)).reshape(-1, BLOCK_BYTES)
    d = torch.from_numpy(b[:, 0:2].numpy().copy().view(np.float16).astype(np.float32))
    dmin = torch.from_numpy(b[:, 2:4].numpy().copy().view(np.float16).astype(np.float32))
    sc, m = (v.float() for v in _scales_mins(b[:, 4:16]))
    qs = b[:, 16:].to(torch.int32).reshape(-1, 4, SUB)
    q = torch.stack([qs & 0x0F, qs >> 4], 2).reshape(-1, 8, SUB).float()
    w = d.reshape(-1, 1, 1) * sc[..., None] * q - dmin.reshape(-1, 1, 1) * m[..., None]
    return w.reshape(-1, cols).numpy()


def superblock(blocks: np.ndarray, original: np.ndarray) -> dict:
    """One Q4_K super-block (144 bytes) taken apart against the 256 weights it encodes: d and dmin,
    and per sub-block its 6-bit scale and minimum, the step and offset they give, and its RMSE."""
    raw = np.ascontiguousarray(blocks, dtype=np.uint8).reshape(BLOCK_BYTES)
    decoded = dequantize_q4_k(raw[None], QK_K)[0]
    d, dmin = (float(v) for v in raw[:4].copy().view(np.float16))
    sc, m = (v[0].numpy() for v in _scales_mins(torch.from_numpy(raw[None, 4:16].copy())))
    err = (decoded - np.asarray(original, dtype=np.float32)).reshape(8, SUB)
    return {
        "d": d,
        "dmin": dmin,
        "nbytes": BLOCK_BYTES,
        "decoded": decoded,
        "rows": [
            {
                "sub_block": j,
                "sc": int(sc[j]),
                "m": int(m[j]),
                "step": d * sc[j],
                "offset": dmin * m[j],
                "rmse": float(np.sqrt((err[j] ** 2).mean())),
            }
            for j in range(8)
        ],
    }
