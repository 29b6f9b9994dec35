"""Retrieval-augmented generation over the user's documents.

ingest (file bytes -> page passages) -> chunking (passages -> chunks with page
numbers) -> index (dense FAISS + sparse BM25, fused) -> answer (prompt with the
retrieved chunks -> cited answer) -> evaluate (recall@k, MRR, token-F1).

Ingest is four files: ingest.py (checks a file, reads PDFs page by page and text files; callers
import from it), image_ingest.py (images and scanned pages read by OCR), passage_text.py (text
cleanup, running headers and footers left out), ingest_report.py (one file's IngestReport).
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
