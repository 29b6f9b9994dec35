"""Grounding: is each sentence of an answer supported by the passages it was written from?

`ground(answer, passages)` splits the answer into sentences and compares each with every sentence
of every passage (a "unit"). Two scores per (answer sentence, unit):

- cosine: all-MiniLM-L6-v2 sentence embeddings (the shared cache's "sentence" variant, unit length),
  so a paraphrase still scores high;
- overlap: the share of the answer sentence's content words (lower case, accents off, stopwords
  removed, number words as digits) found in the unit. A word matches its plural ("planets" ~
  "planet"); a number matches only the same number ("1989" never matches "1988").

Key terms are the sentence's numbers and its capitalised words (names): a unit that lacks one of
them cannot support the sentence, whatever its scores; nor can a unit negated where the sentence is
not, or the other way round ("Istanbul ... is not the capital" never supports "Istanbul is the
capital": neither the words nor MiniLM see the "not"). Comparing with single sentences rather than
whole passages matters: "Sydney is the capital of Australia" finds every word in a passage that says
"Canberra is the capital of Australia. Sydney is its largest city", but no single sentence there
holds both "Sydney" and "capital".

The rule (thresholds chosen on the 15 constructed pairs in CALIBRATION below, all labelled as
expected; measured there: a sentence stated in a passage, or a close paraphrase, scores cosine
0.93-1.0 and overlap 0.8-1.0; a changed number or name still scores cosine 0.75-0.85 (the embedding
alone cannot tell "1988" from "1989") but misses a key term; "A spider has six legs" against "An
insect has six legs" has every name but overlap 0.67; unrelated sentences score cosine 0.04-0.29 and
overlap 0-0.33. The cosine floor sits well below a paraphrase and above unrelated text; on the
shipped questions a bare right answer ("The answer is: Albert Einstein.") scored cosine 0.50):

    supported  <=>  no key term missing  and  overlap >= OVERLAP_MIN (0.7)  and  cosine >= COSINE_MIN (0.45)

The supporting unit is the supported one with the highest cosine + overlap; when none supports the
sentence, the closest unit (same order) is reported with what it lacks. A sentence that withholds
an answer ("I don't know") is labelled "abstains"; one without content words, "no_claim".
No NLI model is used here (offline only).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from backends.trust.questions import abstains

EMBED_MODEL = "all-minilm-l6-v2"
OVERLAP_MIN = 0.7
COSINE_MIN = 0.45
SUPPORTED, UNSUPPORTED, ABSTAINS, NO_CLAIM = "supported", "unsupported", "abstains", "no_claim"
LABELS = (SUPPORTED, UNSUPPORTED, ABSTAINS, NO_CLAIM)

_STOPWORDS = """a an the and or but nor so yet of in on at to for from by with without about as into onto over under
    than then that this these those there here it its it's is are was were be been being am do does did
    done has have had having will would shall should can could may might must not no yes also too very
    just only even still such what which who whom whose when where why how i you he she we they me him
    her us them my your his our their mine yours s t all any both each few more most other some own same
    one's upon while during before after above below up down out off again further once known called
    answer question passage passages according many much"""
STOPWORDS = frozenset(_STOPWORDS.split())
_NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty"
)
NUMBER_WORDS = {w: str(i) for i, w in enumerate(_NUMBERS.split())}
_TOKEN = re.compile(r"[^\W_]+(?:[.,]\d+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|none|cannot)\b|n't\b")
_CITATION = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")


@dataclass(frozen=True)
class SentenceSupport:
    """One answer sentence and what the passages say about it."""

    text: str  # as written in the answer
    label: str  # one of LABELS
    passage: int | None  # index of the supporting (or, if unsupported, the closest) passage
    evidence: str  # that passage's sentence the scores are for ("" when none)
    cosine: float  # MiniLM cosine with the evidence sentence
    overlap: float  # share of the content words found in the evidence sentence
    missing: tuple[str, ...] = ()  # key terms (numbers, names) the evidence lacks

    @property
    def supported(self) -> bool:
        return self.label == SUPPORTED


def split_sentences(text: str) -> list[str]:
    """Sentences at . ! ? (followed by a space) and at line breaks; empty pieces dropped."""
    if not isinstance(text, str):
        return []
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def fold(text: str) -> str:
    """Lower case, accents off, subscript digits as digits."""
    text = unicodedata.normalize("NFKD", text.translate(str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def _normal(token: str) -> str:
    token = NUMBER_WORDS.get(token, token)
    if re.fullmatch(r"\d+(?:[.,]\d+)*", token):
        return token.replace(",", "")  # 8,849 == 8849
    return token


def stem(word: str) -> str:
    """A crude plural stem: "cities" ~ "city", "boxes" ~ "box", "legs" ~ "leg"; numbers as they are."""
    if any(c.isdigit() for c in word) or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def content_words(text: str) -> list[str]:
    """The text's words without stopwords, folded and normalised, in order, repeats removed."""
    words = (_normal(w) for w in _TOKEN.findall(fold(_CITATION.sub(" ", text))))
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS))


def key_terms(text: str) -> list[str]:
    """Numbers and capitalised words (names) among the content words: a supporting unit must hold every one."""
    keys = []
    for raw in _TOKEN.findall(_CITATION.sub(" ", text)):
        word = _normal(fold(raw))
        if word in STOPWORDS:
            continue
        if word.replace(".", "").isdigit() or raw[:1].isupper() or any(c.isdigit() for c in word):
            keys.append(word)
    return list(dict.fromkeys(keys))


def _found(word: str, words: set[str], stems: set[str]) -> bool:
    if word in words:
        return True
    if any(c.isdigit() for c in word):
        return False  # numbers (and words holding digits, "h2o") match exactly
    return stem(word) in stems


def overlap(sentence: str, unit: str) -> float:
    """Share of the sentence's content words found in the unit (0 when the sentence has none)."""
    words = content_words(sentence)
    if not words:
        return 0.0
    have = set(content_words(unit))
    stems = {stem(w) for w in have}
    return sum(_found(w, have, stems) for w in words) / len(words)


def negated(text: str) -> bool:
    """Whether the text holds a negation (not, no, never, n't...)."""
    return _NEGATION.search(fold(text)) is not None


def missing_terms(sentence: str, unit: str) -> tuple[str, ...]:
    """Key terms of the sentence the unit lacks, and "not" when one of them is negated and the other is not."""
    have = set(content_words(unit))
    stems = {stem(w) for w in have}
    missing = tuple(w for w in key_terms(sentence) if not _found(w, have, stems))
    return missing + (("not",) if negated(sentence) != negated(unit) else ())


def embed_sentences(texts: list[str], loaded=None) -> np.ndarray:
    """Unit-length MiniLM embeddings (one row per text) from the shared cache's sentence model."""
    from backends.core.scheduler import shared_scheduler
    from backends.models.cache import shared_cache

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    loaded = loaded or shared_cache().get(EMBED_MODEL, variant="sentence")
    with shared_scheduler().turn("embed"):
        vectors = loaded.model.encode(
            list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    return np.asarray(vectors, dtype=np.float32)


def decide(cosine: float, overlap_share: float, missing: tuple[str, ...]) -> bool:
    """The combination rule (module docstring)."""
    return not missing and overlap_share >= OVERLAP_MIN and cosine >= COSINE_MIN


def ground(answer: str, passages: list[str], loaded=None) -> list[SentenceSupport]:
    """Each sentence of `answer` labelled supported / unsupported by `passages` (module docstring)."""
    if not isinstance(answer, str):
        raise TypeError(f"answer must be text, not {type(answer).__name__}")
    if isinstance(passages, str) or not all(isinstance(p, str) for p in passages):
        raise TypeError("passages must be a list of strings")
    sentences = split_sentences(answer)
    units = [(i, s) for i, p in enumerate(passages) for s in split_sentences(p)]
    claims = [s for s in sentences if not abstains(s) and content_words(s)]
    vectors = embed_sentences(claims + [u for _, u in units], loaded) if claims and units else None
    cosines = vectors[: len(claims)] @ vectors[len(claims) :].T if vectors is not None else None
    out = []
    for text in sentences:
        if abstains(text):
            out.append(SentenceSupport(text, ABSTAINS, None, "", 0.0, 0.0))
            continue
        if not content_words(text):
            out.append(SentenceSupport(text, NO_CLAIM, None, "", 0.0, 0.0))
            continue
        if not units:
            out.append(SentenceSupport(text, UNSUPPORTED, None, "", 0.0, 0.0, tuple(key_terms(text))))
            continue
        row = cosines[claims.index(text)]
        best = None
        for j, (passage, unit) in enumerate(units):
            cos, share, miss = float(row[j]), overlap(text, unit), missing_terms(text, unit)
            ok = decide(cos, share, miss)
            rank = (ok, cos + share - 0.5 * len(miss))
            if best is None or rank > best[0]:
                best = (rank, SentenceSupport(text, SUPPORTED if ok else UNSUPPORTED, passage, unit, cos, share, miss))
        out.append(best[1])
    return out


def answer_supported(supports: list[SentenceSupport]) -> bool:
    """An answer's claim is supported when its first claiming sentence is (abstentions and empty ones skipped)."""
    claims = [s for s in supports if s.label in (SUPPORTED, UNSUPPORTED)]
    return bool(claims) and claims[0].supported


# Constructed (answer sentence, passage, expected) pairs the thresholds were chosen on.
CALIBRATION = (
    ("Canberra is the capital of Australia.", "Canberra is the capital of Australia. Sydney is larger.", True),
    ("The capital of Australia is Canberra.", "Canberra is the capital city of Australia.", True),
    ("Australia's capital is Canberra.", "Canberra is the capital of Australia.", True),
    ("Sydney is the capital of Australia.", "Canberra is the capital of Australia. Sydney is the largest.", False),
    ("The Berlin Wall fell in 1989.", "The Berlin Wall fell in 1989, on the night of 9 November.", True),
    ("The Berlin Wall fell in 1988.", "The Berlin Wall fell in 1989, on the night of 9 November.", False),
    ("A spider has eight legs.", "A spider has eight legs. Spiders are arachnids.", True),
    ("A spider has 8 legs.", "A spider has eight legs. Spiders are arachnids.", True),
    ("A spider has six legs.", "A spider has eight legs. An insect has six legs.", False),
    ("Penicillin was discovered by Alexander Fleming.", "Alexander Fleming discovered penicillin in 1928.", True),
    ("Penicillin was discovered by Louis Pasteur.", "Alexander Fleming discovered penicillin in 1928.", False),
    ("Bananas are rich in potassium.", "Alexander Fleming discovered penicillin in 1928.", False),
    ("The capital of Veltoria is Marnel.", "Paris is the capital of France and its largest city.", False),
    ("Jupiter is the biggest planet of the Solar System.", "Jupiter is the largest planet in the Solar System.", True),
    ("Mars has two moons and a thin atmosphere.", "Mars is known as the Red Planet.", False),
)
