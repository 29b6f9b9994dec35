"""Word rules the extractive answer's two steps share (extractive.py, answer_span.py): stop words, the
question's idf-weighted terms and the share of them a text holds."""

from __future__ import annotations

import math
import re

from backends.rag.index import tokenize

WORD = re.compile(r"[\w'’#\-]+", re.UNICODE)
STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "with",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "does",
        "do",
        "did",
        "what",
        "which",
        "who",
        "how",
        "why",
        "when",
        "where",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "they",
        "as",
        "from",
        "into",
        "than",
        "then",
        "there",
        "their",
        "about",
        "per",
    ]
)


def question_terms(question: str, texts: list[str]) -> dict[str, float]:
    """The question's words (no stop words) weighted by an idf over the candidate texts."""
    terms = [t for t in dict.fromkeys(tokenize(question)) if t not in STOP]
    docs = [set(tokenize(t)) for t in texts]
    n = max(len(docs), 1)
    return {t: math.log(1 + (n + 1) / (1 + sum(t in d for d in docs))) for t in terms}


def lexical(terms: dict[str, float], text: str) -> float:
    """Share of the question's term weight that the text holds (0..1)."""
    if not terms:
        return 0.0
    found = set(tokenize(text))
    return sum(w for t, w in terms.items() if t in found) / sum(terms.values())
