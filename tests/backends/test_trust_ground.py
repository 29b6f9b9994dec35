"""Grounding labels on constructed passages, the overlap score by hand, the cosine against
sentence-transformers loaded here on its own, a short real correct-or-abstain run graded by
backends.trust.grade, and the abstain rule withholding an answer about a made-up entity."""

from __future__ import annotations

import numpy as np
import pytest

from backends import trust

CANBERRA = "Canberra is the capital of Australia. Sydney is the largest city of Australia."
BERLIN = "The Berlin Wall fell in 1989, on the night of 9 November. Germany was reunified in 1990."
FLEMING = "Alexander Fleming discovered penicillin in 1928 in London. Penicillin was the first antibiotic."
PASSAGES = [FLEMING, CANBERRA, BERLIN]


@pytest.fixture(scope="module")
def grounded():
    answer = (
        "Canberra is the capital of Australia. The Berlin Wall fell in 1988. "
        "Sydney is the capital of Australia. Bananas are rich in potassium. "
        "Penicillin was discovered by Alexander Fleming."
    )
    return trust.ground(answer, PASSAGES)


def test_a_stated_sentence_is_supported_by_its_passage(grounded):
    first, *_, last = grounded
    assert first.text == "Canberra is the capital of Australia."
    assert first.label == "supported" and first.passage == 1
    assert first.evidence == "Canberra is the capital of Australia."
    assert first.overlap == 1.0 and first.cosine > 0.99  # the same sentence
    assert last.label == "supported" and last.passage == 0  # a paraphrase of FLEMING's first sentence


def test_a_changed_number_or_name_is_unsupported(grounded):
    year, name = grounded[1], grounded[2]
    assert year.label == "unsupported" and year.passage == 2 and year.missing == ("1988",)
    # every word of the wrong sentence is somewhere in the passage, but no single sentence holds both
    assert name.label == "unsupported" and name.passage == 1
    assert "sydney" in name.missing or name.overlap < trust.OVERLAP_MIN
    assert trust.overlap_score("Sydney is the capital of Australia.", CANBERRA) == 1.0


def test_an_unrelated_sentence_is_unsupported(grounded):
    bananas = grounded[3]
    assert bananas.label == "unsupported"
    assert bananas.overlap == 0.0 and bananas.cosine < trust.COSINE_MIN


def test_an_abstention_is_not_a_claim():
    (s,) = trust.ground("I don't know.", PASSAGES)
    assert s.label == "abstains" and not s.supported


def test_overlap_by_hand():
    sentence = "The Titanic sank in 1913 near Greenland, carrying 2,224 people."
    unit = "The Titanic sank in 1912 after it struck an iceberg; 2224 people were on board."
    # content words of the sentence (stopwords the, in off): titanic sank 1913 near greenland carrying 2224 people
    words = ["titanic", "sank", "1913", "near", "greenland", "carrying", "2224", "people"]
    assert trust.content_words(sentence) == words
    found = {"titanic", "sank", "2224", "people"}  # 1913 != 1912: numbers match exactly
    assert trust.overlap_score(sentence, unit) == pytest.approx(len(found) / len(words))
    assert trust.key_terms(sentence) == ["titanic", "1913", "greenland", "2224"]
    # number words count as their digits, and plural ~ singular
    assert trust.overlap_score("A spider has eight legs.", "Spiders: 8 leg") == 1.0


def test_cosine_matches_sentence_transformers(grounded):
    from sentence_transformers import SentenceTransformer

    from backends.models.registry import resolve

    model = SentenceTransformer(resolve("all-minilm-l6-v2").location, device="cpu")
    year = grounded[1]
    a, b = model.encode([year.text, year.evidence])
    expected = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert year.cosine == pytest.approx(expected, abs=1e-4)
    assert year.evidence == "The Berlin Wall fell in 1989, on the night of 9 November."


def test_correct_run_retrieval_supplies_the_answer():
    """Questions SmolLM2 gets wrong closed book that the reference answers (chosen on a full run)."""
    wanted = ("c03", "c05", "s13", "s14")
    questions = [q for q in trust.shipped_questions() if q.id in wanted]
    report = trust.evaluate_correct(questions=questions)
    assert [r["id"] for r in report.rows] == [q.id for q in questions]
    for q, row in zip(questions, report.rows, strict=True):
        assert row["rag_grade"] == trust.grade(q, row["rag"])
        assert row["closed_grade"] == trust.grade(q, row["closed"])
    right = {
        mode: sum(trust.grade(q, r[mode]) == "right" for q, r in zip(questions, report.rows))
        for mode in ("closed", "rag")
    }
    assert right["rag"] == len(questions)  # retrieval supplies every answer
    assert report.summary["rag"]["all"]["accuracy"] == right["rag"] / len(questions)
    assert report.rag_fix_acc_gain == pytest.approx((right["rag"] - right["closed"]) / len(questions))
    assert report.rag_fix_acc_gain > 0


def test_abstain_rule_withholds_an_invented_entity_answer():
    question = next(q for q in trust.shipped_questions() if q.id == "i01")  # the Republic of Veltoria
    got = trust.answer_with_retrieval(question.question)
    assert not any(trust.mentions(p, "Veltoria") for p in got.passages)  # the reference never names it
    assert not trust.abstains(got.answer)  # SmolLM2 makes up a capital even with the passages...
    assert trust.grade(question, got.answer) == "wrong"
    assert not got.claim_supported and got.withheld  # ...and the abstain rule withholds it
    assert got.shown == trust.WITHHELD and trust.grade(question, got.shown) == "right"
    # a confident made-up answer is unsupported by the same passages: its name is in none of them
    made_up = trust.ground("The capital of the Republic of Veltoria is Marnel.", list(got.passages))
    assert not trust.answer_supported(made_up)
    assert "veltoria" in made_up[0].missing


def test_the_rule_labels_every_calibration_pair_as_hand_labelled():
    from backends.trust.grounding import CALIBRATION

    got = [trust.ground(sentence, [passage])[0].supported for sentence, passage, _ in CALIBRATION]
    assert got == [expected for _, _, expected in CALIBRATION]
