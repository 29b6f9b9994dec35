"""Be the sampler: the learner picks each next token from the model's distribution, then compares the
perplexity of their text with greedy decoding's continuation of the same length.

Perplexity of a continuation c given a prompt p, under the model:
    exp( -1/n * sum_i log P(c_i | p, c_<i) )
computed from one forward pass over p + c (position j's logits predict token j + 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from backends.core.scheduler import shared_scheduler
from backends.decoding import Alternative, DecodingConfig, distribution_at, model_device
from backends.inference.speculative import plain_greedy


def next_token_bars(loaded, ids: list[int], top_n: int = 15) -> list[Alternative]:
    """The `top_n` most likely next tokens after `ids` (prompt + picks so far), under the raw softmax."""
    return distribution_at(loaded, list(ids), DecodingConfig(strategy="greedy"), top_n=top_n).raw


def token_logprobs(loaded, prompt_ids: list[int], cont_ids: list[int]) -> list[float]:
    """log P(c_i | prompt, c_<i) for each token of `cont_ids` (natural log)."""
    if not prompt_ids:
        raise ValueError("prompt_ids is empty: a continuation is scored given a prompt.")
    if not cont_ids:
        return []
    n = len(cont_ids)
    x = torch.tensor([list(prompt_ids) + list(cont_ids)], device=model_device(loaded))
    with torch.inference_mode():
        with shared_scheduler().turn("decode"):
            logits = loaded.model(input_ids=x, logits_to_keep=n + 1).logits[0, :-1].float()
        picked = logits.log_softmax(dim=-1).gather(1, x[0, -n:, None])[:, 0]
    return picked.tolist()


def perplexity_of(logprobs: list[float]) -> float:
    return math.exp(-sum(logprobs) / len(logprobs)) if logprobs else float("nan")


@dataclass(frozen=True)
class SamplerComparison:
    yours: list[int]
    yours_logprobs: list[float]
    greedy: list[int]  # greedy's continuation: as many tokens as yours (fewer if it ended)
    greedy_logprobs: list[float]
    greedy_ended: bool  # greedy produced an end-of-sequence token before reaching your length

    @property
    def yours_ppl(self) -> float:
        return perplexity_of(self.yours_logprobs)

    @property
    def greedy_ppl(self) -> float:
        return perplexity_of(self.greedy_logprobs)


def compare_with_greedy(loaded, prompt_ids: list[int], chosen: list[int]) -> SamplerComparison:
    """Your picks and greedy's continuation of the same length, each with its per-token log-probabilities."""
    if not chosen:
        raise ValueError("chosen is empty: pick at least one token before comparing.")
    greedy = plain_greedy(loaded, prompt_ids, len(chosen)).tokens
    return SamplerComparison(
        yours=list(chosen),
        yours_logprobs=token_logprobs(loaded, prompt_ids, chosen),
        greedy=greedy,
        greedy_logprobs=token_logprobs(loaded, prompt_ids, greedy),
        greedy_ended=len(greedy) < len(chosen),
    )
