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
    TextTracker,
    TokenStep,
    eos_ids,
    inference_steps,
    model_device,
    new_cache,
    new_token_budget,
    next_token_logits,
    pick_token,
    process_logits,
    token_step,
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


@inference_steps
def guided_stream(
    loaded,
    prompt_ids: list[int],
    config: DecodingConfig,
    constraint: Constraint,
    should_stop: Callable[[], bool] | None = None,
    top_n: int = 5,
) -> Iterator[GuidedStep]:
    """Greedy or sampled decoding under `constraint`; one `GuidedStep` per token as it is chosen.

    The generator's return value (StopIteration.value) says whether the grammar was completed."""
    import xgrammar as xgr

    config.validate()
    if config.strategy not in ("greedy", "sample"):
        raise ValueError("Constrained decoding here is greedy or sampled (beam and contrastive search are not).")
    if not prompt_ids:
        raise ValueError("prompt_ids is empty: encode a prompt first (encode_prompt).")
    compiled = compile_constraint(loaded, constraint)
    matcher = xgr.GrammarMatcher(compiled)
    max_new = new_token_budget(loaded, len(prompt_ids), config.max_new_tokens)
    device = model_device(loaded)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    stops = eos_ids(loaded)
    text = TextTracker(loaded.tokenizer)
    ids = list(prompt_ids)
    cache = new_cache(loaded)
    new = torch.tensor([ids], device=device)
    logits = next_token_logits(loaded, new, cache, len(ids))[0]
    vocab = int(logits.shape[-1])
    bitmask = xgr.allocate_token_bitmask(1, vocab)
    for index in range(max_new):
        if should_stop is not None and should_stop():
            return False
        scores = process_logits(logits, ids, config)
        free = int(torch.argmax(scores)) if config.strategy == "greedy" else None
        allowed = allowed_mask(matcher, bitmask, vocab).to(scores.device)
        guided = scores.masked_fill(~allowed, FILTERED)
        if not torch.isfinite(guided).any():  # the grammar allows nothing the filters kept
            guided = logits.masked_fill(~allowed, FILTERED)
        if free is None:  # sampling: the free pick is the same draw on the unmasked scores
            state = generator.get_state()
            free = pick_token(scores, config, generator)
            generator.set_state(state)
        token = pick_token(guided, config, generator)
        probs = logits.softmax(dim=-1)
        step = token_step(loaded, index, token, logits, guided, top_n, text)
        yield GuidedStep(
            step=step,
            allowed=int(allowed.sum()),
            vocab=vocab,
            removed_mass=float(probs[~allowed].sum()),
            free_id=free,
            free_text=loaded.tokenizer.decode([free]),
            free_prob=float(probs[free]),
        )
        if not matcher.accept_token(token):
            raise RuntimeError(f"xgrammar refused token {token} it had allowed")  # never expected
        ids.append(token)
        if matcher.is_terminated() or token in stops:
            return True
        new = torch.tensor([[token]], device=device)
        logits = next_token_logits(loaded, new, cache, len(ids))[0]
    return False


def run_guided(loaded, prompt_ids: list[int], config: DecodingConfig, constraint: Constraint | None) -> GuidedResult:
    """The whole run (with `constraint=None`: the same loop with no grammar, for comparisons)."""
    started = time.perf_counter()
    steps: list[GuidedStep] = []
    if constraint is None:
        from backends.decoding import generate_stream

        tokens = list(generate_stream(loaded, prompt_ids, config))
        ids = [s.token_id for s in tokens]
        finished = bool(ids) and ids[-1] in eos_ids(loaded)
    else:
        stream = guided_stream(loaded, prompt_ids, config, constraint)
        finished = False
        while True:
            try:
                steps.append(next(stream))
            except StopIteration as end:
                finished = bool(end.value)
                break
        ids = [s.step.token_id for s in steps]
    stops = eos_ids(loaded)
    text = loaded.tokenizer.decode([i for i in ids if i not in stops])
    return GuidedResult(text, ids, steps, finished, time.perf_counter() - started)
