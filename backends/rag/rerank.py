"""Optional cross-encoder re-ranking of retrieved chunks.

A cross-encoder reads the question and a chunk together and scores their
relevance; slower than a vector lookup, so it only re-orders the retriever's
candidates. No cross-encoder is embedded offline: reranker_available() says
whether one can be had (local folder, Hugging Face cache, or the hub when
online), and the page hides the option otherwise.
"""

from __future__ import annotations

from dataclasses import replace

from backends.models.registry import ModelNotAvailable, resolve
from backends.rag.types import Hit

DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L-6-v2"


def reranker_available(name: str = DEFAULT_RERANKER) -> bool:
    try:
        resolve(name)
    except ModelNotAvailable:
        return False
    return True


def rerank(
    question: str, hits: list[Hit], name: str = DEFAULT_RERANKER, device: str = "cpu", k: int | None = None
) -> list[Hit]:
    """The hits re-ordered by the cross-encoder's score (kept in rerank_score and score), best first."""
    from backends.models.cache import shared_cache

    if not hits:
        return []
    loaded = shared_cache().get(name, device=device, variant="cross-encoder")
    scores = loaded.model.predict([(question, h.chunk.text) for h in hits], convert_to_numpy=True)
    order = sorted(range(len(hits)), key=lambda i: (-float(scores[i]), hits[i].rank))[: k or len(hits)]
    return [
        replace(hits[i], score=float(scores[i]), rank=n + 1, rerank_score=float(scores[i]))
        for n, i in enumerate(order)
    ]
