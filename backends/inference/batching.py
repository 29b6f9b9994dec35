"""Static vs continuous batching, simulated over per-step costs measured on the real model.

A server's step is one forward pass over every running sequence. Its cost grows with the batch much
more slowly than linearly (one pass reads the weights once for all rows), which is why batching pays.
`measure_step_costs` times real forwards of SmolLM2 here; `simulate` replays a seeded stream of
requests through a server that batches one of two ways:

- static: the server waits until it is idle, takes up to `max_batch` queued requests, prefills them
  together and decodes until the longest one is done; requests that finish early keep their slot empty,
  new arrivals wait for the whole batch;
- continuous (iteration-level, Orca / vLLM / TGI): after every step finished requests leave and waiting
  ones join (their prefill runs in that step), up to `max_batch`.

Time is simulated (the costs are the measured ones), so a run is deterministic and takes milliseconds.
The same run drives the paged KV cache (vLLM's PagedAttention): each sequence holds ceil(tokens /
block_size) blocks taken from one free list as it grows and given back when it finishes, against a
contiguous cache that reserves prompt + max output for every sequence up front.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class StepCosts:
    """Seconds per forward: decode(b) = base + per_row * b (least squares over the measured batches),
    prefill = per_token * prompt tokens (a batch's prompts in one pass)."""

    decode_base: float
    decode_per_row: float
    prefill_per_token: float
    measured: tuple[tuple[int, float], ...] = ()  # (batch size, median seconds of one decode step)

    def decode(self, batch: int) -> float:
        return self.decode_base + self.decode_per_row * batch if batch else 0.0

    def prefill(self, tokens: int) -> float:
        return self.prefill_per_token * tokens


@dataclass(frozen=True)
class Request:
    rid: int
    arrival: float
    prompt: int
    output: int


@dataclass
class Done:
    rid: int
    arrival: float
    first_token: float
    finish: float

    @property
    def latency(self) -> float:
        return self.finish - self.arrival

    @property
    def ttft(self) -> float:
        return self.first_token - self.arrival


@dataclass
class SimResult:
    policy: str
    done: list[Done]
    timeline: list[dict]  # one row per step: t, running, waiting, rows used, blocks used
    tokens_out: int
    end: float
    block_size: int
    n_blocks: int
    snapshots: list[dict[int, list[int]]] = field(default_factory=list)  # per step: rid -> physical blocks

    @property
    def throughput(self) -> float:
        return self.tokens_out / self.end if self.end > 0 else 0.0

    def percentile(self, what: str, q: float) -> float:
        values = sorted(getattr(d, what) for d in self.done)
        if not values:
            return 0.0
        pos = (len(values) - 1) * q
        lo, hi = math.floor(pos), math.ceil(pos)
        return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def make_requests(
    n: int, rate: float, prompt: tuple[int, int], output: tuple[int, int], seed: int = 0
) -> list[Request]:
    """n requests, Poisson arrivals at `rate` per second, prompt and output lengths uniform in the ranges."""
    if n < 1 or rate <= 0:
        raise ValueError("need at least one request and a positive arrival rate")
    rng = random.Random(seed)
    t, out = 0.0, []
    for rid in range(n):
        t += rng.expovariate(rate)
        out.append(Request(rid, t, rng.randint(*prompt), rng.randint(*output)))
    return out


class _Blocks:
    """The paged cache's free list: the lowest free block id first (a heap), returned on finish."""

    def __init__(self, size: int):
        self.size = size
        self.free: list[int] = []  # given-back ids; fresh ids come from `self.high`
        self.table: dict[int, list[int]] = {}
        self.high = 0  # blocks ever used: the pool's size

    def grow(self, rid: int, tokens: int) -> None:
        need = math.ceil(tokens / self.size)
        held = self.table.setdefault(rid, [])
        while len(held) < need:
            if self.free:
                held.append(heapq.heappop(self.free))
            else:
                held.append(self.high)
                self.high += 1

    def release(self, rid: int) -> None:
        for block in self.table.pop(rid, []):
            heapq.heappush(self.free, block)

    def used(self) -> int:
        return sum(len(b) for b in self.table.values())


def simulate(
    requests: list[Request], costs: StepCosts, policy: str, max_batch: int, block_size: int = 16
) -> SimResult:
    """Replay `requests` through a server batching by `policy` ("static" or "continuous")."""
    if policy not in ("static", "continuous"):
        raise ValueError(f"unknown policy {policy!r}")
    if max_batch < 1:
        raise ValueError("max_batch must be at least 1")
    pending = sorted(requests, key=lambda r: r.arrival)
    queue: list[Request] = []
    running: dict[int, dict] = {}  # rid -> {req, made, first}
    blocks = _Blocks(block_size)
    done: list[Done] = []
    timeline: list[dict] = []
    snapshots: list[dict[int, list[int]]] = []
    t, tokens_out = 0.0, 0

    def arrive(now: float) -> None:
        while pending and pending[0].arrival <= now + 1e-12:
            queue.append(pending.pop(0))

    while pending or queue or running:
        arrive(t)
        if not running and not queue:
            t = pending[0].arrival
            continue
        joining: list[Request] = []
        if policy == "continuous" or not running:
            while queue and len(running) + len(joining) < max_batch:
                joining.append(queue.pop(0))
        # One step: the joiners' prompts are prefilled and give their first token; every running row decodes one.
        step = costs.prefill(sum(r.prompt for r in joining)) + costs.decode(len(running))
        t += step
        for r in joining:
            running[r.rid] = {"req": r, "made": 1, "first": t, "over": False}
            blocks.grow(r.rid, r.prompt + 1)
        fresh = {r.rid for r in joining}
        # A static batch's finished rows still ride along (their slot computes padding) but make no tokens.
        decoded = [rid for rid, s in running.items() if rid not in fresh and not s["over"]]
        for rid in decoded:
            running[rid]["made"] += 1
            blocks.grow(rid, running[rid]["req"].prompt + running[rid]["made"])
        tokens_out += len(joining) + len(decoded)
        snapshots.append({rid: list(b) for rid, b in blocks.table.items()})
        for rid, s in list(running.items()):
            if not s["over"] and s["made"] >= s["req"].output:
                s["over"] = True
                done.append(Done(rid, s["req"].arrival, s["first"], t))
                if policy == "continuous":
                    del running[rid]
                    blocks.release(rid)
        if policy == "static" and running and all(s["over"] for s in running.values()):
            for rid in list(running):
                blocks.release(rid)
            running.clear()
        arrive(t)
        timeline.append(
            {
                "t": t,
                "running": sum(1 for s in running.values() if not s["over"]),
                "slots": len(running),
                "waiting": len(queue),
                "blocks": blocks.used(),
            }
        )
    done.sort(key=lambda d: d.rid)
    return SimResult(policy, done, timeline, tokens_out, t, block_size, blocks.high, snapshots)


def contiguous_reserved(requests: list[Request], running_ids: list[int], max_output: int) -> int:
    """Tokens a contiguous cache reserves for these sequences: prompt + the longest output allowed, each."""
    by_id = {r.rid: r for r in requests}
    return sum(by_id[rid].prompt + max_output for rid in running_ids)


def fit_costs(measured: list[tuple[int, float]], prefill_per_token: float) -> StepCosts:
    """Least-squares line through (batch, seconds); base clipped at zero."""
    n = len(measured)
    if n == 1:
        b, s = measured[0]
        return StepCosts(0.0, s / b, prefill_per_token, tuple(measured))
    mx = sum(b for b, _ in measured) / n
    my = sum(s for _, s in measured) / n
    sxx = sum((b - mx) ** 2 for b, _ in measured)
    slope = sum((b - mx) * (s - my) for b, s in measured) / sxx
    base = max(0.0, my - slope * mx)
    return StepCosts(base, max(slope, 0.0), prefill_per_token, tuple(measured))


def measure_step_costs(
    loaded, batches: tuple[int, ...] = (1, 2, 4, 8), context: int = 64, prompt: int = 64, repeats: int = 5
) -> StepCosts:
    """Time one decode step of the real model at each batch size (every row with `context` cached tokens,
    median of `repeats`), and one prefill of a `prompt`-token sequence (seconds per prompt token)."""
    from transformers import DynamicCache

    model = loaded.model
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    measured = []
    with torch.inference_mode():
        for b in batches:
            ids = torch.randint(100, vocab - 1, (b, context), generator=gen)
            cache = DynamicCache()
            model(input_ids=ids, past_key_values=cache, use_cache=True)
            nxt = torch.randint(100, vocab - 1, (b, 1), generator=gen)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
                times.append(time.perf_counter() - start)
                cache.crop(-1)
                del out
            measured.append((b, sorted(times)[len(times) // 2]))
        ids = torch.randint(100, vocab - 1, (1, prompt), generator=gen)
        times = []
        for _ in range(max(3, repeats // 2)):
            start = time.perf_counter()
            model(input_ids=ids, use_cache=False)
            times.append(time.perf_counter() - start)
    per_token = sorted(times)[len(times) // 2] / prompt
    return fit_costs(measured, per_token)


class _LastCosts:
    """The most recent step-cost measurement on this machine, shared by every session (it describes the
    machine, not a user); replaced whole, never mutated."""

    def __init__(self):
        self.value: tuple[StepCosts, float] | None = None


_last = _LastCosts()


def remember_costs(costs: StepCosts) -> None:
    _last.value = (costs, time.time())


def last_costs() -> tuple[StepCosts, float] | None:
    """(costs, when measured) or None when nobody has measured in this process yet."""
    return _last.value


def sweep(costs: StepCosts, rates: list[float], n: int, max_batch: int, prompt, output, seed: int = 0) -> list[dict]:
    """Throughput and median latency of both policies over arrival rates (the latency-throughput curve)."""
    rows = []
    for rate in rates:
        requests = make_requests(n, rate, prompt, output, seed)
        for policy in ("static", "continuous"):
            r = simulate(requests, costs, policy, max_batch)
            rows.append(
                {
                    "rate": rate,
                    "policy": policy,
                    "throughput": r.throughput,
                    "p50": r.percentile("latency", 0.5),
                    "p95": r.percentile("latency", 0.95),
                }
            )
    return rows


def costs_job(ctx, model_key: str = "smollm2-135m-instruct") -> StepCosts:
    """Background job: measure the step costs alone on the machine (an exclusive turn: timings taken
    while other sessions compute would be theirs too), remember them for every session."""
    from backends.core.scheduler import shared_scheduler
    from backends.models.cache import shared_cache

    ctx.report(0.1, "loading")
    loaded = shared_cache().get(model_key)
    ctx.report(0.3, "measuring")
    with shared_scheduler().turn("inference.costs", exclusive=True):
        costs = measure_step_costs(loaded)
    remember_costs(costs)
    return costs
