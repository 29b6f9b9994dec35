"""Prefill against decode on this machine: its memory bandwidth and matmul FLOP rate, measured, the bound
each puts on a phase (the roofline), and the real model's time per token in each phase.

A decode step reads every weight once to make one token: ~2 FLOPs per parameter for 4 bytes read (fp32),
an arithmetic intensity of 0.5 FLOP/byte, far below what the cores could compute per byte the memory
delivers, so memory bandwidth bounds it: tokens/s <= bandwidth / weight bytes. Prefill runs the prompt's
T tokens through the same weights in one pass (2T FLOPs per weight read): its intensity grows with
T until the FLOP rate bounds it: tokens/s <= FLOP rate / (2 x parameters).

Bandwidth is a copy's (bytes read plus bytes written over the time, the way STREAM counts it) on a tensor
far larger than the caches; the FLOP rate is an fp32 square matmul's, both on the threads torch uses.
Attention's own FLOPs and the KV cache's bytes are left out of the bounds (at these lengths they are a
few percent of the weights'): the timings show what they add.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch

from backends.core.scheduler import shared_scheduler

TEXT_FILE_NAME = "areopagitica.txt"  # assets/texts/: real prose to cut prompts of any length from


def timed_median(fn, runs: int) -> float:
    """Median seconds of `runs` calls of fn(), after one call to warm up."""
    fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def machine_bandwidth(mb: int = 256, runs: int = 7) -> float:
    """Memory copy bandwidth in bytes/s: 2 x bytes (read + write) of an `mb` MiB float32 copy over its
    median time."""
    src = torch.ones(mb * 2**20 // 4)
    dst = torch.empty_like(src)
    seconds = timed_median(lambda: dst.copy_(src), runs)
    return 2 * src.numel() * 4 / seconds


def machine_flops(n: int = 1024, runs: int = 5) -> float:
    """fp32 matmul rate in FLOP/s: 2 n^3 FLOPs of an n x n by n x n product over its median time."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    out = torch.empty(n, n)
    seconds = timed_median(lambda: torch.mm(a, b, out=out), runs)
    return 2 * n**3 / seconds


def weight_bytes_per_token(model) -> int:
    """Bytes of weights one decode step reads: every parameter once (a tied embedding/head counted once,
    read in full by the head); an untied input embedding table is read one row per token."""
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is not None and head.weight.data_ptr() == embed.data_ptr()
    seen, total = set(), 0
    for p in model.parameters():
        if p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        total += p.numel() * p.element_size()
    if not tied:
        total -= embed.numel() * embed.element_size() - embed.shape[1] * embed.element_size()
    return total


def matmul_params(model) -> int:
    """Parameters a token is multiplied by (the linear layers and the head; not the embedding lookup or
    the norms' scales, which are a multiply each)."""
    seen, total = set(), 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.weight.data_ptr() not in seen:
            seen.add(module.weight.data_ptr())
            total += module.weight.numel()
    return total


@dataclass(frozen=True)
class Roofline:
    bandwidth: float  # bytes/s, measured
    flops: float  # FLOP/s, measured
    weight_bytes: int  # read per decode step
    flops_per_token: int  # 2 x matmul parameters
    decode_bound: float  # tokens/s = bandwidth / weight_bytes
    prefill_bound: float  # tokens/s = flops / flops_per_token
    ridge: float  # FLOP/byte where the two roofs meet = flops / bandwidth
    decode_intensity: float  # FLOP/byte of one decode step = flops_per_token / weight_bytes

    def prefill_intensity(self, tokens: int) -> float:
        """FLOP/byte of a prefill of `tokens` tokens: the weights are read once for all of them."""
        return tokens * self.flops_per_token / self.weight_bytes

    def attainable(self, intensity: float) -> float:
        """The roofline: FLOP/s reachable at this intensity, min(FLOP rate, bandwidth x intensity)."""
        return min(self.flops, self.bandwidth * intensity)

    def as_dict(self) -> dict:
        return asdict(self)


def roofline(model, bandwidth: float | None = None, flops: float | None = None) -> Roofline:
    """The two bounds for `model` on this machine (bandwidth and FLOP rate measured unless given)."""
    bandwidth = machine_bandwidth() if bandwidth is None else bandwidth
    flops = machine_flops() if flops is None else flops
    wbytes, per_token = weight_bytes_per_token(model), 2 * matmul_params(model)
    return Roofline(
        bandwidth=bandwidth,
        flops=flops,
        weight_bytes=wbytes,
        flops_per_token=per_token,
        decode_bound=bandwidth / wbytes,
        prefill_bound=flops / per_token,
        ridge=flops / bandwidth,
        decode_intensity=per_token / wbytes,
    )


def prompt_of(loaded, tokens: int) -> list[int]:
    """`tokens` token ids of real prose (assets/texts/), for prompts of a chosen length."""
    from backends.core.paths import ASSETS

    text = (ASSETS / "texts" / TEXT_FILE_NAME).read_text(encoding="utf-8")
    ids = loaded.tokenizer(text[: tokens * 12])["input_ids"]
    if len(ids) < tokens:
        raise ValueError(f"The text gives {len(ids)} tokens, fewer than {tokens}.")
    return list(ids[:tokens])


def prefill_ms_per_token(loaded, lengths=(16, 64, 128, 256, 512), runs: int = 3) -> list[dict]:
    """One forward pass over a prompt of each length (transformers, no cache before): ms per prompt token."""
    model, rows = loaded.model, []
    for n in lengths:
        ids = torch.tensor([prompt_of(loaded, n)])
        with torch.inference_mode(), shared_scheduler().turn("inference.prefill"):
            seconds = timed_median(lambda ids=ids: model(input_ids=ids, use_cache=False, logits_to_keep=1), runs)
        ms = seconds * 1000
        rows.append({"tokens": n, "ms": ms, "ms_per_token": ms / n, "tokens_per_s": n / seconds})
    return rows


def decode_ms_per_token(
    loaded, out_lengths=(32, 128, 256, 512), prompt_tokens: int = 16, fast: bool = True
) -> list[dict]:
    """Greedy decode from a short prompt up to the longest output length, one position per step on a KV
    cache (the app's pass: `fast` the hand-written one, else transformers'); the median step time around
    each output length (its last 16 steps)."""
    from backends.decoding import new_cache, next_token_logits

    ids = prompt_of(loaded, prompt_tokens)
    cache = new_cache(loaded, logits_only=True) if fast else new_cache(loaded)
    times, new = [], torch.tensor([ids])
    with torch.inference_mode():
        for _ in range(max(out_lengths) + 1):
            started = time.perf_counter()
            token = int(next_token_logits(loaded, new, cache, len(ids))[0].argmax())
            times.append(time.perf_counter() - started)
            ids.append(token)
            new = torch.tensor([[token]])
    steps = times[1:]  # the first is the prompt's prefill
    rows = []
    for n in out_lengths:
        window = steps[max(0, n - 16) : n]
        ms = statistics.median(window) * 1000
        rows.append({"tokens": n, "ms_per_token": ms, "tokens_per_s": 1000 / ms})
    return rows
