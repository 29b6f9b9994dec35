"""An answer the small model cannot spoil: the sentence of the retrieved passages that best answers
the question, quoted word for word with its citation, and the short span of it that is the answer.

1. Candidates: every sentence of every retrieved passage (all top-k, not only the first; offsets
   kept, so the page can highlight it in the source). Sentences end at . ! ? ; and blank lines, and
   also after a heading line ("3.1 Invoking gzip", a line underlined with === or ---, a short title
   line before a capitalised one) and at each line of a "label: value" block (form fields), so a
   heading never glues itself to the sentence after it.
2. Each sentence is scored: the embedding model's cosine with the question (the collection's own
   model) + 0.5 x the share of the question's idf-weighted words it holds (the dense score finds
   paraphrases, the lexical one names and numbers) + 0.02 per place its passage ranks above the last
   retrieved one, less 0.5 for a fragment: a heading (numbered, or underlined), under 4 words, or a
   line of under 8 words that ends without a stop and is no "label: value" ("After installing").
3. The span inside the best sentence: answer_span.py (a number for "how many", a date for "when",
   the value of "label: value", else the best clause; dates kept whole).

Nothing is generated: every word shown is in the document, at the page cited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from backends.rag.answer_span import answer_span
from backends.rag.text_rules import lexical, question_terms
from backends.rag.types import Hit

_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；])[\"'”’)]*\s+|(?<=[。！？；])|\n\s*\n")
_NUMBERED_HEADING = re.compile(
    r"^(?:\d+(?:\.\d+)*\.?|[A-Z]\.|[IVX]+\.|(?:chapter|section|appendix|part)\s+\w+\.?)\s+\S", re.IGNORECASE
)
_UNDERLINE = re.compile(r"^\s*([=\-*~_#])\1{2,}\s*$")
_LABEL_LINE = re.compile(r"^[^:.!?。！？]{1,80}[:：]\s+\S")
_STOPPED = (".", "!", "?", ";", ":", "。", "！", "？", "；", "：", '"', "”", ")")
LEXICAL_WEIGHT = 0.5
RANK_BONUS = 0.02  # per place above the last hit
FRAGMENT_PENALTY = 0.5


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


def _heading_line(line: str, next_line: str) -> bool:
    """A line that is a heading, not the start of a sentence that wraps onto the next line."""
    line, following = line.strip(), next_line.strip()
    if not line or line.endswith(_STOPPED):
        return False
    if _UNDERLINE.match(following) or _UNDERLINE.match(line):
        return True
    if _NUMBERED_HEADING.match(line) and len(line.split()) <= 12:
        return True
    # a short title line before a capitalised line ("Evaluating language models" / "Perplexity measures...")
    return len(line.split()) <= 6 and line[:1].isupper() and following[:1].isupper()


def _line_breaks(text: str) -> list[tuple[int, int]]:
    """(start, end) of the line breaks that also end a sentence: after a heading, between "label: value" lines."""
    lines = text.split("\n")
    out, offset = [], 0
    for i, line in enumerate(lines[:-1]):
        end = offset + len(line)
        following = lines[i + 1]
        labels = _LABEL_LINE.match(line.strip()) and _LABEL_LINE.match(following.strip())
        if labels or _heading_line(line, following):
            out.append((end, end + 1))
        offset = end + 1
    return out


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of every sentence of text: split after . ! ? ; (and Chinese stops), at blank lines, after
    heading lines and between "label: value" lines."""
    cuts = sorted([(m.start(), m.end()) for m in _SENTENCE_END.finditer(text)] + _line_breaks(text))
    spans, start = [], 0
    for cut_start, cut_end in cuts:
        if cut_start > start:
            spans.append((start, cut_start))
        start = max(start, cut_end)
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


def is_fragment(text: str, raw: str = "") -> bool:
    """A heading or a piece of a sentence rather than a statement: numbered or underlined heading, under
    4 words, or under 8 words without a closing stop and not a "label: value" line."""
    words = text.split()
    if _UNDERLINE.search(raw or text) or any(_UNDERLINE.match(line) for line in (raw or text).split("\n")):
        return True
    if _NUMBERED_HEADING.match(text) and not text.endswith(_STOPPED[:4]):
        return True
    if _LABEL_LINE.match(text):
        return False
    return len(words) < 4 or (len(words) < 8 and not text.endswith(_STOPPED))


def extract_answer(
    question: str, hits: list[Hit], embed_texts, max_hits: int | None = None
) -> ExtractiveAnswer | None:
    """The best sentence of the hits (the first max_hits; all when None) and its answer span; None when
    there are no sentences.

    embed_texts(list of str) -> unit vectors (n x d), the question first (the collection's own model).
    """
    shown = hits if max_hits is None else hits[:max_hits]
    candidates = []
    for number, hit in enumerate(shown, start=1):
        for start, end in sentences(hit.chunk.text):
            raw = hit.chunk.text[start:end]
            candidates.append((number, hit, start, end, _flat(raw), raw))
    if not candidates:
        return None
    texts = [c[4] for c in candidates]
    vectors = np.asarray(embed_texts([question, *texts]), dtype=np.float32)
    dense = vectors[1:] @ vectors[0]
    terms = question_terms(question, texts)
    scores = [
        float(d)
        + LEXICAL_WEIGHT * lexical(terms, text)
        + RANK_BONUS * (len(shown) - number)
        - (FRAGMENT_PENALTY if is_fragment(text, raw) else 0.0)
        for d, (number, _, _, _, text, raw) in zip(dense, candidates)
    ]
    best = int(np.argmax(scores))
    number, hit, start, end, sentence, _ = candidates[best]
    return ExtractiveAnswer(
        number, hit, sentence, answer_span(question, sentence, embed_texts), start, end, scores[best]
    )
