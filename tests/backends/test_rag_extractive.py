"""The extractive answer on cases whose answers were written by hand: form values, whole dates, headings
and fragments passed over, every retrieved passage read (tests the method, not one document's wording)."""

import pytest

from backends.rag.answer_span import answer_span, clauses, complete
from backends.rag.extractive import extract_answer, is_fragment, sentences
from backends.rag.types import Chunk, Hit

FORM = (
    "Form field «First Name»: Alice\nForm field «Last Name»: Smith\n"
    "Form field «Date of birth»: October 14, 1998\nForm field «City»: Lyon"
)
PROSE = "The company was founded on October 14, 1998 in Paris. It makes bicycles and sells them in 12 countries."
MANUAL = (
    "3.1 Invoking gzip\nThe format for running gzip is gzip [option] file. After installing\n"
    "the program, run it with -h to list its options."
)


@pytest.fixture(scope="module")
def embed_texts():
    from backends.rag.embedder import embed, load_embedder

    model = load_embedder()
    return lambda texts: embed(model, texts)


def _hits(*texts, kinds=None):
    kinds = kinds or ["text"] * len(texts)
    return [
        Hit(Chunk(i, "doc.pdf", i + 1, t, 0, k), 1.0 / (i + 1), i + 1) for i, (t, k) in enumerate(zip(texts, kinds))
    ]


@pytest.mark.parametrize(
    "question,expected",
    [
        ("What is the first name?", "Alice"),  # was: "field «First Name»"
        ("What is the last name?", "Smith"),
        ("What is the date of birth?", "October 14, 1998"),
        ("What is the city?", "Lyon"),
        ("When was the company founded?", "October 14, 1998"),  # was: "October 14"
    ],
)
def test_field_values_and_whole_dates(embed_texts, question, expected):
    found = extract_answer(question, _hits(FORM, PROSE, kinds=["form", "text"]), embed_texts)
    assert found.span == expected


def test_a_form_line_is_its_own_sentence_and_the_heading_is_not_glued_to_the_next():
    text = FORM
    assert [text[a:b] for a, b in sentences(text)][:2] == [
        "Form field «First Name»: Alice",
        "Form field «Last Name»: Smith",
    ]
    assert next(MANUAL[a:b] for a, b in sentences(MANUAL)) == "3.1 Invoking gzip"


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("3.1 Invoking", True),
        ("After installing", True),
        ("1.2.2 Memory Resources", True),
        ("indicates", True),
        ("The format for running gzip is gzip [option] file.", False),
        ("Page size (bytes): 4096", False),
    ],
)
def test_headings_and_fragments_are_recognised(text, fragment):
    assert is_fragment(text) is fragment


def test_the_heading_is_not_the_answer(embed_texts):
    found = extract_answer("How do I invoke gzip?", _hits(MANUAL), embed_texts)
    assert "3.1" not in found.span and "gzip [option] file" in found.sentence


def test_every_retrieved_passage_is_read_not_only_the_first_three(embed_texts):
    filler = [
        "Bicycles need their chains oiled every month.",
        "The museum opens at nine and closes at five.",
        "Rainfall in the valley peaks in November.",
    ]
    answer = "The lighthouse keeper's cat is called Marmalade."
    found = extract_answer("What is the lighthouse keeper's cat called?", _hits(*filler, answer), embed_texts)
    assert found.number == 4 and found.span == "Marmalade"


def test_dates_are_never_cut_and_a_cut_date_is_completed():
    assert clauses("It shipped on March 3, 2021, and sold well") == ["It shipped on March 3, 2021", "and sold well"]
    assert complete("shipped on March 3", "It shipped on March 3, 2021 in Oslo.") == "shipped on March 3, 2021"


def test_how_many_takes_the_number_whose_unit_the_question_counts(embed_texts):
    sentence = "With rank 8 on a 4096 by 4096 projection, LoRA trains 65,536 numbers instead of about 16.8 million."
    assert answer_span("How many numbers does LoRA train?", sentence, embed_texts) == "65,536 numbers"


def test_a_what_is_question_gets_the_definition_after_the_colon(embed_texts):
    sentence = "Perplexity measures how surprised a model is by held-out text: it is the exponential of the mean loss."
    assert answer_span("What is perplexity?", sentence, embed_texts) == "the exponential of the mean loss"
    # not a definition: a clause that ends in a colon is no label for "what does ... do"
    sentence = "Temperature divides the logits before the softmax: a temperature below 1 sharpens the distribution."
    assert (
        answer_span("What does temperature divide?", sentence, embed_texts)
        != "a temperature below 1 sharpens the distribution"
    )
