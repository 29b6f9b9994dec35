"""Hallucination corrected: the shipped questions closed book, with retrieval, and with retrieval + abstain.

`evaluate_correct(ctx=None, questions=None, settings=Settings())` answers every question three ways
(backends/trust/correct_answer.py), grades each answer with backends.trust.grade and sums them per
kind and overall:

- accuracy: right answers / questions (for an invented entity, "right" means it abstained);
- abstained: answers that withhold themselves (the model's own "I don't know" or the abstain rule's);
- wrong caught: of the retrieval run's wrong answers, the share the abstain rule withholds
  (`abstain_caught`); `caught_vs_closed` is the same against the closed-book run's wrong answers
  (the share no longer wrong once retrieval and the abstain rule are on);
- right withheld: the cost, retrieval answers that were right and got withheld.

`rag_fix_acc_gain` is the retrieval run's accuracy minus the closed-book one, on every question.
Each question's row is memoized in this process by (settings, question): greedy answers never
change, so a second run (another session, the bench) costs nothing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from backends.core.memo import SingleFlightLRU
from backends.core.shared import process_wide
from backends.trust.correct_answer import Settings, answer_with_retrieval, closed_book, reference_collection
from backends.trust.questions import KINDS, Question, abstains, grade, shipped_questions

MODES = ("closed", "rag", "abstain")
ALL = "all"


def _row(key) -> dict:
    settings, question = key
    closed = closed_book(question.question, settings).strip()
    got = answer_with_retrieval(question.question, settings)
    claims = [s for s in got.supports if s.label in ("supported", "unsupported")]
    first = claims[0] if claims else None
    return {
        "id": question.id,
        "kind": question.kind,
        "question": question.question,
        "closed": closed,
        "closed_grade": grade(question, closed),
        "rag": got.answer,
        "rag_grade": grade(question, got.answer),
        "best_sim": round(got.best_sim, 4),
        "claim_supported": got.claim_supported,
        "cosine": None if first is None else round(first.cosine, 4),
        "overlap": None if first is None else round(first.overlap, 4),
        "missing": [] if first is None else list(first.missing),
        "withheld": got.withheld,
        "abstain": got.shown,
        "abstain_grade": grade(question, got.shown),
    }


_rows = process_wide(lambda: SingleFlightLRU(_row, budget=lambda group: 1000))


def answer_row(question: Question, settings: Settings | None = None) -> dict:
    """One question's three answers and grades (memoized in-process)."""
    settings = settings or Settings()
    return dict(_rows().get((settings, question)))


@dataclass
class CorrectReport:
    settings: dict
    rows: list[dict]
    # summary[mode][kind] = {"n", "right", "wrong", "abstained", "accuracy", "abstention"}; kind "all" too
    summary: dict
    rag_fix_acc_gain: float
    abstain_caught: float | None  # wrong retrieval answers withheld / wrong retrieval answers
    caught_vs_closed: float | None  # closed-book wrong answers not wrong after retrieval + abstain
    right_withheld: float | None  # right retrieval answers withheld / right retrieval answers
    caught_by_kind: dict = field(default_factory=dict)  # kind -> abstain_caught on that kind
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def accuracy(self, mode: str, kind: str = ALL) -> float:
        return self.summary[mode][kind]["accuracy"]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def summarize(rows: list[dict]) -> dict:
    out = {}
    for mode in MODES:
        out[mode] = {}
        for kind in (*KINDS, ALL):
            sel = [r for r in rows if kind == ALL or r["kind"] == kind]
            grades = [r[mode + "_grade"] for r in sel]
            texts = [r[mode] for r in sel]
            n = len(sel)
            out[mode][kind] = {
                "n": n,
                "right": grades.count("right"),
                "wrong": grades.count("wrong"),
                "abstained": sum(abstains(x) for x in texts),
                "accuracy": _share(grades.count("right"), n) or 0.0,
                "abstention": _share(sum(abstains(x) for x in texts), n) or 0.0,
            }
    return out


def caught(rows: list[dict], base: str = "rag") -> float | None:
    """Of `base`'s wrong answers, the share that is not wrong after retrieval + abstain."""
    wrong = [r for r in rows if r[base + "_grade"] == "wrong"]
    if base == "rag":
        return _share(sum(r["withheld"] for r in wrong), len(wrong))
    return _share(sum(r["abstain_grade"] != "wrong" for r in wrong), len(wrong))


def report_of(rows: list[dict], settings: Settings, seconds: float = 0.0) -> CorrectReport:
    summary = summarize(rows)
    right = [r for r in rows if r["rag_grade"] == "right"]
    return CorrectReport(
        settings=asdict(settings),
        rows=rows,
        summary=summary,
        rag_fix_acc_gain=summary["rag"][ALL]["accuracy"] - summary["closed"][ALL]["accuracy"],
        abstain_caught=caught(rows, "rag"),
        caught_vs_closed=caught(rows, "closed"),
        right_withheld=_share(sum(r["withheld"] for r in right), len(right)),
        caught_by_kind={k: caught([r for r in rows if r["kind"] == k], "rag") for k in KINDS},
        seconds=seconds,
    )


def evaluate_correct(ctx=None, questions=None, settings: Settings | None = None) -> CorrectReport:
    """The three runs over `questions` (default: the shipped set); as a job, one progress event per
    question (kind="row", with the row) and the report as the result."""
    settings = settings or Settings()
    questions = tuple(shipped_questions() if questions is None else questions)
    started, rows = time.perf_counter(), []
    for i, question in enumerate(questions):
        if ctx is not None:
            if ctx.stopped:
                break
            ctx.report(i / max(len(questions), 1), f"answering {question.id}", kind="progress", done=i)
        row = answer_row(question, settings)
        rows.append(row)
        if ctx is not None:
            ctx.report((i + 1) / len(questions), f"answered {question.id}", kind="row", row=row, done=i + 1)
    return report_of(rows, settings, time.perf_counter() - started)


def cached_report(settings: Settings | None = None) -> CorrectReport | None:
    """The shipped set's report when every row is already in this process's memo (another session's
    run, the bench), else None: costs nothing."""
    settings = settings or Settings()
    memo = _rows()
    keys = [(settings, q) for q in shipped_questions()]
    if not all(k in memo for k in keys):
        return None
    return report_of([dict(memo.get(k)) for k in keys], settings)


def retrieval_similarities(settings: Settings | None = None) -> list[dict]:
    """Each shipped question's best dense cosine with a chunk of the reference (MiniLM only, no generation):
    what the abstain rule's similarity threshold sees."""
    settings = settings or Settings()
    collection = reference_collection(settings.chunk_chars)
    out = []
    for q in shipped_questions():
        hit = collection.search(q.question, method="dense", k=1)[0]
        out.append(
            {"id": q.id, "kind": q.kind, "question": q.question, "best_sim": float(hit.score), "chunk": hit.chunk.text}
        )
    return out


def bench_values(report: CorrectReport | None = None) -> dict:
    """The keys bench/trust.py prints, from a full shipped-set run."""
    report = report or evaluate_correct()
    return {"rag_fix_acc_gain": round(report.rag_fix_acc_gain, 4), "abstain_caught": report.abstain_caught}
