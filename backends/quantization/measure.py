"""Measurements of one variant: perplexity over strided windows, KL divergence and same-top-token
share against fp32 on the same tokens, prefill and decode speed (each timed forward pass is one
turn of the compute scheduler), peak RSS, the greedy continuation, and the memory-bandwidth bound.
"""
from __future__ import annotations

import math
import statistics
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import psutil
import torch

from backends.core.scheduler import shared_scheduler
from backends.quantization.variants import Runner

LABEL = "quantization"


def windows(n_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored position) per window, Hugging Face's strided perplexity recipe:
    each token is scored once, with up to `window - stride` tokens of context before it."""
    if window < 2 or not 0 < stride <= window:
        raise ValueError(f"need window >= 2 and 0 < stride <= window; got window={window}, stride={stride}.")
    spans, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + window, n_tokens)
        first = max(prev_end, begin + 1) - begin  # the first token of the text has nothing to predict it
        if end - begin >= 2 and first < end - begin:
            spans.append((begin, end, first))
        prev_end = end
        if end == n_tokens:
            break
    return spans


@dataclass
class Reference:
    """fp32's answers on the scored tokens: top token for all of them, full log-probs for the first `kld_tokens`."""

    top1: list = field(default_factory=list)  # one int tensor per window
    logprobs: list = field(default_factory=list)  # float32 (n, vocab) per window, until kld_tokens are held
    kld_tokens: int = 0

    def held(self) -> int:
        return sum(lp.shape[0] for lp in self.logprobs)


@dataclass(frozen=True)
class Quality:
    perplexity: float
    nll: float  # mean negative log-likelihood (nats per token)
    tokens: int  # scored tokens
    kld: float | None  # mean KL(fp32 || variant) over the first kld_tokens
    kld_tokens: int
    top1: float | None  # share of scored tokens whose top token equals fp32's


def quality(runner: Runner, ids: torch.Tensor, spans, reference: Reference | None = None, fill: bool = False,
            should_stop=lambda: False, on_window=None) -> Quality | None:
    """Perplexity = exp(mean NLL) over every scored token of the strided windows.

    fill=True (the fp32 pass) records fp32's answers into `reference`; otherwise KLD and top-1 are
    measured against it when given. Returns None when stopped half-way.
    """
    nll, count, kl, kl_count, same = 0.0, 0, 0.0, 0, 0
    for i, (begin, end, first) in enumerate(spans):
        if should_stop():
            return None
        with shared_scheduler().turn(LABEL):
            logits = runner.logits(ids[:, begin:end])[0]
        logp = torch.log_softmax(logits[first - 1:-1].double(), dim=-1).float()
        targets = ids[0, begin + first:end]
        nll -= float(logp.gather(1, targets[:, None]).double().sum())
        count += targets.numel()
        top = logp.argmax(dim=-1)
        if fill:
            reference.top1.append(top)
            room = reference.kld_tokens - reference.held()
            if room > 0:
                reference.logprobs.append(logp[:room].clone())
        elif reference is not None:
            same += int((top == reference.top1[i]).sum())
            if i < len(reference.logprobs):
                ref = reference.logprobs[i]
                kl += float((ref.exp() * (ref - logp[:ref.shape[0]])).double().sum())
                kl_count += ref.shape[0]
        if on_window:
            on_window(i + 1, len(spans))
    mean = nll / max(count, 1)
    compared = reference is not None and not fill
    return Quality(math.exp(mean), mean, count, kl / kl_count if compared and kl_count else None, kl_count,
                   same / max(count, 1) if compared else None)


@dataclass(frozen=True)
class Speed:
    prefill_tps: list  # tokens/s per run
    decode_step_s: list  # seconds per decode step, all runs pooled
    continuation_ids: list  # greedy tokens of the first run

    def prefill(self) -> tuple[float, float]:
        """(median, p90-slow) prefill tokens/s."""
        return statistics.median(self.prefill_tps), float(np.percentile(self.prefill_tps, 10))

    def decode(self) -> tuple[float, float]:
        """(tokens/s at the median step time, tokens/s at the 90th-percentile step time)."""
        return 1 / statistics.median(self.decode_step_s), 1 / float(np.percentile(self.decode_step_s, 90))


def speed(runner: Runner, prefill_ids: torch.Tensor, prompt_ids: torch.Tensor, new_tokens: int, runs: int,
          should_stop=lambda: False) -> Speed | None:
    """Prefill `prefill_ids` `runs` times; greedy-decode `new_tokens` from `prompt_ids` `runs` times.

    Each timed forward pass holds one turn of the compute scheduler, and is timed inside it, so a
    step waiting behind another session's work is not counted as this variant's time.
    """
    scheduler = shared_scheduler()
    prefill_tps, steps, continuation = [], [], []
    with scheduler.turn(LABEL):
        runner.start(prompt_ids)  # warm-up: first-call allocations and lazy kernel choices
    for _ in range(runs):
        if should_stop():
            return None
        with scheduler.turn(LABEL):
            started = time.perf_counter()
            runner.start(prefill_ids)
            prefill_tps.append(prefill_ids.shape[1] / (time.perf_counter() - started))
    for r in range(runs):
        if should_stop():
            return None
        with scheduler.turn(LABEL):
            state, last = runner.start(prompt_ids)
        token = int(last.argmax())
        for _ in range(new_tokens):
            if r == 0:
                continuation.append(token)
            with scheduler.turn(LABEL):
                started = time.perf_counter()
                state, last = runner.step(state, token)
                steps.append(time.perf_counter() - started)
            token = int(last.argmax())
    return Speed(prefill_tps, steps, continuation)


def greedy_ids(runner: Runner, prompt_ids: torch.Tensor, new_tokens: int) -> list[int]:
    """The greedy continuation alone (for variants whose speed is not measured)."""
    with shared_scheduler().turn(LABEL):
        state, last = runner.start(prompt_ids)
    out = []
    for _ in range(new_tokens):
        token = int(last.argmax())
        out.append(token)
        with shared_scheduler().turn(LABEL):
            state, last = runner.step(state, token)
    return out


class PeakRSS:
    """Samples this process's resident memory every 20 ms while in the `with` block."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _poll(self):
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self.peak = psutil.Process().memory_info().rss
        self._thread = threading.Thread(target=self._poll, daemon=True, name="quantization-rss")
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def copy_bandwidth(mbytes: int = 256, repeats: int = 5) -> float:
    """Bytes per second a tensor copy moves (read + write), best of a few: the bound decoding runs into."""
    n = mbytes * 2**20 // 4
    src, dst = torch.ones(n), torch.empty(n)
    best = math.inf
    for _ in range(repeats):
        with shared_scheduler().turn(LABEL):
            started = time.perf_counter()
            dst.copy_(src)
            best = min(best, time.perf_counter() - started)
    return 2 * n * 4 / best
