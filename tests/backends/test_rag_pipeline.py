"""One chat turn end to end: rewrite or carry the last question, retrieve, prompt, cite."""

from pathlib import Path

import pytest

from backends.rag.build import build_collection
from backends.rag.generators import OpenAICompatibleGenerator
from backends.rag.pipeline import answer, history_messages, prepare_turn
from backends.rag.types import ChunkSettings
from tests.openai_server import KEY

SAMPLE = next((Path(__file__).resolve().parents[2] / "assets" / "samples").glob("*.pdf"))


@pytest.fixture(scope="module")
def collection():
    return build_collection(None, [(SAMPLE.name, SAMPLE.read_bytes(), None)], ChunkSettings("characters", 500, 80))


def search_with(collection):
    return lambda question, method, k: collection.search(question, method=method, k=k)


def test_a_first_question_is_searched_as_asked_and_its_answer_cited(collection, server):
    generator = OpenAICompatibleGenerator(server, "tiny", api_key=KEY)
    turn = answer(search_with(collection), generator, [], "What does LoRA freeze?", k=3)
    assert turn.query == turn.standalone == "What does LoRA freeze?"
    assert turn.hits[0].chunk.page == 5
    assert turn.answer == "Ingrid Halvorsen founded it [1]."
    assert [(c.number, c.hit) for c in turn.citations] == [(1, turn.hits[0])]
    assert "Passage [1]" in turn.prompt and turn.hits[0].chunk.text[:40] in turn.prompt


def test_a_follow_up_the_model_cannot_rewrite_is_searched_with_the_last_question(collection, server):
    generator = OpenAICompatibleGenerator(server, "tiny", api_key=KEY)  # its "rewrite" is no question: kept as is
    first = answer(search_with(collection), generator, [], "What is LoRA?", k=3)
    follow = prepare_turn(search_with(collection), generator, [first], "How is its update scaled?", k=3)
    assert follow.standalone == "How is its update scaled?"
    assert follow.query == "What is LoRA? How is its update scaled?"
    assert follow.hits[0].chunk.page == 5 and "alpha" in " ".join(h.chunk.text for h in follow.hits)
    assert history_messages([first])[0] == {"role": "user", "content": "What is LoRA?"}


def test_a_rewritten_follow_up_is_searched_as_rewritten(collection, server):
    generator = OpenAICompatibleGenerator(server, "rewriter", api_key=KEY)
    first = answer(
        search_with(collection),
        OpenAICompatibleGenerator(server, "tiny", api_key=KEY),
        [],
        "Tell me about a research station.",
        k=2,
    )
    follow = prepare_turn(search_with(collection), generator, [first], "When was it founded?", k=2)
    assert follow.query == follow.standalone == "When was the Aurora station founded?"


def test_comparison_builds_a_prompt_without_sources(collection, server):
    generator = OpenAICompatibleGenerator(server, "tiny", api_key=KEY)
    turn = answer(search_with(collection), generator, [], "What does top-p keep?", k=2, compare=True)
    assert "Passage [" not in turn.baseline_prompt and "Passage [1]" in turn.prompt
    assert turn.baseline_answer == turn.answer  # the local test server replies the same either way


def test_the_extractive_answer_finds_the_384_dimensions_sentence(collection):
    from backends.rag.extractive import extract_answer

    question = "How many dimensions does an all-MiniLM-L6-v2 vector have?"
    hits = collection.search(question, "hybrid", k=4)
    found = extract_answer(question, hits, collection.embed_texts)
    assert found.span == "384 dimensions" and found.hit.chunk.page == 2
    assert "every vector has 384 dimensions" in found.sentence
    assert found.hit.chunk.text[found.start : found.end].split() == found.sentence.split()
    assert found.cited == f"384 dimensions [{found.number}]" and hits[found.number - 1] is found.hit


def test_a_self_contained_follow_up_is_searched_as_asked_not_joined(collection, server):
    from backends.rag.followups import needs_context

    generator = OpenAICompatibleGenerator(server, "tiny", api_key=KEY)
    first = answer(search_with(collection), generator, [], "How does WordPiece mark a piece?", k=3)
    follow = prepare_turn(
        search_with(collection), generator, [first], "What does LoRA freeze?", k=3, embed_texts=collection.embed_texts
    )
    assert follow.query == "What does LoRA freeze?" and not follow.rewritten
    assert follow.hits[0].chunk.page == 5 and follow.extractive.hit.chunk.page == 5
    assert (
        needs_context("And its rank?")
        and needs_context("它有多少维？")
        and not needs_context("What is mean reciprocal rank?")
    )


def test_citation_forcing_starts_the_answer_with_the_extractive_passage_and_the_model_continues(collection):
    """The in-app SmolLM2 is handed "According to [n]," ([n] = where the extractive answer was found)
    and continues from it: the answer cites the right page and says the number the passage gives.
    A server (no prefill in the OpenAI API) is never forced."""
    from backends.models.cache import shared_cache
    from backends.rag.generators import LocalGenerator

    generator = LocalGenerator(shared_cache().get("smollm2-135m-instruct"))
    question = "How many dimensions does an all-MiniLM-L6-v2 vector have?"
    turn = answer(
        search_with(collection),
        generator,
        [],
        question,
        max_new_tokens=24,
        embed_texts=collection.embed_texts,
        prompt_hits=2,
        force_citation=True,
    )
    assert turn.prefix == f"According to [{turn.extractive.number}],"
    assert turn.answer.startswith(turn.prefix) and len(turn.answer) > len(turn.prefix) + 5
    assert "384" in turn.answer
    assert turn.citations[0].hit is turn.extractive.hit and turn.citations[0].hit.chunk.page == 2
    pieces = list(generator.stream(turn.messages, max_new_tokens=4, prefix="According to [1],"))
    assert pieces[0] == "According to [1]," and len(pieces) > 1
    remote = OpenAICompatibleGenerator("http://127.0.0.1:9/v1", "tiny")
    not_forced = prepare_turn(
        search_with(collection),
        remote,
        [],
        question,
        embed_texts=collection.embed_texts,
        prompt_hits=2,
        force_citation=True,
    )
    assert not_forced.prefix == ""
