"""The plain data the RAG steps hand each other (no Streamlit, no models)."""

from __future__ import annotations

from dataclasses import dataclass, field

INGEST_OK, INGEST_NEEDS_PASSWORD, INGEST_NO_TEXT, INGEST_ERROR = "ok", "needs_password", "no_text", "error"
METHODS = ("dense", "sparse", "hybrid")
# Where a passage's text came from: the PDF's text layer, OCR of an image, filled form fields, annotations.
KIND_TEXT, KIND_OCR, KIND_FORM, KIND_ANNOTATION = "text", "ocr", "form", "annotation"
KINDS = (KIND_TEXT, KIND_OCR, KIND_FORM, KIND_ANNOTATION)


@dataclass(frozen=True)
class Passage:
    """The text of one page of one document (page numbers start at 1; .txt/.md files are page 1)."""

    doc: str
    page: int
    text: str
    kind: str = KIND_TEXT


@dataclass
class IngestReport:
    """What happened to one uploaded file; status is one of the INGEST_* values."""

    doc: str
    status: str
    message: str
    pages: int = 0
    passages: list[Passage] = field(default_factory=list)
    sha256: str = ""
    ocr_pages: list[int] = field(default_factory=list)  # pages whose text came from OCR
    ocr_seconds: float = 0.0  # OCR time in all
    # The message as data for the page's language (the file name left out: the page shows it beside):
    # key names a string "rag.ingest.<key>" filled with values; each note is [key, values] of "rag.ingest.note.<key>".
    key: str = ""
    values: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


@dataclass(frozen=True)
class ChunkSettings:
    method: str = "characters"  # "characters" | "tokens"
    size: int = 800  # characters, or tokens of the embedding model's tokenizer
    overlap: int = 120


@dataclass(frozen=True)
class Chunk:
    id: int  # position in its collection
    doc: str
    page: int
    text: str
    start: int  # character offset of the chunk in its passage's text
    kind: str = KIND_TEXT  # the passage's kind (text layer, OCR, form, annotation)


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with every score that led to it (None where a method did not rank it)."""

    chunk: Chunk
    score: float  # the score of the method asked for (dense cosine, BM25, RRF, or re-rank)
    rank: int  # 1-based rank in the final list
    dense_score: float | None = None
    dense_rank: int | None = None
    sparse_score: float | None = None
    sparse_rank: int | None = None
    fused_score: float | None = None
    fused_rank: int | None = None
    rerank_score: float | None = None
