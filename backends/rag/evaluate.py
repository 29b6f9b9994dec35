"""How good retrieval and answers are, on questions whose source pages are known.

Retrieval: recall@k (the share of a question's expected pages found among its first k
retrieved chunks) and reciprocal rank (1 / the rank of the first chunk on an expected
page, 0 when none is in the list), averaged over questions into MRR, for each method.
Answers: token F1 as in SQuAD (lowercase, no punctuation, no articles, bag of words),
with citation markers removed first; Chinese, Japanese and Korean characters count as one
token each, since those scripts do not separate words with spaces. Citations: the share of
answers whose first citation is on an expected page, counted twice (`citation_accuracy`): over
every citation the page shows (the app's forced "[n]" included) and over the model's own markers
only (a forced answer whose model-written text cites nothing counts as citing nothing).

A page is `(doc, page)`, or a bare page number that matches that page in any document
(an eval set for one PDF need not name it).
"""

from __future__ import annotations

import csv
import io
import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from backends.rag.citations import strip_citations
from backends.rag.types import METHODS, Hit

MAX_ITEMS = 2000


class EvalSetError(ValueError):
    """An evaluation set that cannot be read; the message names the file, row and value."""


@dataclass(frozen=True)
class EvalItem:
    question: str
    pages: tuple[int, ...]  # 1-based pages that hold the answer
    answer: str | None = None  # reference answer, for token F1
    doc: str | None = None  # the document those pages are in; None = any


@dataclass(frozen=True)
class MethodResult:
    method: str
    recall: float  # mean recall@k
    mrr: float
    ranks: list[int | None]  # per question: rank of the first chunk on an expected page, None if not in top k
    recalls: list[float]  # per question


@dataclass(frozen=True)
class EvalReport:
    k: int
    questions: list[str]
    results: dict[str, MethodResult] = field(default_factory=dict)

    def summary_rows(self) -> list[dict]:
        return [
            {
                "method": r.method,
                f"recall@{self.k}": r.recall,
                "MRR": r.mrr,
                "found": sum(x is not None for x in r.ranks),
                "questions": len(r.ranks),
            }
            for r in self.results.values()
        ]


# ---------------------------------------------------------------------------
# Retrieval metrics


def _page(ref) -> tuple[str | None, int]:
    if isinstance(ref, tuple) and len(ref) == 2:
        return ref[0], int(ref[1])
    if isinstance(ref, int) and not isinstance(ref, bool):
        return None, ref
    raise ValueError(f"{ref!r} is not a page: use a page number or a (doc, page) pair.")


def _same(a: tuple[str | None, int], b: tuple[str | None, int]) -> bool:
    return a[1] == b[1] and (a[0] is None or b[0] is None or a[0] == b[0])


def _check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r} is invalid: use a whole number of results, 1 or more.")


def recall_at_k(ranked_pages: Sequence, expected_pages: Iterable, k: int) -> float:
    """Share of the distinct expected pages that appear among the first k ranked entries."""
    _check_k(k)
    top = [_page(r) for r in list(ranked_pages)[:k]]
    expected = list(dict.fromkeys(_page(e) for e in expected_pages))
    if not expected:
        raise ValueError("expected_pages is empty: a question needs at least one page that answers it.")
    return sum(any(_same(e, r) for r in top) for e in expected) / len(expected)


def first_relevant_rank(ranked_pages: Sequence, expected_pages: Iterable, k: int | None = None) -> int | None:
    expected = [_page(e) for e in expected_pages]
    ranked = list(ranked_pages) if k is None else list(ranked_pages)[:k]
    for rank, ref in enumerate(ranked, start=1):
        if any(_same(_page(ref), e) for e in expected):
            return rank
    return None


def reciprocal_rank(ranked_pages: Sequence, expected_pages: Iterable, k: int | None = None) -> float:
    """1 / rank of the first entry on an expected page (within the first k when given), else 0."""
    if k is not None:
        _check_k(k)
    rank = first_relevant_rank(ranked_pages, expected_pages, k)
    return 0.0 if rank is None else 1.0 / rank


def hit_pages(hits: Sequence[Hit]) -> list[tuple[str, int]]:
    return [(h.chunk.doc, h.chunk.page) for h in hits]


def run_retrieval_eval(
    search: Callable[[str, str, int], list[Hit]],
    items: Sequence[EvalItem],
    methods: Sequence[str] = METHODS,
    k: int = 5,
    progress: Callable[[float, str], None] | None = None,
) -> EvalReport:
    """Each question through `search(question, method, k)` for each method. `progress(fraction, message)`
    is called after every search (a background job reports and checks its stop flag there)."""
    _check_k(k)
    if not items:
        raise ValueError("The evaluation set has no questions.")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"Unknown retrieval method(s) {unknown or methods!r}: use some of {METHODS}.")
    report = EvalReport(k=k, questions=[it.question for it in items])
    total, done = len(items) * len(methods), 0
    for method in methods:
        ranks, recalls = [], []
        for item in items:
            pages = hit_pages(search(item.question, method, k)[:k])
            expected = [(item.doc, p) for p in item.pages]
            ranks.append(first_relevant_rank(pages, expected))
            recalls.append(recall_at_k(pages, expected, k))
            done += 1
            if progress is not None:
                progress(done / total, f"{method}: {done}/{total}")
        mrr = sum(0.0 if r is None else 1.0 / r for r in ranks) / len(ranks)
        report.results[method] = MethodResult(method, sum(recalls) / len(recalls), mrr, ranks, recalls)
    return report


# ---------------------------------------------------------------------------
# Answer metrics

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | {
    "“",
    "”",
    "‘",
    "’",
    "。",
    "，",
    "、",
    "！",
    "？",
    "：",
    "；",
    "（",
    "）",
    "《",
    "》",
}
_CJK = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])")


def normalize_answer(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)  # deleted, as SQuAD does: "50,257" -> "50257"
    text = _ARTICLES.sub(" ", text)
    return _CJK.sub(r" \1 ", text).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 between two texts; 1.0 when both are empty after normalising, 0.0 when one is."""
    pred, ref = normalize_answer(prediction), normalize_answer(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def answer_f1(predictions: Sequence[str], references: Sequence[str | None]) -> tuple[float | None, list[float | None]]:
    """Mean token F1 over the pairs that have a reference (citation markers removed from the
    predictions), and the per-pair scores (None where there is no reference)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} answers for {len(references)} references: give one answer per question.")
    scores = [
        None if ref is None else token_f1(strip_citations(pred), ref) for pred, ref in zip(predictions, references)
    ]
    scored = [s for s in scores if s is not None]
    return (sum(scored) / len(scored) if scored else None), scores


def first_cited_right(cited_pages: Sequence[int], expected_pages: Iterable[int]) -> bool:
    """Whether the first cited page is one that holds the answer (False when nothing is cited)."""
    return bool(cited_pages) and cited_pages[0] in set(expected_pages)


def citation_accuracy(rows: Sequence[dict]) -> dict[str, float | None]:
    """Share of answers whose first citation is on an expected page, for rows of the answer evaluation
    (`cited_pages`, `model_cited_pages` in order of citation, `expected_pages`): "shown" counts every
    citation the page shows, the app's forced one included; "model" only the markers the model wrote."""
    if not rows:
        return {"shown": None, "model": None}
    return {
        name: sum(first_cited_right(r[key], r["expected_pages"]) for r in rows) / len(rows)
        for name, key in (("shown", "cited_pages"), ("model", "model_cited_pages"))
    }


# ---------------------------------------------------------------------------
# Reading an evaluation set


def _pages(value, where: str) -> tuple[int, ...]:
    if isinstance(value, str):
        parts = [p for p in re.split(r"[;,\s]+", value.strip()) if p]
    elif isinstance(value, list):
        parts = value
    else:
        parts = [value]
    pages = []
    for p in parts:
        if isinstance(p, int) and not isinstance(p, bool):
            pages.append(p)
        elif isinstance(p, str) and p.strip().isdigit():
            pages.append(int(p))
        else:
            pages = []
            break
    if not pages or min(pages) < 1:
        raise EvalSetError(
            f'{where}: pages {value!r} is not a list of page numbers: write e.g. 3, or "1;3" '
            "(CSV), or [1, 3] (JSONL); pages start at 1."
        )
    return tuple(dict.fromkeys(pages))


def _item(row: dict, where: str) -> EvalItem:
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise EvalSetError(f"{where}: the question is empty ({question!r}).")
    answer, doc = row.get("answer"), row.get("doc")
    for name, value in (("answer", answer), ("doc", doc)):
        if value is not None and not isinstance(value, str):
            raise EvalSetError(f"{where}: {name} {value!r} must be text.")
    return EvalItem(
        question.strip(),
        _pages(row.get("pages"), where),
        answer.strip() if answer and answer.strip() else None,
        doc.strip() if doc and doc.strip() else None,
    )


def _rows_csv(name: str, text: str):
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in (reader.fieldnames or []) if c]
    missing = [c for c in ("question", "pages") if c not in columns]
    if missing:
        raise EvalSetError(
            f"{name}: missing column(s) {', '.join(missing)}; the header has {columns or 'nothing'}. "
            "Use a header row: question,pages[,answer][,doc]."
        )
    for row in reader:
        where = f"{name}, line {reader.line_num}"
        if None in row:  # DictReader's place for fields beyond the header
            raise EvalSetError(
                f"{where}: more fields than the header has; put text that holds commas in double quotes."
            )
        row = {k.strip().lower(): v for k, v in row.items() if k}
        if all(v is None or not v.strip() for v in row.values()):
            continue  # a blank line
        yield row, where


def _rows_jsonl(name: str, text: str):
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise EvalSetError(f"{name}, line {line_no}: not valid JSON ({exc.msg}): {line[:120]!r}.") from None
        if not isinstance(row, dict):
            raise EvalSetError(
                f"{name}, line {line_no}: expected a JSON object "
                f'{{"question": ..., "pages": [...]}}, got {line[:120]!r}.'
            )
        missing = [c for c in ("question", "pages") if c not in row]
        if missing:
            raise EvalSetError(f"{name}, line {line_no}: missing field(s) {', '.join(missing)} in {line[:120]!r}.")
        yield row, f"{name}, line {line_no}"


def load_eval_set(name: str, data: bytes) -> list[EvalItem]:
    """Questions with their expected pages from a .csv (question,pages[,answer][,doc]; pages like "1;3")
    or .jsonl file (one {"question", "pages": [1, 3], "answer"?, "doc"?} object a line)."""
    kind = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if kind not in ("csv", "jsonl"):
        raise EvalSetError(f"{name!r}: use a .csv or .jsonl file for an evaluation set.")
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvalSetError(f"{name}: not UTF-8 text (bad byte at position {exc.start}); save it as UTF-8.") from None
    if not text.strip():
        raise EvalSetError(f"{name}: the file is empty.")
    rows = _rows_csv(name, text) if kind == "csv" else _rows_jsonl(name, text)
    items = []
    for row, where in rows:
        items.append(_item(row, where))
        if len(items) > MAX_ITEMS:
            raise EvalSetError(f"{name}: more than {MAX_ITEMS} questions; split it into smaller sets.")
    if not items:
        raise EvalSetError(f"{name}: no questions found; it is empty or holds only a header.")
    return items
