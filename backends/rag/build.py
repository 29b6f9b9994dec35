"""Building a Collection from uploaded files, as a background job.

`build_collection(ctx, files, settings, ...)` reads every file, chunks it and
embeds the chunks, reporting progress per file and per embedding batch and
stopping when asked. A bad file ends up in the collection's reports with its
message; the others are still indexed. Files seen before (same bytes, same
password, settings and model) come from the content-hash cache, skipping
parsing and the model. add_files() returns a new Collection; the old one stays.
"""

from __future__ import annotations

import hashlib

import numpy as np

from backends.rag import embed_cache
from backends.rag.chunking import chunk_passages, validate_settings
from backends.rag.collection import Collection
from backends.rag.embedder import DEFAULT_BATCH, DEFAULT_EMBED_MODEL, embed, load_embedder, max_tokens
from backends.rag.ingest import MAX_BYTES, MAX_PAGES, ingest_file
from backends.rag.types import INGEST_ERROR, INGEST_OK, Chunk, ChunkSettings, IngestReport

INGEST_SHARE = 0.3  # of the progress bar, before embedding starts


class _Quiet:
    """Stands in for a JobContext when a builder is called directly (tests, scripts)."""

    stopped = False

    def report(self, progress=None, message="", **data):
        pass

    def check_stop(self):
        pass


def _unique_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    stem, dot, ext = name.rpartition(".")
    n = 2
    while True:
        candidate = f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"
        if candidate not in taken:
            return candidate
        n += 1


def _prepare(
    ctx, files, settings, loaded, model, taken: set[str], known_sha: set[str], max_bytes, max_pages, ocr: bool = True
):
    """Ingest + chunk every file (or take it from the cache). Returns per-file entries in upload order."""
    entries = []
    tokenizer = loaded.tokenizer if settings.method == "tokens" else None
    for i, item in enumerate(files):
        ctx.check_stop()
        name, data, password = ((*tuple(item), None))[:3]
        name = _unique_name(str(name), taken)
        ctx.report(INGEST_SHARE * i / max(len(files), 1), f"reading {name}", stage="ingest", doc=name)
        sha = hashlib.sha256(bytes(data or b"")).hexdigest()
        if sha in known_sha:
            report = IngestReport(
                name,
                INGEST_ERROR,
                f"{name!r} is already in this collection (same content); skipped.",
                sha256=sha,
                key="duplicate",
            )
            entries.append((report, [], None, None))
            continue
        key = embed_cache.cache_key(sha, password, settings, model, ocr)
        cached = embed_cache.get(key, name)
        if cached is not None:
            report, chunks, vectors = cached
            entries.append((report, chunks, vectors, None))
        else:

            def on_page(page, pages, i=i, name=name):
                ctx.report(
                    INGEST_SHARE * (i + page / pages) / len(files),
                    f"reading {name}: page {page}/{pages}",
                    stage="ingest",
                    doc=name,
                    page=page,
                    pages=pages,
                )
                return ctx.stopped

            def on_ocr(page, pages, seconds, i=i, name=name):
                done = "" if seconds is None else f" ({seconds:.1f} s)"
                ctx.report(
                    INGEST_SHARE * (i + (page - 1) / pages) / len(files),
                    f"OCR {name}: page {page}/{pages}{done}",
                    stage="ocr",
                    doc=name,
                    page=page,
                    pages=pages,
                    seconds=seconds,
                )

            report = ingest_file(
                name, data, password, max_bytes=max_bytes, max_pages=max_pages, on_page=on_page, ocr=ocr, on_ocr=on_ocr
            )
            ctx.check_stop()
            chunks = chunk_passages(report.passages, settings, tokenizer) if report.status == INGEST_OK else []
            entries.append((report, chunks, None, key if report.status == INGEST_OK else None))
        if report.status == INGEST_OK:
            taken.add(name)
            known_sha.add(sha)
        ctx.report(
            INGEST_SHARE * (i + 1) / max(len(files), 1),
            report.message,
            stage="ingest",
            doc=name,
            status=report.status,
            chunks=len(entries[-1][1]),
        )
    return entries


def _embed_new(ctx, loaded, entries, batch_size: int) -> None:
    """Embed the chunks of every file that missed the cache, in one pass (batches span files)."""
    todo = [i for i, (_, chunks, vectors, _) in enumerate(entries) if vectors is None and chunks]
    texts = [c.text for i in todo for c in entries[i][1]]
    if not texts:
        return

    def progress(done, total):
        share = INGEST_SHARE + (1 - INGEST_SHARE) * 0.95 * done / total
        ctx.report(share, f"embedded {done}/{total} chunks", stage="embed", done=done, total=total)
        return ctx.stopped

    vectors = embed(loaded, texts, batch_size=batch_size, on_batch=progress)
    ctx.check_stop()
    at = 0
    for i in todo:
        report, chunks, _, key = entries[i]
        part = vectors[at : at + len(chunks)]
        at += len(chunks)
        entries[i] = (report, chunks, part, key)
        if key is not None:
            embed_cache.put(key, report, chunks, part)


def _assemble(
    name, model, settings, device, old_chunks, old_reports, old_vectors, entries, dim, store="faiss", store_url=None
):
    chunks, blocks = list(old_chunks), [old_vectors] if old_vectors is not None and len(old_vectors) else []
    for _report, new_chunks, vectors, _ in entries:
        for c in new_chunks:
            chunks.append(Chunk(len(chunks), c.doc, c.page, c.text, c.start, c.kind))
        if new_chunks:
            blocks.append(vectors)
    embeddings = np.vstack(blocks).astype(np.float32) if blocks else np.zeros((0, dim), dtype=np.float32)
    # a file uploaded again (with its password, say) replaces its earlier failed report
    again = {e[0].doc for e in entries}
    kept = [r for r in old_reports if r.status == INGEST_OK or r.doc not in again]
    reports = kept + [e[0] for e in entries]
    return Collection(name, model, settings, chunks, reports, embeddings, device, store=store, store_url=store_url)


def build_collection(
    ctx,
    files: list[tuple[str, bytes, str | None]],
    settings: ChunkSettings,
    embed_model: str = DEFAULT_EMBED_MODEL,
    device: str = "cpu",
    name: str = "session",
    batch_size: int = DEFAULT_BATCH,
    max_bytes: int = MAX_BYTES,
    max_pages: int = MAX_PAGES,
    ocr: bool = True,
    store: str = "faiss",
    store_url: str | None = None,
):
    """Index `files` ((name, bytes, password or None) each) into a new Collection.

    ocr=False leaves scanned pages and images unread (each report says so); store picks the
    vector store ("faiss" in-process, or "qdrant": in-process, or the server at store_url)."""
    ctx = ctx or _Quiet()
    ctx.report(0.0, f"loading {embed_model}", stage="model")
    loaded = load_embedder(embed_model, device)
    validate_settings(settings, max_tokens(loaded))
    entries = _prepare(ctx, files, settings, loaded, embed_model, set(), set(), max_bytes, max_pages, ocr)
    _embed_new(ctx, loaded, entries, batch_size)
    ctx.report(0.97, "building the vector and BM25 indexes", stage="index")
    collection = _assemble(
        name,
        embed_model,
        settings,
        device,
        [],
        [],
        None,
        entries,
        loaded.model.get_embedding_dimension(),
        store,
        store_url,
    )
    ctx.report(1.0, f"{len(collection.chunks)} chunks from {len(collection.documents)} document(s)", stage="done")
    return collection


def add_files(
    ctx,
    collection,
    files: list[tuple[str, bytes, str | None]],
    batch_size: int = DEFAULT_BATCH,
    max_bytes: int = MAX_BYTES,
    max_pages: int = MAX_PAGES,
    ocr: bool = True,
):
    """A new Collection holding `collection`'s chunks plus those of `files`; `collection` is not changed."""
    ctx = ctx or _Quiet()
    loaded = load_embedder(collection.embed_model, collection.device)
    taken = set(collection.documents)
    known = {r.sha256 for r in collection.reports if r.status == INGEST_OK}
    entries = _prepare(
        ctx, files, collection.settings, loaded, collection.embed_model, taken, known, max_bytes, max_pages, ocr
    )
    _embed_new(ctx, loaded, entries, batch_size)
    ctx.report(0.97, "building the vector and BM25 indexes", stage="index")
    new = _assemble(
        collection.name,
        collection.embed_model,
        collection.settings,
        collection.device,
        collection.chunks,
        collection.reports,
        collection.embeddings,
        entries,
        collection.embeddings.shape[1],
        collection.store_kind,
        collection.store_url,
    )
    ctx.report(1.0, f"{len(new.chunks)} chunks from {len(new.documents)} document(s)", stage="done")
    return new
