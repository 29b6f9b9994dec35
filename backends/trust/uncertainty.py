"""Token uncertainty of an answer: each token's probability and the entropy of the whole next-token
distribution it was picked from.

One forward pass over prompt + answer (teacher forcing, the cached model read only) gives the logits at
every answer position; entropy H = -sum_v p(v) ln p(v) over the full vocabulary, in nats (natural log;
divide by ln 2 for bits). A sentence's uncertainty is the mean entropy of its tokens (also kept: the
max -ln p of a token it holds, its most surprising pick). A token belongs to the sentence its first
visible character falls in; whitespace-only tokens and the end-of-turn token belong to none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from backends.trust.selfcheck import Sentence


@dataclass(frozen=True)
class TokenUncertainty:
    token_id: int
    text: str  # what the token adds to the answer text
    start: int  # its first character in the answer text
    prob: float
    logprob: float  # natural log
    entropy: float  # nats, of the full next-token distribution


@dataclass(frozen=True)
class SentenceUncertainty:
    mean_entropy: float  # nats; the sentence's score
    max_surprise: float  # max -ln p over its tokens
    tokens: int


def token_uncertainty(loaded, prompt_ids: Sequence[int], answer_ids: Sequence[int]) -> list[TokenUncertainty]:
    """p, ln p and entropy of every answer token given the prompt and the answer tokens before it."""
    if not answer_ids:
        return []
    device = next(loaded.model.parameters()).device
    ids = torch.tensor([list(prompt_ids) + list(answer_ids)], device=device)
    with torch.inference_mode():
        logits = loaded.model(input_ids=ids).logits[0].float()
    first = len(prompt_ids) - 1  # the logits at position i predict token i + 1
    log_probs = logits[first : first + len(answer_ids)].log_softmax(dim=-1)
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
    picked = log_probs.gather(1, torch.tensor(list(answer_ids), device=device)[:, None])[:, 0]
    out, text = [], ""
    tok = loaded.tokenizer
    for i, token in enumerate(answer_ids):
        # the text a token adds: decode the prefix with and without it (multi-byte characters included)
        longer = tok.decode(list(answer_ids[: i + 1]), skip_special_tokens=True)
        piece = longer[len(text) :] if longer.startswith(text) else longer
        out.append(
            TokenUncertainty(
                int(token),
                piece,
                len(text),
                float(picked[i].exp()),
                float(picked[i]),
                float(entropy[i]),
            )
        )
        text = longer
    return out


def sentence_uncertainty(
    tokens: Sequence[TokenUncertainty], sentences: Sequence[Sentence]
) -> list[SentenceUncertainty]:
    """Mean entropy and max -ln p of the tokens whose first visible character lies in each sentence."""
    groups: list[list[TokenUncertainty]] = [[] for _ in sentences]
    for token in tokens:
        visible = len(token.text) - len(token.text.lstrip())
        if visible >= len(token.text):
            continue
        at = token.start + visible
        for k, sentence in enumerate(sentences):
            if sentence.start <= at < sentence.end:
                groups[k].append(token)
                break
    return [
        SentenceUncertainty(
            sum(t.entropy for t in g) / len(g) if g else 0.0,
            max((-t.logprob for t in g), default=0.0),
            len(g),
        )
        for g in groups
    ]
