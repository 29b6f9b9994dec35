"""The IngestReport of one file: its status, the message that says what happened, its passages and content hash."""

from __future__ import annotations

import hashlib

from backends.rag.types import IngestReport


def ingest_report(name: str, status: str, message: str, data: bytes, passages=(), pages: int = 0) -> IngestReport:
    """The report of the file `name` whose bytes are `data` (hashed, so the embedding cache can key on them)."""
    return IngestReport(
        doc=name,
        status=status,
        message=message,
        pages=pages,
        passages=list(passages),
        sha256=hashlib.sha256(data).hexdigest(),
    )
