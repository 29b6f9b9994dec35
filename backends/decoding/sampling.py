"""The hand-written sampler: how a model's scores for the next token become one chosen token.

This is the teaching code the decoding page shows. Every function takes the scores
(`logits`) for ONE next token, a 1-D tensor with one number per vocabulary entry,
and returns a new tensor (never changing its input). "Filtering" a token means
setting its score to -inf, so that softmax gives it probability 0.

The order is the one `transformers.generate` uses:

  1. penalties, for every strategy:  repetition penalty, no-repeat-n-gram
  2. only when sampling:             temperature -> top-k -> top-p -> min-p -> typical-p
  3. pick:                           argmax (greedy), or one draw from softmax(scores) (sampling)

Each filter matches its transformers counterpart exactly (TemperatureLogitsWarper,
TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper, TypicalLogitsWarper,
RepetitionPenaltyLogitsProcessor, NoRepeatNGramLogitsProcessor), which
`tests/backends/test_decoding.py` checks on real logits.
"""

from __future__ import annotations

import torch

FILTERED = -float("inf")


# ---------------------------------------------------------------------------
# 1. Penalties (greedy, sampling, beam and contrastive search all use them)
# ---------------------------------------------------------------------------


def apply_repetition_penalty(logits: torch.Tensor, previous_ids: list[int], penalty: float) -> torch.Tensor:
    """Make every token that already appeared (prompt included) less likely (Keskar et al. 2019).

    A positive score is divided by the penalty, a negative one multiplied, so both move down.
    """
    if penalty == 1.0 or not previous_ids:
        return logits
    seen = torch.tensor(sorted(set(previous_ids)), dtype=torch.long, device=logits.device)
    scores = logits[seen]
    penalized = torch.where(scores < 0, scores * penalty, scores / penalty)
    out = logits.clone()
    out[seen] = penalized
    return out


def ban_repeated_ngrams(logits: torch.Tensor, previous_ids: list[int], n: int) -> torch.Tensor:
    """Forbid any token that would repeat an n-gram already in the text.

    The last n-1 tokens are the start of the n-gram being written; wherever those same
    n-1 tokens appeared before, the token that followed them there is banned now.
    """
    if n <= 0 or len(previous_ids) < n:
        return logits
    start = tuple(previous_ids[len(previous_ids) - n + 1 :])  # the last n-1 tokens
    banned = {
        previous_ids[i + n - 1]
        for i in range(len(previous_ids) - n + 1)
        if tuple(previous_ids[i : i + n - 1]) == start
    }
    if not banned:
        return logits
    out = logits.clone()
    out[sorted(banned)] = FILTERED
    return out


# ---------------------------------------------------------------------------
# 2. Sampling filters ("warpers")
# ---------------------------------------------------------------------------


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Below 1 sharpens the distribution (more confident), above 1 flattens it (more random)."""
    if temperature == 1.0:
        return logits
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k highest-scoring tokens (and any tied with the k-th); 0 turns the filter off."""
    if k <= 0:
        return logits
    k = min(k, logits.shape[-1])
    kth_best = torch.topk(logits, k).values[-1]
    return logits.masked_fill(logits < kth_best, FILTERED)


def top_p_filter(logits: torch.Tensor, p: float, min_keep: int = 1) -> torch.Tensor:
    """Nucleus sampling (Holtzman et al. 2020): keep the smallest set of top tokens whose probability sums to p.

    Sorted from least to most likely, a token is dropped while the running total of
    probability (itself included) is still at most 1 - p.
    """
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = cumulative <= (1 - p)
    drop_sorted[-min_keep:] = False  # the most likely tokens always stay
    drop = drop_sorted.scatter(0, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, FILTERED)


def min_p_filter(logits: torch.Tensor, min_p: float, min_keep: int = 1) -> torch.Tensor:
    """Keep tokens whose probability is at least min_p times the top token's probability."""
    if min_p <= 0.0:
        return logits
    probs = logits.softmax(dim=-1)
    drop = probs < min_p * probs.max()
    drop[torch.topk(probs, min(min_keep, probs.shape[-1])).indices] = False
    return logits.masked_fill(drop, FILTERED)


def typical_filter(logits: torch.Tensor, mass: float, min_keep: int = 1) -> torch.Tensor:
    """Locally typical sampling (Meister et al. 2022).

    Rank tokens by how close their surprise (-log p) is to the distribution's entropy
    (the average surprise) and keep the closest ones until their probability reaches `mass`.
    """
    if mass >= 1.0:
        return logits
    log_probs = logits.log_softmax(dim=-1)
    entropy = -(log_probs * log_probs.exp()).nansum()
    distance = (-log_probs - entropy).abs()
    sorted_distance, order = torch.sort(distance, descending=False)
    cumulative = logits[order].softmax(dim=-1).cumsum(dim=-1)
    last = min(int((cumulative < mass).sum()), len(sorted_distance) - 1)
    drop_sorted = sorted_distance > sorted_distance[last]
    drop_sorted[:min_keep] = False
    drop = drop_sorted.scatter(0, order, drop_sorted)
    return logits.masked_fill(drop, FILTERED)


# ---------------------------------------------------------------------------
# 3. All of it in order, and the pick
# ---------------------------------------------------------------------------


def process_logits(logits: torch.Tensor, input_ids: list[int], config) -> torch.Tensor:
    """The scores the next token is picked from, given everything before it (`input_ids`).

    `config` is a `DecodingConfig`; the sampling filters apply only when it samples.
    """
    scores = apply_repetition_penalty(logits, input_ids, config.repetition_penalty)
    scores = ban_repeated_ngrams(scores, input_ids, config.no_repeat_ngram_size)
    if config.strategy == "sample":
        scores = apply_temperature(scores, config.temperature)
        scores = top_k_filter(scores, config.top_k)
        scores = top_p_filter(scores, config.top_p)
        scores = min_p_filter(scores, config.min_p)
        scores = typical_filter(scores, config.typical_p)
    return scores


def pick_token(scores: torch.Tensor, config, generator: torch.Generator | None = None) -> int:
    """Greedy takes the best token; sampling draws one token with probability softmax(scores).

    With `generator = torch.Generator().manual_seed(seed)` the draws are the ones
    `torch.manual_seed(seed); model.generate(do_sample=True, ...)` makes.
    """
    if config.strategy == "sample":
        probs = scores.softmax(dim=-1)
        return int(torch.multinomial(probs, num_samples=1, generator=generator))
    return int(torch.argmax(scores))
