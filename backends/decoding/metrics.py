"""Measures of a generated text, and the KV cache on/off comparison.

* perplexity: exp(mean negative log-likelihood) of the output tokens under the model, given
  the prompt: how surprised the model is by its own output (greedy text scores low, wild
  sampling high).
* distinct-n (Li et al. 2016): unique n-grams / all n-grams of the output (1 = no repeats).
* repetition rate (Welleck et al. 2019, "seq-rep-n"): the share of n-grams (n = 4 by default)
  that repeat an earlier one, 1 - distinct-n: loops push it towards 1.
* KV cache: generating token t needs keys and values of all t-1 earlier tokens in every
  layer. With the cache they are kept from earlier steps, so each step runs the model on
  one new position; without it, each step runs on the whole text again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from backends.core.scheduler import shared_scheduler
from backends.decoding.steps import keeps_last_logits_only, model_device, new_cache, next_token_logits


@dataclass(frozen=True)
class RunMetrics:
    tokens: int
    tokens_per_s: float
    perplexity: float
    distinct_1: float
    distinct_2: float
    repetition_rate: float


@dataclass(frozen=True)
class KVResult:
    with_cache_s_per_token: float
    without_cache_s_per_token: float
    speedup: float  # without / with
    same_tokens: bool
    tokens: list[int]


def _ngrams(ids: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]


def distinct_n(ids: list[int], n: int) -> float:
    """Unique n-grams divided by all n-grams; 0.0 when the text is shorter than n."""
    if n < 1:
        raise ValueError(f"n={n!r} is invalid: n-grams need n >= 1.")
    grams = _ngrams(list(ids), n)
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition_rate(ids: list[int], n: int = 4) -> float:
    """Share of n-grams that already occurred earlier in the text; 0.0 when shorter than n."""
    grams = _ngrams(list(ids), n)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def perplexity(loaded, prompt_ids: list[int], output_ids: list[int]) -> float:
    """exp of the mean negative log-probability of `output_ids`, each given the prompt and the tokens before it."""
    if not output_ids:
        return float("nan")
    if not prompt_ids:
        raise ValueError("prompt_ids is empty: perplexity is measured given a prompt.")
    ids = torch.tensor([list(prompt_ids) + list(output_ids)], device=model_device(loaded))
    n = len(output_ids)
    with torch.inference_mode():
        # Scores at the last n + 1 positions; position p predicts token p + 1.
        extra = {"logits_to_keep": n + 1} if keeps_last_logits_only(type(loaded.model)) else {}
        with shared_scheduler().turn("decode"):
            logits = loaded.model(input_ids=ids, **extra).logits[0, -n - 1 : -1].float()
        log_probs = logits.log_softmax(dim=-1)
        picked = log_probs.gather(1, ids[0, -n:, None])[:, 0]
    return math.exp(-float(picked.mean()))


def metrics(loaded, prompt_ids: list[int], output_ids: list[int], seconds: float) -> RunMetrics:
    n = len(output_ids)
    return RunMetrics(
        tokens=n,
        tokens_per_s=n / seconds if seconds > 0 else 0.0,
        perplexity=perplexity(loaded, prompt_ids, output_ids),
        distinct_1=distinct_n(output_ids, 1),
        distinct_2=distinct_n(output_ids, 2),
        repetition_rate=repetition_rate(output_ids),
    )


def greedy_tokens(loaded, prompt_ids: list[int], n_tokens: int, use_cache: bool) -> list[int]:
    """Plain greedy decoding, with or without the KV cache (no end-of-sequence stop, to time n tokens)."""
    ids = list(prompt_ids)
    cache = new_cache(loaded) if use_cache else None
    new = torch.tensor([ids], device=model_device(loaded))
    with torch.inference_mode():
        for _ in range(n_tokens):
            token = int(torch.argmax(next_token_logits(loaded, new, cache, len(ids))[0]))
            ids.append(token)
            # With the cache only the new token goes in; without it, the whole text again.
            new = torch.tensor([[token]] if use_cache else [ids], device=new.device)
    return ids[len(prompt_ids) :]


def kv_cache_comparison(loaded, prompt_ids: list[int], n_tokens: int) -> KVResult:
    if not 1 <= n_tokens <= 512:
        raise ValueError(f"n_tokens={n_tokens!r} is invalid: compare on 1 to 512 tokens.")
    timings, outputs = {}, {}
    for use_cache in (True, False):
        started = time.perf_counter()
        outputs[use_cache] = greedy_tokens(loaded, prompt_ids, n_tokens, use_cache)
        timings[use_cache] = (time.perf_counter() - started) / n_tokens
    return KVResult(
        with_cache_s_per_token=timings[True],
        without_cache_s_per_token=timings[False],
        speedup=timings[False] / timings[True],
        same_tokens=outputs[True] == outputs[False],
        tokens=outputs[True],
    )
