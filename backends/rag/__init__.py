"""Retrieval-augmented generation over the user's documents.

ingest (file bytes -> page passages) -> chunking (passages -> chunks with page
numbers) -> index (dense FAISS + sparse BM25, fused) -> answer (prompt with the
retrieved chunks -> cited answer) -> evaluate (recall@k, MRR, token-F1).
"""

# The public API other topics use (backends.experiments): the sample's collection, one answer with and
# without retrieval, and how it is scored.
from backends.rag.build import build_collection
from backends.rag.citations import WEAK_COSINE
from backends.rag.evaluate import token_f1
from backends.rag.generators import LocalGenerator, generate
from backends.rag.prompting import build_messages, build_messages_without_retrieval
from backends.rag.types import ChunkSettings

__all__ = [
    "WEAK_COSINE",
    "ChunkSettings",
    "LocalGenerator",
    "build_collection",
    "build_messages",
    "build_messages_without_retrieval",
    "generate",
    "token_f1",
]
