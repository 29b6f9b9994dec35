"""Where a decode step's time goes, and the ways of running one greedy step of a Llama model on the CPU,
timed side by side on the real model with the tokens each gives.

Paths (one greedy step = one forward of one position on a KV cache, then argmax):
  transformers · DynamicCache   `model(...)` as the token loop called it before: mask, cache bookkeeping
  transformers · StaticCache    the same with keys/values preallocated (transformers' own static cache)
  hand-written (fast_step)      backends/decoding/fast_step.py: the same kernels on the model's own
                                weights, keys/values in buffers allocated ahead, rotary table per cache
The token loop (`generate_stream`) uses the hand-written pass for greedy and sampled Llama runs;
`app_loop_speedup` times that loop with it and without it (`fast_decode_off`).

torch.compile is not among the paths: on two shared cores it compiles for minutes, and the step's shape
changes with every position (the cache grows), which means recompiling or dynamic shapes.
llama-cpp-python would be a row when installed (`llama_cpp_available`); it is not in this environment.
"""

from __future__ import annotations

import importlib.util
import statistics
import time

import torch

from backends.core.scheduler import shared_scheduler
from backends.decoding import (
    DecodingConfig,
    FastCache,
    fast_decode_off,
    fast_logits,
    generate_stream,
    supports_fast,
)

BASELINE = "transformers · DynamicCache"
STATIC = "transformers · StaticCache"
FAST = "hand-written (fast_step)"
SPLIT = "hand-written, large products on two threads"


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def prompt_ids_of(loaded, prompt) -> list[int]:
    if isinstance(prompt, str):
        return list(loaded.tokenizer(prompt)["input_ids"])
    return [int(i) for i in prompt]


class DynamicStepper:
    """transformers' forward on a DynamicCache, called as the token loop called it."""

    def __init__(self, loaded, prompt_ids):
        from transformers import DynamicCache

        self.model, self.cache, self.length = loaded.model, DynamicCache(config=loaded.model.config), 0

    def __call__(self, new: torch.Tensor) -> torch.Tensor:
        self.length += new.shape[1]
        mask = torch.ones(1, self.length, dtype=torch.long)
        out = self.model(
            input_ids=new, attention_mask=mask, past_key_values=self.cache, use_cache=True, logits_to_keep=1
        )
        return out.logits[0, -1]


class StaticStepper:
    """transformers' forward on its StaticCache (keys/values preallocated for `max_len` positions)."""

    def __init__(self, loaded, prompt_ids, max_len: int = 1024):
        from transformers import StaticCache

        self.model = loaded.model
        self.cache = StaticCache(config=loaded.model.config, max_cache_len=max_len)
        self.length = 0

    def __call__(self, new: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(self.length, self.length + new.shape[1])
        self.length += new.shape[1]
        out = self.model(
            input_ids=new, past_key_values=self.cache, use_cache=True, cache_position=positions, logits_to_keep=1
        )
        return out.logits[0, -1]


class FastStepper:
    """The hand-written pass (backends/decoding/fast_step.py)."""

    split = False

    def __init__(self, loaded, prompt_ids):
        self.cache = FastCache(loaded.model, split=self.split)

    def __call__(self, new: torch.Tensor) -> torch.Tensor:
        return fast_logits(self.cache, new)[0]


class SplitStepper(FastStepper):
    """The hand-written pass with its large matrix-vector products as two halves on two threads
    (`split_linear`): the app's token loop's path. Not bit-equal to transformers (the sums run in another
    order: logits within ~1e-4, as transformers' StaticCache vs DynamicCache), the same tokens."""

    split = True


def available_paths(loaded) -> dict:
    paths = {BASELINE: DynamicStepper, STATIC: StaticStepper}
    if supports_fast(loaded.model):
        paths[FAST] = FastStepper
        paths[SPLIT] = SplitStepper
    return paths


def run_path(stepper, prompt_ids: list[int], n_tokens: int) -> tuple[list[int], list[torch.Tensor], list[float]]:
    """Greedy decode of n_tokens (no stop at end-of-sequence): tokens, each step's logits, each decode
    step's seconds (the prompt's prefill not counted)."""
    tokens, logits, times = [], [], []
    new = torch.tensor([prompt_ids])
    for step in range(n_tokens):
        started = time.perf_counter()
        scores = stepper(new)
        token = int(scores.argmax())
        if step:
            times.append(time.perf_counter() - started)
        tokens.append(token)
        logits.append(scores.float().clone())
        new = torch.tensor([[token]])
    return tokens, logits, times


def decode_paths(loaded, prompt, n_tokens: int = 32, repeats: int = 3, bound: float | None = None) -> list[dict]:
    """Each path's greedy decode of `n_tokens` from `prompt` (text or ids), `repeats` rounds with the paths
    interleaved (so a busy machine slows all alike), the median step time over every round.

    Rows: path, tokens_per_s, ms_per_token, bound_share (tokens/s over `bound`, the bandwidth bound, when
    given), same_tokens (equal to the baseline's), max_logit_diff (largest |difference| to the baseline's
    logits over every step)."""
    if not 2 <= n_tokens <= 512:
        raise ValueError(f"n_tokens={n_tokens!r} is invalid: decode 2 to 512 tokens.")
    ids = prompt_ids_of(loaded, prompt)
    paths = available_paths(loaded)
    times = {name: [] for name in paths}
    results = {}
    with torch.inference_mode():
        for _ in range(repeats):
            for name, make in paths.items():
                with shared_scheduler().turn("inference.fast_decode"):
                    tokens, logits, step_times = run_path(make(loaded, ids), ids, n_tokens)
                times[name] += step_times
                results.setdefault(name, (tokens, logits))
    base_tokens, base_logits = results[BASELINE]
    rows = []
    for name in paths:
        tokens, logits = results[name]
        seconds = statistics.median(times[name])
        diff = max(float((a - b).abs().max()) for a, b in zip(logits, base_logits))
        rows.append(
            {
                "path": name,
                "tokens_per_s": 1 / seconds,
                "ms_per_token": seconds * 1000,
                "bound_share": (1 / seconds) / bound if bound else None,
                "same_tokens": tokens == base_tokens,
                "max_logit_diff": diff,
                "tokens": tokens,
            }
        )
    return rows


def app_loop_speedup(loaded, prompt, n_tokens: int = 48, repeats: int = 3) -> dict:
    """The app's own token loop (`generate_stream`, greedy, stops at end-of-sequence) timed with the
    hand-written pass (after) and with transformers' (before, `fast_decode_off`), interleaved; medians.

    The rate is the decode steps' (the loop's own statistic, as `decode_paths`): tokens after the first
    over the time from the first token to the last, so the prompt's prefill is left out. Returns before/after
    tokens/s, speedup = after / before, and whether both gave the same tokens."""
    ids = prompt_ids_of(loaded, prompt)
    config = DecodingConfig(strategy="greedy", max_new_tokens=n_tokens)
    rates, outputs = {"before": [], "after": []}, {}

    def timed_run() -> tuple[list[int], float]:
        tokens, first = [], None
        for step in generate_stream(loaded, ids, config):
            tokens.append(step.token_id)
            if first is None:
                first = time.perf_counter()
        if len(tokens) < 2:
            raise ValueError("The prompt ended after one token: no decode step to time.")
        return tokens, (len(tokens) - 1) / (time.perf_counter() - first)

    for _ in range(repeats):
        for which in ("before", "after"):
            if which == "before":
                with fast_decode_off():
                    tokens, rate = timed_run()
            else:
                tokens, rate = timed_run()
            rates[which].append(rate)
            outputs.setdefault(which, tokens)
    before, after = statistics.median(rates["before"]), statistics.median(rates["after"])
    return {
        "before_tokens_per_s": before,
        "after_tokens_per_s": after,
        "speedup": after / before,
        "same_tokens": outputs["before"] == outputs["after"],
        "tokens": len(outputs["after"]),
    }
