"""Instruction tuning (SFT) for the Alignment page, on the LoRA page's own loop.

The training itself is `backends.lora.train.train_job` (one training loop in the project): a run
differs only in `LoraSettings.loss_on`, "response" (prompt tokens get label -100, the model learns
to answer) or "all" (every token of the chat carries loss, the prompt and system text included).
Both runs are evaluated on the same held-out replies (`prepare` encodes the eval set response-only),
and then answer the same held-out prompts, which are checked by two rules anyone can verify:
- pirate style: the shipped SFT data's replies start with "Arr!" and end with "Fair winds, matey!";
- brevity (backends/alignment/rule.py): the model stops by itself within MAX_WORDS words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backends.alignment import rule
from backends.core.memo import SingleFlightLRU
from backends.core.shared import process_wide
from backends.lora import IGNORE, Example, Prepared, TrainResult, encode_example, train_job
from backends.models.cache import shared_cache

ANSWER_TOKENS = 48
_PIRATE_START = re.compile(r"^\W*arr\b", re.IGNORECASE)
_PIRATE_END = re.compile(r"fair winds,?\s+matey\W*$", re.IGNORECASE)


def pirate_style(text: str) -> bool:
    """True when a reply opens with "Arr" and signs off with "Fair winds, matey" (as every shipped reply does)."""
    return bool(_PIRATE_START.search(text)) and bool(_PIRATE_END.search(text.strip()))


@dataclass(frozen=True)
class LossToken:
    text: str
    token_id: int
    response: bool  # carries loss with loss_on="response"
    special: bool


def loss_tokens(tokenizer, example: Example, max_length: int = 512) -> list[LossToken]:
    """The chat template applied to one example, token by token, with the tokens that carry loss
    when only the response is trained (with loss_on="all", every token does)."""
    encoded = encode_example(tokenizer, example, max_length, "response")
    special = set(tokenizer.all_special_ids)
    return [
        LossToken(tokenizer.decode([i]), i, label != IGNORE, i in special)
        for i, label in zip(encoded.input_ids, encoded.labels)
    ]


@dataclass(frozen=True)
class Judged:
    answers: tuple[rule.Answer, ...]
    pirate: float  # share of answers in pirate style
    brief: float  # share following the brevity rule

    @classmethod
    def of(cls, answers: list[rule.Answer]) -> Judged:
        n = max(len(answers), 1)
        return cls(
            tuple(answers),
            sum(pirate_style(a.text) for a in answers) / n,
            sum(a.follows for a in answers) / n,
        )


def judge(model, tokenizer, prompts: list[str], max_new_tokens: int = ANSWER_TOKENS) -> Judged:
    """Greedy answers to `prompts` and the share that follows each rule."""
    return Judged.of(rule.generate_answers(model, tokenizer, list(prompts), max_new_tokens=max_new_tokens))


def _judge_base(key) -> Judged:
    name, device, prompts, max_new_tokens = key
    loaded = shared_cache().get(name, device=device)
    return judge(loaded.model, loaded.tokenizer, list(prompts), max_new_tokens)


_base_memo = process_wide(lambda: SingleFlightLRU(_judge_base, budget=lambda group: 16))


def judge_base(name: str, prompts: list[str], device: str = "cpu", max_new_tokens: int = ANSWER_TOKENS) -> Judged:
    """The cached base model's answers: greedy and deterministic, so computed once per process and
    shared by every session (the base never changes)."""
    return _base_memo().get((name, device, tuple(prompts), max_new_tokens))


@dataclass
class SftResult:
    train: TrainResult
    loss_on: str
    judged: Judged

    @property
    def eval_loss(self) -> float | None:
        return self.train.evals[-1]["eval_loss"] if self.train.evals else None


def sft_job(ctx, base_model, tokenizer, prepared: Prepared, base_name: str, prompts: list[str]) -> SftResult:
    """One SFT run (the LoRA job) and then its answers to the held-out prompts (kind="judged" event)."""
    result = train_job(ctx, base_model, tokenizer, prepared, base_name, sample_prompts=tuple(prompts[:3]))
    ctx.report(1.0, "answering the held-out prompts", kind="judging")
    judged = judge(result.model, tokenizer, prompts)
    judge_base(base_name, prompts, next(base_model.parameters()).device.type)  # the page's comparison row
    ctx.report(1.0, "judged", kind="judged", pirate=judged.pirate, brief=judged.brief)
    return SftResult(result, prepared.settings.loss_on, judged)
