"""Zero-shot classification in any image-text space (ConSE offline, CLIP when given one).

Each label is put into one or more prompt templates ("a photo of a {}"); with several templates
the label's text embedding is the normalised mean over templates (prompt ensembling, as in the
CLIP paper). Scores are cosine similarities; probabilities are softmax(scale * cosine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a close-up photo of a {}.",
    "a picture of the {}.",
    "{}",
)


class LabelError(ValueError):
    """Bad labels or templates, with a message that quotes them."""


def clean_labels(text: str, max_labels: int = 50) -> list[str]:
    """Comma- or newline-separated labels, trimmed, duplicates dropped (first kept)."""
    seen: dict[str, None] = {}
    for part in text.replace("\n", ",").split(","):
        label = part.strip()
        if label and label.lower() not in {s.lower() for s in seen}:
            seen[label] = None
    labels = list(seen)
    if len(labels) < 2:
        raise LabelError(f"Give at least two labels separated by commas (got {text.strip()!r}).")
    if len(labels) > max_labels:
        raise LabelError(f"{len(labels)} labels is too many; the limit is {max_labels}.")
    return labels


def check_templates(templates: list[str]) -> list[str]:
    kept = [t.strip() for t in templates if t.strip()]
    if not kept:
        raise LabelError("Give at least one prompt template, for instance 'a photo of a {}.'")
    for template in kept:
        if template.count("{}") != 1:
            raise LabelError(f"The template {template!r} must contain exactly one {{}} where the label goes.")
    return kept


@dataclass(frozen=True)
class ZeroShot:
    labels: list[str]
    templates: list[str]
    probs: np.ndarray  # (labels,) with the ensembled text embeddings
    cosines: np.ndarray  # (labels,)
    per_template: np.ndarray  # (templates, labels) probabilities with each template alone
    method: str


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def label_vectors(space, labels: list[str], templates: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(templates, labels, D) per-template vectors and the (labels, D) ensembled ones."""
    texts = [t.replace("{}", label) for t in templates for label in labels]
    vectors = space.embed_texts(texts).reshape(len(templates), len(labels), -1)
    mean = vectors.mean(0)
    mean /= np.linalg.norm(mean, axis=-1, keepdims=True) + 1e-12
    return vectors, mean


def zero_shot(space, image_vector: np.ndarray, labels: list[str], templates: list[str]) -> ZeroShot:
    """`image_vector` (D,) from `space.embed_images`; labels and templates already checked."""
    per, mean = label_vectors(space, labels, templates)
    cos = mean @ image_vector
    per_template = softmax(space.logit_scale * (per @ image_vector))
    return ZeroShot(labels, templates, softmax(space.logit_scale * cos), cos, per_template, space.method)
