"""The embedding-similarity filter: a request's MiniLM embedding against the shipped unsafe examples.

score = the largest cosine between the request and any of the 40 examples of
assets/datasets/trust/unsafe_examples.json (all-MiniLM-L6-v2, the shared cache's sentence variant,
unit-length vectors, so the cosine is a dot product; texts past 256 tokens are truncated by the model).
Flagged from `similarity_threshold()`, chosen on the shipped sets, never on the held-out one:

- each example's score is taken leave-one-out (its largest cosine to the OTHER examples: against
  itself it would be 1), the positives;
- each benign request's score (largest cosine to the examples), the negatives;
- the threshold is the lowest observed score at which at most SIMILARITY_MAX_FPR (5 %) of the benign
  set is flagged: the most recall the examples show for that false-positive budget.

So the similarity filter's false-positive rate on the benign set is in-sample (at most 5 % by
construction); its recall on the held-out set is not.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from backends.core.scheduler import shared_scheduler
from backends.trust.guard_types import FLAGGED, PASSED, CheckResult, shipped_set

EMBED_MODEL = "all-minilm-l6-v2"
SIMILARITY_MAX_FPR = 0.05
_lock = threading.RLock()  # threshold_data takes it, then reference_vectors again


def sentence_model():
    """The shared cache's MiniLM sentence-transformers model (shared: never modified)."""
    from backends.models.cache import shared_cache

    return shared_cache().get(EMBED_MODEL, variant="sentence").model


def embed_texts(texts: list[str]) -> np.ndarray:
    """Unit-length float32 MiniLM embeddings, one row per text."""
    model = sentence_model()
    with shared_scheduler().turn("guard"):
        vectors = model.encode(
            list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    return np.asarray(vectors, dtype=np.float32)


@lru_cache(maxsize=1)
def _reference() -> np.ndarray:
    return embed_texts([item.text for item in shipped_set("examples")])


def reference_vectors() -> np.ndarray:
    with _lock:
        return _reference()


def nearest(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the largest cosine to an unsafe example, and that example's index."""
    sims = np.atleast_2d(vectors) @ reference_vectors().T
    return sims.max(axis=1), sims.argmax(axis=1)


def pick_threshold(positive: np.ndarray, negative: np.ndarray, max_fpr: float) -> float:
    """The lowest observed score t with share(negative >= t) <= max_fpr."""
    candidates = np.unique(np.concatenate([positive, negative]))
    for t in candidates:  # ascending: the first that fits is the lowest
        if np.mean(negative >= t) <= max_fpr:
            return float(t)
    return float(candidates[-1]) + 1e-6


@lru_cache(maxsize=1)
def _threshold_data() -> dict:
    ref = reference_vectors()
    within = ref @ ref.T
    np.fill_diagonal(within, -np.inf)
    positive = within.max(axis=1)  # leave-one-out
    negative, _ = nearest(embed_texts([item.text for item in shipped_set("benign")]))
    threshold = pick_threshold(positive, negative, SIMILARITY_MAX_FPR)
    return {
        "threshold": threshold,
        "examples_loo": positive,
        "benign": negative,
        "examples_recall_loo": float(np.mean(positive >= threshold)),
        "benign_fpr": float(np.mean(negative >= threshold)),
    }


def threshold_data() -> dict:
    """The threshold and the scores it was chosen on (examples leave-one-out, benign)."""
    with _lock:
        return _threshold_data()


def similarity_threshold() -> float:
    return threshold_data()["threshold"]


def similarity_check(text: str) -> CheckResult:
    score, index = nearest(embed_texts([text]))
    score, item = float(score[0]), shipped_set("examples")[int(index[0])]
    threshold = similarity_threshold()
    verdict = FLAGGED if score >= threshold else PASSED
    detail = f"nearest unsafe example {item.id} ({item.category}): {item.text!r}, cosine {score:.3f}"
    data = {"nearest_id": item.id, "nearest_text": item.text, "nearest_category": item.category}
    return CheckResult("similarity", verdict, score, threshold, detail, data)
