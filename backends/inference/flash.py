"""FlashAttention's idea by hand, and PyTorch's attention kernels measured on this machine.

Plain attention writes the whole score matrix S = QK^T/sqrt(d) (T x T per head) to memory, reads it
back for the softmax, writes P, reads P for PV: four passes over T^2 numbers. FlashAttention never
holds S: it walks the keys in tiles, keeping for every query row a running maximum m, a running sum l
of exp(s - m) and a running output; a new tile rescales what was kept by exp(m_old - m_new). The result
is the same softmax(S)V (up to rounding), with memory O(T x tile) instead of O(T^2) and far less memory
traffic. `tiled_attention` is that loop written out (slow, for reading); `measure_kernels` times the
naive path against `torch.nn.functional.scaled_dot_product_attention` with each backend PyTorch offers
and says which ones run here (on a CPU: the math kernel and a flash-style fused CPU kernel).
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """softmax(QK^T / sqrt(d)) V with the full score matrix materialised, as the Attention page computes it."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        t = q.shape[-2]
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return scores.softmax(-1) @ v


def tiled_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tile: int = 64, causal: bool = True
) -> tuple[torch.Tensor, dict]:
    """Attention over key tiles with the online softmax; returns the output and what it held at most."""
    *lead, t, d = q.shape
    scale = 1.0 / math.sqrt(d)
    out = torch.zeros_like(q)
    m = torch.full((*lead, t, 1), float("-inf"), dtype=q.dtype)
    l = torch.zeros((*lead, t, 1), dtype=q.dtype)  # noqa: E741 - the paper's name
    rows = torch.arange(t).unsqueeze(1)
    for start in range(0, k.shape[-2], tile):
        kt, vt = k[..., start : start + tile, :], v[..., start : start + tile, :]
        s = (q @ kt.transpose(-2, -1)) * scale  # t x tile: the only scores held at once
        if causal:
            cols = torch.arange(start, start + kt.shape[-2]).unsqueeze(0)
            s = s.masked_fill(cols > rows, float("-inf"))
        m_new = torch.maximum(m, s.amax(-1, keepdim=True))
        # Rows whose every key so far is masked keep m = -inf; exp(-inf - -inf) would be nan.
        safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
        p = torch.exp(s - safe)
        correction = torch.exp(m - safe)
        l = l * correction + p.sum(-1, keepdim=True)  # noqa: E741
        out = out * correction + p @ vt
        m = m_new
    held = {"score_elements": t * min(tile, k.shape[-2]), "full_elements": t * k.shape[-2]}
    return out / l, held


def available_backends() -> dict[str, bool]:
    """Which of PyTorch's SDPA backends run on this machine (tried on a small CPU problem)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(1, 2, 8, 16)
    found = {}
    for name in ("MATH", "FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION"):
        backend = getattr(SDPBackend, name, None)
        if backend is None:
            continue
        try:
            with sdpa_kernel([backend]):
                F.scaled_dot_product_attention(q, q, q, is_causal=True)
            found[name] = True
        except RuntimeError:
            found[name] = False
    return found


def _median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def measure_kernels(
    lengths: tuple[int, ...] = (256, 512, 1024, 2048), heads: int = 9, dim: int = 64, repeats: int = 3
) -> list[dict]:
    """ms per causal attention call (one layer of SmolLM2's shape: 9 heads of 64) for the naive path and
    each SDPA backend that runs here, with the score-matrix bytes the naive path materialises and the
    largest difference from the naive output."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    runs = [name for name, ok in available_backends().items() if ok]
    rows = []
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for t in lengths:
            q, k, v = (torch.randn(1, heads, t, dim, generator=gen) for _ in range(3))
            ref = naive_attention(q, k, v)
            row = {
                "tokens": t,
                "naive_ms": 1000 * _median_time(lambda q=q, k=k, v=v: naive_attention(q, k, v), repeats),
                "scores_mb": heads * t * t * 4 / 2**20,
            }
            for name in runs:
                backend = getattr(SDPBackend, name)

                def call(q=q, k=k, v=v, backend=backend):
                    with sdpa_kernel([backend]):
                        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

                row[name.lower() + "_ms"] = 1000 * _median_time(call, repeats)
                row[name.lower() + "_max_diff"] = float((call() - ref).abs().max())
            rows.append(row)
    return rows


def traffic_bytes(tokens: int, heads: int, dim: int, tile: int, dtype_bytes: int = 4) -> dict[str, int]:
    """Memory traffic of one attention call, counted in the FlashAttention paper's model: the naive path
    reads Q, K, V, writes and reads S and P (4 T^2 per head) and writes O; the tiled path reads each
    query tile of `tile` rows once, K and V once per query tile, and writes O once: no T^2 term."""
    t, h, d, b = tokens, heads, dim, dtype_bytes
    qkvo = 4 * h * t * d * b
    naive = qkvo + 4 * h * t * t * b
    query_tiles = math.ceil(t / tile)
    tiled = h * t * d * b * 2 + query_tiles * 2 * h * t * d * b  # Q read + O written, K and V per query tile
    return {"naive": naive, "tiled": tiled}


def kernels_job(ctx, lengths: tuple[int, ...] = (256, 512, 1024, 2048)) -> list[dict]:
    """Background job: `measure_kernels` alone on the machine (an exclusive turn)."""
    from backends.core.scheduler import shared_scheduler

    ctx.report(0.1, "measuring")
    with shared_scheduler().turn("inference.kernels", exclusive=True):
        return measure_kernels(lengths)
