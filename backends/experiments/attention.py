"""Attention experiments: one forward pass of a short sentence, summarised by the attention package's
head statistics (the numbers of the page's head summary tab)."""

from __future__ import annotations

import numpy as np

from backends import attention as att
from backends.experiments.base import Experiment, fmt, observation
from backends.models.cache import shared_cache

TEXT = "The cat sat on the mat because it was tired."
DECODER = "smollm2-135m-instruct"
ENCODER = "all-minilm-l6-v2"


def _result(model: str, text: str, device: str) -> att.AttentionResult:
    loaded = shared_cache().get(model, device=device, variant="eager")
    return att.compute_attention(loaded, text, None, 64)


def previous_token_head(params, device) -> tuple[int, int, float, float]:
    """(layer, head, share on the previous token, mean distance) of the most previous-token head."""
    result = _result(params["model"], params["text"], device)
    stats = att.head_stats(result, result.special_mask)
    layer, head = np.unravel_index(int(np.argmax(stats.previous_token)), stats.previous_token.shape)
    return int(layer), int(head), float(stats.previous_token[layer, head]), float(stats.mean_distance[layer, head])


def measure_previous(params, device):
    """Does some head put most of its attention on the token just before each query?"""
    layer, head, share, distance = previous_token_head(params, device)
    outcome = "most" if share > 0.5 else "some" if share > 0.2 else "none"
    return observation(
        "attention.previous",
        outcome,
        "most",
        layer=layer,
        head=head,
        share=fmt(100 * share, 0),
        distance=fmt(distance),
    )


def measure_sink(params, device):
    """The share of all attention of layers 1.. that lands on the first token (an "attention sink")."""
    result = _result(params["model"], params["text"], device)
    stats = att.head_stats(result)
    later = stats.first_token[1:]
    mean = float(later.mean())
    sinks = int((later > 0.5).sum())
    outcome = "little" if mean < 0.15 else "quarter" if mean < 0.45 else "most"
    return observation("attention.sink", outcome, "most", sinks=sinks, heads=int(later.size), mean=fmt(100 * mean, 0))


def _later_mass(result: att.AttentionResult) -> float:
    """Mean attention a query puts on keys after it (the upper triangle), over all heads and rows."""
    a = result.attentions
    upper = np.triu(np.ones(a.shape[-2:], dtype=bool), k=1)
    return float(a[..., upper].sum() / (a.shape[0] * a.shape[1] * a.shape[2]))


def measure_causal(params, device):
    encoder = _later_mass(_result(ENCODER, params["text"], device))
    decoder = _later_mass(_result(DECODER, params["text"], device))
    enc, dec = encoder > 0.01, decoder > 0.01
    outcome = "both" if enc and dec else "encoder_only" if enc else "neither"  # (a causal encoder is not a case)
    return observation(
        "attention.causal", outcome, "encoder_only", encoder=fmt(100 * encoder, 0), decoder=fmt(100 * decoder, 1)
    )


EXPERIMENTS = (
    Experiment(
        "attention", "previous", ("most", "some", "none"), "most", {"model": DECODER, "text": TEXT}, measure_previous
    ),
    Experiment(
        "attention", "sink", ("little", "quarter", "most"), "most", {"model": DECODER, "text": TEXT}, measure_sink
    ),
    Experiment(
        "attention",
        "causal",
        ("encoder_only", "both", "neither"),
        "encoder_only",
        {"model": ENCODER, "text": TEXT},
        measure_causal,
    ),
)
