"""RAG evaluation: metrics on hand-computed examples, eval-set parsing and its errors,
and the per-method report driven by a real (hand-written keyword) search function."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from backends.rag.evaluate import (
    EvalItem,
    EvalSetError,
    answer_f1,
    citation_accuracy,
    first_cited_right,
    load_eval_set,
    normalize_answer,
    recall_at_k,
    reciprocal_rank,
    run_retrieval_eval,
    token_f1,
)
from backends.rag.types import Chunk, Hit

# --- retrieval metrics -------------------------------------------------------


def test_recall_at_k_by_hand():
    ranked = [4, 2, 2, 7, 1]
    assert recall_at_k(ranked, [2], k=1) == 0.0
    assert recall_at_k(ranked, [2], k=2) == 1.0
    assert recall_at_k(ranked, [1, 2], k=3) == 0.5  # page 1 is only at rank 5
    assert recall_at_k(ranked, [1, 2], k=5) == 1.0
    assert recall_at_k(ranked, [1, 2, 9], k=5) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, [2, 2], k=2) == 1.0  # duplicates in the expected list count once


def test_recall_and_rr_with_documents():
    ranked = [("a.pdf", 3), ("b.pdf", 2), ("a.pdf", 2)]
    assert recall_at_k(ranked, [("a.pdf", 2)], k=2) == 0.0  # page 2 of b.pdf is another page
    assert recall_at_k(ranked, [("a.pdf", 2)], k=3) == 1.0
    assert recall_at_k(ranked, [2], k=2) == 1.0  # a bare page number matches any document
    assert reciprocal_rank(ranked, [("a.pdf", 2)]) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, [(None, 2)]) == 0.5


def test_reciprocal_rank_by_hand():
    assert reciprocal_rank([5, 3, 1], [1]) == pytest.approx(1 / 3)
    assert reciprocal_rank([5, 3, 1], [3, 1]) == 0.5
    assert reciprocal_rank([5, 3, 1], [1], k=2) == 0.0
    assert reciprocal_rank([], [1]) == 0.0


def test_metric_argument_errors():
    with pytest.raises(ValueError, match="k=0"):
        recall_at_k([1], [1], k=0)
    with pytest.raises(ValueError, match="expected_pages is empty"):
        recall_at_k([1], [], k=1)
    with pytest.raises(ValueError, match="'three' is not a page"):
        recall_at_k(["three"], [1], k=1)


# --- answer metrics ----------------------------------------------------------


def test_token_f1_squad_normalisation():
    assert normalize_answer("The Cat, sat!  on A mat.") == ["cat", "sat", "on", "mat"]
    assert token_f1("The cat sat.", "cat sat") == 1.0
    assert token_f1("50,257 tokens.", "50257 tokens") == 1.0  # punctuation is deleted, not a separator
    # prediction: [ingrid, halvorsen, founded, it] vs reference [ingrid, halvorsen]: P=2/4, R=1 -> F1=2/3
    assert token_f1("Ingrid Halvorsen founded it", "Ingrid Halvorsen") == pytest.approx(2 / 3)
    assert token_f1("blue", "red") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("a the an", "something") == 0.0  # only articles: empty after normalising
    # repeated tokens count by multiplicity: pred [7,7,am] ref [7,am]: common 2, P=2/3, R=1 -> 0.8
    assert token_f1("7 7 am", "7 am") == pytest.approx(0.8)


def test_token_f1_chinese_characters_are_tokens():
    assert normalize_answer("北京是首都。") == ["北", "京", "是", "首", "都"]
    # pred 5 chars, ref 2 chars, both of ref in pred: P=2/5, R=1 -> F1 = 4/7
    assert token_f1("北京是首都", "北京") == pytest.approx(4 / 7)


def test_answer_f1_strips_citations_and_skips_missing_references():
    mean, scores = answer_f1(
        ["Ingrid Halvorsen [1].", "It opens at 7 am [2][3]", "whatever"], ["Ingrid Halvorsen", "7 am", None]
    )
    assert scores[0] == 1.0
    assert scores[1] == pytest.approx(4 / 7)  # [it, opens, at, 7, am] vs [7, am]: P=2/5, R=1
    assert scores[2] is None
    assert mean == pytest.approx((scores[0] + scores[1]) / 2)
    with pytest.raises(ValueError, match="2 answers for 1 references"):
        answer_f1(["a", "b"], ["a"])


# --- the per-method report ---------------------------------------------------

PAGES = {
    1: "The Aurora research station was founded in 1987 by the geologist Ingrid Halvorsen.",
    2: "The cafeteria opens at 7 am and closes at 8 pm; parking is free on weekends.",
    3: "The station employs 42 scientists who study lake sediments and glaciers.",
}
CHUNKS = [Chunk(i, "handbook.pdf", page, text, 0) for i, (page, text) in enumerate(PAGES.items())]


def _words(text):
    return set(text.lower().replace("?", " ").replace(".", " ").split())


def keyword_search(question, method, k):
    """Word-overlap ranking ("sparse"/"hybrid"), and its reverse as a deliberately bad "dense"."""
    order = sorted(CHUNKS, key=lambda c: (-len(_words(question) & _words(c.text)), c.id))
    if method == "dense":
        order = order[::-1]
    return [Hit(c, float(r), r) for r, c in enumerate(order[:k], start=1)]


def test_run_retrieval_eval_by_hand():
    items = [
        EvalItem("When does the cafeteria open?", (2,)),
        EvalItem("How many scientists does the station employ?", (3,)),
        EvalItem("Who founded the station?", (1,), doc="other.pdf"),
    ]  # wrong document: never found
    seen = []
    report = run_retrieval_eval(keyword_search, items, k=2, progress=lambda f, m: seen.append((f, m)))
    sparse, dense = report.results["sparse"], report.results["dense"]
    assert sparse.ranks == [1, 1, None]
    assert sparse.recalls == [1.0, 1.0, 0.0]
    assert sparse.recall == pytest.approx(2 / 3) and sparse.mrr == pytest.approx(2 / 3)
    # reversed order, cut at k=2: the best page is at rank 3 (out of the top 2) for both questions
    assert dense.ranks == [None, None, None] and dense.mrr == 0.0
    assert report.results["hybrid"].ranks == sparse.ranks
    assert len(seen) == 9 and seen[-1][0] == 1.0
    rows = {r["method"]: r for r in report.summary_rows()}
    assert rows["sparse"]["recall@2"] == pytest.approx(2 / 3) and rows["sparse"]["found"] == 2


def test_run_retrieval_eval_rejects_bad_arguments():
    item = [EvalItem("q", (1,))]
    with pytest.raises(ValueError, match="Unknown retrieval method"):
        run_retrieval_eval(keyword_search, item, methods=("dense", "magic"))
    with pytest.raises(ValueError, match="no questions"):
        run_retrieval_eval(keyword_search, [])


# --- reading eval sets --------------------------------------------------------


def test_load_csv_with_optional_columns():
    data = (
        "Question,Pages,Answer,Doc\n"
        "Who founded the station?,1,Ingrid Halvorsen,handbook.pdf\n"
        '"When, exactly, does it open?","2;3",,\n'
        "\n"
    ).encode("utf-8-sig")
    items = load_eval_set("set.csv", data)
    assert items == [
        EvalItem("Who founded the station?", (1,), "Ingrid Halvorsen", "handbook.pdf"),
        EvalItem("When, exactly, does it open?", (2, 3), None, None),
    ]


def test_load_jsonl():
    lines = [
        {"question": "Who?", "pages": [1, 3]},
        {"question": "When?", "pages": "2", "answer": "7 am"},
        {"question": "Where?", "pages": 4, "doc": "a.pdf"},
    ]
    data = ("\n".join(json.dumps(x) for x in lines) + "\n\n").encode()
    items = load_eval_set("set.JSONL", data)
    assert [it.pages for it in items] == [(1, 3), (2,), (4,)]
    assert items[1].answer == "7 am" and items[2].doc == "a.pdf"


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("set.txt", b"question,pages\nq,1\n", "use a .csv or .jsonl"),
        ("set.csv", b"question,page\nq,1\n", "missing column\\(s\\) pages"),
        ("set.csv", b"question,pages\nq,one\n", "line 2: pages 'one' is not a list of page numbers"),
        ("set.csv", b"question,pages\nq,0\n", "pages start at 1"),
        ("set.csv", b"question,pages\n,1\n", "line 2: the question is empty"),
        ("set.csv", b"question,pages\nq,1,extra\n", "more fields than the header"),
        ("set.csv", b"question,pages\n", "no questions found"),
        ("set.csv", b"", "the file is empty"),
        ("set.csv", b"pages\n1\n", "missing column\\(s\\) question"),
        ("set.csv", b"question,pages\n\xff\xfe,1\n", "not UTF-8"),
        ("set.jsonl", b'{"question": "q", "pages": [1]}\n{"question": "q2", pages: [1]}\n', "line 2: not valid JSON"),
        ("set.jsonl", b'["q", [1]]\n', "line 1: expected a JSON object"),
        ("set.jsonl", b'{"question": "q"}\n', "line 1: missing field\\(s\\) pages"),
        ("set.jsonl", b'{"question": "q", "pages": [1, true]}\n', "pages \\[1, True\\]"),
        ("set.jsonl", b'{"question": "q", "pages": [1], "answer": 3}\n', "answer 3 must be text"),
    ],
)
def test_load_eval_set_errors(name, data, message):
    with pytest.raises(EvalSetError, match=message):
        load_eval_set(name, data)


# --- citation accuracy: the app's forced citation is not the model's ------------


def test_citation_accuracy_by_hand():
    rows = [
        {"cited_pages": [1], "model_cited_pages": [], "expected_pages": [1]},  # forced right, model silent
        {"cited_pages": [2, 1], "model_cited_pages": [2, 1], "expected_pages": [1]},  # first cited is wrong
        {"cited_pages": [3], "model_cited_pages": [3], "expected_pages": [3, 4]},
        {"cited_pages": [], "model_cited_pages": [], "expected_pages": [2]},
    ]
    assert citation_accuracy(rows) == {"shown": 2 / 4, "model": 1 / 4}
    assert citation_accuracy([]) == {"shown": None, "model": None}
    assert not first_cited_right([], [1]) and first_cited_right([4, 1], [4])


def _bag_of_words(texts):
    """Unit vectors of hashed word counts: a deterministic stand-in for the collection's embedder."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in _words(text):
            out[row, zlib.crc32(word.encode()) % 64] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


class _ScriptedGenerator:
    """Continues a forced start with a scripted text per question (what the model "wrote")."""

    can_prefill = True

    def __init__(self, replies):
        self.replies = replies

    def stream(self, messages, max_new_tokens=256, temperature=0.0, prefix=""):
        question = next(q for q in self.replies if q in messages[-1]["content"])
        if prefix:
            yield prefix
        yield self.replies[question]


class _Ctx:
    stopped = False

    def report(self, *args, **kwargs):
        pass

    def check_stop(self):
        pass


def test_a_forced_answer_whose_own_text_cites_nothing_counts_as_no_model_citation():
    from backends.rag.pipeline import answer_eval_job

    founded, cafeteria = "Who founded the Aurora research station?", "When does the cafeteria open?"
    generator = _ScriptedGenerator({founded: " Ingrid Halvorsen founded it.", cafeteria: " It opens at 7 am [1]."})
    items = [EvalItem(founded, (1,), "Ingrid Halvorsen"), EvalItem(cafeteria, (2,), "7 am")]
    rows = answer_eval_job(
        _Ctx(), keyword_search, generator, items, "sparse", 3, 40, _bag_of_words, 2, force_citation=True
    )
    assert [r["forced"] for r in rows] == [True, True]
    assert [r["answer"][:17] for r in rows] == ["According to [1],"] * 2  # both top hits hold the answer
    # The app's [1] is on the right page both times; the model cited nothing for the first question.
    assert [r["cited_pages"] for r in rows] == [[1], [2]]
    assert [r["model_cited_pages"] for r in rows] == [[], [2]]
    assert citation_accuracy(rows) == {"shown": 1.0, "model": 0.5}
    # Forcing off: the same texts, the first answer's page found only by wording, so the model cited nothing.
    rows = answer_eval_job(_Ctx(), keyword_search, generator, items, "sparse", 3, 40, _bag_of_words, 2)
    assert [r["forced"] for r in rows] == [False, False]
    assert [r["model_cited_pages"] for r in rows] == [[], [2]]
    assert citation_accuracy(rows) == {"shown": 1.0, "model": 0.5}
