"""The token loop: `generate_stream` (greedy, sampling, contrastive search) yields a `TokenStep`
per token as soon as it is chosen; `branch` re-runs it from any step with another token;
`stream_columns` runs several configs side by side, one step each in turn; `distribution_at`
shows one step's distribution before and after filtering."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from backends.decoding.beam_search import iter_beam_search
from backends.decoding.config import DecodingConfig
from backends.decoding.contrastive import contrastive_stream
from backends.decoding.sampling import pick_token, process_logits
from backends.decoding.steps import (
    Alternative,
    StepDistribution,
    TextTracker,
    TokenStep,
    eos_ids,
    inference_steps,
    model_device,
    new_cache,
    new_token_budget,
    next_token_logits,
    token_step,
    top_alternatives,
)


@inference_steps
def generate_stream(
    loaded,
    prompt_ids: list[int],
    config: DecodingConfig,
    should_stop: Callable[[], bool] | None = None,
    top_n: int = 5,
    forced_first: int | None = None,
    start_index: int = 0,
    guide=None,
) -> Iterator[TokenStep]:
    """Greedy, sampling or contrastive search, one `TokenStep` per token as soon as it is chosen.

    Stops at an end-of-sequence token, after `max_new_tokens` (fewer when the model's context ends
    first: `new_token_budget`), or when `should_stop()` is true.
    `forced_first` takes that token instead of the first pick (see `branch`).
    `guide` constrains the picks (greedy and sampling only; a grammar: backends/structured/guided.py):
    `guide.steer(scores, logits, generator)` returns the scores with forbidden tokens at -inf before
    each pick, and `guide.accept(token)` takes the pick and returns True when the output is complete.
    """
    config.validate()
    if config.strategy == "beam":
        raise ValueError("Beam search keeps several sequences at once: call beam_search(), not generate_stream().")
    if not prompt_ids:
        raise ValueError("prompt_ids is empty: encode a prompt first (encode_prompt).")
    if guide is not None and config.strategy != "greedy" and config.strategy != "sample":
        raise ValueError("Constrained decoding here is greedy or sampled (beam and contrastive search are not).")
    max_new = new_token_budget(loaded, len(prompt_ids), config.max_new_tokens)
    if config.strategy == "contrastive":
        config = dataclasses.replace(config, max_new_tokens=max_new)
        yield from contrastive_stream(loaded, prompt_ids, config, should_stop, top_n, forced_first, start_index)
        return
    stop_ids = eos_ids(loaded)
    # Seeded like torch.manual_seed(seed), which is what model.generate draws from.
    generator = torch.Generator(device=model_device(loaded)).manual_seed(config.seed)
    text = TextTracker(loaded.tokenizer)
    ids = list(prompt_ids)
    cache = new_cache(loaded, logits_only=True)  # the fast pass where it gives the same logits
    new = torch.tensor([ids], device=model_device(loaded))
    for step in range(max_new):
        if should_stop is not None and should_stop():
            return
        logits = next_token_logits(loaded, new, cache, len(ids))[0]
        scores = process_logits(logits, ids, config)
        if guide is not None:
            scores = guide.steer(scores, logits, generator)
        token = forced_first if (step == 0 and forced_first is not None) else pick_token(scores, config, generator)
        yield token_step(loaded, start_index + step, token, logits, scores, top_n, text)
        ids.append(token)
        complete = guide is not None and guide.accept(token)
        if token in stop_ids or complete:
            return
        new = torch.tensor([[token]], device=new.device)


@dataclass(frozen=True)
class ColumnEvent:
    """One thing that happened in one column of a side-by-side run."""

    column: int  # index into the configs
    elapsed_s: float  # this column's own compute time so far (for its tokens/s)
    token: TokenStep | None = None  # greedy / sample / contrastive: the new token
    beam_step: object | None = None  # beam search: the new `BeamStep`
    result: object | None = None  # beam search, at the end: the `BeamResult`
    done: bool = False
    error: Exception | None = None  # the column stopped on one of `take_turns`'s `catch` errors (done too)


def take_turns(running: dict[int, Iterator], catch: tuple[type[Exception], ...] = ()) -> Iterator[ColumnEvent]:
    """Read several columns' streams one item each in turn, timing each column's own share.

    Each column ends with a `done` event (with the generator's return value as `result`); an error
    of a type in `catch` ends only its own column (`error` set), the others go on.
    """
    running = dict(running)
    elapsed = dict.fromkeys(running, 0.0)
    while running:
        for i in list(running):
            started = time.perf_counter()
            try:
                item = next(running[i])
            except StopIteration as end:
                elapsed[i] += time.perf_counter() - started
                del running[i]
                yield ColumnEvent(i, elapsed[i], result=end.value, done=True)
                continue
            except catch as exc:
                del running[i]
                yield ColumnEvent(i, elapsed[i], done=True, error=exc)
                continue
            elapsed[i] += time.perf_counter() - started
            if isinstance(item, TokenStep):
                yield ColumnEvent(i, elapsed[i], token=item)
            else:
                yield ColumnEvent(i, elapsed[i], beam_step=item)


def stream_columns(
    loaded,
    prompt_ids: list[int],
    configs: list[DecodingConfig],
    should_stop: Callable[[], bool] | None = None,
    top_n: int = 5,
) -> Iterator[ColumnEvent]:
    """Run several configs on one prompt, taking turns one step each, so every column grows at once.

    Each column ends with an event with `done=True`. Configs are validated before anything runs.
    """
    for i, config in enumerate(configs):
        try:
            config.validate()
        except ValueError as exc:
            raise ValueError(f"Column {i + 1}: {exc}") from exc
    running = {}
    for i, config in enumerate(configs):
        if config.strategy == "beam":
            running[i] = iter_beam_search(loaded, prompt_ids, config, should_stop)
        else:
            running[i] = generate_stream(loaded, prompt_ids, config, should_stop, top_n)
    yield from take_turns(running)


def branch(
    loaded,
    prompt_ids: list[int],
    generated_ids: list[int],
    at_step: int,
    alternative_id: int,
    config: DecodingConfig,
    should_stop: Callable[[], bool] | None = None,
    top_n: int = 5,
) -> Iterator[TokenStep]:
    """Continue from step `at_step` with `alternative_id` instead of the token chosen there.

    Yields the alternative itself first (index `at_step`), then the new continuation, up to
    the same total of `max_new_tokens`. Indices continue the original run's.
    """
    if not 0 <= at_step <= len(generated_ids):
        raise ValueError(f"at_step={at_step} is outside the run (0 to {len(generated_ids)}).")
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    if not 0 <= int(alternative_id) < vocab:
        raise ValueError(f"alternative_id={alternative_id} is not a token id of this model (0 to {vocab - 1}).")
    remaining = config.max_new_tokens - at_step
    if remaining < 1:
        raise ValueError(f"at_step={at_step} leaves no room under max_new_tokens={config.max_new_tokens}.")
    rest = dataclasses.replace(config, max_new_tokens=remaining)
    prefix = list(prompt_ids) + list(generated_ids[:at_step])
    yield from generate_stream(
        loaded, prefix, rest, should_stop, top_n, forced_first=int(alternative_id), start_index=at_step
    )


def distribution_at(loaded, ids_before_step: list[int], config: DecodingConfig, top_n: int = 20) -> StepDistribution:
    """The next-token distribution after `ids_before_step` (prompt + tokens so far), before and after
    the config's penalties and filters (temperature/top-k/top-p/min-p/typical apply when sampling)."""
    config.validate()
    if not ids_before_step:
        raise ValueError("ids_before_step is empty: pass the prompt ids and the tokens generated before the step.")
    if not 1 <= top_n <= 1000:
        raise ValueError(f"top_n={top_n!r} is invalid: show 1 to 1000 tokens (each one is decoded to text).")
    with torch.inference_mode():
        logits = next_token_logits(
            loaded, torch.tensor([list(ids_before_step)], device=model_device(loaded)), None, len(ids_before_step)
        )[0]
        scores = process_logits(logits, list(ids_before_step), config)
        probs, filtered = logits.softmax(dim=-1), scores.softmax(dim=-1)
        possible = filtered > 0
        kept, kept_mass = int(possible.sum()), float(probs[possible].sum())
        raw = top_alternatives(loaded, probs, filtered, top_n)
        values, idx = torch.topk(filtered, min(top_n, kept))
        post = [
            Alternative(int(i), loaded.tokenizer.decode([int(i)]), float(probs[i]), float(v))
            for i, v in zip(idx, values)
        ]
    return StepDistribution(raw=raw, filtered=post, kept=kept, kept_mass=kept_mass, vocab_size=int(logits.shape[-1]))
