"""A content-addressed disk cache of one file's ingest + chunks + embeddings.

Key: sha256 of (file bytes' sha256, the password if one was given, chunk
settings, embedding model, format version). The same bytes with the same
settings give the same chunks and vectors, so a hit skips PDF parsing,
splitting and the model. Only JSON and .npy (loaded with allow_pickle=False)
are written; entries appear atomically (written to a temp folder, renamed).
A password is part of the key, so an encrypted file's text is never handed to
a request that did not give the password.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from backends.core.paths import cache_dir
from backends.rag.types import KIND_TEXT, Chunk, ChunkSettings, IngestReport, Passage

# Bumped whenever ingest or chunking changes what a file turns into (2: running headers/footers removed).
# 3: no file name stored (the same bytes from another user must not show the first uploader's name);
# 4: passage kinds (text layer, OCR, form, annotation), OCR on or off in the key, no silent text loss.
FORMAT = 5  # 5: reports carry their message as key, values and notes
NAME = "\x00doc\x00"  # where the uploader's file name stood in the report's message


def embeddings_cache_dir() -> Path:
    path = cache_dir() / "rag-embeddings"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(file_sha256: str, password: str | None, settings: ChunkSettings, model: str, ocr: bool = True) -> str:
    secret = hashlib.sha256(password.encode("utf-8")).hexdigest() if password is not None else "-"
    parts = [
        file_sha256,
        secret,
        settings.method,
        str(settings.size),
        str(settings.overlap),
        model,
        str(FORMAT),
        "ocr" if ocr else "no-ocr",
    ]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def _folder(key: str) -> Path:
    return embeddings_cache_dir() / key[:2] / key


def report_to_json(report: IngestReport) -> dict:
    return asdict(report)


def report_from_json(data: dict) -> IngestReport:
    passages = [
        Passage(p["doc"], int(p["page"]), p["text"], p.get("kind", KIND_TEXT)) for p in data.get("passages", [])
    ]
    return IngestReport(
        data["doc"],
        data["status"],
        data["message"],
        int(data.get("pages", 0)),
        passages,
        data.get("sha256", ""),
        [int(p) for p in data.get("ocr_pages", [])],
        float(data.get("ocr_seconds", 0.0)),
        str(data.get("key", "")),
        dict(data.get("values", {})),
        [[str(k), dict(v)] for k, v in data.get("notes", [])],
    )


def get(key: str, doc: str) -> tuple[IngestReport, list[Chunk], np.ndarray] | None:
    """The cached (report, chunks numbered from 0, embeddings) under `doc`'s name, or None."""
    folder = _folder(key)
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        vectors = np.load(folder / "embeddings.npy", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if meta.get("format") != FORMAT or len(meta["chunks"]) != len(vectors):
        return None
    report = report_from_json(meta["report"])
    # the same bytes may arrive under another file name: the cached entry takes this upload's name
    report.doc = doc
    report.message = report.message.replace(NAME, doc)
    report.passages = [Passage(doc, p.page, p.text, p.kind) for p in report.passages]
    chunks = [
        Chunk(i, doc, int(page), text, int(start), kind) for i, (page, start, text, kind) in enumerate(meta["chunks"])
    ]
    return report, chunks, vectors


def put(key: str, report: IngestReport, chunks: list[Chunk], vectors: np.ndarray) -> None:
    folder = _folder(key)
    if folder.exists():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=key[:8] + ".", dir=folder.parent))
    try:
        # Content-addressed and shared by every session: keep no trace of who uploaded it under which name.
        stored = report_to_json(report)
        stored["message"] = report.message.replace(report.doc, NAME)
        stored["doc"] = NAME
        for passage in stored.get("passages", []):
            passage["doc"] = NAME
        meta = {"format": FORMAT, "report": stored, "chunks": [[c.page, c.start, c.text, c.kind] for c in chunks]}
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        np.save(tmp / "embeddings.npy", np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        os.rename(tmp, folder)
    except OSError:
        pass  # another process stored the same entry first, or the disk is full: the cache is optional
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def clear() -> int:
    """Delete every cached entry; returns how many there were."""
    root = embeddings_cache_dir()
    count = sum(1 for _ in root.glob("*/*/meta.json"))
    shutil.rmtree(root, ignore_errors=True)
    return count
