"""Collections: building as a job with bad files in the batch, the content-hash cache, save/load,
add_files, and two sessions' collections kept apart."""

import time
from pathlib import Path

import numpy as np
import pytest

from backends.core.jobs import DONE, STOPPED, JobRunner
from backends.rag import embed_cache
from backends.rag.build import add_files, build_collection
from backends.rag.collection import (
    Collection,
    CollectionError,
    collection_folder,
    collections_dir,
    delete_collection,
    saved_collections,
)
from backends.rag.types import ChunkSettings
from tests.sample_pdfs import PDFS

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "assets/samples/how_language_models_work.pdf"
SHARED = PDFS
SETTINGS = ChunkSettings(size=400, overlap=40)


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMPG_CACHE_DIR", str(tmp_path / "cache"))


class Recorder:
    stopped = False

    def __init__(self):
        self.events = []

    def report(self, progress=None, message="", **data):
        self.events.append((progress, message, data))

    def check_stop(self):
        pass


def sample_file(name="guide.pdf"):
    return (name, SAMPLE.read_bytes(), None)


def test_bad_files_are_reported_and_the_others_indexed():
    pdf = SAMPLE.read_bytes()
    files = [
        ("renamed.pdf", b"GIF89a not a pdf", None),
        sample_file(),
        ("empty.pdf", b"", None),
        ("cut.pdf", pdf[: len(pdf) // 3], None),
        ("notes.txt", b"LoRA adapters are small.\n", None),
        ("locked.pdf", (SHARED / "libreoffice-writer-password.pdf").read_bytes(), "openpassword"),
        ("blank.txt", b" \n\t ", None),
    ]
    ctx = Recorder()
    col = build_collection(ctx, files, SETTINGS, name="s1")
    status = {r.doc: r.status for r in col.reports}
    assert status == {
        "renamed.pdf": "error",
        "guide.pdf": "ok",
        "empty.pdf": "error",
        "cut.pdf": "error",
        "notes.txt": "ok",
        "locked.pdf": "ok",
        "blank.txt": "no_text",
    }
    assert col.documents == ["guide.pdf", "notes.txt", "locked.pdf"]
    assert {c.page for c in col.chunks if c.doc == "guide.pdf"} == set(range(1, 9))
    assert col.embeddings.shape == (len(col.chunks), 384)
    stages = [d.get("stage") for _, _, d in ctx.events]
    assert {"ingest", "embed", "index", "done"} <= set(stages)
    assert [d["doc"] for _, _, d in ctx.events if d.get("stage") == "ingest" and "status" in d] == [
        f[0] for f in files
    ]
    progress = [p for p, _, _ in ctx.events if p is not None]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert col.search("What is inside locked.pdf? Lorem ipsum", "sparse", k=1)[0].chunk.doc == "locked.pdf"


def test_search_hits_carry_scores_and_ranks():
    col = build_collection(None, [sample_file()], SETTINGS)
    hits = col.search("How many dimensions does an all-MiniLM-L6-v2 vector have?", "hybrid", k=3)
    assert [h.rank for h in hits] == [1, 2, 3] and hits[0].chunk.page == 2
    assert all(h.dense_score is not None and h.sparse_score is not None and h.fused_score == h.score for h in hits)
    dense = col.search("What does a temperature below 1 do?", "dense", k=2)
    assert dense[0].score == dense[0].dense_score and dense[0].chunk.page == 4
    table = col.candidates_table("quantization to 4 bits", candidates=5)
    assert len(table) >= 5 and [h.fused_rank for h in table] == list(range(1, len(table) + 1))
    with pytest.raises(CollectionError, match="'semantic'"):
        col.search("x", "semantic")
    with pytest.raises(CollectionError, match="empty"):
        col.search("  ")
    with pytest.raises(CollectionError, match="at least 1"):
        col.search("x", k=0)


def test_saved_collection_reloads_identically():
    col = build_collection(
        None, [sample_file(), ("n.md", b"# Notes\n\nBM25 ranks words.", None)], SETTINGS, name="mine"
    )
    folder = col.save(collection_folder("my docs"))
    assert saved_collections() == ["my docs"] and folder.parent == collections_dir()
    assert {p.name for p in folder.iterdir()} == {"index.faiss", "embeddings.npy", "collection.json"}
    back = Collection.load(folder)
    assert back.chunks == col.chunks and back.reports == col.reports and back.settings == col.settings
    np.testing.assert_array_equal(back.embeddings, col.embeddings)
    for question in ("How does LoRA scale its update?", "What is BM25?", "perplexity"):
        for method in ("dense", "sparse", "hybrid"):
            assert back.search(question, method, k=4) == col.search(question, method, k=4)
    with pytest.raises(CollectionError, match="not allowed"):
        collection_folder("../escape")
    with pytest.raises(CollectionError, match="not a readable saved collection"):
        Collection.load(collections_dir() / "missing")
    delete_collection("my docs")
    assert saved_collections() == [] and not folder.exists()
    with pytest.raises(CollectionError, match="no saved collection called 'my docs'"):
        delete_collection("my docs")


def test_two_sessions_do_not_see_each_others_chunks():
    first = build_collection(None, [sample_file("alice.pdf")], SETTINGS, name="alice")
    second = build_collection(
        None, [("bob.txt", b"Bob's secret recipe uses cardamom and saffron.", None)], SETTINGS, name="bob"
    )
    assert first.documents == ["alice.pdf"] and second.documents == ["bob.txt"]
    assert {h.chunk.doc for h in first.search("cardamom saffron recipe", k=10)} == {"alice.pdf"}
    assert {h.chunk.doc for h in second.search("LoRA rank", k=10)} == {"bob.txt"}
    assert first.bm25.scores("cardamom").sum() == 0


def test_add_files_returns_a_new_collection_and_keeps_the_old_one():
    old = build_collection(None, [sample_file()], SETTINGS)
    before = (list(old.chunks), old.embeddings.copy(), len(old.reports))
    new = add_files(
        None,
        old,
        [
            ("bad.pdf", b"not a pdf at all", None),
            ("extra.txt", b"Mixture of experts routes tokens to experts.", None),
            sample_file("guide again.pdf"),
        ],
    )
    assert (old.chunks, len(old.reports)) == (before[0], before[2])
    np.testing.assert_array_equal(old.embeddings, before[1])
    assert new.documents == ["guide.pdf", "extra.txt"] and new.chunks[: len(old.chunks)] == old.chunks
    assert [c.id for c in new.chunks] == list(range(len(new.chunks)))
    messages = {r.doc: r.message for r in new.reports[len(old.reports) :]}
    assert "already in this collection" in messages["guide again.pdf"] and "not a PDF" in messages["bad.pdf"]
    assert new.search("mixture of experts", "sparse", k=1)[0].chunk.doc == "extra.txt"


def test_reingest_comes_from_the_content_hash_cache():
    files = [sample_file(), ("p.pdf", (SHARED / "pdflatex-4-pages.pdf").read_bytes(), None)]
    started = time.perf_counter()
    first = build_collection(None, files, SETTINGS)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    again = build_collection(None, [(f"renamed {n}", d, p) for n, d, p in files], SETTINGS)
    warm = time.perf_counter() - started
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    assert [c.text for c in again.chunks] == [c.text for c in first.chunks]
    assert again.documents == ["renamed guide.pdf", "renamed p.pdf"]
    assert cold / warm > 5, (cold, warm)
    # other settings are another key: nothing stale is reused
    other = build_collection(None, files[:1], ChunkSettings(size=300, overlap=0))
    assert max(len(c.text) for c in other.chunks) <= 300
    assert embed_cache.clear() == 3


def test_password_is_part_of_the_cache_key():
    locked = (SHARED / "libreoffice-writer-password.pdf").read_bytes()
    opened = build_collection(None, [("l.pdf", locked, "openpassword")], SETTINGS)
    assert opened.reports[0].status == "ok"
    again = build_collection(None, [("l.pdf", locked, None)], SETTINGS)
    assert again.reports[0].status == "needs_password" and again.chunks == []


def test_build_runs_as_a_job_and_stops():
    runner = JobRunner()
    job = runner.submit("rag-index", build_collection, [sample_file()], SETTINGS)
    assert job.wait(120) and job.status == DONE, job.error
    assert isinstance(job.result, Collection) and job.progress == 1.0
    many = [(f"n{i}.txt", f"note number {i} about tokens".encode(), None) for i in range(300)]
    stopping = runner.submit("rag-index", build_collection, many, SETTINGS, batch_size=1)
    while not any(e.data.get("stage") == "embed" for e in stopping.events_since(0)) and not stopping.done:
        time.sleep(0.01)
    stopping.stop()
    assert stopping.wait(60) and stopping.status == STOPPED


def test_a_locked_file_added_again_with_its_password_replaces_its_report():
    locked = (SHARED / "libreoffice-writer-password.pdf").read_bytes()
    first = build_collection(None, [sample_file(), ("l.pdf", locked, None)], SETTINGS)
    assert [r.status for r in first.reports] == ["ok", "needs_password"]
    second = add_files(None, first, [("l.pdf", locked, "openpassword")])
    assert [(r.doc, r.status) for r in second.reports] == [("guide.pdf", "ok"), ("l.pdf", "ok")]
    assert second.documents == ["guide.pdf", "l.pdf"]


def test_a_collection_of_only_bad_files_is_empty_and_searchable():
    col = build_collection(None, [("x.pdf", b"nope", None)], SETTINGS)
    assert len(col) == 0 and col.embeddings.shape == (0, 384) and col.reports[0].status == "error"
    assert col.search("anything") == [] and col.candidates_table("anything") == []


def test_the_shared_embedding_cache_never_shows_another_uploaders_file_name(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMPG_CACHE_DIR", str(tmp_path))
    pdf = SAMPLE.read_bytes()
    alice = build_collection(None, [("alice-secret-plan.pdf", pdf, None)], SETTINGS)
    bob = build_collection(None, [("bob.pdf", pdf, None)], SETTINGS)  # same bytes: served from the cache
    assert "alice-secret-plan.pdf" in alice.reports[0].message
    assert bob.reports[0].message == alice.reports[0].message.replace("alice-secret-plan.pdf", "bob.pdf")
    stored = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "rag-embeddings").rglob("*.json"))
    assert stored and "alice" not in stored
