"""Vector stores behind one interface: FAISS in-process (default) or Qdrant (in-process or a server).

Both answer `search(query, n) -> (scores, rows)` with inner-product scores on unit vectors (the
cosine), best first, so retrieval, fusion and the glass box do not care which one holds the
vectors. Qdrant's local mode (`QdrantClient(":memory:")`) runs inside this process, which is what
the tests use; with a server URL (`http://qdrant:6333`) a class or a large document set shares one
server. On a server a collection is named by the hash of its vectors and model, so the same
documents indexed twice reuse one copy and different sessions never write into each other's.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

from backends.rag.index import DenseIndex, RetrievalError

STORES = ("faiss", "qdrant")
_UPSERT_BATCH = 512


class StoreError(ValueError):
    """An unknown store, or a Qdrant server that cannot be reached, with what to do."""


def make_store(kind: str, embeddings: np.ndarray, url: str | None = None, model: str = ""):
    if kind == "faiss":
        return DenseIndex(embeddings)
    if kind == "qdrant":
        return QdrantStore(embeddings, url, model)
    raise StoreError(f"Unknown vector store {kind!r}; use one of {', '.join(STORES)}.")


class QdrantStore:
    """Exact search in Qdrant (cosine distance; our vectors are unit length, so score = dot product)."""

    def __init__(self, embeddings: np.ndarray, url: str | None = None, model: str = ""):
        try:
            from qdrant_client import QdrantClient, models
        except ImportError as exc:
            raise StoreError("The Qdrant store needs qdrant-client: pip install 'qdrant-client==1.20.0'.") from exc
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2:
            raise RetrievalError(
                f"Embeddings must be a 2-D array (chunks x dimensions), got shape {embeddings.shape}."
            )
        self._models, self.ntotal, self._dim = models, len(embeddings), int(embeddings.shape[1])
        self.url = url or None
        self._lock = threading.Lock()  # the local mode is one process-private store, not a server
        try:
            self.client = (
                QdrantClient(url=url, timeout=10, check_compatibility=False) if url else QdrantClient(":memory:")
            )
            digest = hashlib.sha256(embeddings.tobytes() + model.encode()).hexdigest()[:24]
            self.name = f"llmpg-{digest}"
            if not (
                url
                and self.client.collection_exists(self.name)
                and self.client.count(self.name, exact=True).count == self.ntotal
            ):
                self._fill(embeddings)
        except StoreError:
            raise
        except Exception as exc:  # connection refused, timeouts, server errors: one message that quotes the URL
            raise StoreError(
                f"The Qdrant server at {url!r} could not be used ({type(exc).__name__}: {exc}); "
                "check the URL and that the server runs, or pick the FAISS store."
            ) from exc

    def _fill(self, embeddings: np.ndarray) -> None:
        models = self._models
        if self.client.collection_exists(self.name):
            self.client.delete_collection(self.name)
        self.client.create_collection(
            self.name, vectors_config=models.VectorParams(size=self._dim, distance=models.Distance.COSINE)
        )
        for start in range(0, len(embeddings), _UPSERT_BATCH):
            block = embeddings[start : start + _UPSERT_BATCH]
            self.client.upsert(
                self.name,
                points=models.Batch(ids=list(range(start, start + len(block))), vectors=block.tolist()),
                wait=True,
            )

    @property
    def dim(self) -> int:
        return self._dim

    def search(self, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        query = np.asarray(query, dtype=np.float32).ravel()
        if query.shape[0] != self._dim:
            raise RetrievalError(
                f"The query vector has {query.shape[0]} dimensions but the store holds {self._dim}: "
                "embed the question with the collection's own model."
            )
        n = min(n, self.ntotal)
        if n <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        exact = self._models.SearchParams(exact=True) if self.url else None  # the local mode is always exact
        with self._lock:
            points = self.client.query_points(self.name, query=query.tolist(), limit=n, search_params=exact).points
        return (
            np.array([p.score for p in points], dtype=np.float32),
            np.array([int(p.id) for p in points], dtype=np.int64),
        )
