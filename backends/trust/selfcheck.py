"""Self-consistency scores (SelfCheckGPT's idea, written here): does the model say the same thing again?

A model that knows a fact tends to repeat it when asked again with sampling on; a made-up fact tends to
change from one sample to the next. So each sentence of the main (greedy) answer is compared with N
sampled answers to the same question, and scored by how little the samples support it. Both scores
here are INconsistency scores: higher means less supported, more likely made up.

- MiniLM: per sample, the highest cosine similarity between the sentence and that sample's sentences
  (all-MiniLM-L6-v2 embeddings, unit length); the sentence's score is 1 - the mean of those over the
  samples. An empty sample supports nothing (similarity 0).
- Unigram (SelfCheckGPT's n-gram variant with n = 1): a unigram model with add-one smoothing fitted on
  the words of the samples and of the main answer (lower-cased `\\w+` words; the vocabulary has one
  extra `<unk>` entry of count 0, as in SelfCheckGPT's code), p(w) = (count(w) + 1) / (N + V); the
  sentence's score is the mean of -log p(w) over its words (natural log), and its max is kept too.

Sentences: the text cut after ".", "!" or "?" followed by white space, and at line breaks.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

EMBED_MODEL = "all-minilm-l6-v2"
UNKNOWN = "<unk>"
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int  # character offsets in the text it was cut from
    end: int


def split_sentences(text: str) -> list[Sentence]:
    """The non-empty sentences of `text` with their character spans (stripped of surrounding spaces)."""
    out, start = [], 0
    for cut in [*_BOUNDARY.finditer(text), None]:
        end = cut.start() if cut is not None else len(text)
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            out.append(Sentence(stripped, start + lead, start + lead + len(stripped)))
        if cut is not None:
            start = cut.end()
    return out


def words(text: str) -> list[str]:
    """Lower-cased words (`\\w+`), the unigram model's tokens."""
    return _WORD.findall(text.lower())


# ---- MiniLM ----------------------------------------------------------------------------------------


def unit_rows(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def minilm_scores(
    sentences: Sequence[str], samples: Sequence[str], encode: Callable[[list[str]], np.ndarray]
) -> list[float]:
    """1 - mean over samples of max cosine(sentence, sample sentence), one score per sentence.

    `encode(texts)` gives one embedding row per text (all are embedded in one call)."""
    if not sentences:
        return []
    if not samples:
        raise ValueError("Self-consistency needs at least one sampled answer.")
    sample_sents = [[s.text for s in split_sentences(sample)] for sample in samples]
    flat = [s for group in sample_sents for s in group]
    vectors = unit_rows(encode(list(sentences) + flat))
    main, rest = vectors[: len(sentences)], vectors[len(sentences) :]
    support = np.zeros((len(sentences), len(samples)))
    at = 0
    for j, group in enumerate(sample_sents):
        if group:  # an empty sample keeps 0: it supports nothing
            support[:, j] = (main @ rest[at : at + len(group)].T).max(axis=1)
        at += len(group)
    return [float(1.0 - row.mean()) for row in support]


def minilm_encoder(device: str = "cpu") -> Callable[[list[str]], np.ndarray]:
    """Unit-length all-MiniLM-L6-v2 embeddings from the shared cache's sentence model (not modified)."""
    from backends.core.scheduler import shared_scheduler
    from backends.models.cache import shared_cache

    model = shared_cache().get(EMBED_MODEL, device=device, variant="sentence").model

    def encode(texts: list[str]) -> np.ndarray:
        with shared_scheduler().turn("trust.selfcheck.embed"):
            return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    return encode


# ---- unigram ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnigramScore:
    mean_neg_logprob: float  # the sentence's score
    max_neg_logprob: float  # its least likely word
    words: int


def unigram_model(texts: Sequence[str]) -> Callable[[str], float]:
    """p(word) with add-one smoothing over the words of `texts`; unseen words get p(<unk>)."""
    counts = Counter({UNKNOWN: 0})
    for text in texts:
        counts.update(words(text))
    total, vocab = sum(counts.values()), len(counts)

    def prob(word: str) -> float:
        return (counts.get(word, 0) + 1) / (total + vocab)

    return prob


def unigram_scores(sentences: Sequence[str], samples: Sequence[str], main: str) -> list[UnigramScore]:
    """Each sentence's mean and max -log p(word) under the unigram model of samples + main answer."""
    prob = unigram_model([*samples, main])
    out = []
    for sentence in sentences:
        surprises = [-math.log(prob(w)) for w in words(sentence)]
        if surprises:
            out.append(UnigramScore(sum(surprises) / len(surprises), max(surprises), len(surprises)))
        else:
            out.append(UnigramScore(0.0, 0.0, 0))
    return out
