"""Tokenizer experiments: the same text through two real offline tokenizers, counted.

Pure counting on the tokenizers of the zoo (no model runs): each takes milliseconds.
"""

from __future__ import annotations

from backends import tokenizers as tz
from backends.experiments.base import Experiment, observation


def measure_costlier(params, device):
    """Which of two tokenizers needs more tokens for one text (and the counts)."""
    a, b = params["chosen"]
    n_a, n_b = tz.tokenize(a, params["text"]).n_tokens, tz.tokenize(b, params["text"]).n_tokens
    outcome = "first" if n_a > n_b else "second" if n_b > n_a else "same"
    return observation(
        params["key"],
        outcome,
        params["expected"],
        a=tz.tokenize(a, "x").label,
        b=tz.tokenize(b, "x").label,
        n_a=n_a,
        n_b=n_b,
        chars=len(params["text"]),
        ratio=f"{max(n_a, n_b) / max(1, min(n_a, n_b)):.1f}",
    )


def measure_space(params, device):
    """The same word with and without a space before it: one token id or two different ones?"""
    key = params["chosen"][0]
    result = tz.tokenize(key, params["text"])
    first, second = result.ids[0], result.ids[-1]
    strings = tz.token_strings(key, [first, second])
    return observation(
        "tokenizers.space",
        "same" if first == second else "different",
        "different",
        id_a=first,
        id_b=second,
        tok_a=repr(strings[0]),
        tok_b=repr(strings[1]),
        n=result.n_tokens,
    )


CHINESE = "我今天在北京学习大语言模型。"
CODE = "def total(xs):\n        result = 0\n        for x in xs:\n                result += x\n        return result\n"
NUMBER = "1234567890"

EXPERIMENTS = (
    Experiment(
        "tokenizers",
        "chinese",
        ("first", "second", "same"),
        "first",
        {"key": "tokenizers.chinese", "expected": "first", "text": CHINESE, "chosen": ["gpt2", "qwen3"]},
        measure_costlier,
    ),
    Experiment(
        "tokenizers",
        "space",
        ("same", "different"),
        "different",
        {"text": "hello hello", "chosen": ["gpt2"]},
        measure_space,
    ),
    Experiment(
        "tokenizers",
        "code",
        ("first", "second", "same"),
        "first",
        {"key": "tokenizers.code", "expected": "first", "text": CODE, "chosen": ["gpt2", "cl100k_base"]},
        measure_costlier,
    ),
    Experiment(
        "tokenizers",
        "digits",
        ("first", "second", "same"),
        "first",
        {"key": "tokenizers.digits", "expected": "first", "text": NUMBER, "chosen": ["qwen3", "cl100k_base"]},
        measure_costlier,
    ),
)
