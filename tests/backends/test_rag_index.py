"""Embeddings through the cache's "sentence" variant, BM25, RRF, dense/sparse/hybrid retrieval."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from backends.models.loaders import CacheKey
from backends.rag.embedder import EmbedderError, embed, embed_query, load_embedder
from backends.rag.index import BM25, RRF_K, DenseIndex, RetrievalError, order_for, retrieve, tokenize, top_n
from backends.rag.projection import ProjectionError, project_2d
from backends.rag.rerank import reranker_available

ROOT = Path(__file__).resolve().parents[2]
EVAL = [json.loads(line) for line in (ROOT / "assets/samples/sample_eval.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def loaded():
    return load_embedder("all-minilm-l6-v2", "cpu")


def test_sentence_variant_is_a_sentence_transformer_from_the_local_package(loaded):
    from sentence_transformers import SentenceTransformer

    assert loaded.key == CacheKey("all-minilm-l6-v2", "cpu", "float32", "sentence")
    assert isinstance(loaded.model, SentenceTransformer) and loaded.kind == "embedding"
    assert loaded.source == "package" and Path(loaded.location, "modules.json").is_file()
    assert loaded.model.get_embedding_dimension() == 384
    with pytest.raises(ValueError, match="'sentences'"):
        CacheKey("all-minilm-l6-v2", variant="sentences")


def test_embed_equals_sentence_transformers_encode_in_input_order(loaded):
    texts = [
        "short",
        "a much longer text about attention heads and their queries and keys " * 3,
        "Retrieval-augmented generation cites its sources.",
        "中文文本也可以",
        "short",
    ]
    ours = embed(loaded, texts, batch_size=2)
    reference = loaded.model.encode(texts, batch_size=32, normalize_embeddings=True)
    assert ours.dtype == np.float32 and ours.shape == (5, 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ours[0], ours[4], atol=1e-6)  # batch padding must not change a vector


def test_parallel_batches_give_the_same_vectors_and_leave_thread_settings_alone(loaded):
    import torch

    texts = [f"chunk {i}: " + "attention weights mix the values of earlier tokens " * (1 + i % 7) for i in range(40)]
    threads = torch.get_num_threads()
    ours = embed(loaded, texts, batch_size=4)  # over 512 tokens in all: batches run on parallel workers
    assert torch.get_num_threads() == threads
    np.testing.assert_allclose(ours, loaded.model.encode(texts, normalize_embeddings=True), atol=1e-5)


def test_embed_reports_batches_and_can_stop(loaded):
    seen = []
    out = embed(loaded, [f"text {i}" for i in range(10)], batch_size=4, on_batch=lambda d, t: seen.append((d, t)))
    assert seen == [(4, 10), (8, 10), (10, 10)] and out.shape == (10, 384)
    partial = embed(loaded, [f"text {i}" for i in range(10)], batch_size=4, on_batch=lambda d, t: True)
    assert partial.shape == (4, 384)


def test_embed_rejects_bad_input(loaded):
    with pytest.raises(EmbedderError, match="list of texts"):
        embed(loaded, "one string")
    with pytest.raises(EmbedderError, match="empty"):
        embed_query(loaded, "   ")
    with pytest.raises(EmbedderError, match="variant='sentence'"):
        embed(object(), ["x"])


def test_bm25_matches_the_formula_by_hand():
    texts = ["the cat sat on the mat", "the dog sat", "cats and dogs", "a mat a mat a mat"]
    bm = BM25(texts)
    n, avg = 4, sum(len(tokenize(t)) for t in texts) / 4

    def by_hand(doc, query):
        words = tokenize(doc)
        total = 0.0
        for term in tokenize(query):  # a repeated query term counts each time (Lucene's clauses add up)
            df = sum(term in tokenize(t) for t in texts)
            if not df:
                continue
            tf = words.count(term)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            total += idf * tf * (bm.k1 + 1) / (tf + bm.k1 * (1 - bm.b + bm.b * len(words) / avg))
        return total

    for query in ("mat", "the sat", "unknown words", "Cat MAT mat"):
        np.testing.assert_allclose(bm.scores(query), [by_hand(t, query) for t in texts], rtol=1e-5)
    assert list(top_n(bm.scores("mat"), 2)) == [3, 0]
    assert bm.scores("nothing here").sum() == 0 and len(top_n(bm.scores("nothing"), 5)) == 0


def test_bm25_counts_a_repeated_query_term_once_per_occurrence_as_lucene():
    """Scores worked out on paper: Lucene's BM25 idf = ln(1 + (N - n + 0.5) / (n + 0.5)), k1 = 1.5,
    b = 0.75, tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)). Lucene runs "cat cat dog" as a
    BooleanQuery of three TermQuery clauses whose scores add up (its rewrite merges the two cat
    clauses into one with boost 2), so cat weighs twice.

    Texts: "cat dog" (dl 2), "dog dog bird" (dl 3), "bird" (dl 1); N = 3, avgdl = 2.
    cat: n = 1, idf = ln(1 + 2.5 / 1.5) = ln(8/3).  dog: n = 2, idf = ln(1 + 1.5 / 2.5) = ln(1.6).
    Text 0: norm = 1.5 * (0.25 + 0.75 * 2/2) = 1.5; cat and dog (tf 1) each weigh idf * 2.5 / 2.5 = idf.
    Text 1: norm = 1.5 * (0.25 + 0.75 * 3/2) = 2.0625; dog (tf 2) weighs ln(1.6) * 5 / 4.0625.
    """
    bm = BM25(["cat dog", "dog dog bird", "bird"])
    assert (bm.k1, bm.b) == (1.5, 0.75)
    cat, dog = math.log(8 / 3), math.log(1.6)
    dog_in_1 = dog * 5 / 4.0625
    np.testing.assert_allclose(bm.scores("cat dog"), [cat + dog, dog_in_1, 0.0], rtol=1e-6)
    np.testing.assert_allclose(bm.scores("cat cat dog"), [2 * cat + dog, dog_in_1, 0.0], rtol=1e-6)
    np.testing.assert_allclose(bm.scores("dog Dog DOG cat"), [3 * dog + cat, 3 * dog_in_1, 0.0], rtol=1e-6)
    assert bm.query_terms("cat cat dog") == ["cat", "dog"]  # the terms shown, each once


def test_chinese_bigrams_never_join_characters_across_punctuation_or_spaces():
    # Listed by hand: every CJK character, then each pair of characters that touch in the text.
    assert tokenize("检索，增强 生成。模型") == [
        *("检", "索", "增", "强", "生", "成", "模", "型"),
        *("检索", "增强", "生成", "模型"),
    ]
    assert tokenize("注意力机制！LoRA微调") == [
        *("注", "意", "力", "机", "制", "lora", "微", "调"),
        *("注意", "意力", "力机", "机制", "微调"),
    ]
    # A query pair that spans punctuation in a text does not match it.
    bm = BM25(["增强。生成", "强生"])
    assert bm.scores("强生")[0] < bm.scores("强生")[1]
    assert "强生" not in tokenize("增强。生成")


def test_bm25_tokenizes_arabic_and_chinese():
    bm = BM25(["حَبيبي habibi", "plain english"])
    assert bm.scores("habibi")[0] > 0 and bm.scores("حَبيبي")[0] > 0 and bm.scores("حَبيبي")[1] == 0


def test_bm25_finds_chinese_passages_by_words_inside_sentences():
    passages = [
        "注意力机制让每个 token 看到上下文中的其他 token。",
        "量化用更少的比特存储权重，以节省显存。",
        "检索增强生成先检索相关段落，再让模型回答。",
    ]
    bm = BM25(passages)
    for question, best in (("什么是注意力机制？", 0), ("量化能节省什么？", 1), ("检索增强生成怎么回答问题", 2)):
        scores = bm.scores(question)
        assert int(np.argmax(scores)) == best, (question, scores)
    assert tokenize("机制") == ["机", "制", "机制"]


def test_rrf_fuses_ranks_and_keeps_every_score():
    emb = np.eye(4, dtype=np.float32)
    dense = DenseIndex(emb)
    bm = BM25(["alpha", "beta", "gamma alpha", "delta"])
    q = np.array([0.9, 0.0, 0.1, 0.0], dtype=np.float32)
    scored = retrieve(dense, bm, emb, q, "alpha", candidates=3)
    by_row = {s.row: s for s in scored}
    # row 0: dense rank 1 and sparse rank 1 ("alpha" alone beats "gamma alpha")
    assert by_row[0].fused_score == pytest.approx(2 / (RRF_K + 1)) and scored[0].row == 0
    assert by_row[2].dense_rank == 2 and by_row[2].sparse_rank == 2
    assert all(s.dense_score is not None and s.sparse_score is not None for s in scored)
    assert [s.fused_rank for s in scored] == list(range(1, len(scored) + 1))
    assert [s.row for s, _ in order_for("sparse", scored)] == [0, 2]
    with pytest.raises(RetrievalError, match="'fuzzy'"):
        order_for("fuzzy", scored)
    with pytest.raises(RetrievalError, match="3 dimensions"):
        dense.search(np.ones(3, dtype=np.float32), 2)


def test_each_method_finds_the_right_page_of_the_sample_pdf(loaded):
    from backends.rag.chunking import chunk_passages
    from backends.rag.ingest import ingest_file
    from backends.rag.types import ChunkSettings

    pdf = ROOT / "assets/samples/how_language_models_work.pdf"
    chunks = chunk_passages(ingest_file(pdf.name, pdf.read_bytes()).passages, ChunkSettings(size=400, overlap=40))
    emb = embed(loaded, [c.text for c in chunks])
    dense, bm = DenseIndex(emb), BM25([c.text for c in chunks])
    for method in ("dense", "sparse", "hybrid"):
        top1 = 0
        for item in EVAL:
            scored = retrieve(dense, bm, emb, embed_query(loaded, item["question"]), item["question"], 10)
            pages = [chunks[s.row].page for s, _ in order_for(method, scored)]
            assert set(pages[:3]) & set(item["pages"]), (method, item["question"], pages[:3])
            top1 += pages[0] in item["pages"]
        assert top1 >= len(EVAL) - 2, (method, top1)


def test_projection_places_the_question_with_the_same_axes():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(20, 8)).astype(np.float32)
    points, q = project_2d(emb, emb[3])
    assert points.shape == (20, 2) and q.shape == (2,)
    np.testing.assert_allclose(q, points[3], atol=1e-5)
    np.testing.assert_allclose(points.mean(axis=0), 0, atol=1e-5)
    assert points[:, 0].var() >= points[:, 1].var()
    with pytest.raises(ProjectionError, match="5 dimensions"):
        project_2d(emb, np.ones(5))


def test_no_reranker_offline():
    # no cross-encoder is embedded, and tests run with HF_HUB_OFFLINE=1
    assert reranker_available() is False
    # resolvable offline; whether it is a cross-encoder is the loader's business
    assert reranker_available("all-minilm-l6-v2") is True


def test_an_embedding_model_is_refused_as_a_cross_encoder():
    from backends.models.cache import ModelCache
    from backends.models.registry import ModelNotAvailable

    with pytest.raises(ModelNotAvailable, match="not a cross-encoder"):
        ModelCache().get("all-minilm-l6-v2", variant="cross-encoder")
