"""The short answer inside the extractive answer's sentence (extractive.py picks the sentence).

Rules, tried in order; each one is a plain reading rule a learner can check by hand:

1. "how many / how much": the number (with its unit) that is not in the question: one whose unit the
   question names ("how many numbers" -> "65,536 numbers"), else the one nearest the question's words.
2. "when / what date / what year": the date in the sentence ("October 14, 1998", "14 October 1998",
   "1998-10-14"), whole.
3. A "label: value" sentence whose label holds the question's words: the value, not the label
   ("What is the first name?" on 'Form field «First Name»: Alice' -> "Alice"). The label must be a
   field's name (at most 5 words, or a form field's «name»), or the question must ask "what is X"
   (then the text after "X ...:" is X's definition or value, "it is" dropped).
4. Otherwise the clause (split at , ; : which/while/so/but/and a/and the, never inside a date or a
   number) that scores best: cosine with the question + overlap + a reward for words the question
   lacks + a small one for question words that lead into it, less a penalty for a bare word that is no
   value; leading and trailing words the question already says are trimmed off. A clause that
   trims down to one plain word keeps its clause ("indicates" is no answer).

Every span is then completed: a date cut after its day gets its year back.
"""

from __future__ import annotations

import re

import numpy as np

from backends.rag.index import tokenize
from backends.rag.text_rules import STOP, WORD, lexical, question_terms

_CLAUSE = re.compile(
    r",\s+|;\s+|:\s+|，|；|：|\s+(?=(?:which|while|whose|so that|so|but|and an?|and the)\s)", re.IGNORECASE
)
_NUMBER = re.compile(r"\d[\d,.]*(?:[-\u2011]\w+)?(?:\s+(?!and\b|or\b|at\b|in\b|of\b|to\b|per\b)[A-Za-z]\w*)?")
_HOW_MANY = re.compile(r"^\s*how\s+(many|much)\b|多少|几", re.IGNORECASE)
_WHEN = re.compile(r"^\s*when\b|\b(what|which)\s+(date|day|year|month)\b|\bdate\b", re.IGNORECASE)
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
    r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
DATE = re.compile(
    rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b"  # October 14, 1998 / October 14
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}\b"  # 14 October 1998
    rf"|\b{_MONTH},?\s+\d{{4}}\b"  # October 1998
    r"|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b",
    re.IGNORECASE,
)
_ENDS_WITH_DAY = re.compile(rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?$", re.IGNORECASE)
_STARTS_WITH_YEAR = re.compile(r"^\d{4}\b")
# "label: value": a label of at most 80 characters without a sentence end, then the value
_LABEL_VALUE = re.compile(r"^(?P<label>[^:.!?。！？]{1,80}?)\s*[:：]\s+(?P<value>\S.*)$", re.DOTALL)
_WHAT_IS = re.compile(r"^\s*(?:what|who)\s+(?:is|are|was|were)\b|^\s*what'?s\b|是什么|是谁", re.IGNORECASE)
FIELD_LABEL_WORDS = 5  # a label this short is a field's name ("First Name", "Page size (bytes)")
_LEADING_COPULA = re.compile(r"^(?:it|this|they|that)\s+(?:is|are|was|were|means?)\s+", re.IGNORECASE)
NOVELTY_WEIGHT, LEAD_WEIGHT, LEXICAL_WEIGHT = 0.6, 0.15, 0.5
BARE_WORD_PENALTY = 0.2
REPEAT_PENALTY = 1.0


def answer_span(question: str, sentence: str, embed_texts) -> str:
    """The short answer in `sentence` (see the module's rules), without the sentence's closing stop;
    embed_texts(list of str) -> unit vectors."""
    span = _span(question, sentence, embed_texts)
    return span[:-1] if span.endswith(".") and not span.endswith("..") else span


def _span(question: str, sentence: str, embed_texts) -> str:
    if _HOW_MANY.search(question):
        found = number_span(sentence, question)
        if found:
            return found
    if _WHEN.search(question):
        date = DATE.search(sentence)
        if date:
            return date.group().strip()
    value = labelled_value(sentence, question)
    if value is not None:
        return complete(value, sentence)
    return complete(best_clause(question, sentence, embed_texts), sentence)


def clauses(sentence: str) -> list[str]:
    """The sentence's clauses, never cut inside a date ("October 14, 1998" stays one piece)."""
    parts = [c.strip() for c in _CLAUSE.split(sentence) if c and c.strip()]
    merged: list[str] = []
    for part in parts:
        if merged and _ENDS_WITH_DAY.search(merged[-1]) and _STARTS_WITH_YEAR.match(part):
            merged[-1] = f"{merged[-1]}, {part}"
        else:
            merged.append(part)
    return merged


def complete(span: str, sentence: str) -> str:
    """The span with a date it cuts after the day completed from the sentence ("October 14" -> "October 14, 1998")."""
    for match in DATE.finditer(sentence):
        date = match.group()
        head = re.match(rf"{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?", date, re.IGNORECASE)
        if head and head.group() != date and span.rstrip(" .,").endswith(head.group()) and date not in span:
            return span.rstrip(" .,") + date[len(head.group()) :]
    return span


def labelled_value(sentence: str, question: str) -> str | None:
    """The value of a "label: value" sentence when its label holds a word of the question, else None."""
    found = _LABEL_VALUE.match(sentence.strip())
    if not found:
        return None
    label, value = found.group("label"), found.group("value").strip()
    asked = {w for w in tokenize(question) if w not in STOP}
    if not asked & set(tokenize(label)) or not tokenize(value):
        return None
    # a field's short name, or any label when the question asks "what is X" (its definition or value);
    # not a clause that merely ends in a colon ("Temperature divides the logits before the softmax: ...")
    if len(label.split()) > FIELD_LABEL_WORDS and "«" not in label and not _WHAT_IS.search(question):
        return None
    value = _LEADING_COPULA.sub("", value).strip()
    return value.rstrip(" .;") if value.endswith((".", ";")) else value


def acronyms(question: str) -> set[str]:
    """Initials of 2 to 5 consecutive question words ("mean reciprocal rank" -> "mrr"): naming the
    question's own words again, not an answer."""
    words = [w for w in tokenize(question) if w not in STOP and w.isalpha()]
    return {"".join(w[0] for w in words[i : i + n]) for n in range(2, 6) for i in range(len(words) - n + 1)}


def trimmed(clause: str, question: str) -> tuple[str, int]:
    """(the clause without leading and trailing words the question holds, or stop words next to them, ""
    when nothing else is left; how many question words led into it: "divided by" before the answer)."""
    asked = {w.lower() for w in WORD.findall(question)} | acronyms(question)
    words = clause.split()
    strip = ".,;:!?()\"'“”‘’«»"

    def known(word: str) -> bool:
        core = word.strip(strip).lower()
        return not core or core in asked or core in STOP or core.rstrip("s") in asked

    start, end = 0, len(words)
    while start < end and known(words[start]):
        start += 1
    while end > start and known(words[end - 1]):
        end -= 1
    led = sum(words[i].strip(strip).lower() in asked - STOP for i in range(start))
    return " ".join(words[start:end]).strip(" ,;:"), led


def is_value(text: str) -> bool:
    """A one-word answer that names something: a number, a name or code, a quoted term."""
    return bool(re.search(r"\d", text)) or text[:1].isupper() or text[:1] in "'\"‘“«`%-"


def keep_informative(short: str, clause: str) -> str:
    """A clause trimmed down to one plain word ("indicates") keeps its words: that word alone answers nothing."""
    if not short or (len(short.split()) == 1 and not is_value(short) and len(clause.split()) > 1):
        return clause.strip(" ,;:")
    return short


def best_clause(question: str, sentence: str, embed_texts) -> str:
    parts = [c for c in clauses(sentence) if sum(ch.isalnum() for ch in c) >= 3] or [sentence]
    cut = [trimmed(c, question) for c in parts]
    if len(parts) == 1:
        return keep_informative(cut[0][0], parts[0])
    # the clause as it would be shown: what it adds to the question, not the question's own words again
    vectors = np.asarray(
        embed_texts([question, *(short or clause for (short, _), clause in zip(cut, parts))]), np.float32
    )
    terms = question_terms(question, parts)
    asked = set(tokenize(question)) | acronyms(question)
    scores = []
    for i, (clause, (short, led)) in enumerate(zip(parts, cut)):
        words = [w for w in tokenize(short) if w not in STOP]
        # a clause that only repeats the question is not its answer: reward the words the question lacks,
        # and an answer that the question's own words lead into ("... divided by | the square root ...")
        novelty = sum(w not in asked for w in words) / max(len(words), 1)
        bare = len(short.split()) < 2 and not is_value(short)
        scores.append(
            float(vectors[1 + i] @ vectors[0])
            + LEXICAL_WEIGHT * lexical(terms, clause)
            + NOVELTY_WEIGHT * novelty
            + LEAD_WEIGHT * min(led, 2)
            - (BARE_WORD_PENALTY if bare or not words else 0.0)
            - (REPEAT_PENALTY if not short else 0.0)  # nothing but the question's own words
        )
    best = int(np.argmax(scores))
    return keep_informative(cut[best][0], parts[best])


def number_span(sentence: str, question: str) -> str | None:
    """For how many / how much: the number (and its unit) that is not in the question, first one whose unit
    the question names ("how many numbers" -> "65,536 numbers"), else the one nearest the question's words."""
    asked = {w.lower() for w in WORD.findall(question)}
    asked_numbers = set(re.findall(r"\d[\d,.]*", question))
    anchors = [m.start() for m in WORD.finditer(sentence) if m.group().lower() in asked - STOP]
    best, best_distance = None, None
    for match in _NUMBER.finditer(sentence):
        value = match.group().strip(" .,")
        if re.match(r"\d[\d,.]*", value).group().strip(".,") in asked_numbers:
            continue
        unit = value.split()[-1].lower() if len(value.split()) > 1 else ""
        # "how many numbers ...": a number whose unit is the counted word the question names comes first
        distance = -1 if unit and unit in asked else min((abs(match.start() - a) for a in anchors), default=0)
        if best_distance is None or distance < best_distance:
            best, best_distance = value, distance
    return best
