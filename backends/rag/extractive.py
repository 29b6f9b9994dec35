"""An answer the small model cannot spoil: the sentence of the retrieved passages that best answers
the question, quoted word for word with its citation, and the short span of it that is the answer.

1. Every sentence of the top hits (offsets kept, so the page can highlight it in the source).
2. Each sentence is scored by the embedding model's cosine with the question (the same model the
   collection was built with) plus a BM25-like share of the question's rarer words it holds (a
   hybrid: the dense score finds paraphrases, the lexical one names and numbers); a small bonus
   for the passage's retrieval rank breaks near-ties.
3. The span: the clause of that sentence (split at commas, semicolons, colons, "which"...) that
   scores best, with leading and trailing words the question already says trimmed off ("divided by
   the square root of the head dimension" -> "the square root of the head dimension"). For
   "how many / how much" questions, the number (with its unit) nearest the question's words.

Nothing is generated: every word shown is in the document, at the page cited.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from backends.rag.index import tokenize
from backends.rag.types import Hit

_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；])[\"'”’)]*\s+|(?<=[。！？；])|\n\s*\n")
_CLAUSE = re.compile(
    r",\s+|;\s+|:\s+|，|；|：|\s+(?=(?:which|while|whose|so that|so|but|and an?|and the)\s)", re.IGNORECASE
)
_NUMBER = re.compile(r"\d[\d,.]*(?:[-\u2011]\w+)?(?:\s+(?!and\b|or\b|at\b|in\b|of\b|to\b|per\b)[A-Za-z]\w*)?")
_HOW_MANY = re.compile(r"^\s*how\s+(many|much)\b|多少|几", re.IGNORECASE)
_WORD = re.compile(r"[\w'’#\-]+", re.UNICODE)
_STOP = frozenset(
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
LEXICAL_WEIGHT = 0.5
RANK_BONUS = 0.02  # per place above the last hit
NOVELTY_WEIGHT, LEAD_WEIGHT = 0.6, 0.15


@dataclass(frozen=True)
class ExtractiveAnswer:
    number: int  # 1-based hit number (the citation)
    hit: Hit
    sentence: str  # as in the document (line breaks made spaces)
    span: str  # the short answer inside the sentence
    start: int  # the sentence's character offsets in the hit's chunk text
    end: int
    score: float

    @property
    def cited(self) -> str:
        return f"{self.span} [{self.number}]"


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of every sentence of text: split after . ! ? ; (and Chinese stops) and at blank lines."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.start() > start:
            spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if sum(ch.isalnum() for ch in text[a:b]) >= 8:  # a heading number or a stray mark is no answer
            out.append((a, b))
    return out


def _flat(text: str) -> str:
    return " ".join(text.split())


def _lexical(question_terms: dict[str, float], text: str) -> float:
    """Share of the question's term weight that the text holds (0..1)."""
    if not question_terms:
        return 0.0
    found = set(tokenize(text))
    return sum(w for t, w in question_terms.items() if t in found) / sum(question_terms.values())


def _question_terms(question: str, texts: list[str]) -> dict[str, float]:
    """The question's words (no stop words) weighted by an idf over the candidate sentences."""
    terms = [t for t in dict.fromkeys(tokenize(question)) if t not in _STOP]
    docs = [set(tokenize(t)) for t in texts]
    n = max(len(docs), 1)
    return {t: math.log(1 + (n + 1) / (1 + sum(t in d for d in docs))) for t in terms}


def _trim(clause: str, question: str) -> str:
    """Leading and trailing words the question already holds (or stop words next to them) cut off."""
    return _trimmed(clause, question)[0]


def _trimmed(clause: str, question: str) -> tuple[str, int]:
    """(the trimmed clause, how many question words led into it: "divided by" before the answer)."""
    asked = {w.lower() for w in _WORD.findall(question)}
    words = clause.split()

    def known(word: str) -> bool:
        core = word.strip(".,;:!?()\"'“”‘’").lower()
        return not core or core in asked or core in _STOP or core.rstrip("s") in asked

    start, end = 0, len(words)
    while start < end and known(words[start]):
        start += 1
    while end > start and known(words[end - 1]):
        end -= 1
    led = sum(words[i].strip(".,;:!?()\"'").lower() in asked - _STOP for i in range(start))
    kept = " ".join(words[start:end]).strip(" ,;:")
    return (kept or clause.strip(" ,;:")), led


def _number_span(sentence: str, question: str) -> str | None:
    """For how many / how much: the number (and its unit) that is not in the question and sits nearest
    the question's words in the sentence."""
    asked = {w.lower() for w in _WORD.findall(question)}
    asked_numbers = set(re.findall(r"\d[\d,.]*", question))
    anchors = [m.start() for m in _WORD.finditer(sentence) if m.group().lower() in asked - _STOP]
    best, best_distance = None, None
    for match in _NUMBER.finditer(sentence):
        value = match.group().strip(" .,")
        if re.match(r"\d[\d,.]*", value).group().strip(".,") in asked_numbers:
            continue
        distance = min((abs(match.start() - a) for a in anchors), default=0)
        if best_distance is None or distance < best_distance:
            best, best_distance = value, distance
    return best


def extract_answer(question: str, hits: list[Hit], embed_texts, max_hits: int = 3) -> ExtractiveAnswer | None:
    """The best sentence of the first max_hits hits and its answer span; None when there are no sentences.

    embed_texts(list of str) -> unit vectors (n x d), the question first (the collection's own model).
    """
    candidates = []
    for number, hit in enumerate(hits[:max_hits], start=1):
        for start, end in sentences(hit.chunk.text):
            candidates.append((number, hit, start, end, _flat(hit.chunk.text[start:end])))
    if not candidates:
        return None
    texts = [c[4] for c in candidates]
    vectors = np.asarray(embed_texts([question, *texts]), dtype=np.float32)
    dense = vectors[1:] @ vectors[0]
    terms = _question_terms(question, texts)
    shown = min(len(hits), max_hits)
    scores = [
        float(d) + LEXICAL_WEIGHT * _lexical(terms, text) + RANK_BONUS * (shown - number)
        for d, (number, _, _, _, text) in zip(dense, candidates)
    ]
    best = int(np.argmax(scores))
    number, hit, start, end, sentence = candidates[best]
    return ExtractiveAnswer(
        number, hit, sentence, answer_span(question, sentence, embed_texts), start, end, scores[best]
    )


def answer_span(question: str, sentence: str, embed_texts) -> str:
    if _HOW_MANY.search(question):
        found = _number_span(sentence, question)
        if found:
            return found
    clauses = [c.strip() for c in _CLAUSE.split(sentence) if c and c.strip()]
    clauses = [c for c in clauses if sum(ch.isalnum() for ch in c) >= 3] or [sentence]
    if len(clauses) == 1:
        return _trim(clauses[0], question)
    trimmed = [_trimmed(c, question) for c in clauses]
    # the clause as it would be shown: what it adds to the question, not the question's own words again
    vectors = np.asarray(embed_texts([question, *(short for short, _ in trimmed)]), dtype=np.float32)
    terms = _question_terms(question, clauses)
    scores = []
    for i, (clause, (short, led)) in enumerate(zip(clauses, trimmed)):
        words = [w for w in tokenize(short) if w not in _STOP]
        # a clause that only repeats the question is not its answer: reward the words the question lacks,
        # and an answer that the question's own words lead into ("... divided by | the square root ...")
        novelty = sum(w not in set(tokenize(question)) for w in words) / max(len(words), 1)
        scores.append(
            float(vectors[1 + i] @ vectors[0])
            + LEXICAL_WEIGHT * _lexical(terms, clause)
            + NOVELTY_WEIGHT * novelty
            + LEAD_WEIGHT * min(led, 2)
            - (0.5 if len(words) < 2 else 0.0)
        )
    return trimmed[int(np.argmax(scores))][0]
