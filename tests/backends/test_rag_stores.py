"""FAISS and Qdrant (its in-process local mode) give the same top-k and scores on the sample."""

from pathlib import Path

import numpy as np
import pytest

from backends.rag.build import build_collection
from backends.rag.collection import Collection
from backends.rag.stores import QdrantStore, StoreError, make_store
from backends.rag.types import ChunkSettings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "assets" / "samples" / "how_language_models_work.pdf"
QUESTIONS = [
    "How many dimensions does an all-MiniLM-L6-v2 vector have?",
    "What are attention scores divided by before the softmax?",
    "What does LoRA train?",
]


@pytest.fixture(scope="module")
def faiss_collection():
    return build_collection(None, [(SAMPLE.name, SAMPLE.read_bytes(), None)], ChunkSettings("characters", 500, 80))


def test_qdrant_local_gives_the_same_top_k_and_scores_as_faiss(faiss_collection):
    col = faiss_collection
    qdrant = Collection(
        col.name, col.embed_model, col.settings, col.chunks, col.reports, col.embeddings, store="qdrant"
    )
    assert isinstance(qdrant.dense, QdrantStore) and qdrant.store_kind == "qdrant"
    for question in QUESTIONS:
        q = col.query_embedding(question)
        f_scores, f_rows = col.dense.search(q, 8)
        q_scores, q_rows = qdrant.dense.search(q, 8)
        assert list(f_rows) == list(q_rows)
        np.testing.assert_allclose(f_scores, q_scores, atol=1e-5)
        for method in ("dense", "hybrid"):
            a = col.search(question, method, k=5, query_vec=q)
            b = qdrant.search(question, method, k=5, query_vec=q)
            assert [h.chunk.id for h in a] == [h.chunk.id for h in b]
            np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)


def test_bad_store_names_and_unreachable_servers_get_clear_messages():
    vectors = np.eye(3, dtype=np.float32)
    with pytest.raises(StoreError, match="'milvus'"):
        make_store("milvus", vectors)
    with pytest.raises(StoreError, match="127.0.0.1:9"):
        make_store("qdrant", vectors, url="http://127.0.0.1:9")
