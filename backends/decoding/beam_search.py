"""Beam search by hand, so that every step's kept, finished and dropped beams can be drawn as a tree.

It follows `model.generate(num_beams=n, do_sample=False)` of transformers 5 step for step
(and gives its output; tests/backends/test_decoding.py checks):

  * a beam's score is the sum of the log-probabilities of its tokens (after the
    repetition penalty and n-gram ban, which act on log-probabilities here);
  * each step looks at the 2n best continuations of all beams together. A continuation that
    ends (end-of-sequence token, or the last allowed token) and is among the n best becomes a
    finished hypothesis with score sum / length ** length_penalty, if it beats the worst of
    the n kept so far. The n best that do not end carry on as the next beams;
  * the search stops when every continuation ends, when `early_stopping=True` and n
    hypotheses are finished, or when no running beam can beat the finished ones any more
    (transformers' heuristic: with early_stopping=False it assumes the best beam's score at
    its current length; with "never" and a positive length penalty, at the maximum length).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace

import torch

from backends.decoding.config import DecodingConfig
from backends.decoding.sampling import apply_repetition_penalty, ban_repeated_ngrams
from backends.decoding.steps import (
    eos_ids,
    inference_steps,
    model_device,
    new_cache,
    new_token_budget,
    next_token_logits,
)

UNREACHABLE = -1.0e9  # transformers' score for "cannot be chosen"


@dataclass(frozen=True)
class Beam:
    ids: list[int]  # generated tokens so far (prompt excluded)
    score: float  # sum of log-probabilities
    parent: int  # index of the beam it extends in the previous step's `kept` (-1: the prompt)
    token_id: int  # its last token
    token_prob: float = 0.0  # that token's probability given the parent
    normalized: float | None = None  # score / length ** length_penalty, for finished hypotheses


@dataclass(frozen=True)
class BeamStep:
    kept: list[Beam]  # the beams that carry on, best first
    finished: list[Beam] = field(default_factory=list)  # hypotheses that ended here and entered the best n
    dropped: list[Beam] = field(default_factory=list)  # the other continuations among the 2n looked at


@dataclass(frozen=True)
class BeamResult:
    best_ids: list[int]
    best_score: float  # length-normalized, as transformers ranks hypotheses
    hypotheses: list[Beam]  # the finished ones, best first
    steps: list[BeamStep]


def _penalize(log_probs: torch.Tensor, beams: list[list[int]], prompt_ids: list[int], config) -> torch.Tensor:
    if config.repetition_penalty == 1.0 and config.no_repeat_ngram_size <= 0:
        return log_probs
    rows = []
    for row, ids in zip(log_probs, beams):
        previous = list(prompt_ids) + ids
        row = apply_repetition_penalty(row, previous, config.repetition_penalty)
        rows.append(ban_repeated_ngrams(row, previous, config.no_repeat_ngram_size))
    return torch.stack(rows)


def beam_search(
    loaded,
    prompt_ids: list[int],
    config: DecodingConfig,
    on_step: Callable[[BeamStep], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BeamResult:
    """Run beam search; `on_step` sees each step's `BeamStep` as soon as it is made."""
    steps = iter_beam_search(loaded, prompt_ids, config, should_stop)
    while True:
        try:
            step = next(steps)
        except StopIteration as finished:
            return finished.value
        if on_step is not None:
            on_step(step)


@inference_steps
def iter_beam_search(
    loaded, prompt_ids: list[int], config: DecodingConfig, should_stop: Callable[[], bool] | None = None
) -> Generator[BeamStep, None, BeamResult]:
    """The same search as a generator: yields each `BeamStep`, returns the `BeamResult`."""
    config.validate()
    if config.strategy != "beam":
        raise ValueError(f"beam_search needs strategy='beam', got {config.strategy!r}.")
    if not prompt_ids:
        raise ValueError("prompt_ids is empty: encode a prompt first (encode_prompt).")
    n, lp, early = config.num_beams, config.length_penalty, config.early_stopping
    stop_ids, max_new = eos_ids(loaded), new_token_budget(loaded, len(prompt_ids), config.max_new_tokens)
    running = [Beam([], 0.0, -1, -1)]  # one beam to start: the prompt
    # The finished pool: n slots, best first, empty slots at UNREACHABLE.
    pool_scores = torch.full((n,), UNREACHABLE)
    pool: list[Beam | None] = [None] * n
    can_improve = True
    steps: list[BeamStep] = []
    cache = new_cache(loaded)
    new = torch.tensor([list(prompt_ids)], device=model_device(loaded))
    for step in range(max_new):
        if should_stop is not None and should_stop():
            break
        length = step + 1  # generated tokens once this step's token is added
        logits = next_token_logits(loaded, new, cache, len(prompt_ids) + step)  # [beams, vocab]
        logits = logits.cpu()  # the bookkeeping below is small: keep it on the CPU
        log_probs = _penalize(logits.log_softmax(dim=-1), [b.ids for b in running], prompt_ids, config)
        vocab = log_probs.shape[-1]
        totals = log_probs + torch.tensor([b.score for b in running])[:, None]
        top_scores, top_index = torch.topk(totals.flatten(), min(2 * n, totals.numel()))
        probs = logits.softmax(dim=-1)
        candidates = []
        for score, index in zip(top_scores.tolist(), top_index.tolist()):
            parent, token = divmod(index, vocab)
            prob = float(probs[parent, token])
            candidates.append(Beam([*running[parent].ids, token], score, parent, token, prob))
        ends = torch.tensor([c.token_id in stop_ids or length >= max_new for c in candidates])

        # The n best continuations that do not end carry on.
        carry_scores = top_scores + ends.float() * UNREACHABLE
        carry = torch.topk(carry_scores, n).indices.tolist()

        # Continuations that end, among the n best, compete for the finished pool.
        normalized = top_scores / (length**lp)
        pool_full = bool(all(b is not None for b in pool)) and early is True
        blocked = pool_full or not can_improve
        eligible = ends & (torch.arange(len(candidates)) < n)
        entry = normalized + (UNREACHABLE if blocked else 0.0) + (~eligible).float() * UNREACHABLE
        merged = torch.cat([pool_scores, entry])
        best = torch.topk(merged, n).indices.tolist()
        newly = [i - n for i in best if i >= n and eligible[i - n] and not blocked]
        pool = [
            pool[i] if i < n else _finish(candidates[i - n], normalized[i - n]) if i - n in newly else None
            for i in best
        ]
        pool_scores = merged[best]

        kept = [replace(candidates[i], score=float(carry_scores[i])) for i in carry]
        finished = [pool[best.index(i + n)] for i in newly]
        dropped = [c for i, c in enumerate(candidates) if i not in carry and i not in newly]
        record = BeamStep(kept=kept, finished=finished, dropped=dropped)
        steps.append(record)
        yield record

        running = kept
        # transformers' check whether a running beam can still beat the finished ones
        best_len = max_new if (early == "never" and lp > 0) else length
        best_possible = carry_scores[carry[0]] / (best_len**lp)
        all_finished = all(b is not None for b in pool)
        if all_finished:
            can_improve = can_improve and bool(best_possible > pool_scores.min())
        if not can_improve or (all_finished and early is True) or bool(ends.all()):
            break
        cache.reorder_cache(torch.tensor([c.parent for c in kept], device=new.device))
        new = torch.tensor([[c.token_id] for c in kept], device=new.device)

    hypotheses = [b for b in pool if b is not None]
    if not hypotheses:  # stopped before anything finished: the best running beam
        top = running[0]
        hypotheses = [_finish(top, torch.tensor(top.score / (max(len(top.ids), 1) ** lp)))]
    return BeamResult(
        best_ids=list(hypotheses[0].ids),
        best_score=float(hypotheses[0].normalized),
        hypotheses=hypotheses,
        steps=steps,
    )


def _finish(beam: Beam, normalized) -> Beam:
    return replace(beam, normalized=float(normalized))
