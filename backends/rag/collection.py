"""A collection: one session's indexed documents (chunks, embeddings, dense + BM25 indexes).

A Collection is a plain object owned by whoever built it (one browser
session); nothing about it lives in module state, so two sessions never see
each other's chunks. build.add_files() returns a new Collection and leaves the old
one as it was. Saved collections are FAISS's own index file, an .npy of the
embeddings (loaded with allow_pickle=False) and JSON: never pickle.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from backends.core.paths import cache_dir
from backends.rag.embed_cache import report_from_json, report_to_json
from backends.rag.embedder import embed, embed_query, load_embedder
from backends.rag.index import BM25, DenseIndex, order_for, retrieve
from backends.rag.stores import make_store
from backends.rag.types import METHODS, Chunk, ChunkSettings, Hit, IngestReport

FORMAT = 2  # 2: each chunk carries its kind (text layer, OCR, form, annotation)
_NAME = re.compile(r"^[\w][\w .\-]{0,63}$", re.UNICODE)


class CollectionError(ValueError):
    """A bad question, method, name or saved folder, with what to do."""


def collections_dir() -> Path:
    path = cache_dir() / "collections"
    path.mkdir(parents=True, exist_ok=True)
    return path


def collection_folder(name: str) -> Path:
    """The folder a collection called `name` is saved in (the name is checked: no paths)."""
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise CollectionError(
            f"Collection name {name!r} is not allowed: use up to 64 letters, digits, spaces, "
            "'.', '-' or '_', starting with a letter or digit."
        )
    return collections_dir() / name.strip()


def saved_collections() -> list[str]:
    return sorted(p.name for p in collections_dir().iterdir() if (p / "collection.json").is_file())


def delete_collection(name: str) -> None:
    """Remove a saved collection (only ever a folder inside collections_dir(): the name is checked)."""
    folder = collection_folder(name)
    if not (folder / "collection.json").is_file():
        raise CollectionError(f"There is no saved collection called {name!r}.")
    shutil.rmtree(folder)


class Collection:
    def __init__(
        self,
        name: str,
        embed_model: str,
        settings: ChunkSettings,
        chunks: list[Chunk],
        reports: list[IngestReport],
        embeddings: np.ndarray,
        device: str = "cpu",
        _dense=None,
        store: str = "faiss",
        store_url: str | None = None,
    ):
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) != len(chunks):
            raise CollectionError(
                f"{len(chunks)} chunks but embeddings of shape {embeddings.shape}: they must have one row per chunk."
            )
        if any(c.id != i for i, c in enumerate(chunks)):
            raise CollectionError("Chunk ids must be 0, 1, 2, ... in order.")
        self.name, self.embed_model, self.settings, self.device = name, embed_model, settings, device
        self.chunks, self.reports, self.embeddings = list(chunks), list(reports), embeddings
        self.store_kind, self.store_url = store, store_url
        self.dense = _dense if _dense is not None else make_store(store, embeddings, store_url, embed_model)
        self.bm25 = BM25([c.text for c in self.chunks])

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def documents(self) -> list[str]:
        """Names of the documents that have chunks here, in upload order."""
        return list(dict.fromkeys(c.doc for c in self.chunks))

    def embedder(self):
        return load_embedder(self.embed_model, self.device)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of texts by the collection's own model (the extractive answer's sentences)."""
        return embed(self.embedder(), list(texts))

    def query_embedding(self, question: str) -> np.ndarray:
        try:
            return embed_query(self.embedder(), question)
        except ValueError as exc:
            raise CollectionError(str(exc)) from exc

    def _check(self, question: str, k: int, candidates: int) -> None:
        if not isinstance(question, str) or not question.strip():
            raise CollectionError(f"The question is empty ({question!r}): type a question to search for.")
        if not isinstance(k, int) or k < 1:
            raise CollectionError(f"k (how many chunks to retrieve) must be at least 1, got {k!r}.")
        if not isinstance(candidates, int) or candidates < 1:
            raise CollectionError(f"candidates must be at least 1, got {candidates!r}.")

    def candidates_table(self, question: str, candidates: int = 30, query_vec: np.ndarray | None = None) -> list[Hit]:
        """Every chunk the dense or sparse top-`candidates` lists hold, in fused (RRF) order, with all scores."""
        self._check(question, 1, candidates)
        if not self.chunks:
            return []
        q = self.query_embedding(question) if query_vec is None else query_vec
        scored = retrieve(self.dense, self.bm25, self.embeddings, q, question, candidates)
        return [self._hit(s, s.fused_score, s.fused_rank) for s in scored]

    def search(
        self,
        question: str,
        method: str = "hybrid",
        k: int = 5,
        candidates: int = 30,
        query_vec: np.ndarray | None = None,
    ) -> list[Hit]:
        """The top k chunks by `method` (dense cosine, BM25, or RRF of the two); each Hit has every score."""
        if method not in METHODS:
            raise CollectionError(f"Unknown retrieval method {method!r}; use one of {', '.join(METHODS)}.")
        self._check(question, k, candidates)
        if not self.chunks:
            return []
        q = self.query_embedding(question) if query_vec is None else query_vec
        scored = retrieve(self.dense, self.bm25, self.embeddings, q, question, max(candidates, k))
        return [self._hit(s, score, i + 1) for i, (s, score) in enumerate(order_for(method, scored)[:k])]

    def _hit(self, s, score: float, rank: int) -> Hit:
        return Hit(
            self.chunks[s.row],
            float(score),
            rank,
            s.dense_score,
            s.dense_rank,
            s.sparse_score,
            s.sparse_rank,
            s.fused_score,
            s.fused_rank,
        )

    def save(self, folder: Path) -> Path:
        """Write the collection to `folder` (replaced atomically if it exists)."""
        import faiss

        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
        try:
            dense = self.dense if isinstance(self.dense, DenseIndex) else DenseIndex(self.embeddings)
            faiss.write_index(dense.faiss, str(tmp / "index.faiss"))
            np.save(tmp / "embeddings.npy", self.embeddings, allow_pickle=False)
            meta = {
                "format": FORMAT,
                "name": self.name,
                "embed_model": self.embed_model,
                "settings": asdict(self.settings),
                "reports": [report_to_json(r) for r in self.reports],
                "chunks": [[c.doc, c.page, c.start, c.text, c.kind] for c in self.chunks],
            }
            (tmp / "collection.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            if folder.exists():
                shutil.rmtree(folder)
            os.rename(tmp, folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: Path, device: str = "cpu", store: str = "faiss", store_url: str | None = None) -> Collection:
        import faiss

        folder = Path(folder)
        try:
            meta = json.loads((folder / "collection.json").read_text(encoding="utf-8"))
            embeddings = np.load(folder / "embeddings.npy", allow_pickle=False)
            index = faiss.read_index(str(folder / "index.faiss"))
        except (OSError, ValueError, RuntimeError) as exc:
            raise CollectionError(
                f"{str(folder)!r} is not a readable saved collection ({exc}); save it again."
            ) from exc
        if meta.get("format") != FORMAT:
            raise CollectionError(
                f"{str(folder)!r} was saved in format {meta.get('format')!r}; this version reads "
                f"format {FORMAT}. Build the collection again."
            )
        chunks = [
            Chunk(i, doc, int(page), text, int(start), kind)
            for i, (doc, page, start, text, kind) in enumerate(meta["chunks"])
        ]
        if index.ntotal != len(chunks) or index.d != embeddings.shape[1]:
            raise CollectionError(
                f"{str(folder)!r} is inconsistent: {index.ntotal} vectors in the index for "
                f"{len(chunks)} chunks. Build the collection again."
            )
        settings = ChunkSettings(**meta["settings"])
        reports = [report_from_json(r) for r in meta["reports"]]
        dense = DenseIndex.from_faiss(index) if store == "faiss" else None
        return cls(
            meta["name"],
            meta["embed_model"],
            settings,
            chunks,
            reports,
            embeddings,
            device,
            _dense=dense,
            store=store,
            store_url=store_url,
        )
