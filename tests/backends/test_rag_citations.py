"""Citations: markers in every form models write, the word-overlap fallback, and the weak-retrieval
threshold checked against real all-MiniLM-L6-v2 cosines of answering and unrelated passages."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from backends.models.cache import shared_cache
from backends.rag.citations import (
    WEAK_COSINE,
    citations_for,
    cited_numbers,
    infer_citations,
    own_citations,
    parse_citations,
    split_forced,
    strip_citations,
    weak_retrieval,
)
from backends.rag.types import Chunk, Hit

PASSAGES = [
    (
        "handbook.pdf",
        2,
        "The Aurora research station was founded in 1987 by the Norwegian geologist Ingrid "
        "Halvorsen. It sits on the eastern shore of Lake Vattern and employs 42 scientists.",
    ),
    (
        "handbook.pdf",
        5,
        "Visitors must register at the front desk. The cafeteria opens at 7 am and closes at 8 pm. "
        "Parking is free on weekends.",
    ),
    ("notes.txt", 1, "Photosynthesis converts light energy into chemical energy stored in glucose."),
]


def _hits(dense=None):
    dense = dense or [None] * len(PASSAGES)
    return [
        Hit(Chunk(i, doc, page, text, 0), score=1.0 / (i + 1), rank=i + 1, dense_score=d)
        for i, ((doc, page, text), d) in enumerate(zip(PASSAGES, dense))
    ]


@pytest.mark.parametrize(
    "answer,numbers",
    [
        ("It opened in 1987 [1].", [1]),
        ("Both [2], [1] and again [2].", [2, 1]),
        ("See [1, 3].", [1, 3]),
        ("See [1][2].", [1, 2]),
        ("See [1;3] and [ 2 ].", [1, 3, 2]),
        ("See [1-3].", [1, 2, 3]),
        ("According to [Source 2] and [source 1, source 3].", [2, 1, 3]),
        ("No markers, a list [a] or a year (1987).", []),
    ],
)
def test_cited_numbers(answer, numbers):
    assert cited_numbers(answer) == numbers


def test_parse_keeps_only_existing_sources_in_order():
    hits = _hits()
    cites = parse_citations("Founded 1987 [1]; canteen at 7 am [2]; also [7] and [0] and [1].", hits)
    assert [(c.number, c.hit.chunk.page, c.inferred) for c in cites] == [(1, 2, False), (2, 5, False)]
    assert parse_citations("Only [4].", hits) == []


def test_strip_citations():
    assert strip_citations("Ingrid Halvorsen [1]. It opens at 7 am [2][3] .") == "Ingrid Halvorsen. It opens at 7 am."


def test_infer_citations_from_wording():
    hits = _hits()
    answer = "The Aurora station was founded by Ingrid Halvorsen in 1987. The cafeteria opens at 7 am."
    cites = infer_citations(answer, hits)
    assert [(c.number, c.inferred) for c in cites] == [(1, True), (2, True)]
    assert cites[0].overlap == 1.0
    # A made-up sentence shares too few words with any source; "I don't know" is too short to match.
    assert infer_citations("Penguins migrate across the desert every spring.", hits) == []
    assert infer_citations("I don't know.", hits) == []
    # A sentence every source holds (a running header) points nowhere.
    headed = [
        Hit(Chunk(i, h.chunk.doc, h.chunk.page, "Station Handbook Edition Three. " + h.chunk.text, 0), 1.0, i + 1)
        for i, h in enumerate(hits)
    ]
    assert infer_citations("Station Handbook Edition Three.", headed) == []
    # Markers win over the fallback.
    assert [c.inferred for c in citations_for("Founded by Ingrid Halvorsen [2].", hits)] == [False]
    assert [c.number for c in citations_for("Founded by Ingrid Halvorsen in 1987.", hits)] == [1]


def test_a_forced_citation_is_the_apps_and_not_counted_as_the_models():
    """Citation forcing writes "According to [2]," for the model: that [2] is marked forced, and a forced
    answer whose model-written text cites nothing has no citation by the model (its wording still
    matches a source, shown as inferred)."""
    hits, prefix = _hits(), "According to [2],"
    answer = prefix + " it was founded in 1987 by Ingrid Halvorsen."
    assert split_forced(answer, prefix) == (prefix, " it was founded in 1987 by Ingrid Halvorsen.")
    cites = citations_for(answer, hits, prefix)
    assert [(c.number, c.forced, c.inferred, c.by_model) for c in cites] == [
        (2, True, False, False),
        (1, False, True, False),
    ]
    assert own_citations(answer, hits, prefix) == []
    # Markers the model writes after the prefix are its own, in its order, even [2] again.
    answer = prefix + " It was founded in 1987 [1]; the cafeteria opens at 7 am [2]."
    cites = citations_for(answer, hits, prefix)
    assert [(c.number, c.forced, c.by_model) for c in cites] == [(2, False, True), (1, False, True)]
    assert [c.number for c in own_citations(answer, hits, prefix)] == [1, 2]
    # The prefix is the app's only where the answer begins with it; with no prefix a marker is the model's.
    assert split_forced("Founded [1].", prefix) == ("", "Founded [1].")
    assert [(c.number, c.forced) for c in citations_for("According to [2], yes.", hits)] == [(2, False)]


@pytest.fixture(scope="module")
def minilm_cosines():
    """Cosines of questions against PASSAGES with the real offline embedding model (mean pooled, normalised)."""
    lm = shared_cache().get("all-minilm-l6-v2", device="cpu")

    def embed(texts):
        batch = lm.tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            hidden = lm.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)

    questions = [
        "Who founded the Aurora research station?",
        "When does the cafeteria open?",
        "How do plants store energy from light?",
        "What is the capital of Peru?",
        "How many goals did Pele score?",
    ]
    return (embed(questions) @ embed([t for _, _, t in PASSAGES]).T).tolist()


def test_weak_retrieval_threshold_on_real_embeddings(minilm_cosines):
    answerable, unrelated = minilm_cosines[:3], minilm_cosines[3:]
    for i, row in enumerate(answerable):  # the passage that answers question i is passage i
        assert row[i] > WEAK_COSINE + 0.3, row
        assert not weak_retrieval(_hits(row))
    for row in unrelated:
        assert max(row) < WEAK_COSINE, row
        assert weak_retrieval(_hits(row))


def test_weak_retrieval_edge_cases():
    assert weak_retrieval([])
    assert not weak_retrieval(_hits())  # sparse-only hits carry no cosine: cannot judge
    assert weak_retrieval(_hits([0.15, None, 0.1]))
    assert not weak_retrieval(_hits([0.15, None, 0.1]), threshold=0.12)


def test_an_answer_that_only_lists_sources_cites_none_of_them():
    """SmolLM2 asked in Chinese wrote this after the app's "According to [1],": every source was shown as
    cited. A marker counts only in a sentence that says something besides markers and citation talk."""
    hits, prefix = _hits(), "According to [1],"
    answer = prefix + " [2], [3] and [1] are all about [1]."
    cites = citations_for(answer, hits, prefix)
    assert [(c.number, c.forced) for c in cites] == [(1, True)]
    assert own_citations(answer, hits, prefix) == []
    # a real statement keeps its markers, also when the marker follows the sentence's full stop
    answer = prefix + " The cafeteria opens at 7 am. [2]"
    assert [c.number for c in own_citations(answer, hits, prefix)] == [2]
    assert [c.number for c in own_citations("Yes [2].", hits)] == [2]
