"""One request through the guardrails around SmolLM2: input check, greedy answer, output check.

`guarded_answer(question, system_prompt=None, max_new_tokens=64)` is what the guarded server route
does, in-process, for the page: a blocked input never reaches the model; otherwise the model answers
greedily (backends.decoding's loop, one scheduler turn per token) and the answer goes through the
output checks (the leak check reads the system prompt). `guard_job` runs it as a background job.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.core.scheduler import shared_scheduler
from backends.trust.guardrails import REFUSAL, GuardResult, check

ANSWER_MODEL = "smollm2-135m-instruct"
DEFAULT_ANSWER_TOKENS = 64


@dataclass(frozen=True)
class GuardedAnswer:
    question: str
    system_prompt: str | None
    input: GuardResult
    answer: str | None  # the model's own answer; None when the input was blocked
    output: GuardResult | None  # None when the input was blocked

    @property
    def shown(self) -> str:
        """What the user gets: the answer, or the refusal when either stage blocked."""
        if self.input.blocked or (self.output is not None and self.output.blocked):
            return REFUSAL
        return self.answer or ""


def prompt_ids(loaded, question: str, system_prompt: str | None) -> list[int]:
    turns = [{"role": "system", "content": system_prompt}] if system_prompt else []
    turns.append({"role": "user", "content": question})
    ids = loaded.tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def model_answer(question: str, system_prompt: str | None, max_new_tokens: int, should_stop=None) -> str:
    """SmolLM2's greedy answer (up to end-of-sequence or max_new_tokens)."""
    from backends.decoding import DecodingConfig, eos_ids, generate_stream
    from backends.models.cache import shared_cache

    loaded = shared_cache().get(ANSWER_MODEL)
    config = DecodingConfig(strategy="greedy", max_new_tokens=max_new_tokens)
    steps = generate_stream(loaded, prompt_ids(loaded, question, system_prompt), config, should_stop, top_n=1)
    stop, pieces = eos_ids(loaded), []
    try:
        while True:
            with shared_scheduler().turn("guard answer"):
                step = next(steps, None)
            if step is None or step.token_id in stop:
                break
            pieces.append(step.piece)
    finally:
        steps.close()
    return "".join(pieces)


def guarded_answer(
    question: str, system_prompt: str | None = None, max_new_tokens: int = DEFAULT_ANSWER_TOKENS, should_stop=None
) -> GuardedAnswer:
    first = check(question, "input")
    if first.blocked:
        return GuardedAnswer(question, system_prompt, first, None, None)
    answer = model_answer(question, system_prompt, max_new_tokens, should_stop)
    second = check(answer, "output", system_prompt=system_prompt, prompt=question)
    return GuardedAnswer(question, system_prompt, first, answer, second)


def guard_job(ctx, question: str, system_prompt: str | None, max_new_tokens: int) -> GuardedAnswer:
    """For shared_runner().submit(name, guard_job, question, system_prompt, max_new_tokens)."""
    ctx.report(0.05, "checking and answering")
    result = guarded_answer(question, system_prompt, max_new_tokens, lambda: ctx.stopped)
    ctx.report(1.0, "done", blocked=result.shown == REFUSAL)
    return result
