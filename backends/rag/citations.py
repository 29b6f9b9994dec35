"""Which sources an answer cites, and whether retrieval found anything relevant at all.

`parse_citations` reads the markers the prompt asks for: [1], [2], [1, 3], [1][2], [1-3],
and also "[Source 2]" (models write that too). Numbers outside 1..len(hits) are dropped:
a model that cites [7] out of five sources made it up.

Small models often answer correctly but write no marker at all (SmolLM2-135M copies the
fact and ignores the citation rule). `infer_citations` then attributes each sentence of
the answer to the source that holds most of its words, and marks the citation as
inferred, so the page can say "matched by wording" instead of "cited by the model".
`citations_for` uses the markers when there are any, else the inferred ones. A marker counts only in a
sentence that says something besides markers and citation talk (`grounded_citations`): SmolLM2, asked
in Chinese, wrote "According to [1], [2], [3] and [4] are all about [1]." and every source was shown
as cited.

Citation forcing (pipeline.prepare_turn) begins the answer for the model with "According to [n],":
that marker was written by the app, not by the model. `citations_for(answer, hits, prefix)` marks
its source `forced` and reads the model's own markers (or, failing those, its wording) only in the
text after the prefix, so a forced answer whose model-written text cites nothing has no citation
by the model (`own_citations`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backends.rag.types import Hit

# Best dense cosine (all-MiniLM-L6-v2, mean pooled, normalised) below which retrieval is "weak".
# Measured: short hand-written passages score 0.64-0.88 against the question they answer and
# -0.13-0.16 against unrelated ones (tests/backends/test_rag_citations.py repeats this). With the
# default 800-character chunks of the sample PDF, each holding several topics, the best chunk of
# its 15 evaluation questions scores 0.16-0.73 (only one below 0.2, three below 0.3), and off-topic
# questions (capital of Peru, football, baking) 0.03-0.18. So 0.2, not the often quoted 0.3, which
# would warn on 3 of 15 well-answered questions. Other embedding models spread cosines differently
# (E5 rarely goes below 0.7): pass their own threshold.
WEAK_COSINE = 0.2

_MARKER = re.compile(r"\[\s*((?:source\s*)?\d+(?:\s*[,;\-–]\s*(?:source\s*)?\d+)*)\s*\]", re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_MAX_RANGE = 50
# Too common to say where a sentence came from.
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "you",
        "your",
        "not",
        "no",
        "yes",
    ]
)


@dataclass(frozen=True)
class Citation:
    number: int  # 1-based source number in the prompt
    hit: Hit
    inferred: bool = False  # True: the model wrote no marker; matched by the answer's wording
    overlap: float | None = None  # inferred only: share of the sentence's words found in the source
    forced: bool = False  # True: the marker is the app's (citation forcing), the model did not write it

    @property
    def by_model(self) -> bool:
        """A marker the model wrote itself (not added by the app, not matched by wording)."""
        return not (self.inferred or self.forced)


def _numbers(group: str) -> list[int]:
    out = []
    for part in re.split(r"\s*[,;]\s*", re.sub(r"(?i)source\s*", "", group)):
        bounds = [int(x) for x in re.split(r"\s*[\-–]\s*", part) if x]
        if len(bounds) == 2 and 0 <= bounds[1] - bounds[0] <= _MAX_RANGE:
            out.extend(range(bounds[0], bounds[1] + 1))
        else:
            out.extend(bounds)
    return out


def cited_numbers(answer: str) -> list[int]:
    """Every number in a citation marker, in order of first appearance (not yet checked against the sources)."""
    seen: list[int] = []
    for match in _MARKER.finditer(answer or ""):
        for n in _numbers(match.group(1)):
            if n not in seen:
                seen.append(n)
    return seen


def parse_citations(answer: str, hits: list[Hit]) -> list[Citation]:
    """The sources the answer cites with markers, in order of first citation; unknown numbers dropped."""
    return [Citation(n, hits[n - 1]) for n in cited_numbers(answer) if 1 <= n <= len(hits)]


# Words that say nothing about the documents: function words and citation talk ("According to [1], [2],
# [3] and [4] are all about [1]." cites nothing: it only lists the sources).
_FILLER = frozenset(
    [
        "a",
        "an",
        "and",
        "or",
        "but",
        "the",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "by",
        "with",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "all",
        "both",
        "each",
        "also",
        "about",
        "according",
        "see",
        "source",
        "sources",
        "passage",
        "passages",
        "document",
        "documents",
        "text",
        "texts",
        "cited",
        "cite",
        "cites",
        "citing",
        "refer",
        "refers",
        "mentioned",
        "said",
        "says",
        "say",
        "same",
        "following",
        "here",
        "there",
    ]
)


def says_something(sentence: str) -> bool:
    """Whether a sentence holds a word besides its markers, function words and citation talk."""
    return any(w not in _FILLER for w in _WORD.findall(strip_citations(sentence).lower()))


def grounded_citations(answer: str, hits: list[Hit]) -> list[Citation]:
    """The markers of sentences that say something (`says_something`), in order; a sentence of markers
    alone ("... frozen. [1]") belongs to the sentence before it. A marker in a sentence that only lists
    sources is no citation: the answer does not use that source."""
    numbers: list[int] = []
    previous = False
    for sentence in _SENTENCE.split(answer or ""):
        if not sentence.strip():
            continue
        bare = not _WORD.findall(strip_citations(sentence))
        previous = previous if bare else says_something(sentence)
        if previous:
            numbers += [n for n in cited_numbers(sentence) if n not in numbers]
    return [Citation(n, hits[n - 1]) for n in numbers if 1 <= n <= len(hits)]


def strip_citations(answer: str) -> str:
    """The answer without its markers (for scoring it against a reference)."""
    return re.sub(r"\s+([.,;:!?])", r"\1", _MARKER.sub("", answer or "")).strip()


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and (len(w) > 2 or w.isdigit())}


def infer_citations(answer: str, hits: list[Hit], min_overlap: float = 0.5, min_words: int = 3) -> list[Citation]:
    """For each answer sentence with at least `min_words` content words, the source holding the largest
    share of them, when that share is at least `min_overlap` and no other source holds as much;
    one citation per source, first match first."""
    sources = [_content_words(h.chunk.text) for h in hits]
    found: dict[int, Citation] = {}
    for sentence in _SENTENCE.split(strip_citations(answer)):
        words = _content_words(sentence)
        if len(words) < min_words or not sources:
            continue
        shares = [len(words & src) / len(words) for src in sources]
        best = max(range(len(shares)), key=lambda i: (shares[i], -i))
        # A sentence several sources hold equally (a running page header) says nothing about where it came from.
        distinct = sum(share == shares[best] for share in shares) == 1
        if shares[best] >= min_overlap and distinct and best + 1 not in found:
            found[best + 1] = Citation(best + 1, hits[best], inferred=True, overlap=shares[best])
    return list(found.values())


def split_forced(answer: str, prefix: str = "") -> tuple[str, str]:
    """(the part the app wrote, the part the model wrote): the prefix when the answer begins with it."""
    answer = answer or ""
    if prefix and answer.startswith(prefix):
        return prefix, answer[len(prefix) :]
    return "", answer


def citations_for(answer: str, hits: list[Hit], prefix: str = "") -> list[Citation]:
    """The sources the answer cites, in order: first those of the app's `prefix` (citation forcing,
    `forced=True`), then the model's own markers in the rest of the answer when it wrote any valid
    one, else the sources its sentences' wording matches (`inferred=True`). One citation per source:
    a source the model cites itself counts as the model's, even when the prefix cited it too."""
    forced_text, own_text = split_forced(answer, prefix)
    own = grounded_citations(own_text, hits) or infer_citations(own_text, hits)
    by_number = {c.number: c for c in own if not c.inferred}
    forced = [Citation(c.number, c.hit, forced=True) for c in parse_citations(forced_text, hits)]
    out = [by_number.get(c.number, c) for c in forced]
    taken = {c.number for c in out}
    return out + [c for c in own if c.number not in taken]


def own_citations(answer: str, hits: list[Hit], prefix: str = "") -> list[Citation]:
    """The markers the model wrote itself, in its order: none from the app's prefix, none matched by wording,
    none in a sentence that only lists sources (`grounded_citations`)."""
    return grounded_citations(split_forced(answer, prefix)[1], hits)


def weak_retrieval(hits: list[Hit], threshold: float = WEAK_COSINE) -> bool:
    """True when nothing was retrieved, or the best dense cosine is below `threshold`.

    Only the dense cosine is judged: BM25 and fused (RRF) scores have no fixed scale, so a
    list ranked by them still counts its chunks' dense cosines. Hits without any dense score
    (a sparse-only index) cannot be judged and give False.
    """
    if not hits:
        return True
    cosines = [h.dense_score for h in hits if h.dense_score is not None]
    return bool(cosines) and max(cosines) < threshold
