"""Decoding experiments on SmolLM2 through the decoding package's public API.

Short prompts and 12-30 new tokens keep each one to a few seconds on two CPU cores.
"""

from __future__ import annotations

import math
from statistics import mean

from backends import decoding as dec
from backends.experiments.base import Experiment, fmt, observation, trend
from backends.models.cache import shared_cache

MODEL = "smollm2-135m-instruct"
PROMPT = "Write one sentence about the sea."


def _run(loaded, prompt_ids, config: dec.DecodingConfig) -> list[dec.TokenStep]:
    return list(dec.generate_stream(loaded, prompt_ids, config))


def _setup(params):
    loaded = shared_cache().get(params["model"])
    return loaded, dec.encode_prompt(loaded, params["prompt"], chat=True)


def measure_temperature(params, device):
    """Two sampling columns, same seed, temperature low vs high: the chosen tokens' mean probability
    (under the model's raw distribution) and the perplexity of the text, exp(-mean log-probability)."""
    loaded, ids = _setup(params)
    low, high = (_run(loaded, ids, dec.DecodingConfig(**c)) for c in params["columns"])
    p_low, p_high = mean(s.prob for s in low), mean(s.prob for s in high)
    ppl_low, ppl_high = (math.exp(-mean(s.logprob for s in steps)) for steps in (low, high))
    return observation(
        "decoding.temperature",
        trend(p_low, p_high, 0.05),
        "falls",
        p_low=fmt(p_low),
        p_high=fmt(p_high),
        ppl_low=fmt(ppl_low, 1),
        ppl_high=fmt(ppl_high, 1),
        t_low=params["columns"][0]["temperature"],
        t_high=params["columns"][1]["temperature"],
    )


def measure_top_k_one(params, device):
    """Sampling restricted to the single most likely token (top-k = 1) against greedy decoding."""
    loaded, ids = _setup(params)
    greedy, top1 = (_run(loaded, ids, dec.DecodingConfig(**c)) for c in params["columns"])
    same = sum(a.token_id == b.token_id for a, b in zip(greedy, top1))
    identical = [s.token_id for s in greedy] == [s.token_id for s in top1]
    return observation(
        "decoding.top_k_one", "same" if identical else "different", "same", same=same, n=max(len(greedy), len(top1))
    )


def measure_repetition(params, device):
    """Greedy decoding without and with a repetition penalty: the share of repeated 4-grams."""
    loaded, ids = _setup(params)
    plain, penalized = (_run(loaded, ids, dec.DecodingConfig(**c)) for c in params["columns"])

    def rep(steps):
        tokens = [s.token_id for s in steps]
        grams = [tuple(tokens[i : i + 4]) for i in range(len(tokens) - 3)]
        return 1 - len(set(grams)) / len(grams) if grams else 0.0

    r_plain, r_pen = rep(plain), rep(penalized)
    return observation(
        "decoding.repetition",
        trend(r_plain, r_pen, 0.02),
        "falls",
        r_plain=fmt(r_plain),
        r_pen=fmt(r_pen),
        penalty=params["columns"][1]["repetition_penalty"],
    )


def _sample(temperature):
    return {
        "strategy": "sample",
        "temperature": temperature,
        "top_k": 0,
        "top_p": 1.0,
        "seed": 7,
        "max_new_tokens": 16,
    }


EXPERIMENTS = (
    Experiment(
        "decoding",
        "temperature",
        ("rises", "falls", "same"),
        "falls",
        {
            "model": MODEL,
            "prompt": PROMPT,
            "columns": [_sample(0.3), _sample(1.5)],
            "names": ["temperature 0.3", "temperature 1.5"],
        },
        measure_temperature,
    ),
    Experiment(
        "decoding",
        "top_k_one",
        ("same", "different"),
        "same",
        {
            "model": MODEL,
            "prompt": PROMPT,
            "columns": [
                {"strategy": "greedy", "max_new_tokens": 12},
                {"strategy": "sample", "temperature": 1.0, "top_k": 1, "top_p": 1.0, "seed": 7, "max_new_tokens": 12},
            ],
            "names": ["greedy", "sample, top-k 1"],
        },
        measure_top_k_one,
    ),
    Experiment(
        "decoding",
        "repetition",
        ("rises", "falls", "same"),
        "falls",
        {
            "model": MODEL,
            "prompt": "List the days of the week, again and again.",
            "columns": [
                {"strategy": "greedy", "max_new_tokens": 30},
                {"strategy": "greedy", "repetition_penalty": 1.5, "max_new_tokens": 30},
            ],
            "names": ["greedy", "greedy, repetition_penalty 1.5"],
        },
        measure_repetition,
    ),
)
