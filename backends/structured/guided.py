"""Decoding under a grammar, one token at a time, with what the grammar did at every step.

Each step: the model scores the next token (the decoding page's forward pass on a KV cache and its
sampler's penalties and filters), the grammar's matcher fills a bitmask of the tokens allowed from
its current state, every other token's score becomes -inf, and the pick (greedy or a seeded draw) is
made among what is left. `GuidedStep` keeps, beside the token: how many of the vocabulary's tokens
were allowed, the probability mass (under the model's own softmax) the grammar removed, and the
token the model would have picked without it. The run ends when the grammar is complete (its stop
token taken), at the token budget (then the output is unfinished: `finished=False`), or on stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from backends.decoding import (
    FILTERED,
    DecodingConfig,
    TokenStep,
    eos_ids,
    generate_stream,
    pick_token,
)
from backends.structured.grammar import Constraint, compile_constraint


@dataclass(frozen=True)
class GuidedStep:
    step: TokenStep  # the token taken (its prob: under the model's raw softmax)
    allowed: int  # tokens the grammar allowed here
    vocab: int  # tokens the model scores
    removed_mass: float  # raw probability of the tokens the grammar forbade
    free_id: int  # what the same config would have picked with no grammar (greedy: the argmax)
    free_text: str
    free_prob: float

    @property
    def steered(self) -> bool:
        return self.free_id != self.step.token_id


@dataclass(frozen=True)
class GuidedResult:
    text: str
    token_ids: list[int]
    steps: list[GuidedStep]
    finished: bool  # the grammar reached its end (not cut by the token budget)
    seconds: float


def allowed_mask(matcher, bitmask: torch.Tensor, vocab: int) -> torch.Tensor:
    """A bool [vocab] tensor: the tokens the matcher allows from its current state."""
    import xgrammar as xgr

    matcher.fill_next_token_bitmask(bitmask)
    scores = torch.zeros(1, vocab)
    xgr.apply_token_bitmask_inplace(scores, bitmask)
    return torch.isfinite(scores[0])


class GrammarGuide:
    """The grammar's part of a step, for `generate_stream(..., guide=)`: before each pick it masks
    what the matcher forbids and notes the step's figures (`last`); after it, the matcher takes the
    token."""

    def __init__(self, matcher, config: DecodingConfig):
        self.matcher, self.config = matcher, config
        self.bitmask = None
        self.finished = False  # the grammar reached its end
        self.last: dict = {}

    def steer(self, scores: torch.Tensor, logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import xgrammar as xgr

        vocab = int(logits.shape[-1])
        if self.bitmask is None:
            self.bitmask = xgr.allocate_token_bitmask(1, vocab)
        allowed = allowed_mask(self.matcher, self.bitmask, vocab).to(scores.device)
        if self.config.strategy == "greedy":
            free = int(torch.argmax(scores))
        else:  # sampling: the free pick is the same draw on the unmasked scores
            state = generator.get_state()
            free = pick_token(scores, self.config, generator)
            generator.set_state(state)
        guided = scores.masked_fill(~allowed, FILTERED)
        if not torch.isfinite(guided).any():  # the grammar allows nothing the filters kept
            guided = logits.masked_fill(~allowed, FILTERED)
        log_total = torch.logsumexp(logits, dim=-1)
        removed = torch.logsumexp(logits[~allowed], dim=-1) if not bool(allowed.all()) else None
        self.last = dict(
            allowed=int(allowed.sum()),
            vocab=vocab,
            removed_mass=float(torch.exp(removed - log_total)) if removed is not None else 0.0,
            free_id=free,
            free_prob=float(torch.exp(logits[free] - log_total)),
        )
        return guided

    def accept(self, token: int) -> bool:
        if not self.matcher.accept_token(token):
            raise RuntimeError(f"xgrammar refused token {token} it had allowed")  # never expected
        self.finished = bool(self.matcher.is_terminated())
        return self.finished


def guided_stream(
    loaded,
    prompt_ids: list[int],
    config: DecodingConfig,
    constraint: Constraint,
    should_stop: Callable[[], bool] | None = None,
    top_n: int = 5,
) -> Iterator[GuidedStep]:
    """Greedy or sampled decoding under `constraint`; one `GuidedStep` per token as it is chosen.

    The loop is the decoding page's own (`generate_stream`) with a `GrammarGuide`. The generator's
    return value (StopIteration.value; `GuidedRun.finished`) says whether the grammar was completed."""
    import xgrammar as xgr

    config.validate()
    if config.strategy not in ("greedy", "sample"):
        raise ValueError("Constrained decoding here is greedy or sampled (beam and contrastive search are not).")
    if not prompt_ids:
        raise ValueError("prompt_ids is empty: encode a prompt first (encode_prompt).")
    guide = GrammarGuide(xgr.GrammarMatcher(compile_constraint(loaded, constraint)), config)
    stops, last = eos_ids(loaded), None
    for step in generate_stream(loaded, prompt_ids, config, should_stop, top_n, guide=guide):
        last = step.token_id
        figures = guide.last
        yield GuidedStep(step=step, free_text=loaded.tokenizer.decode([figures["free_id"]]), **figures)
    return guide.finished or last in stops


class GuidedRun:
    """Iterate a guided stream step by step; `finished` holds its return value once it has ended."""

    def __init__(self, stream: Iterator[GuidedStep]):
        self.stream, self.finished = stream, False

    def __iter__(self) -> Iterator[GuidedStep]:
        self.finished = bool((yield from self.stream))


def run_guided(loaded, prompt_ids: list[int], config: DecodingConfig, constraint: Constraint | None) -> GuidedResult:
    """The whole run (with `constraint=None`: the same loop with no grammar, for comparisons)."""
    started = time.perf_counter()
    steps: list[GuidedStep] = []
    if constraint is None:
        tokens = list(generate_stream(loaded, prompt_ids, config))
        ids = [s.token_id for s in tokens]
        finished = bool(ids) and ids[-1] in eos_ids(loaded)
    else:
        run = GuidedRun(guided_stream(loaded, prompt_ids, config, constraint))
        steps = list(run)
        finished = run.finished
        ids = [s.step.token_id for s in steps]
    stops = eos_ids(loaded)
    text = loaded.tokenizer.decode([i for i in ids if i not in stops])
    return GuidedResult(text, ids, steps, finished, time.perf_counter() - started)
