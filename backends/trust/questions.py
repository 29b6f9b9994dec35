"""The shipped questions with known answers, how an answer is graded, and what a question may be.

assets/datasets/trust/questions.json holds 50 questions in three kinds: `common` (facts a small
model usually gets right), `specific` (facts it often gets wrong) and `invented` (made-up entities:
there is no true answer, and the right reply is to say so). The kind only groups the table; whether
one answer is right is decided here, at run time, from the model's words.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from backends.core.coded import CodedError
from backends.core.paths import ASSETS

QUESTIONS_FILE = ASSETS / "datasets" / "trust" / "questions.json"
KINDS = ("common", "specific", "invented")
MAX_QUESTION_CHARS = 2000

# Phrases that withhold an answer ("I don't know", "there is no such..."): the right reply to an
# invented entity, and a withheld answer (neither right nor wrong) for a real one.
ABSTAIN_PATTERNS = (
    r"\bi (?:do not|don't|dont) know\b",
    r"\bi(?:'m| am) not (?:sure|aware|familiar)\b",
    r"\bnot aware of\b",
    r"\bno (?:such|known|record|information|reliable information)\b",
    r"\b(?:does not|doesn't|did not|didn't) exist\b",
    r"\b(?:fictional|fictitious|made[- ]up|imaginary|not a real)\b",
    r"\bcannot (?:find|answer|say|determine)\b",
    r"\bcan't (?:find|answer|say|determine)\b",
    r"\bunable to (?:find|answer|determine)\b",
    r"\bi have no (?:information|data)\b",
)
_ABSTAIN = re.compile("|".join(ABSTAIN_PATTERNS), re.IGNORECASE)


class QuestionError(CodedError):
    """A question the Trust page cannot ask: empty, too long or not text."""


@dataclass(frozen=True)
class Question:
    id: str
    kind: str  # one of KINDS
    question: str
    answers: tuple[str, ...]  # accepted aliases; empty for an invented entity


@lru_cache(maxsize=1)
def shipped_questions() -> tuple[Question, ...]:
    raw = json.loads(QUESTIONS_FILE.read_text(encoding="utf-8"))
    return tuple(Question(q["id"], q["kind"], q["question"], tuple(q["answers"])) for q in raw["questions"])


def _fold(text: str) -> str:
    """Lower case, accents off, subscript digits as digits: 'García Márquez' ~ 'garcia marquez'."""
    text = unicodedata.normalize("NFKD", text.replace("₂", "2"))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def abstains(answer: str) -> bool:
    """True when the answer withholds itself ("I don't know", "there is no such country")."""
    return bool(_ABSTAIN.search(answer))


def mentions(answer: str, alias: str) -> bool:
    """The alias as a whole word (or words) in the answer, case and accents ignored."""
    pattern = r"(?<![\w])" + re.escape(_fold(alias)) + r"(?![\w])"
    return re.search(pattern, _fold(answer)) is not None


def grade(question: Question, answer: str) -> str:
    """'right', 'wrong' or 'abstained'.

    A real question is right when an accepted alias appears in the answer (and it does not also
    abstain), abstained when it withholds, wrong otherwise. An invented one is right only when the
    answer withholds or says the entity does not exist; any confident answer is wrong.
    """
    if question.kind == "invented" or not question.answers:
        return "right" if abstains(answer) else "wrong"
    if any(mentions(answer, alias) for alias in question.answers):
        return "right"
    return "abstained" if abstains(answer) else "wrong"


def check_question(text) -> str:
    """The question stripped, or QuestionError: empty, over MAX_QUESTION_CHARS, or binary text."""
    if not isinstance(text, str):
        raise QuestionError(f"A question must be text, not {type(text).__name__}.", "not_text")
    text = text.strip()
    if not text:
        raise QuestionError("The question is empty.", "empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"The question is {len(text):,} characters; at most {MAX_QUESTION_CHARS:,} are asked.",
            "too_long",
            chars=len(text),
            limit=MAX_QUESTION_CHARS,
        )
    controls = sum(1 for c in text if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") and c not in "\n\t\r")
    if controls > max(2, len(text) // 50) or "\ufffd" in text:
        raise QuestionError(
            "The question holds binary data (control characters or undecodable bytes), not text.", "binary"
        )
    return text
