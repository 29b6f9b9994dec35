"""The IngestReport of one file: its status, the message that says what happened, its passages and content hash."""

from __future__ import annotations

import hashlib

from backends.rag.types import IngestReport


def ingest_report(
    name: str,
    status: str,
    message: str,
    data: bytes,
    passages=(),
    pages: int = 0,
    key: str = "",
    values: dict | None = None,
    notes=(),
) -> IngestReport:
    """The report of the file `name` whose bytes are `data` (hashed, so the embedding cache can key on them).

    `message` is English and names the file; `key`, `values` and `notes` ([key, values] pairs) say the
    same without the name, for the page to show in its language ("rag.ingest.<key>", "rag.ingest.note.<key>")."""
    return IngestReport(
        doc=name,
        status=status,
        message=message,
        pages=pages,
        passages=list(passages),
        sha256=hashlib.sha256(data).hexdigest(),
        key=key,
        values=dict(values or {}),
        notes=[[k, dict(v)] for k, v in notes],
    )
