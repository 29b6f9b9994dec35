"""Measurements of one variant: perplexity over strided windows, KL divergence and same-top-token
share against fp32 on the same tokens, prefill and decode speed (each timed forward pass is one
turn of the compute scheduler), peak RSS, the greedy continuation, and the memory-bandwidth bound.
"""

from __future__ import annotations

import functools
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
    each token is scored at most once, with up to `window - stride` tokens of context before it.
    With stride = window (the default) every token is computed once, and a window's first token,
    which has no context inside its window, is not scored."""
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
    """fp32's answers on the scored tokens: top token and NLL of every one of them, full log-probs
    for the first `kld_tokens`."""

    top1: list = field(default_factory=list)  # one int tensor per window
    nll: list = field(default_factory=list)  # one float32 tensor per window: each token's NLL
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
    delta_se: float | None = None  # standard error of (mean NLL - fp32's) over the same tokens, windows as clusters
    delta_windows: int | None = None  # the windows behind delta_se: its degrees of freedom are one fewer


@functools.cache
def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (scipy's): the factor of a
    two-sided 95% interval from `df + 1` independent samples (12.71 for 1, 2.776 for 4, 1.96 in the
    limit)."""
    if df < 1:
        raise ValueError(f"df = {df}: a t interval needs at least two samples.")
    from scipy.stats import t as student

    return float(student.ppf(0.975, df))


def paired_se(window_sums: list[tuple[float, int]]) -> float | None:
    """Standard error of the mean per-token NLL difference to fp32, from per-window (sum of the
    differences, tokens): the windows are the independent units (tokens inside one share context),
    the cluster-robust estimate of a ratio mean. None with fewer than two windows."""
    k = len(window_sums)
    if k < 2:
        return None
    total = sum(n for _, n in window_sums)
    mean = sum(d for d, _ in window_sums) / total
    spread = sum((d - mean * n) ** 2 for d, n in window_sums)
    return math.sqrt(k / (k - 1) * spread) / total


def quality(
    runner: Runner,
    ids: torch.Tensor,
    spans,
    reference: Reference | None = None,
    fill: bool = False,
    should_stop=lambda: False,
    on_window=None,
) -> Quality | None:
    """Perplexity = exp(mean NLL) over every scored token of the strided windows.

    fill=True (the fp32 pass) records fp32's answers into `reference`; otherwise KLD, top-1 and the
    paired standard error are measured against it when given. Each window's forward pass is one
    exclusive scheduler turn (every core, nothing beside it). Log-probabilities are float32
    (one log_softmax per window; sums in float64). Returns None when stopped half-way.
    """
    nll, count, kl, kl_count, same, window_sums = 0.0, 0, 0.0, 0, 0, []
    compared = reference is not None and not fill
    for i, (begin, end, first) in enumerate(spans):
        if should_stop():
            return None
        with shared_scheduler().turn(LABEL, exclusive=True):
            logits = runner.quality_logits(ids[:, begin:end])[0]
        logp = torch.log_softmax(logits[first - 1 : -1].float(), dim=-1)
        del logits
        targets = ids[0, begin + first : end]
        token_nll = -logp.gather(1, targets[:, None])[:, 0]
        nll += float(token_nll.double().sum())
        count += targets.numel()
        top = logp.argmax(dim=-1)
        if fill:
            reference.top1.append(top)
            reference.nll.append(token_nll)
            room = reference.kld_tokens - reference.held()
            if room > 0:
                reference.logprobs.append(logp[:room].clone())
        elif compared:
            same += int((top == reference.top1[i]).sum())
            window_sums.append((float((token_nll - reference.nll[i]).double().sum()), targets.numel()))
            if i < len(reference.logprobs):
                ref = reference.logprobs[i]
                n = ref.shape[0]
                kl += float(kl_rows(ref, logp[:n]).double().sum())
                kl_count += n
        if on_window:
            on_window(i + 1, len(spans))
    mean = nll / max(count, 1)
    # KLD >= 0: float32 rounding of two equal models gives -1e-9
    kld = max(kl / kl_count, 0.0) if compared and kl_count else None
    return Quality(
        math.exp(mean),
        mean,
        count,
        kld,
        kl_count,
        same / max(count, 1) if compared else None,
        paired_se(window_sums) if compared else None,
        len(window_sums) if compared else None,
    )


KL_CHUNK = 64  # rows of the KLD per step: a few MB that stay in cache instead of three 200 MB temporaries


def kl_rows(ref: torch.Tensor, logp: torch.Tensor, chunk: int = KL_CHUNK) -> torch.Tensor:
    """KL(ref || logp) of each row, float32: `(ref.exp() * (ref - logp)).sum(-1)` (as F.kl_div with
    log_target=True computes it), the same numbers bit for bit, `chunk` rows at a time in two reused
    buffers. Each chunk has at least two rows (a lone last row joins the chunk before it): a sum over one
    row splits the row across threads, in another order; over two or more rows each row is summed whole,
    as in the one-shot form. The one-shot form cost a third of a window's log_softmax per row
    (issue 33); this one about a third of that."""
    n, vocab = ref.shape
    out = torch.empty(n, dtype=ref.dtype)
    size = min(max(chunk, 2), n)
    p, diff = torch.empty(size + 1, vocab, dtype=ref.dtype), torch.empty(size + 1, vocab, dtype=ref.dtype)
    begin = 0
    while begin < n:
        end = n if n - begin <= size + 1 else begin + size  # never leave a single row for the last chunk
        m = end - begin
        torch.exp(ref[begin:end], out=p[:m])
        torch.sub(ref[begin:end], logp[begin:end], out=diff[:m])
        p[:m].mul_(diff[:m])
        torch.sum(p[:m], dim=-1, out=out[begin:end])
        begin = end
    return out


@dataclass(frozen=True)
class Speed:
    prefill_tps: list  # tokens/s per run
    decode_step_s: list  # seconds per decode step, all runs pooled
    continuation_ids: list  # greedy tokens of the first run
    decode_runs: int = 0  # decode runs made (fewer than asked when they had settled, see `speed`)

    def prefill(self) -> tuple[float, float]:
        """(median, p90-slow) prefill tokens/s."""
        return statistics.median(self.prefill_tps), float(np.percentile(self.prefill_tps, 10))

    def decode(self) -> tuple[float, float]:
        """(tokens/s at the median step time, tokens/s at the 90th-percentile step time)."""
        return 1 / statistics.median(self.decode_step_s), 1 / float(np.percentile(self.decode_step_s, 90))


SETTLE = 0.03  # decode runs stop once their median step times agree within 3% (at least two runs)


def speed(
    runner: Runner,
    prefill_ids: torch.Tensor,
    prompt_ids: torch.Tensor,
    new_tokens: int,
    runs: int,
    should_stop=lambda: False,
    settle: float | None = SETTLE,
) -> Speed | None:
    """Prefill `prefill_ids` `runs` times; greedy-decode `new_tokens` from `prompt_ids` up to `runs` times.

    Decode runs stop early once they agree: after at least two, when the runs' median step times lie
    within `settle` of each other (relative to their median; None: always `runs`). A third run of a
    row whose first two medians differ by under 3% moves its median by less than that, and it was a
    third of the table's speed time (issue 33); a noisy row still gets every run.

    Each timed forward pass holds one exclusive turn of the compute scheduler (every core, nothing
    beside it), and is timed inside it, so a step waiting behind another session's work is not
    counted as this variant's time, nor slowed by work running beside it.
    """
    scheduler = shared_scheduler()
    prefill_tps, steps, continuation = [], [], []
    with scheduler.turn(LABEL, exclusive=True):
        runner.start(prompt_ids)  # warm-up: first-call allocations and lazy kernel choices
    for _ in range(runs):
        if should_stop():
            return None
        with scheduler.turn(LABEL, exclusive=True):
            started = time.perf_counter()
            runner.start(prefill_ids)
            prefill_tps.append(prefill_ids.shape[1] / (time.perf_counter() - started))
    medians = []
    for r in range(runs):
        if should_stop():
            return None
        with scheduler.turn(LABEL, exclusive=True):
            state, last = runner.start(prompt_ids)
        token = int(last.argmax())
        run_steps = []
        for _ in range(new_tokens):
            if r == 0:
                continuation.append(token)
            with scheduler.turn(LABEL, exclusive=True):
                started = time.perf_counter()
                state, last = runner.step(state, token)
                run_steps.append(time.perf_counter() - started)
            token = int(last.argmax())
        steps += run_steps
        medians.append(statistics.median(run_steps))
        if settled(medians, settle):
            break
    return Speed(prefill_tps, steps, continuation, len(medians))


def settled(medians: list[float], settle: float | None) -> bool:
    """Whether at least two runs' median step times agree within `settle` of their median."""
    if settle is None or len(medians) < 2:
        return False
    return (max(medians) - min(medians)) / statistics.median(medians) <= settle


def greedy_ids(runner: Runner, prompt_ids: torch.Tensor, new_tokens: int) -> list[int]:
    """The greedy continuation alone (for variants whose speed is not measured)."""
    with shared_scheduler().turn(LABEL, exclusive=True):
        state, last = runner.start(prompt_ids)
    out = []
    for _ in range(new_tokens):
        token = int(last.argmax())
        out.append(token)
        with shared_scheduler().turn(LABEL, exclusive=True):
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
        with shared_scheduler().turn(LABEL, exclusive=True):
            started = time.perf_counter()
            dst.copy_(src)
            best = min(best, time.perf_counter() - started)
    return 2 * n * 4 / best
