"""Where `search_documents` looks: the RAG page's collection (any object with the RAG `Collection`'s
`search(question, k=...)`), the sample PDF's collection built with the RAG package's own builder
and embedder when the user has none, or a fixed list of passages (the injection measurement puts
its poisoned document there, so the tool result is known)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from backends import rag
from backends.core.paths import ASSETS

EMBED = "all-minilm-l6-v2"
CHUNKS = rag.ChunkSettings("characters", 500, 80)  # the RAG page's default
K = 2
MAX_CHARS = 600  # of each passage put into the tool result: a 135M model's context is small

_LOCK = threading.Lock()
_SAMPLES: dict[str, object] = {}


@dataclass(frozen=True)
class Passage:
    source: str  # "file.pdf p. 3", or a shipped document's id
    text: str


Search = Callable[[str], list[Passage]]


def sample_collection(device: str = "cpu"):
    """The sample PDF's RAG collection, built once per device for every session (read only)."""
    with _LOCK:
        if device not in _SAMPLES:
            pdf = next(iter(sorted((ASSETS / "samples").glob("*.pdf"))))
            _SAMPLES[device] = rag.build_collection(None, [(pdf.name, pdf.read_bytes(), None)], CHUNKS, EMBED, device)
        return _SAMPLES[device]


def collection_search(collection, k: int = K) -> Search:
    """Hybrid search (dense + BM25, fused) over a RAG collection, top `k` passages."""

    def search(query: str) -> list[Passage]:
        hits = collection.search(query, method="hybrid", k=k)
        return [Passage(f"{h.chunk.doc} p. {h.chunk.page}", h.chunk.text[:MAX_CHARS]) for h in hits]

    return search


def fixed_search(passages: list[Passage]) -> Search:
    """Always the same passages, whatever the query (a planted document)."""
    return lambda query: list(passages)


def format_passages(passages: list[Passage], delimit: bool = False) -> str:
    """The tool's result text; `delimit` wraps each passage in <document> tags (a defence)."""
    if not passages:
        return "No passage found."
    if delimit:
        return "\n".join(f'<document source="{p.source}">\n{p.text}\n</document>' for p in passages)
    return "\n\n".join(f"[{p.source}] {p.text}" for p in passages)
